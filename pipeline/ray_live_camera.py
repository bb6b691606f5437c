"""One live stream inside a Ray actor: reader, watchdog and reconnects, models, tracker and tracklet builder.

:class:`LiveCameraWorker` is a plain class (no Ray import): :mod:`pipeline.ray_live` makes it a
named Ray actor per stream. It holds a :class:`~pipeline.live_camera.LiveCamera` (the same reader
thread, watchdog and back-off as in-process live mode) and its own detector and ReID model, and runs
:func:`~pipeline.live_camera.process_batch` on the newest frame whenever one is ready. The driver
calls :meth:`LiveCameraWorker.poll` in a loop; each call works for about ``max_s`` seconds and returns
a :class:`LiveChunk` of what happened (stream events, confirmed tracks, ended tracklets, early-link
snapshots, counters) — features, boxes and times, never frames.

Time: the driver's session clock is carried by ``wall0`` (the Unix time of session time 0); the actor
maps it onto its own monotonic clock once at start, so frame timestamps of every stream are on one
clock as far as the nodes' wall clocks agree (NTP).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import MtmcConfig
from pipeline.live_camera import LiveCamera, process_batch, warm_up
from pipeline.live_reader import LiveSource
from pipeline.models import build_models
from pipeline.ray_camera import actor_config
from pipeline.summary import stage_timers
from pipeline.types import Tracklet


@dataclass
class LiveChunk:
    """What one :meth:`LiveCameraWorker.poll` (or :meth:`LiveCameraWorker.finish`) hands to the driver.

    Attributes:
        stream_events: ``(kind, fields)`` of the reader's ``stream_up`` / ``stream_down`` events (``time`` in
            session seconds).
        started: ``track_started`` fields (:func:`~pipeline.live_camera.process_batch`; ``capture_mono`` is
            the actor's clock: the driver recomputes the latency from ``time``).
        ended: tracklets that ended (all open ones after :meth:`LiveCameraWorker.finish`).
        early: snapshots of open tracks due for early linking (``live.link_after_s``).
        open: snapshots of the early-linked open tracks, when asked for (``None`` otherwise).
        processed: capture times (session s) of the frames processed.
        reader: the reader's ``state``, ``frames_in``, ``dropped``, ``reconnects``, ``fps``, ``width``,
            ``height``.
        stages: seconds per stage since the previous chunk (``detect``, ``track``, ``reid``).
        logs: one-line messages (a resolution change).
        next_local_id: the id the camera's next track would get.
    """

    stream_events: list[tuple[str, dict[str, Any]]]
    started: list[dict[str, Any]]
    ended: list[Tracklet]
    early: list[Tracklet]
    open: list[Tracklet] | None
    processed: list[float]
    reader: dict[str, Any]
    stages: dict[str, float] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    next_local_id: int = 1


class LiveCameraWorker:
    """One live stream's reader and stages: models loaded at construction, the stream read from
    :meth:`begin`, the work driven by :meth:`poll` calls.

    Args:
        source: the stream (a file must be readable where the actor runs).
        cfg: the validated config; the models are built here from ``cfg.detector`` / ``cfg.reid``, once,
            with ``executor.num_cpus_per_camera`` threads, and warmed up.
        seed: seed of the reader's back-off jitter.
        first_local_id: the camera's first track id (a restarted actor continues after its predecessor's).

    Raises:
        ModelError: a model SPEC is unknown or its weights cannot be loaded on this node.
    """

    def __init__(self, source: LiveSource, cfg: MtmcConfig, seed: int = 0, first_local_id: int = 1):
        cfg = actor_config(cfg)
        self.cfg = cfg
        self.models = build_models(cfg, {})
        warm_up(self.models.detector, self.models.extractor, 1)
        self.wakeup = threading.Event()
        self._lock = threading.Lock()
        self._events: list[tuple[str, dict[str, Any]]] = []
        self.source, self.seed, self.first_local_id = source, seed, first_local_id
        self._cam: LiveCamera | None = None
        self._reset()

    def begin(self, wall0: float) -> None:
        """Start reading the stream, session time 0 being Unix time ``wall0`` (s); idempotent.

        The driver begins every stream together once all models are loaded, so files start together.
        """
        if self._cam is not None:
            return
        t0 = time.monotonic() - (time.time() - wall0)
        self._cam = LiveCamera(self.source, self.cfg, t0, self._on_event, self.wakeup, seed=self.seed)
        self._cam.stage.tracker.start_ids_at(self.first_local_id)
        self._cam.start()

    @property
    def cam(self) -> LiveCamera:
        """The stream's :class:`LiveCamera`.

        Raises:
            RuntimeError: before :meth:`begin`.
        """
        if self._cam is None:
            raise RuntimeError("LiveCameraWorker.begin() was not called")
        return self._cam

    def model_names(self) -> tuple[str, str | None]:
        """``(detector name, ReID name or None)`` (answered once the models are loaded)."""
        ext = self.models.extractor
        return self.models.detector.name, ext.name if ext is not None else None

    def _on_event(self, kind: str, **fields: Any) -> None:
        with self._lock:  # called from the reader thread
            self._events.append((kind, fields))

    def _reset(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.ended: list[Tracklet] = []
        self.early: list[Tracklet] = []
        self.processed: list[float] = []
        self.logs: list[str] = []
        self.stages = stage_timers()

    def _work_once(self) -> bool:
        """Process the newest frame if one is ready, then pop ended tracks and due snapshots."""
        self.wakeup.clear()
        f = self.cam.reader.take()
        if f is not None:
            self.started += process_batch([f], {self.cam.camera_id: self.cam}, self.models.detector,
                                          self.models.extractor, self.stages, self.logs.append)
            self.processed.append(f.timestamp)
        self.ended += self.cam.ended(time.monotonic())
        self.early += self.cam.due_snapshots()
        return f is not None

    def poll(self, max_s: float, want_open: bool = False) -> LiveChunk:
        """Work for about ``max_s`` seconds (less when the stream is a file that ended), then report.

        Args:
            max_s: seconds to work before returning.
            want_open: include snapshots of the early-linked open tracks (for ``trajectories.json``).
        """
        end = time.monotonic() + max_s
        while True:
            busy = self._work_once()
            now = time.monotonic()
            if now >= end or self.cam.reader.state == "ended":
                break
            if not busy:
                self.wakeup.wait(min(0.02, end - now))
        return self._chunk(self.cam.open_snapshots() if want_open else None)

    def finish(self) -> LiveChunk:
        """Stop the reader, process the frame already decoded and close every open track (the session ends)."""
        self.cam.stop()
        self._work_once()
        self.ended += self.cam.finish()
        return self._chunk(None)

    def processed(self) -> int:
        """Frames this stream processed so far (answered between polls)."""
        return self._cam.stage.result.frames if self._cam is not None else 0

    def _chunk(self, open_snaps: list[Tracklet] | None) -> LiveChunk:
        with self._lock:
            events, self._events = self._events, []
        r = self.cam.reader
        reader = {"state": r.state, "frames_in": r.frames_in, "dropped": r.dropped, "reconnects": r.reconnects,
                  "fps": r.fps, "width": r.width, "height": r.height}
        chunk = LiveChunk(events, self.started, self.ended, self.early, open_snaps, self.processed, reader,
                          dict(self.stages), self.logs, self.cam.stage.tracker.num_confirmed + 1)
        self._reset()
        return chunk

    def close(self) -> None:
        """Stop the reader thread and close the models."""
        if self._cam is not None:
            self._cam.stop()
        self.models.close()
