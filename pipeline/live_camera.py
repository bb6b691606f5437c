"""One stream of a live session: its reader thread and its per-camera stages' state.

:class:`LiveCamera` is what ``mtmc live`` keeps per stream wherever the stream runs:
in the session's process (:class:`~pipeline.live_session.LiveSession`, frames of all
streams detected in one batch) or in the stream's Ray actor
(:class:`~pipeline.ray_live_camera.LiveCameraWorker`, its own models).
:func:`process_batch` runs the same stages as ``mtmc run`` on a batch of live frames;
:meth:`LiveCamera.ended` and :meth:`LiveCamera.due_snapshots` say which tracks go to
the linker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.config import MtmcConfig
from pipeline.detectors.base import Detector
from pipeline.live_reader import EventSink, LiveFrame, LiveReader, LiveSource
from pipeline.results import CameraResult
from pipeline.stages import CameraState, track_and_embed
from pipeline.types import Frame, Tracklet
from reid.extractor import FeatureExtractor


class LiveCamera:
    """One live stream: a :class:`~pipeline.live_reader.LiveReader` and the camera's tracker and tracklet builder.

    Args:
        source: the stream.
        cfg: the validated config (``live``, ``tracker``, ``tracklets``).
        t0: ``time.monotonic()`` at the start of the session clock (frame ``timestamp`` 0).
        on_event: sink of the reader's ``stream_up`` / ``stream_down`` events.
        wakeup: set by the reader whenever a frame is ready.
        seed: seed of the reader's back-off jitter.

    Attributes:
        reader: the reader thread (started by :meth:`start`).
        stage: the camera's :class:`~pipeline.stages.CameraState` (tracker, builder, result).
        last_ts: session time (s) of the last frame processed, ``None`` before any.
        early: local ids of open tracks already handed over for early linking (``live.link_after_s``).
    """

    def __init__(self, source: LiveSource, cfg: MtmcConfig, t0: float, on_event: EventSink,
                 wakeup: threading.Event, seed: int | None = None):
        self.source = source
        self.cfg = cfg
        self.t0 = t0
        self.reader = LiveReader(source, cfg.live, t0, on_event, wakeup, seed=seed)
        result = CameraResult(source.camera_id, source.display, "file" if source.is_file else "stream")
        self.stage = CameraState(result, cfg)  # fps and size come with the stream (stream_up)
        # live announces a track when it starts (track_started) and may link it early, so it keeps every track
        self.stage.builder.min_mean_score = 0.0
        self.last_ts: float | None = None
        self.early: set[int] = set()

    @property
    def camera_id(self) -> str:
        """The stream's camera id."""
        return self.source.camera_id

    @property
    def result(self) -> CameraResult:
        """The camera's result so far (frames, size, status; tracklets are the hub's)."""
        return self.stage.result

    def start(self) -> None:
        """Start the reader thread."""
        self.reader.start()

    def stop(self) -> None:
        """Ask the reader thread to end."""
        self.reader.stop()

    def ended(self, now_mono: float) -> list[Tracklet]:
        """Run the watchdog and pop the tracks that can no longer grow.

        A track ends once the tracker cannot see it again: ``tracker.max_age_s`` after its last box, counted
        on the last processed frame's time while the stream is up, on the clock while it is down (no older
        frame can come).

        Args:
            now_mono: ``time.monotonic()``.

        Returns:
            The ended tracklets (local ids of this camera), possibly empty.
        """
        self.reader.check_stall(now_mono)
        down = self.reader.state in ("down", "ended")
        bound = now_mono - self.t0 if down else (self.last_ts if self.last_ts is not None else -np.inf)
        closed = self.stage.builder.pop_ended(bound, self.cfg.tracker.max_age_s)
        self.early.difference_update(int(t.local_id) for t in closed)
        return closed

    def due_snapshots(self) -> list[Tracklet]:
        """Snapshots of open tracks in view for ``live.link_after_s`` or more, with a feature, not handed over
        yet (each is marked in :attr:`early` and given once); empty when early linking is off."""
        after = self.cfg.live.link_after_s
        if after is None:
            return []
        builder = self.stage.builder
        snaps = []
        for tid in builder.open_ids:
            span = builder.open_span(tid)
            if tid in self.early or span is None or span[2] == 0 or span[1] - span[0] < after:
                continue
            snap = builder.snapshot(tid)
            if snap is not None and snap.feature is not None:
                snaps.append(snap)
                self.early.add(int(tid))
        return snaps

    def open_snapshots(self) -> list[Tracklet]:
        """Snapshots (as of now) of the open tracks already handed over for early linking."""
        snaps = (self.stage.builder.snapshot(tid) for tid in self.stage.builder.open_ids if tid in self.early)
        return [s for s in snaps if s is not None]

    def finish(self) -> list[Tracklet]:
        """Close every open track (the session ends); returns them as tracklets."""
        self.early.clear()
        return self.stage.builder.finish()


def process_batch(batch: list[LiveFrame], cameras: dict[str, LiveCamera], detector: Detector,
                  extractor: FeatureExtractor | None, stages: dict[str, float],
                  log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Detect, track and embed one batch of live frames (at most one per camera) with the stages of ``mtmc run``.

    Args:
        batch: frames of the cameras in ``cameras``.
        cameras: camera id → its :class:`LiveCamera`.
        detector, extractor: the models (``extractor`` ``None``: no ReID).
        stages: seconds per stage, added to (``detect``, ``track``, ``reid``).
        log: one-line messages (a stream's resolution changed).

    Returns:
        One ``track_started`` event's fields per track confirmed in this batch: ``camera``, ``local_id``,
        ``frame``, ``xyxy`` (pixels, 1 decimal), ``time`` (session s) and ``capture_mono`` (the frame's
        ``time.monotonic()`` at capture, for the latency).
    """
    states = {cid: cam.stage for cid, cam in cameras.items()}
    for f in batch:
        r = states[f.camera_id].result
        if (r.width, r.height) not in ((0, 0), (f.width, f.height)):
            # the tracker's lost tracks (old coordinates) fail to match and age out after tracker.max_age_s
            log(f"{f.camera_id}: resolution changed {r.width}x{r.height} -> {f.width}x{f.height}")
    t = time.perf_counter()
    dets = detector.detect(batch)
    stages["detect"] += time.perf_counter() - t
    track_and_embed(batch, dets, states, extractor, stages)
    started = []
    for f in batch:
        cam = cameras[f.camera_id]
        cam.last_ts = f.timestamp
        for local_id, frame_idx, _ts, xyxy in cam.stage.builder.pop_started():
            started.append({"camera": f.camera_id, "local_id": int(local_id), "frame": int(frame_idx),
                            "xyxy": [round(float(v), 1) for v in xyxy], "time": round(float(f.timestamp), 3),
                            "capture_mono": f.capture_mono})
    return started


def warm_up(detector: Detector, extractor: FeatureExtractor | None, frames: int) -> None:
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
