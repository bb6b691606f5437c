"""The interface every per-camera tracker implements, and input checks they share.

Trackers (see :func:`trackers.factory.build_tracker`):

* ``sort`` — :class:`trackers.sort_tracker.SortTracker`, SORT (Bewley et al.,
  "Simple Online and Realtime Tracking", ICIP 2016);
* ``bytetrack`` — :class:`trackers.byte_tracker.ByteTracker`, ByteTrack (Zhang
  et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box",
  ECCV 2022);
* ``fused`` — :class:`trackers.fused_tracker.FusedTracker`, ByteTrack's stages
  with DeepSORT's Mahalanobis gating and BoT-SORT's IoU/appearance fusion and
  camera motion compensation (Aharon et al., "BoT-SORT: Robust Associations
  Multi-Pedestrian Tracking", 2022), on a batched Kalman filter.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from pipeline.types import Detections, TrackOutput


@runtime_checkable
class Tracker(Protocol):
    """One camera's online tracker.

    Attributes:
        wants_image: :meth:`update` uses ``image`` (camera motion compensation).
        wants_features: :meth:`update` uses ReID ``features`` of the detections.
    """

    wants_image: bool
    wants_features: bool

    def update(
        self,
        dets: Detections,
        timestamp: float,
        frame_index: int,
        image: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> list[TrackOutput]:
        """Track one frame.

        Args:
            dets: the frame's N detections (pixels, scores in [0, 1]).
            timestamp: frame time in seconds, not decreasing between calls.
            frame_index: 0-based frame index, copied into the outputs.
            image: H×W×3 ``uint8`` BGR frame or ``None``.
            features: N×D ``float32`` L2-normalised ReID features aligned with
                ``dets`` (zero rows: no feature), or ``None``.

        Returns:
            The confirmed tracks' boxes of this frame, sorted by ``track_id``.

        Raises:
            ValueError: ``timestamp`` is not finite or goes backwards.
        """
        ...

    def feature_mask(self, dets: Detections, timestamp: float) -> np.ndarray:
        """N ``bool``: the detections whose ReID features :meth:`update` would use (embed only those)."""
        ...

    def reset(self) -> None:
        """Forget every track; ids restart at 1."""
        ...

    @property
    def num_confirmed(self) -> int:
        """Number of tracks ever confirmed (the largest id given so far)."""
        ...

    def start_ids_at(self, first: int) -> None:
        """Give new tracks ids from ``first`` on (raises ``ValueError`` below 1)."""
        ...


class TrackerClock:
    """Bookkeeping shared by the trackers: ids from 1 per instance, frame times in order, SORT's warm-up.

    Subclasses call :meth:`_reset_clock` in ``reset()`` and :meth:`_begin_frame` first in ``update()``.
    """

    def _reset_clock(self) -> None:
        self._next_id = 1
        self._last_time: float | None = None
        self._frames_seen = 0

    @property
    def num_confirmed(self) -> int:
        """Number of tracks ever confirmed by this instance (= the largest id given)."""
        return self._next_id - 1

    def _begin_frame(self, timestamp: float, min_hits: int) -> tuple[float, float, bool]:
        """Check and record a frame time.

        Returns:
            ``(t, dt, early)``: the time (s), seconds since the previous frame (0 for the
            first), and whether this is one of the first ``min_hits`` frames (tracks
            are confirmed at once there, as in SORT).

        Raises:
            ValueError: ``timestamp`` is not finite or earlier than the previous frame's.
        """
        t = check_frame(self._last_time, timestamp)
        dt = 0.0 if self._last_time is None else t - self._last_time
        early = self._frames_seen < min_hits
        self._last_time = t
        self._frames_seen += 1
        return t, dt, early

    def feature_mask(self, dets: Detections, timestamp: float) -> np.ndarray:
        """N ``bool``, all False: trackers without appearance use no ReID features."""
        return np.zeros(len(dets), bool)

    def start_ids_at(self, first: int) -> None:
        """Give new tracks ids from ``first`` (>= 1) on: a camera restarted mid-session keeps its old ids unique.

        Raises:
            ValueError: ``first`` < 1.
        """
        if first < 1:
            raise ValueError(f"track ids start at 1 or more, got {first}")
        self._next_id = int(first)

    def _take_ids(self, k: int) -> np.ndarray:
        """The next ``k`` ids (``int64``)."""
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        return ids

    def _take_id(self) -> int:
        """The next id."""
        return int(self._take_ids(1)[0])


def check_frame(last_time: float | None, timestamp: float) -> float:
    """Validate a frame time against the previous one.

    Args:
        last_time: the previous frame's time (s), or ``None`` for the first frame.
        timestamp: this frame's time (s).

    Returns:
        ``timestamp`` as float seconds.

    Raises:
        ValueError: not finite, or earlier than ``last_time``.
    """
    t = float(timestamp)
    if not np.isfinite(t):
        raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp}")
    if last_time is not None and t < last_time:
        raise ValueError(
            f"timestamp {t} s is earlier than the previous frame's {last_time} s; "
            "frames must be given in time order (call reset() for a new stream)"
        )
    return t


def valid_detections(dets: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections as float64 arrays and which of them a tracker may use.

    Returns:
        ``(boxes, scores, valid)``: N×4 ``float64`` xyxy pixels, N ``float64``
        scores, N ``bool`` — finite boxes with ``x2 > x1``, ``y2 > y1`` and a finite score.
    """
    boxes = np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(dets.score, dtype=np.float64).reshape(-1)
    valid = (
        np.all(np.isfinite(boxes), axis=1)
        & np.isfinite(scores)
        & (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
    )
    return boxes, scores, valid
