"""Tracklets: per-camera tracks with one mean appearance feature (MARS-style).

Zheng et al., "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV 2016: a tracklet is represented by the average of
its frames' features. Here the average skips crops that make poor evidence
(tiny, low score, cut by the image border, overlapped by another person), and
both each feature and the mean are L2-normalised (each once).

Which boxes are embedded at all is the embedding policy
(:class:`pipeline.config.TrackletConfig`): ReID is the most expensive stage on
a CPU, so the default ``quality`` policy embeds only crops that would enter the
mean, at most ``max_features`` per track, spaced ``min_interval_s`` apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.config import TrackletConfig
from pipeline.types import Frame, Tracklet, TrackOutput
from pipeline.vectors import l2_normalize
from trackers.matching import iou_matrix


def interpolate_gaps(frames: np.ndarray, times: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                     max_gap_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fill the missing frames of a track's short gaps with linearly interpolated boxes.

    A gap is two consecutive boxes whose frame indices differ by more than 1; when their
    timestamps are at most ``max_gap_s`` seconds apart, every frame in between gets the box,
    timestamp and score interpolated linearly in the frame index (the usual MOT post-processing of
    short occlusions, e.g. ByteTrack's linear interpolation).

    Args:
        frames: T ``int64`` increasing 0-based frame indices. times: T ``float64`` seconds.
        boxes: T×4 ``float32`` ``xyxy`` pixels. scores: T ``float32``.
        max_gap_s: longest gap filled (s); 0 fills nothing.

    Returns:
        ``(frames, times, boxes, scores)`` with the filled frames inserted (same dtypes).
    """
    f = np.asarray(frames, np.int64)
    if len(f) < 2 or max_gap_s <= 0:
        return frames, times, boxes, scores
    holes = np.flatnonzero((np.diff(f) > 1) & (np.diff(times) <= max_gap_s))
    if not len(holes):
        return frames, times, boxes, scores
    new_f = np.concatenate([f, *(np.arange(f[k] + 1, f[k + 1]) for k in holes)])
    order = np.argsort(new_f, kind="stable")
    new_f = new_f[order]
    interp = [np.interp(new_f, f, np.asarray(c, np.float64)) for c in (times, *np.asarray(boxes).T, scores)]
    out_boxes = np.stack(interp[1:5], axis=1).astype(np.float32)
    return new_f, interp[0], out_boxes, interp[5].astype(np.float32)


def _max_iou(b: np.ndarray) -> np.ndarray:
    """Per box (N×4 ``xyxy``), its largest IoU with another box of the frame (0 for a single box)."""
    if len(b) < 2:
        return np.zeros(len(b))
    iou = iou_matrix(b, b)
    np.fill_diagonal(iou, 0.0)
    return iou.max(axis=1)


def _mask(b: np.ndarray, s: np.ndarray, width: int, height: int, cfg: TrackletConfig, max_iou: np.ndarray
          ) -> np.ndarray:
    m = cfg.border_margin
    ok = (b[:, 3] - b[:, 1] >= cfg.min_height) & (s >= cfg.min_score)
    ok &= (b[:, 0] > m) & (b[:, 1] > m) & (b[:, 2] < width - m) & (b[:, 3] < height - m)
    return ok & (max_iou <= cfg.max_overlap)


def quality_mask(xyxy: np.ndarray, score: np.ndarray, width: int, height: int, cfg: TrackletConfig) -> np.ndarray:
    """Which boxes of one frame are good enough to enter a tracklet's mean feature.

    Args:
        xyxy: N×4 boxes (pixels) of the frame's confirmed tracks.
        score: N detection scores.
        width, height: frame size in pixels.
        cfg: thresholds ``min_height`` (px), ``min_score``, ``border_margin`` (px)
            and ``max_overlap`` (IoU with any other box of the frame).

    Returns:
        N ``bool``: True where the box is tall enough, scores high enough, is not
        cut by the image border and is not overlapped by another box.
    """
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return _mask(b, np.asarray(score, dtype=np.float64).reshape(-1), width, height, cfg, _max_iou(b))


@dataclass
class _OpenTrack:
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    feature_sum: np.ndarray | None = None
    num_features: int = 0
    fallback_sum: np.ndarray | None = None  # features of boxes that failed the filter (see TrackletConfig.fallback)
    num_fallback: int = 0
    feature_frames: list[int] = field(default_factory=list)
    fallback_frames: list[int] = field(default_factory=list)
    last_embed_time: float = -np.inf
    boxes_seen: int = 0


class TrackletBuilder:
    """Collect one camera's tracker outputs and ReID features into tracklets.

    Call :meth:`select` with a frame's outputs to learn which boxes to embed,
    then :meth:`add` with the features of those boxes; :meth:`finish` returns
    the tracklets (all tracks of an offline run end with the input). Live mode
    also closes tracks while running (:meth:`pop_ended`), learns which tracks
    started (:meth:`pop_started`) and links long tracks early (:meth:`snapshot`).

    Args:
        camera_id: the camera.
        cfg: embedding policy and quality thresholds.
    """

    def __init__(self, camera_id: str, cfg: TrackletConfig):
        self.camera_id = camera_id
        self.cfg = cfg
        # the relaxed filter of TrackletConfig.fallback: tall enough and not overlapped
        self._relaxed = cfg.model_copy(update={"min_height": cfg.fallback_min_height, "min_score": 0.0,
                                               "border_margin": 0.0})
        self._open: dict[int, _OpenTrack] = {}
        self._started: list[int] = []
        self.min_mean_score = cfg.min_mean_score
        """Closing tracks scoring lower on average are dropped (``cfg.min_mean_score``; live mode sets 0)."""
        self.dropped = 0
        """Tracks closed so far whose mean detection score was below :attr:`min_mean_score` (not returned)."""

    def select(self, frame: Frame, outputs: list[TrackOutput]) -> tuple[np.ndarray, np.ndarray]:
        """Decide which of this frame's boxes are embedded and which may enter the mean.

        Args:
            frame: the frame (its size bounds the border test).
            outputs: the camera tracker's outputs for this frame (N boxes).

        Returns:
            ``(embed, good)``: two N ``bool`` arrays. ``embed``: compute a ReID
            feature for this box (policy ``every``: all; ``every_k``: every k-th box
            of each track; ``quality``: good boxes while the track has fewer than
            ``max_features`` features and ``min_interval_s`` has passed since its
            last one; with ``fallback``, also boxes of a track without a good feature yet that pass
            the relaxed filter: at least ``fallback_min_height`` px, not overlapped).
            ``good``: the box passes :func:`quality_mask`. Features of embedded boxes that are
            not good enter the tracklet's mean only when none of its boxes was good.
        """
        n = len(outputs)
        if n == 0:
            return np.zeros(0, bool), np.zeros(0, bool)
        xyxy = np.stack([o.xyxy for o in outputs]).astype(np.float64)
        score = np.array([o.score for o in outputs], np.float64)
        max_iou = _max_iou(xyxy)
        cfg = self.cfg
        good = _mask(xyxy, score, frame.width, frame.height, cfg, max_iou)
        fallback_ok = good
        if cfg.fallback and cfg.embed_policy == "quality":
            fallback_ok = _mask(xyxy, score, frame.width, frame.height, self._relaxed, max_iou)
        embed = np.zeros(n, bool)
        for i, o in enumerate(outputs):
            tr = self._open.get(o.track_id)
            seen = tr.boxes_seen if tr else 0
            if cfg.embed_policy == "every":
                embed[i] = True
            elif cfg.embed_policy == "every_k":
                embed[i] = seen % cfg.every_k == 0
            else:
                n_feat = tr.num_features if tr else 0
                last = tr.last_embed_time if tr else -np.inf
                due = frame.timestamp - last >= cfg.min_interval_s
                embed[i] = good[i] and n_feat < cfg.max_features and due
                if cfg.fallback and not good[i] and n_feat == 0 and due:
                    embed[i] = bool(fallback_ok[i]) and (tr.num_fallback if tr else 0) < cfg.max_features
        return embed, good

    def add(self, frame: Frame, outputs: list[TrackOutput], features: np.ndarray | None,
            embedded: np.ndarray, good: np.ndarray) -> None:
        """Append one frame's boxes and features to their open tracks.

        Args:
            frame: the frame.
            outputs: the tracker's N outputs for this frame.
            features: M×D ``float32`` L2-normalised features of the boxes where
                ``embedded`` is True (in order), or ``None`` when nothing was embedded.
            embedded: N ``bool`` from :meth:`select` (False also where the crop was
                invalid and no feature came back).
            good: N ``bool`` from :meth:`select`.
        """
        j = 0
        for i, o in enumerate(outputs):
            tr = self._open.get(o.track_id)
            if tr is None:
                tr = self._open[o.track_id] = _OpenTrack()
                self._started.append(o.track_id)
            tr.frames.append(frame.index)
            tr.times.append(frame.timestamp)
            tr.boxes.append(np.asarray(o.xyxy, np.float32))
            tr.scores.append(float(o.score))
            tr.boxes_seen += 1
            if embedded[i]:
                assert features is not None
                f = features[j]
                j += 1
                tr.last_embed_time = frame.timestamp
                if good[i]:
                    tr.feature_sum = f.astype(np.float64) if tr.feature_sum is None else tr.feature_sum + f
                    tr.num_features += 1
                    tr.feature_frames.append(frame.index)
                elif self.cfg.fallback and self.cfg.embed_policy == "quality":  # embedded: passed the relaxed filter
                    tr.fallback_sum = f.astype(np.float64) if tr.fallback_sum is None else tr.fallback_sum + f
                    tr.num_fallback += 1
                    tr.fallback_frames.append(frame.index)

    def _tracklet(self, tid: int, tr: _OpenTrack) -> Tracklet:
        feat = None
        total, count, used = (tr.feature_sum, tr.num_features, tr.feature_frames) if tr.feature_sum is not None \
            else (tr.fallback_sum, tr.num_fallback, tr.fallback_frames)
        if total is not None:
            feat = l2_normalize(total, dtype=np.float32) if np.any(total) else None
        frames, times, boxes, scores = interpolate_gaps(
            np.asarray(tr.frames, np.int64), np.asarray(tr.times, np.float64), np.stack(tr.boxes).astype(np.float32),
            np.asarray(tr.scores, np.float32), self.cfg.interpolate_s)
        return Tracklet(
            camera_id=self.camera_id,
            local_id=tid,
            frames=frames,
            timestamps=times,
            boxes=boxes,
            scores=scores,
            feature=feat,
            num_features=count if feat is not None else 0,
            feature_frames=np.asarray(used if feat is not None else [], np.int64),
        )

    def _kept(self, tr: _OpenTrack) -> bool:
        """Whether a closing track becomes a tracklet: its boxes' mean detection score (interpolated
        boxes not counted) is at least :attr:`min_mean_score`; counts the others in :attr:`dropped`."""
        keep = float(np.mean(tr.scores)) >= self.min_mean_score
        self.dropped += not keep
        return keep

    def finish(self) -> list[Tracklet]:
        """Close every open track and return the tracklets, sorted by local id (tracks scoring below
        :attr:`min_mean_score` on average are dropped, see :attr:`dropped`)."""
        out = [self._tracklet(tid, self._open[tid]) for tid in sorted(self._open) if self._kept(self._open[tid])]
        self._open.clear()
        self._started.clear()
        return out

    def pop_started(self) -> list[tuple[int, int, float, np.ndarray]]:
        """The tracks opened by :meth:`add` since the last call, in order of appearance.

        Returns:
            ``(local_id, first frame index, first timestamp (s), first box)`` per
            track still open; the box is 4 ``float32`` ``xyxy`` pixels.
        """
        started, self._started = self._started, []
        return [(tid, tr.frames[0], tr.times[0], tr.boxes[0]) for tid in started if (tr := self._open.get(tid))]

    def pop_ended(self, now: float, max_age_s: float) -> list[Tracklet]:
        """Close the open tracks whose last box is more than ``max_age_s`` seconds older than ``now``.

        Args:
            now: seconds on the frames' clock; pass a time no later than the
                timestamp of any frame this camera's tracker will still see, so
                the tracker (which drops tracks lost for over ``max_age_s``) can
                never bring a closed id back.
            max_age_s: the tracker's ``max_age_s`` (seconds).

        Returns:
            The closed tracks as :class:`~pipeline.types.Tracklet`, sorted by local id; those scoring
            below :attr:`min_mean_score` on average are dropped (see :attr:`dropped`).
        """
        ended = sorted(tid for tid, tr in self._open.items() if now - tr.times[-1] > max_age_s)
        closed = [(tid, self._open.pop(tid)) for tid in ended]
        return [self._tracklet(tid, tr) for tid, tr in closed if self._kept(tr)]

    def open_span(self, track_id: int) -> tuple[float, float, int] | None:
        """``(first, last, num_features)`` of an open track (timestamps in s), ``None`` when it is not open."""
        tr = self._open.get(track_id)
        return (tr.times[0], tr.times[-1], tr.num_features) if tr is not None else None

    @property
    def open_ids(self) -> list[int]:
        """Local ids of the open tracks, sorted."""
        return sorted(self._open)

    def snapshot(self, track_id: int) -> Tracklet | None:
        """The open track so far as a :class:`~pipeline.types.Tracklet` (it stays open), ``None`` when not open."""
        tr = self._open.get(track_id)
        return self._tracklet(track_id, tr) if tr is not None else None
