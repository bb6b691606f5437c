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

Outputs in ``OUT``: ``events.jsonl`` (:mod:`pipeline.events`, flushed per line)
and ``trajectories.json`` (the offline schema, rewritten atomically every
``live.trajectories_every_s`` and at exit).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import remove_partial
from pipeline.config import MtmcConfig
from pipeline.detectors.base import Detector
from pipeline.detectors.factory import build_detector
from pipeline.errors import InputError
from pipeline.events import EventWriter
from pipeline.export import write_trajectories
from pipeline.live_reader import LiveFrame, LiveReader, LiveSource, parse_sources
from pipeline.outdir import OutputLock, check_output_dir, clear_outputs
from pipeline.results import CameraResult, RunResult
from pipeline.signals import GracefulStop
from pipeline.sources import CameraSpec
from pipeline.stages import CameraState, track_and_embed
from pipeline.types import Frame, Tracklet
from reid.extractor import FeatureExtractor
from reid.factory import build_reid


def _rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux ``/proc``), ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _r(x: float, nd: int = 3) -> float:
    return round(float(x), nd)


@dataclasses.dataclass
class LiveSummary:
    """What a live session did (printed by ``mtmc live`` at exit).

    Attributes:
        cameras: camera id → ``{"source", "state", "frames_in", "frames", "dropped", "reconnects", "tracks",
            "latency_p50_s", "latency_p95_s"}`` (frames decoded, processed, dropped; capture-to-event
            latency percentiles in seconds over the last 10 000 processed frames, ``None`` without any).
        identities: global identities at exit.
        events: event kind → count written.
        wall_s: seconds the session ran.
        interrupted: stopped by SIGINT/SIGTERM/SIGHUP (or the ``stop`` event).
        signum: the signal that stopped it, ``None`` otherwise (``mtmc live`` exits 128 + it).
    """

    cameras: dict[str, dict[str, Any]]
    identities: int
    events: dict[str, int]
    wall_s: float
    interrupted: bool
    signum: int | None = None

    def format_table(self) -> str:
        """An aligned text table, one line per camera and a total line."""
        head = (f"{'camera':<20} {'state':<10} {'decoded':>8} {'processed':>9} {'dropped':>8} "
                f"{'reconn':>6} {'tracks':>6}")
        lines = [head, "-" * len(head)]
        for cid, c in self.cameras.items():
            lines.append(f"{cid[:20]:<20} {c['state']:<10} {c['frames_in']:>8} {c['frames']:>9} {c['dropped']:>8} "
                         f"{c['reconnects']:>6} {c['tracks']:>6}")
        lines.append(f"{self.identities} identities in {self.wall_s:.1f}s; events: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())))
        return "\n".join(lines)


class _Stats:
    """Per-stream counters for the periodic ``stats`` event."""

    def __init__(self, readers: dict[str, LiveReader]):
        self.readers = readers
        self.latencies: dict[str, list[float]] = {c: [] for c in readers}
        # the last 10 000 latencies per stream for the session's percentiles (bounded memory)
        self.recent: dict[str, deque[float]] = {c: deque(maxlen=10_000) for c in readers}
        self.processed: dict[str, int] = dict.fromkeys(readers, 0)
        self._last = {c: (0, 0, 0) for c in readers}  # frames_in, processed, dropped at the last event

    def event(self, period_s: float) -> dict[str, Any]:
        """The ``stats`` event fields for the last ``period_s`` seconds: RSS in MB and, per stream, state,
        fps in/out, dropped frames (period and total), p50/p95 capture-to-event latency (s) and frame size (px)."""
        streams = {}
        for cid, r in self.readers.items():
            fin, fout, drop = r.frames_in, self.processed[cid], r.dropped
            lin, lout, ldrop = self._last[cid]
            self._last[cid] = (fin, fout, drop)
            lat = self.latencies[cid]
            streams[cid] = {
                "state": r.state,
                "fps_in": _r((fin - lin) / period_s, 2) if period_s > 0 else 0.0,
                "fps_out": _r((fout - lout) / period_s, 2) if period_s > 0 else 0.0,
                "dropped": drop - ldrop,
                "dropped_total": drop,
                "latency_p50_s": _r(np.percentile(lat, 50)) if lat else None,
                "latency_p95_s": _r(np.percentile(lat, 95)) if lat else None,
                "width": r.width,
                "height": r.height,
            }
            self.latencies[cid] = []
        mem = _rss_mb()
        return {"period_s": _r(period_s), "memory_mb": _r(mem, 1) if mem is not None else None, "streams": streams}


def _warm_up(detector: Detector, extractor: FeatureExtractor | None, frames: int) -> None:
    """Run the models once at their largest batch (``frames`` frames; ``extractor.batch`` crops, twice).

    onnxruntime's memory arena grows to the largest batch it has seen and keeps
    it; doing that at start keeps the memory of a long session flat (measured:
    ReID at batch 32 adds ~140 MB the first times it happens).
    """
    img = np.full((480, 640, 3), 114, np.uint8)
    detector.detect([Frame("warmup", 0, 0.0, img, 640, 480) for _ in range(max(1, frames))])
    if extractor is not None:
        crops = [np.full((128, 64, 3), 114, np.uint8)] * max(1, int(getattr(extractor, "batch", 1)))
        for _ in range(2):
            extractor.embed(crops)


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


class _Session:
    """The state of one live session (readers, per-camera stages, linker, outputs)."""

    def __init__(self, sources: list[LiveSource], cfg: MtmcConfig, out_dir: Path, detector: Detector,
                 extractor: FeatureExtractor | None, t0: float, log: Callable[[str], None]):
        from trackers.linking.incremental import IncrementalLinker

        self.cfg = cfg
        self.out_dir = out_dir
        self.detector = detector
        self.extractor = extractor
        self.t0 = t0
        self.log = log
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.events = EventWriter(out_dir / "events.jsonl", t0)
        self.linker = IncrementalLinker(cfg.linking)
        self.wakeup = threading.Event()
        self.sources = {s.camera_id: s for s in sources}
        self.readers = {s.camera_id: LiveReader(s, cfg.live, t0, self._stream_event, self.wakeup, seed=i)
                        for i, s in enumerate(sources)}
        self.states: dict[str, CameraState] = {}
        for s in sources:
            spec = CameraSpec(s.camera_id, Path(s.url) if s.is_file else Path("."), "stream",
                              video=Path(s.url) if s.is_file else None)
            st = CameraState(spec, cfg, None)
            st.result.source = s.display
            st.result.kind = "file" if s.is_file else "stream"
            self.states[s.camera_id] = st
        self.done: dict[str, list[Tracklet]] = {c: [] for c in self.sources}
        self.last_ts: dict[str, float] = {}
        self.early_linked: dict[tuple[str, int], int | None] = {}  # open tracks linked early → global id
        self.assigned: dict[tuple[str, int], int] = {}  # (camera, local id) → global id, once decided
        self.awaiting: dict[tuple[str, int], list[Tracklet]] = {}  # ended, id not decided yet
        self.merges: list[dict[str, Any]] = []  # identity_merged so far, as in trajectories.json
        self.stats = _Stats(self.readers)
        self.stages = dict.fromkeys(("decode", "detect", "track", "reid", "link", "export"), 0.0)
        self.max_batch = max(1, min(cfg.detector.batch, detector.max_batch))
        self._order = list(self.sources)

    # -- events -----------------------------------------------------------------------------------
    def _stream_event(self, kind: str, **fields: Any) -> None:
        self.events.write(kind, **fields)
        cam = fields.get("camera", "?")
        if kind == "stream_down":
            self.log(f"{cam}: stream down ({fields.get('reason')})")
        else:
            self.log(f"{cam}: stream up ({fields.get('width')}x{fields.get('height')})")

    def _link(self, tracklets: list[Tracklet], still_open: bool = False) -> None:
        """Give tracklets global ids through the incremental linker; write its events.

        ``still_open``: the tracklets are snapshots of tracks still in view
        (see :meth:`trackers.linking.incremental.IncrementalLinker.add`). With
        ``linking.decision_delay_s`` > 0 a tracklet's id comes later (its
        ``identity_assigned`` event is written when the linker decides, from
        :meth:`flush_links`); until then its ``global_id`` is ``None``.
        """
        if not tracklets:
            return
        t = time.perf_counter()
        min_len = self.cfg.tracklets.min_length
        use = self.extractor is not None and self.cfg.linking.enabled
        batch = [tr if use and len(tr) >= min_len else dataclasses.replace(tr, feature=None) for tr in tracklets]
        link_events = self.linker.add(batch, still_open=still_open)
        self.stages["link"] += time.perf_counter() - t
        self._apply(link_events)
        for tr in tracklets:
            tr.global_id = self.assigned.get((tr.camera_id, int(tr.local_id)))

    def flush_links(self, now: float | None) -> None:
        """Let the linker decide the tracklets whose ``decision_delay_s`` has passed by ``now``
        (process clock, s; ``None``: all of them, at exit) and write the events."""
        t = time.perf_counter()
        link_events = self.linker.flush(now)
        self.stages["link"] += time.perf_counter() - t
        self._apply(link_events)

    def _apply(self, link_events: list) -> None:
        """Record and write the linker's events (``identity_assigned``, ``identity_merged``)."""
        now = self.events.now()
        for e in link_events:
            if e.kind == "identity_assigned":
                key = (str(e.camera_id), int(e.local_id or 0))
                self.assigned[key] = int(e.global_id)
                if key in self.early_linked:
                    self.early_linked[key] = int(e.global_id)
                for tr in self.awaiting.pop(key, []):
                    tr.global_id = int(e.global_id)
                self.events.write("identity_assigned", camera=e.camera_id, local_id=int(e.local_id or 0),
                                  global_id=int(e.global_id), new_identity=bool(e.new_identity), time=now)
            else:
                self.merges.append({"global_id": int(e.global_id), "merged_into": int(e.merged_into or 0),
                                    "time": _r(e.time)})
                self.events.write("identity_merged", global_id=int(e.global_id), merged_into=int(e.merged_into or 0),
                                  time=now)

    def _end(self, cid: str, tracklets: list[Tracklet]) -> None:
        """Link ended tracklets and write their ``track_ended`` events."""
        if not tracklets:
            return
        self._link(tracklets)
        for tr in tracklets:
            self.done[cid].append(tr)
            self.early_linked.pop((cid, tr.local_id), None)
            if tr.global_id is None:  # the linker decides after linking.decision_delay_s
                self.awaiting.setdefault((cid, int(tr.local_id)), []).append(tr)
            gid = self.linker.resolve(tr.global_id) if tr.global_id is not None else None
            self.events.write(
                "track_ended", camera=cid, local_id=int(tr.local_id), global_id=gid,
                start_time=_r(tr.start_time), end_time=_r(tr.end_time), start_frame=int(tr.frames[0]),
                end_frame=int(tr.frames[-1]), boxes=len(tr), num_features=int(tr.num_features),
                last_xyxy=[_r(v, 1) for v in tr.boxes[-1]],
            )

    # -- the loop ---------------------------------------------------------------------------------
    def _gather(self) -> list[LiveFrame]:
        batch = []
        for cid in self._order:
            if len(batch) >= self.max_batch:
                break
            f = self.readers[cid].take()
            if f is not None:
                batch.append(f)
        self._order = self._order[1:] + self._order[:1]
        return batch

    def process(self, batch: list[LiveFrame]) -> None:
        """Detect, track and embed one batch; write ``track_started`` events and record latencies."""
        for f in batch:
            st = self.states[f.camera_id]
            if (st.result.width, st.result.height) not in ((0, 0), (f.width, f.height)):
                # the tracker's lost tracks (old coordinates) fail to match and age out after tracker.max_age_s
                self.log(f"{f.camera_id}: resolution changed {st.result.width}x{st.result.height} -> "
                         f"{f.width}x{f.height}")
        t = time.perf_counter()
        dets = self.detector.detect(batch)
        self.stages["detect"] += time.perf_counter() - t
        track_and_embed(batch, dets, self.states, self.extractor, self.stages)
        for f in batch:
            cid = f.camera_id
            self.last_ts[cid] = f.timestamp
            for local_id, frame_idx, _ts, xyxy in self.states[cid].builder.pop_started():
                self.events.write("track_started", camera=cid, local_id=int(local_id), frame=int(frame_idx),
                                  xyxy=[_r(v, 1) for v in xyxy], latency_s=_r(time.monotonic() - f.capture_mono),
                                  time=_r(f.timestamp))
        done = time.monotonic()
        for f in batch:
            self.stats.processed[f.camera_id] += 1
            self.stats.latencies[f.camera_id].append(done - f.capture_mono)
            self.stats.recent[f.camera_id].append(done - f.capture_mono)

    def housekeeping(self) -> None:
        """Watchdog, ended tracks, early links (after ``link_after_s``)."""
        cfg = self.cfg
        now_mono = time.monotonic()
        now = now_mono - self.t0
        for cid, r in self.readers.items():
            r.check_stall(now_mono)
            st = self.states[cid]
            # tracks can end once the camera's tracker can no longer see them again: by the last processed
            # frame's time while the stream is up, by the clock while it is down (no older frame can come)
            bound = now if r.state in ("down", "ended") else self.last_ts.get(cid, -np.inf)
            self._end(cid, st.builder.pop_ended(bound, cfg.tracker.max_age_s))
            if cfg.live.link_after_s is not None:
                snaps = []
                for tid in st.builder.open_ids:
                    span = st.builder.open_span(tid)
                    if ((cid, tid) in self.early_linked or span is None or span[2] == 0
                            or span[1] - span[0] < cfg.live.link_after_s):
                        continue
                    snap = st.builder.snapshot(tid)
                    if snap is not None and snap.feature is not None:
                        snaps.append(snap)
                self._link(snaps, still_open=True)
                for snap in snaps:
                    self.early_linked[(cid, snap.local_id)] = snap.global_id
        if self.cfg.linking.decision_delay_s > 0:
            self.flush_links(now)

    def trajectories(self, final: bool) -> RunResult:
        """A :class:`~pipeline.results.RunResult` of the tracklets so far (ended ones and linked open ones)."""
        cams: dict[str, CameraResult] = {}
        for cid, st in self.states.items():
            r = self.readers[cid]
            res = dataclasses.replace(st.result, tracklets=[], fps=r.fps)
            tracklets = list(self.done[cid])
            if not final:
                for tid in st.builder.open_ids:
                    if (cid, tid) in self.early_linked:
                        snap = st.builder.snapshot(tid)
                        if snap is not None:
                            snap.global_id = self.early_linked[(cid, tid)]
                            tracklets.append(snap)
            res.tracklets = [dataclasses.replace(t, global_id=self.linker.resolve(t.global_id))
                             for t in tracklets if t.global_id is not None]
            if final and r.state in ("down", "connecting"):
                res.status = "failed"
                res.error = "stream down at exit" if r.frames_in else "stream never delivered a frame"
            cams[cid] = res
        result = RunResult(cameras=cams, stages=dict(self.stages), wall_s=self.events.now(),
                           detector=self.detector.name, config=self.cfg.model_dump(by_alias=True),
                           reid=self.extractor.name if self.extractor is not None else None, created=self.created,
                           merges=list(self.merges))
        ids = {t.global_id for t in result.tracklets}
        cams_per_id: dict[int, set[str]] = {}
        for t in result.tracklets:
            cams_per_id.setdefault(int(t.global_id or 0), set()).add(t.camera_id)
        result.linking = {
            "method": "incremental (live)",
            "mode": "incremental",
            "merges": len(self.merges),
            "tracklets": len(result.tracklets),
            "tracklets_without_feature": sum(t.feature is None for t in result.tracklets),
            "identities": len(ids),
            "cross_camera_identities": sum(len(c) > 1 for c in cams_per_id.values()),
        }
        return result

    def write_trajectories(self, final: bool) -> None:
        """Rewrite ``OUT/trajectories.json`` atomically (temp file + rename) from :meth:`trajectories`."""
        t = time.perf_counter()
        write_trajectories(self.trajectories(final), self.out_dir)
        self.stages["export"] += time.perf_counter() - t

    def close_all(self) -> None:
        """Finish every camera's open tracks (link them, write ``track_ended``); decide every pending id."""
        for cid, st in self.states.items():
            self._end(cid, st.builder.finish())
        self.flush_links(None)  # tracklets still waiting for linking.decision_delay_s


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
        InputError: no source, an invalid one, or only missing files.
        OutputError: ``out_dir`` cannot be written, or another process holds it
            (:mod:`pipeline.outdir`); a previous session's files in it are replaced.
        ModelError: a detector or ReID SPEC is unknown or cannot be loaded.
    """
    log = log or (lambda msg: print(f"mtmc: {msg}", file=sys.stderr, flush=True))
    parsed = _check_sources(parse_sources(list(sources) or list(cfg.live.sources)))
    if cfg.detector.spec.strip().startswith("mot"):
        raise InputError("live mode needs a detector that looks at pixels: pass --detector with a YOLO model, "
                         "not 'mot'")
    out = Path(out_dir)
    check_output_dir(out, exist_ok=True)
    own_detector = detector is None
    if detector is None:
        detector = build_detector(cfg.detector, {})
    if isinstance(extractor, str):
        extractor = build_reid(cfg.reid, default_device=cfg.detector.device)
    _warm_up(detector, extractor, min(len(parsed), cfg.detector.batch, detector.max_batch))
    with OutputLock(out, "mtmc live"):
        clear_outputs(out, keep=[s.url for s in parsed if s.is_file])
        return _run_session(parsed, cfg, out, detector, extractor, own_detector, stop or threading.Event(),
                            duration_s, handle_signals, log)


def _run_session(parsed: list[LiveSource], cfg: MtmcConfig, out: Path, detector: Detector,
                 extractor: FeatureExtractor | None, own_detector: bool, stop: threading.Event,
                 duration_s: float | None, handle_signals: bool, log: Callable[[str], None]) -> LiveSummary:
    t0 = time.monotonic()
    session = _Session(parsed, cfg, out, detector, extractor, t0, log)
    signals = GracefulStop(stop, "closing tracks and writing the final files",
                           [session.events.close_now, remove_partial])
    if handle_signals:
        signals.install()
    interrupted = False
    live = cfg.live
    next_traj = next_stats = t0
    last_stats = t0
    try:
        for r in session.readers.values():
            r.start()
        next_traj, next_stats = t0 + live.trajectories_every_s, t0 + live.stats_every_s
        while not stop.is_set():
            session.wakeup.clear()
            batch = session._gather()
            if batch:
                session.process(batch)
            session.housekeeping()
            now = time.monotonic()
            if now >= next_stats:
                session.events.write("stats", **session.stats.event(now - last_stats))
                last_stats, next_stats = now, now + live.stats_every_s
            if now >= next_traj:
                session.write_trajectories(final=False)
                next_traj = now + live.trajectories_every_s
            if duration_s is not None and now - t0 >= duration_s:
                break
            if all(r.state == "ended" for r in session.readers.values()):
                break
            if not batch:
                session.wakeup.wait(0.02)
        interrupted = stop.is_set()
    finally:
        for r in session.readers.values():
            r.stop()
        try:
            last = session._gather()  # frames already decoded: finish them
            if last:
                session.process(last)
            session.close_all()
            now = time.monotonic()
            session.events.write("stats", **session.stats.event(now - last_stats))
            session.write_trajectories(final=True)
        finally:
            session.events.close()
            signals.restore()
            if own_detector:
                detector.close()
    cams = {}
    for cid, r in session.readers.items():
        cams[cid] = {"source": r.source.display, "state": r.state, "frames_in": r.frames_in,
                     "frames": session.stats.processed[cid], "dropped": r.dropped, "reconnects": r.reconnects,
                     "tracks": len(session.done[cid])}
        lat = session.stats.recent[cid]
        cams[cid]["latency_p50_s"] = _r(np.percentile(lat, 50)) if lat else None
        cams[cid]["latency_p95_s"] = _r(np.percentile(lat, 95)) if lat else None
    return LiveSummary(cams, session.linker.num_identities, dict(session.events.counts), time.monotonic() - t0,
                       interrupted, signals.signum)
