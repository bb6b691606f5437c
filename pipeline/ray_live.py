"""``mtmc live --executor ray``: one named Ray actor per stream, events and identity decisions on the driver.

Each stream gets a :class:`~pipeline.ray_live_camera.LiveCameraWorker` actor named
``mtmc-live-<driver pid>-<session>-<camera id>[-<restart>]`` (``executor.num_cpus_per_camera`` CPUs,
``executor.num_gpus_per_camera`` GPUs, no Ray restarts or task retries): the reader thread with its
watchdog and reconnects, the models, the tracker and the tracklet builder all live in it. The driver
(:class:`RayLiveSession`, a :class:`~pipeline.live_hub.LiveHub`) keeps one ``poll`` in flight per actor,
writes the events, links with the same :class:`~trackers.linking.incremental.IncrementalLinker` as local
live mode and rewrites the files.

An actor that dies (killed, out of memory, node lost) is a stream that went down: a ``stream_down``
event names the cause, the tracklets it had handed over are kept (its early-linked open tracks end at
their last snapshot), and a new actor is started after the reconnect back-off (``live.backoff_*``),
its track ids continuing after the old ones. The other streams go on.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config import MtmcConfig
from pipeline.errors import ConfigError, ModelError, first_line
from pipeline.live_hub import LiveHub, LiveStats
from pipeline.live_reader import LiveSource
from pipeline.outdir import OutputLock, clear_outputs
from pipeline.ray_connect import ClusterError, RayConnection, import_ray
from pipeline.ray_live_camera import LiveCameraWorker, LiveChunk
from pipeline.ray_run import camera_actor_options, check_resources
from pipeline.redact import mask_text
from pipeline.results import CameraResult
from pipeline.types import Tracklet

ACTOR_PREFIX = "mtmc-live"
"""Stream actors are named ``mtmc-live-<driver pid>-<session>-<camera id>`` (a restart adds ``-<n>``)."""
POLL_S = 0.1
"""Seconds a stream actor works between two reports to the driver (the events' extra delay)."""
_SESSIONS = itertools.count()


@dataclasses.dataclass
class StreamMirror:
    """The driver's copy of a stream actor's reader figures (the attributes of a :class:`LiveReader` the hub reads)."""

    source: LiveSource
    state: str = "connecting"
    frames_in: int = 0
    dropped: int = 0
    reconnects: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0


class RemoteCamera:
    """What the driver knows of one stream running in an actor: reader figures, result, open snapshots.

    Attributes:
        reader: :class:`StreamMirror`, updated from every chunk.
        result: the camera's :class:`~pipeline.results.CameraResult` (frames, size).
        open: the early-linked open tracks as last reported.
        actor: the Ray actor handle, ``None`` while waiting for a restart.
        restarts: actors started after the first one died.
        next_local_id: the first track id of a restarted actor.
        restart_at: ``time.monotonic()`` of the next restart (while ``actor`` is ``None``).
        carried: ``frames_in``, ``dropped`` and ``reconnects`` of the dead actors (the mirror adds the live one's).
    """

    def __init__(self, source: LiveSource):
        self.reader = StreamMirror(source)
        self.result = CameraResult(source.camera_id, source.display, "file" if source.is_file else "stream")
        self.open: list[Tracklet] = []
        self.actor: Any = None
        self.restarts = 0
        self.next_local_id = 1
        self.restart_at = 0.0
        self.carried = {"frames_in": 0, "dropped": 0, "reconnects": 0}

    def open_snapshots(self) -> list[Tracklet]:
        """Copies of the early-linked open tracks as last reported by the actor."""
        return [dataclasses.replace(t) for t in self.open]


class RayLiveSession(LiveHub):
    """A live session whose streams run in Ray actors; the hub (events, linker, files) runs here.

    Args:
        sources: the streams.
        cfg: the validated config (``executor`` for the actors' resources).
        out_dir: output folder (exists).
        t0: ``time.monotonic()`` at the start of the session clock.
        log: one-line messages.
    """

    def __init__(self, sources: list[LiveSource], cfg: MtmcConfig, out_dir: Path, t0: float,
                 log: Callable[[str], None]):
        super().__init__(sources, cfg, out_dir, t0, log, "?", None)
        self.cameras: dict[str, RemoteCamera] = {s.camera_id: RemoteCamera(s) for s in sources}
        self.stats = LiveStats(self.readers)
        self.session = f"{os.getpid()}-{next(_SESSIONS)}"
        self.pending: dict[Any, str] = {}
        self._remote: Any = None
        self._next_open = 0.0

    # -- actors -----------------------------------------------------------------------------------
    def actor_name(self, cid: str) -> str:
        """The Ray actor name of stream ``cid``'s current actor."""
        cam = self.cameras[cid]
        return f"{ACTOR_PREFIX}-{self.session}-{cid}" + (f"-{cam.restarts}" if cam.restarts else "")

    def _spawn(self, cid: str) -> None:
        cam = self.cameras[cid]
        options = camera_actor_options(self.cfg, self.actor_name(cid))
        seed = list(self.cameras).index(cid) + 1000 * cam.restarts
        cam.actor = self._remote.options(**options).remote(cam.reader.source, self.cfg, seed, cam.next_local_id)

    def start(self) -> None:
        """Start one actor per stream and wait until each has loaded its models.

        Raises:
            ModelError: no actor could load its models (the first error, one line).
        """
        ray = import_ray()
        self._remote = ray.remote(LiveCameraWorker)
        for cid in self.cameras:
            self._spawn(cid)
        errors = []
        for cid, cam in self.cameras.items():
            try:
                names = ray.get(cam.actor.model_names.remote())
                self.detector_name, self.reid_name = names
            except ray.exceptions.RayError as exc:
                errors.append(_actor_error(exc))
                self._died(cid, errors[-1])
        if len(errors) == len(self.cameras):
            raise ModelError(f"no stream actor could start: {errors[0]}")
        self.restart_clock(time.monotonic())  # the streams start now, together
        for cid, cam in self.cameras.items():
            if cam.actor is not None:
                self._begin(cid)

    def _begin(self, cid: str) -> None:
        self.cameras[cid].actor.begin.remote(self.wall0)  # ordered before the poll: one caller, one actor
        self._poll(cid)

    def _poll(self, cid: str) -> None:
        want_open = time.monotonic() >= self._next_open
        self.pending[self.cameras[cid].actor.poll.remote(POLL_S, want_open)] = cid

    def _died(self, cid: str, why: str) -> None:
        """Stream ``cid``'s actor died: its stream is down, its early-linked open tracks end, a restart is due."""
        cam = self.cameras[cid]
        if cam.actor is not None:
            import_ray().kill(cam.actor, no_restart=True)
        cam.actor = None
        cam.reader.state = "down"
        cam.reader.reconnects += 1  # the restart is a reconnect
        cam.carried = {k: getattr(cam.reader, k) for k in cam.carried}
        reason = f"its Ray actor died ({why})"
        self._stream_event("stream_down", camera=cid, source=cam.reader.source.display, reason=reason,
                           time=time.monotonic() - self.t0)
        self._end(cid, [t for t in cam.open if (cid, t.local_id) in self.early_linked])
        cam.open = []
        live = self.cfg.live
        delay = min(live.backoff_max_s, live.backoff_initial_s * 2.0 ** min(cam.restarts, 30))
        cam.restart_at = time.monotonic() + delay
        cam.restarts += 1

    # -- the loop ---------------------------------------------------------------------------------
    def step(self) -> bool:
        """Take the chunks that are ready (waiting up to 0.1 s), ask their actors for the next, restart dead
        actors whose back-off has passed, and do the hub's housekeeping; True when a chunk came."""
        ray = import_ray()
        ready: list[Any] = []
        if self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0.1)
        took = [self._take(ray, ref) for ref in ready]  # every ready chunk (no short-circuit)
        if any(took) and time.monotonic() >= self._next_open:
            self._next_open = time.monotonic() + self.cfg.live.trajectories_every_s / 2
        now = time.monotonic()
        for cid, cam in self.cameras.items():
            if cam.actor is None and cam.reader.state != "ended" and now >= cam.restart_at:
                self.log(f"{cid}: starting a new Ray actor for the stream (restart {cam.restarts})")
                self._spawn(cid)
                self._begin(cid)
        self.decide(now - self.t0)
        return bool(ready)

    def _take(self, ray: Any, ref: Any) -> bool:
        """Apply the chunk of ``ref`` and poll its actor again (unless its file ended); False when it died."""
        cid = self.pending.pop(ref)
        try:
            chunk: LiveChunk = ray.get(ref)
        except ray.exceptions.RayError as exc:
            self._died(cid, _actor_error(exc))
            return False
        self._apply_chunk(cid, chunk)
        if chunk.reader["state"] != "ended":
            self._poll(cid)
        return True

    def _apply_chunk(self, cid: str, chunk: LiveChunk) -> None:
        """Write the chunk's events, link what ended or is due, and update the mirrored figures."""
        cam = self.cameras[cid]
        for kind, fields in chunk.stream_events:
            self._stream_event(kind, **fields)
        for msg in chunk.logs:
            self.log(msg)
        for tr in chunk.started:  # latency: capture (session clock, from the actor) to now (driver)
            tr["capture_mono"] = self.t0 + tr["time"]
        now_mono = time.monotonic()
        self.started(chunk.started, now_mono)
        self._end(cid, chunk.ended)
        self.link_early(cid, chunk.early)
        if chunk.open is not None:
            cam.open = chunk.open
        _mirror(cam, chunk)
        for ts in chunk.processed:
            lat = now_mono - (self.t0 + ts)
            self.stats.processed[cid] += 1
            self.stats.latencies[cid].append(lat)
            self.stats.recent[cid].append(lat)
        for key, sec in chunk.stages.items():
            self.stages[key] += sec

    def idle(self, timeout_s: float) -> None:
        """Nothing to wait for here: :meth:`step` already waits for the actors."""

    def all_ended(self) -> bool:
        """Every stream is a file that ended."""
        return all(cam.reader.state == "ended" for cam in self.cameras.values())

    def shutdown(self) -> None:
        """Collect the polls in flight, let every actor close its open tracks, end the actors, decide every id."""
        ray = import_ray()
        for ref in list(self.pending):  # the polls in flight: the actors answer within POLL_S
            cid = self.pending.pop(ref)
            try:
                self._apply_chunk(cid, ray.get(ref))
            except ray.exceptions.RayError as exc:
                self._died(cid, _actor_error(exc))
        for cid, cam in self.cameras.items():
            if cam.actor is None:
                continue
            try:
                self._apply_chunk(cid, ray.get(cam.actor.finish.remote()))
            except ray.exceptions.RayError as exc:
                self._died(cid, _actor_error(exc))
            if cam.actor is not None:
                ray.kill(cam.actor, no_restart=True)
                cam.actor = None
        self.flush_links(None)


def _mirror(cam: RemoteCamera, chunk: LiveChunk) -> None:
    """Copy the actor's reader figures, frame size, frames processed and next track id into ``cam``; the
    counters of a restarted actor continue its predecessors'."""
    for key, value in chunk.reader.items():
        setattr(cam.reader, key, cam.carried[key] + value if key in cam.carried else value)
    if cam.reader.width:
        cam.result.width, cam.result.height = cam.reader.width, cam.reader.height
    cam.result.frames += len(chunk.processed)
    cam.next_local_id = max(cam.next_local_id, chunk.next_local_id)


def _actor_error(exc: BaseException) -> str:
    """One line for an actor's failure: the model error it raised, else Ray's reason."""
    cause = getattr(exc, "cause", None) or exc
    return mask_text(first_line(cause))


def run_live_ray(parsed: list[LiveSource], cfg: MtmcConfig, out: Path, stop: threading.Event,
                 duration_s: float | None, handle_signals: bool, log: Callable[[str], None]) -> Any:
    """The Ray half of :func:`pipeline.live.run_live` (sources checked): join the cluster, then lock and clear
    ``out`` and run a :class:`RayLiveSession`.

    Raises:
        ClusterError: Ray missing, the cluster unreachable, or fewer CPUs/GPUs than every stream's actor
            asks for at once (streams cannot take turns).
        ModelError: no stream actor could load its models.
    """
    from pipeline.live import drive_session

    connection = RayConnection.open(cfg.executor)
    try:
        ray = import_ray()
        check_resources(ray, cfg)
        _check_all_fit(ray, cfg, len(parsed))
        with OutputLock(out, "mtmc live"):  # cleared only once the cluster is known to take the streams
            clear_outputs(out, keep=[s.url for s in parsed if s.is_file])
            session = RayLiveSession(parsed, cfg, out, time.monotonic(), log)
            return drive_session(session, stop, duration_s, handle_signals)
    finally:
        connection.close()


def _check_all_fit(ray: Any, cfg: MtmcConfig, streams: int) -> None:
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    need = streams * cfg.executor.num_cpus_per_camera
    if need > cpus:
        raise ClusterError(f"{streams} live streams need {need:g} CPUs at executor.num_cpus_per_camera "
                           f"{cfg.executor.num_cpus_per_camera:g} but the Ray cluster has {cpus:g}: every stream "
                           f"runs at once in live mode; set executor.num_cpus_per_camera to {cpus / streams:.2g} "
                           "or less, or add nodes")


def refuse_given_models(detector: object, extractor: object) -> None:
    """Raise ``ConfigError`` when built model objects were passed: Ray actors build theirs from the config."""
    if detector is not None or not isinstance(extractor, str):
        raise ConfigError("executor.type ray builds the models in each stream actor from the config: pass "
                          "detector/reid SPECs in the config, not model objects")
