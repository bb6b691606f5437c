"""Association primitives: IoU between box sets and thresholded linear assignment.

The assignment solves the rectangular linear assignment problem with the
Jonker–Volgenant algorithm (Jonker & Volgenant, "A shortest augmenting path
algorithm for dense and sparse linear assignment problems", Computing 1987) via
``lap.lapjv``, as ByteTrack does.
"""

from __future__ import annotations

import lap
import numpy as np


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Args:
        a_xyxy: M×4 boxes ``(x1, y1, x2, y2)`` in pixels (any float dtype).
        b_xyxy: N×4 boxes ``(x1, y1, x2, y2)`` in pixels.

    Returns:
        M×N ``float64`` IoU in [0, 1]; 0 where both boxes have zero area.
        An empty side gives an M×0 or 0×N array.

    Raises:
        ValueError: an input cannot be reshaped to K×4.
    """
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0.0, None) * np.clip(iy2 - iy1, 0.0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0.0, None) * np.clip(a[:, 3] - a[:, 1], 0.0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0.0, None) * np.clip(b[:, 3] - b[:, 1], 0.0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment that never pairs a row and column costing more than ``thresh``.

    Solved by ``lap.lapjv(cost, extend_cost=True, cost_limit=thresh)``: each
    row/column may stay unmatched at a price of ``thresh / 2``, so a pair costing
    more than ``thresh`` is never worth taking. Matches costing more than
    ``thresh`` are also dropped afterwards, so the guarantee holds exactly.

    Args:
        cost: M×N cost matrix (e.g. ``1 - IoU``); finite values (use a large number
            to forbid a pair, not ``inf``).
        thresh: largest admissible cost of a pair (same units as ``cost``), > 0.

    Returns:
        ``(matches, unmatched_rows, unmatched_cols)``: ``matches`` K×2 ``int64``
        ``(row, col)`` pairs sorted by row; the others 1-D ``int64`` indices in
        increasing order. Empty matrices give no matches and every index unmatched.

    Raises:
        ValueError: ``cost`` is not 2-D or holds NaN/inf, or ``thresh`` is not a
            positive finite number.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if not np.isfinite(thresh) or thresh <= 0:
        raise ValueError(f"thresh must be a positive finite cost, got {thresh}")
    m, n = c.shape
    if m == 0 or n == 0:
        return (np.zeros((0, 2), np.int64), np.arange(m, dtype=np.int64), np.arange(n, dtype=np.int64))
    if not np.all(np.isfinite(c)):
        raise ValueError("cost must be finite (forbid a pair with a large finite cost instead of inf/NaN)")
    _, row_to_col, _ = lap.lapjv(c, extend_cost=True, cost_limit=float(thresh))
    rows = np.flatnonzero(row_to_col >= 0)
    cols = np.asarray(row_to_col[rows], dtype=np.int64)
    keep = c[rows, cols] <= thresh
    rows, cols = rows[keep], cols[keep]
    matches = np.stack([rows, cols], axis=1).astype(np.int64) if len(rows) else np.zeros((0, 2), np.int64)
    free_rows = np.ones(m, bool)
    free_rows[rows] = False
    free_cols = np.ones(n, bool)
    free_cols[cols] = False
    unmatched_rows = np.flatnonzero(free_rows)
    unmatched_cols = np.flatnonzero(free_cols)
    return matches, unmatched_rows, unmatched_cols


FORBIDDEN_COST = 1e6
"""Cost of a pair that must never be matched (no overlap, outside a gate): far above any threshold."""


def iou_associate(track_boxes: np.ndarray, boxes: np.ndarray, min_iou: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match M×4 track boxes (predicted, ``xyxy`` pixels) to N×4 boxes on ``1 - IoU``, needing
    ``IoU >= min_iou`` and ``IoU > 0`` (a pair with no overlap is never matched).

    Returns:
        ``(matches K×2 (track, box) positions, unmatched tracks, unmatched boxes)``, int64.
    """
    if len(track_boxes) == 0 or len(boxes) == 0:
        return linear_assignment(np.zeros((len(track_boxes), len(boxes))), 1.0)
    iou = iou_matrix(track_boxes, boxes)
    cost = 1.0 - iou
    cost[iou <= 0.0] = FORBIDDEN_COST
    # thresh must be > 0 for lapjv; with min_iou == 1 only exact overlaps (cost 0) qualify.
    return linear_assignment(cost, max(1.0 - min_iou, 1e-9))
