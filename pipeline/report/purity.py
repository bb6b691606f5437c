"""Per identity, how pure it is against ground truth: the share of its matched boxes that belong to one
ground-truth person.

Each predicted box is matched to the ground-truth box of its camera and frame with the
largest IoU, when that IoU is at least 0.5 (the CLEAR MOT / IDF1 matching
threshold). Ground-truth ids are taken per camera, or as global ids across cameras
with ``cross_camera`` (``scripts/make_multicam.py`` scenes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.mot_format import read_mot_txt
from pipeline.report.run_view import Identity
from pipeline.types import tlwh_to_xyxy
from trackers.matching import iou_matrix

PURE = 0.95  # an identity is called pure when at least this share of its matched boxes is one person


@dataclass
class Purity:
    """Purity of one identity.

    Attributes:
        matched: its boxes matched to a ground-truth box (IoU ≥ 0.5). total: all its boxes.
        purity: share (0–1) of the matched boxes on the most frequent ground-truth person (``None``: none matched).
        gt_id: that person (``"<camera>:<id>"`` per camera, ``"<id>"`` across cameras), ``None`` when none matched.
        gt_ids: how many ground-truth persons its matched boxes cover.
    """

    matched: int
    total: int
    purity: float | None
    gt_id: str | None
    gt_ids: int

    @property
    def pure(self) -> bool:
        """At least :data:`PURE` of the matched boxes are one person."""
        return self.purity is not None and self.purity >= PURE


def _gt_by_frame(gt_path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    rows = read_mot_txt(gt_path)
    rows = rows[rows[:, 6] != 0]  # flag 0: ignored ground truth
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for f in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == f]
        out[int(f) - 1] = (tlwh_to_xyxy(r[:, 2:6]), r[:, 1].astype(np.int64))
    return out


def identity_purity(identities: list[Identity], gt: dict[str, Path], cross_camera: bool) -> dict[int, Purity]:
    """Purity of each identity against ``gt`` (camera id → ``gt.txt``, MOTChallenge, 1-based frames).

    Returns:
        global id → :class:`Purity`; boxes of cameras without ground truth count as unmatched.

    Raises:
        InputError: a ``gt.txt`` cannot be read (:func:`pipeline.mot_format.read_mot_txt`).
    """
    by_cam = {cam: _gt_by_frame(path) for cam, path in gt.items()}
    out: dict[int, Purity] = {}
    for ident in identities:
        votes: Counter[str] = Counter()
        total = 0
        for s in ident.segments:
            total += len(s.frames)
            frames_gt = by_cam.get(s.camera, {})
            for f, box in zip(s.frames, s.boxes, strict=True):
                g = frames_gt.get(int(f))
                if g is None:
                    continue
                iou = iou_matrix(box[None].astype(np.float64), g[0].astype(np.float64))[0]
                k = int(iou.argmax())
                if iou[k] >= 0.5:
                    gid = int(g[1][k])
                    votes[str(gid) if cross_camera else f"{s.camera}:{gid}"] += 1
        matched = sum(votes.values())
        top = votes.most_common(1)
        out[ident.global_id] = Purity(matched, total, top[0][1] / matched if top else None,
                                      top[0][0] if top else None, len(votes))
    return out
