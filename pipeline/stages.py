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
from trackers.factory import build_tracker


class CameraState:
    """Mutable per-camera state of a run (tracker, tracklet builder, progress bar).

    Args:
        result: the camera's :class:`~pipeline.results.CameraResult` as far as known
            before its first frame (id, printable source, kind, nominal fps, size).
        cfg: the config (``tracker`` and ``tracklets`` sections).
        bar: progress handle with ``update(n)`` / ``close()``, or ``None``.
    """

    def __init__(self, result: CameraResult, cfg: MtmcConfig, bar: tqdm | None = None):
        self.tracker = build_tracker(cfg.tracker)
        self.builder = TrackletBuilder(result.camera_id, cfg.tracklets)
        self.bar = bar
        self.result = result

    @classmethod
    def for_spec(cls, spec: CameraSpec, cfg: MtmcConfig, bar: tqdm | None = None) -> CameraState:
        """The state of a camera found in the inputs: fps probed from its container or ``seqinfo.ini``."""
        result = CameraResult(spec.camera_id, spec.source, spec.kind, fps=probe_fps(spec))
        if spec.seqinfo is not None:
            result.width, result.height = spec.seqinfo.width, spec.seqinfo.height
        return cls(result, cfg, bar)

    def count(self, frame: Frame) -> None:
        """Count one processed frame (and advance the progress bar)."""
        r = self.result
        r.frames += 1
        r.width, r.height = frame.width, frame.height
        if self.bar is not None:
            self.bar.update(1)

    def finish(self, error: str | None, status: str | None = None) -> CameraResult:
        """Close every open track into tracklets; the camera is ``failed`` when ``error`` is given,
        else ``status`` (``"ok"`` by default, ``"interrupted"`` when the run was stopped)."""
        r = self.result
        r.tracklets = self.builder.finish()
        r.dropped_tracks = self.builder.dropped
        if error is not None:
            r.status, r.error = "failed", error
        elif status is not None:
            r.status = status
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        return r


def _detection_features(batch: list[Frame], dets: list, states: dict[str, CameraState],
                        extractor: FeatureExtractor) -> list[np.ndarray | None]:
    """ReID features of the detections that can enter a tracker's first stage, all frames in one call.

    Only frames with pixels whose camera's tracker ``wants_features`` are embedded, and
    only the detections its ``feature_mask`` asks for (high-score ones that are new,
    ambiguous or due for a refresh).

    Returns:
        Per frame of ``batch``: an N×D ``float32`` array aligned with its detections
        (zero rows for detections not embedded), or ``None`` when nothing was embedded.
    """
    crops: list[np.ndarray] = []
    owners: list[tuple[int, np.ndarray]] = []  # (frame position, detection rows embedded)
    for k, (frame, d) in enumerate(zip(batch, dets, strict=True)):
        st = states[frame.camera_id]
        if not st.tracker.wants_features or frame.image is None or len(d) == 0:
            continue
        rows = np.flatnonzero(st.tracker.feature_mask(d, frame.timestamp))
        if len(rows) == 0:
            continue
        frame_crops, valid = crop_boxes(frame.image, d.xyxy[rows])
        rows = rows[valid]
        crops.extend(c for c, ok in zip(frame_crops, valid, strict=True) if ok)
        owners.append((k, rows))
    out: list[np.ndarray | None] = [None] * len(batch)
    if not crops:
        return out
    feats = extractor.embed(crops)
    j = 0
    for k, rows in owners:
        f = np.zeros((len(dets[k]), feats.shape[1]), np.float32)
        f[rows] = feats[j:j + len(rows)]
        out[k] = f
        j += len(rows)
    return out


def track_and_embed(batch: list[Frame], dets: list, states: dict[str, CameraState],
                    extractor: FeatureExtractor | None, stages: dict[str, float],
                    crop_writer: CropWriter | None = None) -> None:
    """Track every frame of ``batch``, then embed the selected crops of all cameras in one ReID call.

    When a camera's tracker uses appearance (``wants_features``, e.g. ``tracker.type: fused``)
    and ``extractor`` is given, the detections it asks for (``feature_mask``: first-stage
    detections that are new, ambiguous or due for a refresh) of all frames are embedded first, in one ReID call, and
    passed to the tracker; a tracklet box matched to such a detection reuses that feature
    instead of being embedded again. Frames go to trackers that want pixels (CMC) with their image.

    Args:
        batch: frames from any cameras, in time order per camera.
        dets: one :class:`~pipeline.types.Detections` per frame of ``batch``.
        states: per-camera state, keyed by camera id; each frame goes to its
            camera's tracker and tracklet builder.
        extractor: ReID model, or ``None`` (no features; tracklets get none; trackers run on motion).
        stages: seconds per stage; ``"track"`` and ``"reid"`` are added to.
        crop_writer: when given, the crops that pass the quality filter are saved.
    """
    det_feats: list[np.ndarray | None] = [None] * len(batch)
    if extractor is not None:
        t = time.perf_counter()
        det_feats = _detection_features(batch, dets, states, extractor)
        stages["reid"] += time.perf_counter() - t
    t = time.perf_counter()
    pending = []  # (state, frame, outputs, embed mask, good mask, reused features by output position)
    crops: list[np.ndarray] = []
    for frame, d, df in zip(batch, dets, det_feats, strict=True):
        st = states[frame.camera_id]
        image = frame.image if st.tracker.wants_image else None
        outputs = st.tracker.update(d, frame.timestamp, frame.index, image=image, features=df)
        st.count(frame)
        embed, good = st.builder.select(frame, outputs)
        reused: dict[int, np.ndarray] = {}
        if extractor is None or frame.image is None or not embed.any():
            embed[:] = False
        else:
            selected = np.flatnonzero(embed)
            frame_crops, valid = crop_boxes(frame.image, np.stack([o.xyxy for o in outputs])[selected])
            embed[selected[~valid]] = False  # empty or tiny crops: no feature
            for i, c, ok in zip(selected, frame_crops, valid, strict=True):
                if not ok:
                    continue
                di = outputs[i].det_index
                if df is not None and di >= 0 and df[di].any():
                    reused[int(i)] = df[di]
                else:
                    crops.append(c)
                if crop_writer is not None and good[i]:
                    crop_writer.write(frame.camera_id, outputs[i].track_id, frame.index, c)
        pending.append((st, frame, outputs, embed, good, reused))
    stages["track"] += time.perf_counter() - t
    feats = None
    if crops:
        assert extractor is not None
        t = time.perf_counter()
        feats = extractor.embed(crops)
        stages["reid"] += time.perf_counter() - t
    j = 0
    for st, frame, outputs, embed, good, reused in pending:
        rows = []
        for i in np.flatnonzero(embed):
            if int(i) in reused:
                rows.append(reused[int(i)])
            else:
                assert feats is not None
                rows.append(feats[j])
                j += 1
        st.builder.add(frame, outputs, np.stack(rows) if rows else None, embed, good)
