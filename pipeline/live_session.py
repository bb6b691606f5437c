"""A live session whose streams run in this process: one reader thread per stream, one detector for all.

:class:`LiveSession` is driven by :func:`pipeline.live.run_live` (:meth:`~LiveSession.start`, then
:meth:`~LiveSession.step` until stopped, then :meth:`~LiveSession.shutdown`); the frames of all
streams are detected in one batch (:func:`~pipeline.live_camera.process_batch`), and what they
produce goes to the :class:`~pipeline.live_hub.LiveHub` it extends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.config import MtmcConfig
from pipeline.detectors.base import Detector
from pipeline.live_camera import LiveCamera, process_batch
from pipeline.live_hub import LiveHub, LiveStats
from pipeline.live_reader import LiveFrame, LiveSource
from reid.extractor import FeatureExtractor


class LiveSession(LiveHub):
    """The state of one live session run in this process (cameras, models, linker, outputs).

    Args:
        sources: the streams.
        cfg: the validated config.
        out_dir: output folder (exists).
        detector, extractor: the models (``extractor`` ``None``: no ReID); not closed here.
        t0: ``time.monotonic()`` at the start of the session clock.
        log: one-line messages.
    """

    def __init__(self, sources: list[LiveSource], cfg: MtmcConfig, out_dir: Path, detector: Detector,
                 extractor: FeatureExtractor | None, t0: float, log: Callable[[str], None]):
        super().__init__(sources, cfg, out_dir, t0, log, detector.name,
                         extractor.name if extractor is not None else None)
        self.detector = detector
        self.extractor = extractor
        self.wakeup = threading.Event()
        self.cameras: dict[str, LiveCamera] = {
            s.camera_id: LiveCamera(s, cfg, t0, self._stream_event, self.wakeup, seed=i)
            for i, s in enumerate(sources)}
        self.stats = LiveStats(self.readers)
        self.max_batch = max(1, min(cfg.detector.batch, detector.max_batch))
        self._order = list(self.sources)

    def start(self) -> None:
        """Start every stream's reader thread."""
        for cam in self.cameras.values():
            cam.start()

    def step(self) -> bool:
        """Process one batch of ready frames (if any) and do the housekeeping; False when no frame was ready."""
        self.wakeup.clear()
        batch = self.gather()
        if batch:
            self.process(batch)
        self.housekeeping()
        return bool(batch)

    def idle(self, timeout_s: float) -> None:
        """Wait until a frame is ready or ``timeout_s`` passed."""
        self.wakeup.wait(timeout_s)

    def all_ended(self) -> bool:
        """Every stream is a file that ended."""
        return all(cam.reader.state == "ended" for cam in self.cameras.values())

    def gather(self) -> list[LiveFrame]:
        """Up to ``max_batch`` newest frames, at most one per stream, streams taken in rotating order."""
        batch = []
        for cid in self._order:
            if len(batch) >= self.max_batch:
                break
            f = self.cameras[cid].reader.take()
            if f is not None:
                batch.append(f)
        self._order = self._order[1:] + self._order[:1]
        return batch

    def process(self, batch: list[LiveFrame]) -> None:
        """Detect, track and embed one batch; write ``track_started`` events and record latencies."""
        started = process_batch(batch, self.cameras, self.detector, self.extractor, self.stages, self.log)
        self.started(started, time.monotonic())
        done = time.monotonic()
        for f in batch:
            self.stats.processed[f.camera_id] += 1
            self.stats.latencies[f.camera_id].append(done - f.capture_mono)
            self.stats.recent[f.camera_id].append(done - f.capture_mono)

    def housekeeping(self) -> None:
        """Watchdog, ended tracks, early links (after ``live.link_after_s``), delayed decisions, retention."""
        now_mono = time.monotonic()
        for cid, cam in self.cameras.items():
            self._end(cid, cam.ended(now_mono))
            self.link_early(cid, cam.due_snapshots())
        self.decide(now_mono - self.t0)

    def shutdown(self) -> None:
        """Stop the readers, process the frames already decoded, and close every track (:meth:`close_all`)."""
        for cam in self.cameras.values():
            cam.stop()
        last = self.gather()
        if last:
            self.process(last)
        self.close_all()

    def close_all(self) -> None:
        """Finish every camera's open tracks (link them, write ``track_ended``); decide every pending id."""
        for cid, cam in self.cameras.items():
            self._end(cid, cam.finish())
        self.flush_links(None)  # tracklets still waiting for linking.decision_delay_s
