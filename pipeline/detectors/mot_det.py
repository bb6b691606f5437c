"""Precomputed detections read from MOTChallenge ``det.txt`` files (one per camera).

Rows are ``frame,-1,x,y,w,h,score,...`` with 1-based frames and ``tlwh`` boxes
in pixels (MOTChallenge 2D MOT 2015 / MOT16 layout). No pixels are needed, so
frames may have ``image is None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pipeline.detectors.base import PERSON_CLASS, Detector
from pipeline.errors import InputError, ModelError
from pipeline.mot_format import read_mot_txt
from pipeline.types import Detections, Frame, tlwh_to_xyxy


class _CameraDets:
    """One camera's detections sorted by frame, with a frame → row-slice index."""

    def __init__(self, rows: np.ndarray, conf: float) -> None:
        rows = rows[(rows[:, 4] > 0) & (rows[:, 5] > 0)]  # drop degenerate boxes
        score = np.clip(rows[:, 6], 0.0, 1.0).astype(np.float32)
        rows, score = rows[score >= conf], score[score >= conf]
        order = np.argsort(rows[:, 0], kind="stable")
        rows, score = rows[order], score[order]
        self.xyxy = tlwh_to_xyxy(rows[:, 2:6])
        self.score = score
        frames, starts, counts = np.unique(rows[:, 0].astype(np.int64), return_index=True, return_counts=True)
        self.index = {int(f): (int(s), int(s + c)) for f, s, c in zip(frames, starts, counts, strict=True)}

    def get(self, mot_frame: int) -> Detections:
        """Detections of 1-based MOTChallenge frame ``mot_frame`` (empty when it has none)."""
        start, stop = self.index.get(mot_frame, (0, 0))
        n = stop - start
        return Detections(self.xyxy[start:stop], self.score[start:stop], np.full(n, PERSON_CLASS, np.int64))


class MotDetDetector(Detector):
    """Serve each camera's precomputed detections from its MOTChallenge ``det.txt``.

    Frame ``index`` f (0-based) gets the rows with MOTChallenge frame ``f + 1``.
    Scores are clipped into [0, 1] and rows below ``conf`` dropped; boxes are
    converted ``tlwh`` → ``xyxy`` (pixels, not clipped to the frame: they are the
    benchmark's detections as given); rows with non-positive width or height are
    dropped. All files are read and indexed by frame at construction.

    Args:
        det_files: camera id → path of its ``det.txt``.
        conf: minimum score kept (``DetectorConfig.conf``).

    Raises:
        ModelError: a ``det.txt`` is missing or malformed (the message names the
            camera and the file).
    """

    max_batch = 1024

    def __init__(self, det_files: Mapping[str, Path], conf: float = 0.0) -> None:
        self._cams: dict[str, _CameraDets] = {}
        for cam, path in det_files.items():
            p = Path(path)
            if not p.is_file():
                raise ModelError(f"camera {cam}: detections file not found: {p}")
            try:
                rows = read_mot_txt(p)
            except InputError as exc:
                raise ModelError(f"camera {cam}: {exc}") from None
            self._cams[cam] = _CameraDets(rows, conf)
        self.name = "mot-det"

    def detect(self, frames: list[Frame]) -> list[Detections]:
        """Look up each frame's detections; see :meth:`Detector.detect`.

        Raises:
            ModelError: a frame belongs to a camera without a ``det.txt``.
        """
        out = []
        for f in frames:
            cam = self._cams.get(f.camera_id)
            if cam is None:
                raise ModelError(
                    f"camera {f.camera_id}: no det.txt was given for it (cameras with detections: "
                    f"{', '.join(sorted(self._cams)) or 'none'})"
                )
            out.append(cam.get(f.index + 1))
        return out
