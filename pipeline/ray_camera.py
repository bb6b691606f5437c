"""The work of one camera inside a Ray actor: reader, models, tracker and tracklet builder.

:class:`CameraWorker` is a plain class (no Ray import): :mod:`pipeline.ray_run` makes
it a Ray actor with ``ray.remote(CameraWorker)``. It runs exactly the stages of the
local executor (:class:`~pipeline.reader.CameraReader`, the detector,
:func:`~pipeline.stages.track_and_embed`, :class:`~pipeline.stages.CameraState`) on
its camera's frames, in chunks; after each chunk the tracklets that can no longer
grow go to the driver, so a camera whose actor dies keeps what it had handed over.
"""

from __future__ import annotations

import pickle
import queue
import threading
import time
from dataclasses import dataclass, field

from pipeline.config import MtmcConfig
from pipeline.models import Models, build_models
from pipeline.reader import CameraReader, EndOfStream
from pipeline.sources import CameraSpec
from pipeline.stages import CameraState, track_and_embed
from pipeline.summary import stage_timers
from pipeline.types import Frame, Tracklet


@dataclass
class Chunk:
    """What one :meth:`CameraWorker.step` (or :meth:`CameraWorker.finish`) hands to the driver.

    Attributes:
        frames: frames processed in this chunk.
        tracklets: tracklets closed in this chunk (ended tracks; all open ones at the end), by local id.
        ended: the camera's input ended (or :meth:`CameraWorker.finish` closed it).
        error: one-line decoding error when the input ended on one, else ``None``.
        width, height: frame size (px) of the last frame, 0 before any.
        stages: the actor's seconds per stage so far (``detect``, ``track``, ``reid``, ``decode``; cumulative).
        payload_bytes: pickled size of ``tracklets`` (bytes): the tracklet data crossing to the driver.
    """

    frames: int
    tracklets: list[Tracklet]
    ended: bool
    error: str | None = None
    width: int = 0
    height: int = 0
    stages: dict[str, float] = field(default_factory=dict)
    payload_bytes: int = 0


def actor_config(cfg: MtmcConfig) -> MtmcConfig:
    """``cfg`` with ``detector.threads`` / ``reid.threads`` of 0 ("all cores") set to the actor's CPUs
    (``executor.num_cpus_per_camera``, at least 1): actors sharing a node must not each use every core."""
    n = max(1, int(cfg.executor.num_cpus_per_camera))
    det = {"threads": n} if cfg.detector.threads == 0 else {}
    reid = {"threads": n} if cfg.reid.threads == 0 else {}
    return cfg.model_copy(update={"detector": cfg.detector.model_copy(update=det),
                                  "reid": cfg.reid.model_copy(update=reid)})


class CameraWorker:
    """One camera's decode → detect → track → embed → tracklet stages, driven chunk by chunk.

    Args:
        spec: the camera (its path must be readable where the actor runs: shared storage or a URL).
        cfg: the validated config; the models are built from ``cfg.detector`` and ``cfg.reid`` here,
            once per actor.
        models: already built models (tests, or proxies of a shared model actor); default: built here.

    Raises:
        ModelError: a model SPEC is unknown or its weights cannot be loaded on this node.
    """

    def __init__(self, spec: CameraSpec, cfg: MtmcConfig, models: Models | None = None):
        cfg = actor_config(cfg)
        self.cfg = cfg
        self.camera_id = spec.camera_id
        self.models = models if models is not None else build_models(cfg, {spec.camera_id: spec.path})
        self.state = CameraState.for_spec(spec, cfg)
        self.stages = stage_timers()
        self.wakeup = threading.Event()
        self.reader = CameraReader(spec, cfg.decode.queue_size, cfg.decode.max_frames, self.wakeup)
        self.max_batch = max(1, min(cfg.detector.batch, self.models.detector.max_batch))
        self.last_ts: float | None = None
        self.ended = False
        self.reader.start()

    def model_names(self) -> tuple[str, str | None]:
        """``(detector name, ReID name or None)`` of the models this actor uses."""
        ext = self.models.extractor
        return self.models.detector.name, ext.name if ext is not None else None

    def _take(self) -> tuple[list[Frame], EndOfStream | None]:
        """Up to ``max_batch`` frames: waits for the first, then takes those already decoded."""
        frames: list[Frame] = []
        while len(frames) < self.max_batch:
            try:
                item = self.reader.queue.get(timeout=0.1) if not frames else self.reader.queue.get_nowait()
            except queue.Empty:
                if frames or not self.reader.is_alive():
                    break
                continue
            if isinstance(item, EndOfStream):
                return frames, item
            frames.append(item)
        return frames, None

    def _process(self, batch: list[Frame]) -> None:
        t = time.perf_counter()
        dets = self.models.detector.detect(batch)
        self.stages["detect"] += time.perf_counter() - t
        track_and_embed(batch, dets, {self.camera_id: self.state}, self.models.extractor, self.stages)
        self.last_ts = batch[-1].timestamp

    def step(self, max_frames: int) -> Chunk:
        """Process about ``max_frames`` frames (whole detector batches), or up to the end of the input.

        Returns:
            :class:`Chunk` with the tracks that ended (their last box more than ``tracker.max_age_s``
            before the last frame processed, so the tracker cannot resume them) — or, when the input
            ended, every track.
        """
        if self.ended:
            return self._chunk(0, [], None)
        done = 0
        end: EndOfStream | None = None
        while done < max_frames and end is None:
            batch, end = self._take()
            if batch:
                self._process(batch)
                done += len(batch)
            elif end is None and not self.reader.is_alive():
                end = EndOfStream("reader thread ended without an end marker")
        if end is not None:
            return self._close(done, end.error, None)
        closed = []
        if self.last_ts is not None:
            closed = self.state.builder.pop_ended(self.last_ts, self.cfg.tracker.max_age_s)
        return self._chunk(done, closed, None)

    def finish(self, error: str | None = None, status: str | None = "interrupted") -> Chunk:
        """Stop reading and close every open track (the run was stopped), as :meth:`CameraState.finish`
        with ``error`` / ``status``; idempotent."""
        if self.ended:
            return self._chunk(0, [], None)
        return self._close(0, error, status)

    def processed(self) -> int:
        """Frames this camera processed so far (answered between chunks)."""
        return self.state.result.frames

    def _close(self, frames: int, error: str | None, status: str | None) -> Chunk:
        self.reader.stop()
        self.ended = True
        res = self.state.finish(error, status)
        self.stages["decode"] = self.reader.decode_s
        return self._chunk(frames, res.tracklets, error)

    def _chunk(self, frames: int, tracklets: list[Tracklet], error: str | None) -> Chunk:
        r = self.state.result
        return Chunk(frames, tracklets, self.ended, error, r.width, r.height, dict(self.stages),
                     len(pickle.dumps(tracklets, protocol=5)))

    def close(self) -> None:
        """Stop the reader thread and close the detector (when built here)."""
        self.reader.stop()
        self.models.close()
