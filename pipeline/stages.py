"""Per-camera stages shared by the offline runner and live mode: track, select crops, embed, build tracklets.

:class:`CameraState` holds one camera's tracker and tracklet builder;
:func:`track_and_embed` runs a batch of frames (from any cameras) through their
trackers and embeds the selected crops of all of them in one ReID call.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from pipeline.config import MtmcConfig
from pipeline.crops import CropWriter
from pipeline.results import CameraResult
from pipeline.sources import CameraSpec, probe_fps
from pipeline.tracklets import TrackletBuilder
from pipeline.types import Frame
from reid.extractor import FeatureExtractor
from reid.preprocess import crop_boxes
from trackers.byte_tracker import ByteTracker


class CameraState:
    """Mutable per-camera state of a run (tracker, tracklet builder, progress bar)."""

    def __init__(self, spec: CameraSpec, cfg: MtmcConfig, bar: tqdm | None):
        self.spec = spec
        self.tracker = ByteTracker(cfg.tracker)
        self.builder = TrackletBuilder(spec.camera_id, cfg.tracklets)
        self.bar = bar
        self.result = CameraResult(spec.camera_id, spec.source, spec.kind, fps=probe_fps(spec))
        if spec.seqinfo is not None:
            self.result.width, self.result.height = spec.seqinfo.width, spec.seqinfo.height

    def count(self, frame: Frame) -> None:
        """Count one processed frame (and advance the progress bar)."""
        r = self.result
        r.frames += 1
        r.width, r.height = frame.width, frame.height
        if self.bar is not None:
            self.bar.update(1)

    def finish(self, error: str | None) -> CameraResult:
        """Close every open track into tracklets; mark the camera failed when ``error`` is given."""
        r = self.result
        r.tracklets = self.builder.finish()
        if error is not None:
            r.status, r.error = "failed", error
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        return r


def track_and_embed(batch: list[Frame], dets: list, states: dict[str, CameraState],
                     extractor: FeatureExtractor | None, stages: dict[str, float],
                     crop_writer: CropWriter | None = None) -> None:
    """Track every frame of ``batch``, then embed the selected crops of all cameras in one ReID call.

    Args:
        batch: frames from any cameras, in time order per camera.
        dets: one :class:`~pipeline.types.Detections` per frame of ``batch``.
        states: per-camera state, keyed by camera id; each frame goes to its
            camera's tracker and tracklet builder.
        extractor: ReID model, or ``None`` (no features; tracklets get none).
        stages: seconds per stage; ``"track"`` and ``"reid"`` are added to.
        crop_writer: when given, the crops that pass the quality filter are saved.
    """
    t = time.perf_counter()
    pending = []  # (state, frame, outputs, embed mask, good mask)
    crops: list[np.ndarray] = []
    for frame, d in zip(batch, dets, strict=True):
        st = states[frame.camera_id]
        outputs = st.tracker.update(d, frame.timestamp, frame.index)
        st.count(frame)
        embed, good = st.builder.select(frame, outputs)
        if extractor is None or frame.image is None or not embed.any():
            embed[:] = False
        else:
            selected = np.flatnonzero(embed)
            frame_crops, valid = crop_boxes(frame.image, np.stack([o.xyxy for o in outputs])[selected])
            embed[selected[~valid]] = False  # empty or tiny crops: no feature
            for i, c, ok in zip(selected, frame_crops, valid, strict=True):
                if ok:
                    crops.append(c)
                    if crop_writer is not None and good[i]:
                        crop_writer.write(frame.camera_id, outputs[i].track_id, frame.index, c)
        pending.append((st, frame, outputs, embed, good))
    stages["track"] += time.perf_counter() - t
    feats = None
    if crops:
        assert extractor is not None
        t = time.perf_counter()
        feats = extractor.embed(crops)
        stages["reid"] += time.perf_counter() - t
    j = 0
    for st, frame, outputs, embed, good in pending:
        k = int(embed.sum())
        st.builder.add(frame, outputs, feats[j:j + k] if k else None, embed, good)
        j += k
