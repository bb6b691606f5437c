"""Plain data model shared by every stage (design card: ``Frame``, ``Detections``).

Boxes are always in pixels of the original frame. ``xyxy`` means
``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1``; ``tlwh`` means
``(left, top, width, height)`` as in MOTChallenge files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One decoded frame of one camera.

    Attributes:
        camera_id: sanitised camera id (see :func:`pipeline.sources.sanitize_camera_id`).
        index: 0-based frame index within the camera (MOTChallenge frame = index + 1).
        timestamp: seconds on the run's common clock: presentation time from the start of
            the stream plus the camera's clock offset (0 unless set, :mod:`pipeline.clock`).
        image: H×W×3 ``uint8`` BGR array, or ``None`` for sources without pixels
            (a MOTChallenge sequence used with its ``det.txt`` only).
        width: frame width in pixels (also set when ``image`` is ``None``).
        height: frame height in pixels.
    """

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray | None
    width: int
    height: int


@dataclass
class Detections:
    """Person detections of one frame.

    Attributes:
        xyxy: N×4 ``float32`` boxes, pixels of the original frame.
        score: N ``float32`` confidences in [0, 1].
        cls: N ``int64`` class ids (0 = person, COCO numbering).
    """

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    score: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    cls: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        self.cls = np.asarray(self.cls, dtype=np.int64).reshape(-1)
        if not (len(self.xyxy) == len(self.score) == len(self.cls)):
            raise ValueError(
                f"Detections arrays disagree in length: xyxy {len(self.xyxy)}, "
                f"score {len(self.score)}, cls {len(self.cls)}"
            )

    def __len__(self) -> int:
        return len(self.score)

    def select(self, mask: np.ndarray) -> Detections:
        """Return the detections where ``mask`` (N bool or index array) holds."""
        return Detections(self.xyxy[mask], self.score[mask], self.cls[mask])


@dataclass
class TrackOutput:
    """One confirmed track's box in one frame, as written to MOTChallenge files.

    Attributes:
        frame: 0-based frame index.
        track_id: per-camera track id (counted per tracker instance, from 1).
        xyxy: 4 ``float32`` box, pixels.
        score: detection score of the matched detection.
        det_index: row of the matched detection in the frame's
            :class:`Detections` (so its ReID feature can be reused), or -1
            when the tracker does not say.
    """

    frame: int
    track_id: int
    xyxy: np.ndarray
    score: float
    det_index: int = -1


def xyxy_to_tlwh(xyxy: np.ndarray) -> np.ndarray:
    """Convert N×4 ``xyxy`` boxes to ``tlwh`` (float32, pixels)."""
    b = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    b[:, 2:] -= b[:, :2]
    return b


def tlwh_to_xyxy(tlwh: np.ndarray) -> np.ndarray:
    """Convert N×4 ``tlwh`` boxes (MOTChallenge) to ``xyxy`` (float32, pixels)."""
    b = np.asarray(tlwh, dtype=np.float32).reshape(-1, 4).copy()
    b[:, 2:] += b[:, :2]
    return b


@dataclass
class Tracklet:
    """A finished per-camera track (MARS-style: one appearance feature per tracklet).

    Identity is ``(camera_id, local_id)`` until the cross-camera linker sets
    ``global_id``.

    Attributes:
        camera_id: camera the track was seen in.
        local_id: the camera tracker's id (from 1, per camera).
        frames: T ``int64`` 0-based frame indices, increasing.
        timestamps: T ``float64`` seconds on the common clock (from the start of the camera's
            stream plus its clock offset; see :class:`Frame`).
        boxes: T×4 ``float32`` ``xyxy`` boxes, pixels.
        scores: T ``float32`` detection scores.
        feature: D ``float32`` L2-normalised mean of the kept per-frame ReID
            features, or ``None`` when no crop passed the quality filter.
        num_features: how many per-frame features went into ``feature``.
        global_id: cross-camera identity (from 1), ``None`` before linking.
        feature_frames: ``num_features`` ``int64`` 0-based frame indices of the crops whose
            features went into ``feature`` (the report shows these crops).
    """

    camera_id: str
    local_id: int
    frames: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    feature: np.ndarray | None = None
    num_features: int = 0
    global_id: int | None = None
    feature_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def start_time(self) -> float:
        """Timestamp (s) of the first box."""
        return float(self.timestamps[0])

    @property
    def end_time(self) -> float:
        """Timestamp (s) of the last box."""
        return float(self.timestamps[-1])

    def __len__(self) -> int:
        return len(self.frames)
