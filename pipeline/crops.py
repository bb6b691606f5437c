"""Per-tracklet crops (``mtmc run --save-crops``): a ReID dataset labelled by the run's global ids.

During the run, each crop that enters a tracklet's mean feature is written as
``OUT/crops/.staging/<camera>/<local_id>/<frame>.jpg``; after linking the files
are moved to ``OUT/crops/<global_id>/<camera>/<local_id>_<frame>.jpg`` — the
``generic`` layout of :mod:`reid.datasets` (``mtmc reid eval`` / ``train`` read
it; ids are the tracker's, so they are pseudo-labels, not ground truth).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from pipeline.types import Tracklet

STAGING = ".staging"


class CropWriter:
    """Write good crops during a run and file them by global id at the end.

    Args:
        root: the crops folder (``OUT/crops``).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.count = 0

    def write(self, camera_id: str, local_id: int, frame_index: int, crop: np.ndarray) -> None:
        """Save one H×W×3 uint8 BGR crop of track ``local_id`` in frame ``frame_index`` (0-based)."""
        path = self.root / STAGING / camera_id / str(local_id) / f"{frame_index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), crop)
        self.count += 1

    def finish(self, tracklets: list[Tracklet]) -> None:
        """Move the staged crops under their tracklets' global ids and remove the staging folder."""
        staging = self.root / STAGING
        for t in tracklets:
            src = staging / t.camera_id / str(t.local_id)
            if not src.is_dir() or t.global_id is None:
                continue
            dst = self.root / f"{t.global_id:06d}" / t.camera_id
            dst.mkdir(parents=True, exist_ok=True)
            for f in sorted(src.iterdir()):
                f.replace(dst / f"{t.local_id}_{f.name}")
        shutil.rmtree(staging, ignore_errors=True)
