"""One track of the per-camera tracker: its Kalman filter, life-cycle state and counters.

Life cycle (as in DeepSORT / ByteTrack): a track starts **Tentative**; after
enough consecutive hits it becomes **Confirmed** and receives its id; a
confirmed track that misses a frame becomes **Lost** (kept, still predicted, so
that it can be re-found); a lost track re-found becomes Confirmed again; a track
that is given up becomes **Removed**. Ids are handed out by the tracker instance
(see :class:`trackers.byte_tracker.ByteTracker`), never by this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np

from trackers.kalman_filter import BoxKalmanFilter


class TrackState(Enum):
    """Life-cycle state of a :class:`Track`."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


class Track:
    """A single target followed by a constant-velocity Kalman filter.

    Args:
        xyxy: 4 box ``(x1, y1, x2, y2)`` of the first detection, pixels.
        score: its detection score in [0, 1].
        timestamp: time of the detection, seconds.
        frame_index: 0-based frame index of the detection.
        kalman: the filter to use (a fresh :class:`BoxKalmanFilter` by default).

    Attributes:
        track_id: id given at confirmation by the tracker (from 1), ``None`` while tentative.
        state: current :class:`TrackState`.
        hits: number of detections associated so far (including the first).
        score: score of the last associated detection.
        det_xyxy: 4 ``float32`` last associated detection box, pixels.
        time_since_update: seconds between the last prediction time and the last
            associated detection (0 right after an update).
        start_frame / last_frame: 0-based frame indices of the first and last update.
        last_update_time: timestamp (s) of the last associated detection.

    Raises:
        ValueError: the box is degenerate or not finite.
    """

    def __init__(
        self,
        xyxy: np.ndarray,
        score: float,
        timestamp: float,
        frame_index: int,
        kalman: BoxKalmanFilter | None = None,
    ) -> None:
        self.kf = kalman if kalman is not None else BoxKalmanFilter()
        self.kf.initiate(xyxy)
        self.track_id: int | None = None
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.score = float(score)
        self.det_xyxy = np.asarray(xyxy, dtype=np.float32).reshape(4).copy()
        self.time = float(timestamp)
        self.last_update_time = float(timestamp)
        self.time_since_update = 0.0
        self.start_frame = int(frame_index)
        self.last_frame = int(frame_index)

    def predict(self, timestamp: float) -> None:
        """Advance the filter to ``timestamp`` (seconds) and refresh ``time_since_update``.

        Raises:
            ValueError: ``timestamp`` is earlier than the track's current time.
        """
        dt = float(timestamp) - self.time
        if dt < 0:
            raise ValueError(f"timestamp {timestamp} s is earlier than the track's time {self.time} s")
        self.kf.predict(dt)
        self.time = float(timestamp)
        self.time_since_update = self.time - self.last_update_time

    def update(self, xyxy: np.ndarray, score: float, frame_index: int) -> None:
        """Correct the track with an associated detection at the track's current time.

        Increments ``hits``, stores the box and score, resets ``time_since_update``.
        A lost track becomes Confirmed again; a tentative one stays tentative (the
        tracker decides confirmation, see :meth:`confirm`).

        Args:
            xyxy: 4 box ``(x1, y1, x2, y2)`` in pixels.
            score: detection score in [0, 1].
            frame_index: 0-based frame index of the detection.

        Raises:
            ValueError: the box is degenerate or not finite.
        """
        self.kf.update(xyxy)
        self.hits += 1
        self.score = float(score)
        self.det_xyxy = np.asarray(xyxy, dtype=np.float32).reshape(4).copy()
        self.last_update_time = self.time
        self.time_since_update = 0.0
        self.last_frame = int(frame_index)
        if self.state is TrackState.LOST:
            self.state = TrackState.CONFIRMED

    def confirm(self, track_id: int) -> None:
        """Make a tentative track Confirmed with the id given by the tracker.

        Raises:
            RuntimeError: the track is not tentative.
        """
        if self.state is not TrackState.TENTATIVE:
            raise RuntimeError(f"only a tentative track can be confirmed (state is {self.state.value})")
        self.track_id = int(track_id)
        self.state = TrackState.CONFIRMED

    def mark_lost(self) -> None:
        """Confirmed → Lost (no effect on other states)."""
        if self.state is TrackState.CONFIRMED:
            self.state = TrackState.LOST

    def mark_removed(self) -> None:
        """Any state → Removed."""
        self.state = TrackState.REMOVED

    @property
    def xyxy(self) -> np.ndarray:
        """4 ``float32`` Kalman-filter box ``(x1, y1, x2, y2)`` at the track's current time, pixels."""
        return self.kf.xyxy

    @property
    def is_confirmed(self) -> bool:
        """True in the Confirmed state."""
        return self.state is TrackState.CONFIRMED

    def __repr__(self) -> str:
        return (
            f"Track(id={self.track_id}, state={self.state.value}, hits={self.hits}, "
            f"time_since_update={self.time_since_update:.3f}s)"
        )


def track_boxes(tracks: Sequence[Track]) -> np.ndarray:
    """M×4 ``float64`` current boxes (``xyxy``, pixels) of ``tracks``; ``(0, 4)`` when there is none."""
    return np.stack([t.xyxy for t in tracks]).astype(np.float64) if len(tracks) else np.zeros((0, 4))
