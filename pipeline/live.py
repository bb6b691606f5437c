"""``mtmc live``: track people across live streams, write events as they happen.

:func:`run_live` is the Python API behind ``mtmc live``. One
:class:`~pipeline.live_reader.LiveReader` thread per stream keeps only its
newest frame; the main loop takes the ready frames of all streams (at most one
each), detects them in one batch, and runs them through the same per-camera
stages as ``mtmc run`` (:class:`~pipeline.stages.CameraState`,
:func:`~pipeline.stages.track_and_embed`). A track ends when its camera's
frames have moved more than ``tracker.max_age_s`` past its last box (the
tracker has then dropped it for good), or when its stream goes down; the ended
tracklet goes to the :class:`~trackers.linking.incremental.IncrementalLinker`, which
gives it a global id stable for the life of the process. A track still in view
after ``live.link_after_s`` is linked early from a snapshot (re-added when it ends).

Time: every frame's ``timestamp`` is its capture time in seconds on one
monotonic clock started with the process, for all cameras, so the linker's
time constraints hold across cameras; latency is measured from that capture
(the moment the reader decoded the frame) to the moment its events were written.

The session's state (readers, stages, linker, events, stats) lives in
:mod:`pipeline.live_session`; models are built as for ``mtmc run``
(:func:`pipeline.models.build_models`); signals by :mod:`pipeline.signals`.

Outputs in ``OUT``: ``events.jsonl`` (:mod:`pipeline.events`, flushed per line),
``trajectories.json`` (the offline schema, rewritten atomically every
``live.trajectories_every_s`` and at exit; the identities retained in memory)
and ``trajectories.jsonl`` (identities not seen for ``live.retention_s``, one per
line, appended as they leave memory: :meth:`~pipeline.live_session.LiveSession.retire`).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import remove_partial
from pipeline.config import MtmcConfig
from pipeline.detectors.base import Detector
from pipeline.errors import InputError
from pipeline.live_camera import warm_up
from pipeline.live_hub import LiveHub, r3
from pipeline.live_reader import LiveSource, parse_sources
from pipeline.live_session import LiveSession
from pipeline.models import Models, build_models, uses_mot_detections
from pipeline.outdir import OutputLock, check_output_dir, clear_outputs
from pipeline.results import count_noun
from pipeline.signals import GracefulStop
from reid.extractor import FeatureExtractor


@dataclasses.dataclass
class LiveSummary:
    """What a live session did (printed by ``mtmc live`` at exit).

    Attributes:
        cameras: camera id → ``{"source", "state", "frames_in", "frames", "dropped", "reconnects", "tracks",
            "latency_p50_s", "latency_p95_s"}`` (frames decoded, processed, dropped; capture-to-event
            latency percentiles in seconds over the last 10 000 processed frames, ``None`` without any).
        identities: global identities in memory at exit (in ``trajectories.json``).
        events: event kind → count written.
        wall_s: seconds the session ran.
        interrupted: stopped by SIGINT/SIGTERM/SIGHUP (or the ``stop`` event).
        signum: the signal that stopped it, ``None`` otherwise (``mtmc live`` exits 128 + it).
        flushed: identities flushed to ``trajectories.jsonl`` (``live.retention_s``) and dropped from memory.
    """

    cameras: dict[str, dict[str, Any]]
    identities: int
    events: dict[str, int]
    wall_s: float
    interrupted: bool
    signum: int | None = None
    flushed: int = 0

    def format_table(self) -> str:
        """An aligned text table, one line per camera and a total line."""
        head = (f"{'camera':<20} {'state':<10} {'decoded':>8} {'processed':>9} {'dropped':>8} "
                f"{'reconn':>6} {'tracks':>6}")
        lines = [head, "-" * len(head)]
        for cid, c in self.cameras.items():
            lines.append(f"{cid[:20]:<20} {c['state']:<10} {c['frames_in']:>8} {c['frames']:>9} {c['dropped']:>8} "
                         f"{c['reconnects']:>6} {c['tracks']:>6}")
        flushed = f" (+{self.flushed} flushed to trajectories.jsonl)" if self.flushed else ""
        lines.append(f"{count_noun(self.identities, 'identity', 'identities')}{flushed} in {self.wall_s:.1f}s; events: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())))
        return "\n".join(lines)


def _check_sources(sources: list[LiveSource]) -> list[LiveSource]:
    """Drop missing files (one line each on stderr); raise when nothing is left."""
    ok = []
    for s in sources:
        if s.is_file and not Path(s.url).is_file():
            print(f"mtmc: warning: {s.camera_id}: video file not found: {s.display} (skipped; check the path)",
                  file=sys.stderr)
            continue
        ok.append(s)
    if not ok:
        raise InputError("no usable live source: " + ", ".join(s.display for s in sources)
                         + " (missing files; pass existing video files or stream URLs)")
    return ok


def run_live(
    sources: Sequence[str],
    cfg: MtmcConfig,
    out_dir: str | Path,
    detector: Detector | None = None,
    extractor: FeatureExtractor | None | str = "config",
    stop: threading.Event | None = None,
    duration_s: float | None = None,
    handle_signals: bool = True,
    log: Callable[[str], None] | None = None,
) -> LiveSummary:
    """Track people live across ``sources`` until stopped; write ``events.jsonl`` and ``trajectories.json``.

    Args:
        sources: URLs, video files or ``name=URL`` items (:func:`pipeline.live_reader.parse_source`);
            empty → ``cfg.live.sources``.
        cfg: the validated config (``live`` section: timeouts, back-off, periods).
        out_dir: output folder (created).
        detector: an already built detector (else built from ``cfg.detector``; not closed then).
        extractor: an already built ReID extractor, ``None`` for no ReID (each track its own
            identity), or ``"config"`` to build it from ``cfg.reid``.
        stop: set it to end the session (as SIGINT does).
        duration_s: end the session after this many seconds.
        handle_signals: in the main thread, SIGINT/SIGTERM/SIGHUP end the session cleanly; a second
            one exits the process at once (:class:`~pipeline.signals.GracefulStop`; the files stay valid).
        log: one-line messages (stream up/down, warnings); default stderr.

    Returns:
        :class:`LiveSummary`. The session also ends by itself when every source is a
        file that ended (without ``live.loop_files``); a stream that is down never ends it.

    Raises:
        ConfigError: ``executor.type`` is ``ray`` and built model objects were given.
        ClusterError: ``executor.type`` is ``ray`` and Ray is missing, the cluster unreachable, or too small for
            every stream's actor at once (:mod:`pipeline.ray_live`).
        InputError: no source, an invalid one, or only missing files.
        OutputError: ``out_dir`` cannot be written, or another process holds it
            (:mod:`pipeline.outdir`); a previous session's files in it are replaced.
        ModelError: a detector or ReID SPEC is unknown or cannot be loaded.
    """
    log = log or (lambda msg: print(f"mtmc: {msg}", file=sys.stderr, flush=True))
    parsed = _check_sources(parse_sources(list(sources) or list(cfg.live.sources)))
    if uses_mot_detections(cfg.detector.spec):
        raise InputError("live mode needs a detector that looks at pixels: pass --detector with a YOLO model, "
                         "not 'mot'")
    out = Path(out_dir)
    check_output_dir(out, exist_ok=True)
    if cfg.executor.type == "ray":
        return _run_on_ray(parsed, cfg, out, detector, extractor, stop or threading.Event(), duration_s,
                           handle_signals, log)
    models = build_models(cfg, {}, detector, extractor)
    try:
        warm_up(models.detector, models.extractor, min(len(parsed), cfg.detector.batch, models.detector.max_batch))
        with OutputLock(out, "mtmc live"):
            clear_outputs(out, keep=[s.url for s in parsed if s.is_file])
            return _run_session(parsed, cfg, out, models, stop or threading.Event(), duration_s, handle_signals, log)
    finally:
        models.close()


def _run_on_ray(parsed: list[LiveSource], cfg: MtmcConfig, out: Path, detector: Detector | None,
                extractor: FeatureExtractor | None | str, stop: threading.Event, duration_s: float | None,
                handle_signals: bool, log: Callable[[str], None]) -> LiveSummary:
    from pipeline.ray_live import refuse_given_models, run_live_ray

    refuse_given_models(detector, extractor)
    return run_live_ray(parsed, cfg, out, stop, duration_s, handle_signals, log)


def _run_session(parsed: list[LiveSource], cfg: MtmcConfig, out: Path, models: Models, stop: threading.Event,
                 duration_s: float | None, handle_signals: bool, log: Callable[[str], None]) -> LiveSummary:
    session = LiveSession(parsed, cfg, out, models.detector, models.extractor, time.monotonic(), log)
    return drive_session(session, stop, duration_s, handle_signals)


def drive_session(session: Any, stop: threading.Event, duration_s: float | None,
                  handle_signals: bool) -> LiveSummary:
    """Run a live session until ``stop``, ``duration_s`` or the end of every file; close it and write the files.

    Args:
        session: a :class:`~pipeline.live_session.LiveSession` or :class:`~pipeline.ray_live.RayLiveSession`
            (``start``, ``step``, ``idle``, ``all_ended``, ``shutdown`` and the :class:`LiveHub` outputs).
        stop, duration_s, handle_signals: as in :func:`run_live`.

    Returns:
        The session's :class:`LiveSummary`.
    """
    signals = GracefulStop(stop, "closing tracks and writing the final files",
                           [session.events.close_now, remove_partial])
    if handle_signals:
        signals.install()
    live = session.cfg.live
    last_stats = time.monotonic()
    try:
        session.start()  # may move session.t0 (Ray: once every actor has loaded its models)
        t0 = last_stats = session.t0
        next_traj, next_stats = t0 + live.trajectories_every_s, t0 + live.stats_every_s
        while not stop.is_set():
            busy = session.step()
            now = time.monotonic()
            if now >= next_stats:
                session.events.write("stats", **session.stats.event(now - last_stats))
                last_stats, next_stats = now, now + live.stats_every_s
            if now >= next_traj:
                session.write_trajectories(final=False)
                next_traj = now + live.trajectories_every_s
            if (duration_s is not None and now - t0 >= duration_s) or session.all_ended():
                break
            if not busy:
                session.idle(0.02)
        interrupted = stop.is_set()
    finally:
        try:
            session.shutdown()
            now = time.monotonic()
            session.events.write("stats", **session.stats.event(now - last_stats))
            session.write_trajectories(final=True)
        finally:
            session.events.close()
            session.close_files()
            signals.restore()
    return _summary(session, interrupted, signals.signum)


def _summary(session: LiveHub, interrupted: bool, signum: int | None) -> LiveSummary:
    cams = {}
    stats = session.stats
    for cid, r in session.readers.items():
        cams[cid] = {"source": r.source.display, "state": r.state, "frames_in": r.frames_in,
                     "frames": stats.processed[cid], "dropped": r.dropped, "reconnects": r.reconnects,
                     "tracks": session.tracks_ended[cid]}
        lat = stats.recent[cid]
        cams[cid]["latency_p50_s"] = r3(np.percentile(lat, 50)) if lat else None
        cams[cid]["latency_p95_s"] = r3(np.percentile(lat, 95)) if lat else None
    return LiveSummary(cams, session.linker.num_identities, dict(session.events.counts),
                       time.monotonic() - session.t0, interrupted, signum, session.flushed)
