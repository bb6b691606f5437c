"""SORT baseline (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016), timed in seconds.

One association stage per frame: every live track (its Kalman prediction) against
the detections with ``score >= high_thresh`` on ``1 - IoU`` (pairs need
``IoU >= match_iou`` and some overlap), solved as a linear assignment. Matched
tracks are updated; unmatched detections start tentative tracks; a tentative
track is confirmed (and gets the next id) after ``min_hits`` consecutive hits
and removed at its first miss; a confirmed track that misses is kept, predicted,
for up to ``max_age_s`` seconds. As in SORT, on the first ``min_hits`` frames
tracks are confirmed at once.

Differences from the paper, kept so that the trackers compare on equal terms:
time is in seconds from timestamps (the paper counts frames: ``max_age = 1``
frame), and the filter is the per-track filterpy
:class:`~trackers.kalman_filter.BoxKalmanFilter` on ``[cx, cy, w, h]`` with
size-scaled noise rather than SORT's ``[x, y, s, r]`` with fixed noise. No
low-score stage, no appearance, no camera motion compensation.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import TrackerConfig
from pipeline.types import Detections, TrackOutput
from trackers.base import TrackerClock, valid_detections
from trackers.matching import iou_associate
from trackers.track import Track, TrackState, track_boxes


class SortTracker(TrackerClock):
    """SORT for one camera (see the module docstring).

    Args:
        cfg: uses ``high_thresh``, ``match_iou``, ``min_hits``, ``max_age_s``,
            ``min_box_area`` (``TrackerConfig()`` by default).

    Attributes:
        wants_image / wants_features: False (motion and IoU only).
    """

    wants_image = False
    wants_features = False

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        self._tracks: list[Track] = []
        self._reset_clock()

    def update(
        self,
        dets: Detections,
        timestamp: float,
        frame_index: int,
        image: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> list[TrackOutput]:
        """Track one frame (``image`` and ``features`` are ignored).

        Args:
            dets: the frame's detections; only ``score >= high_thresh`` ones are used.
            timestamp: seconds, not decreasing between calls.
            frame_index: 0-based frame index, copied into the outputs.

        Returns:
            Kalman-updated boxes (float32 px) of the confirmed tracks matched in this
            frame, with the detection's score and index, sorted by ``track_id``.

        Raises:
            ValueError: ``timestamp`` is not finite or earlier than the previous one.
        """
        cfg = self.cfg
        t, _, early = self._begin_frame(timestamp, cfg.min_hits)
        boxes, scores, valid = valid_detections(dets)
        det_idx = np.flatnonzero(valid & (scores >= cfg.high_thresh))

        for trk in self._tracks:
            trk.predict(t)
        self._tracks = [trk for trk in self._tracks if trk.time_since_update <= cfg.max_age_s]

        matches, um_trk, um_det = iou_associate(track_boxes(self._tracks), boxes[det_idx], cfg.match_iou)
        updated: list[tuple[Track, int]] = []
        for r, c in matches:
            trk, d = self._tracks[r], int(det_idx[c])
            trk.update(boxes[d], float(scores[d]), frame_index)
            if trk.state is TrackState.TENTATIVE and (trk.hits >= cfg.min_hits or early):
                trk.confirm(self._take_id())
            updated.append((trk, d))
        for r in um_trk:
            trk = self._tracks[r]
            if trk.state is TrackState.TENTATIVE:
                trk.mark_removed()
            else:
                trk.mark_lost()
        for c in um_det:
            d = int(det_idx[c])
            trk = Track(boxes[d], float(scores[d]), t, frame_index)
            self._tracks.append(trk)
            if cfg.min_hits <= 1 or early:
                trk.confirm(self._take_id())
                updated.append((trk, d))
        self._tracks = [trk for trk in self._tracks if trk.state is not TrackState.REMOVED]

        out = []
        for trk, d in updated:
            b = trk.xyxy
            if trk.is_confirmed and float((b[2] - b[0]) * (b[3] - b[1])) >= cfg.min_box_area:
                assert trk.track_id is not None
                out.append(TrackOutput(int(frame_index), trk.track_id, b.copy(), trk.score, d))
        out.sort(key=lambda o: o.track_id)
        return out
