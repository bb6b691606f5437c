"""Person re-identification ranking metrics: CMC, mAP and mINP.

Standard protocol (Market-1501 / torchreid): for each query the gallery is
sorted by increasing distance; gallery entries with the query's person id **and**
camera id are removed (same-camera matches are trivial); a query with no
remaining true match is skipped (counted in ``num_skipped``). Over the valid
queries:

* CMC rank-k: fraction whose first true match is within the first ``k`` entries;
* AP: mean over the true matches of ``precision`` at their rank
  (``hits so far / rank``); mAP is its mean;
* INP (Ye et al., "Deep Learning for Person Re-identification: A Survey and
  Outlook", TPAMI 2021): ``#true matches / rank of the hardest (last) true
  match``; mINP is its mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ReidMetrics", "evaluate_rank"]


@dataclass
class ReidMetrics:
    """Result of :func:`evaluate_rank`.

    Attributes:
        cmc: ``max_rank`` ``float64``; ``cmc[k-1]`` = rank-k accuracy in [0, 1].
        mAP: mean average precision in [0, 1].
        mINP: mean inverse negative penalty in [0, 1].
        num_query: queries evaluated (with at least one valid match).
        num_gallery: gallery size.
        num_skipped: queries skipped (no valid true match in the gallery).
        ap: per-evaluated-query AP, ``float64``.
    """

    cmc: np.ndarray
    mAP: float  # noqa: N815 - the metric's usual name
    mINP: float  # noqa: N815
    num_query: int
    num_gallery: int
    num_skipped: int
    ap: np.ndarray

    def rank(self, k: int) -> float:
        """Rank-k accuracy (``k ≥ 1``; beyond ``max_rank`` the last value)."""
        return float(self.cmc[min(k, len(self.cmc)) - 1]) if len(self.cmc) else 0.0

    def to_dict(self) -> dict[str, float | int]:
        """``rank1``, ``rank5``, ``rank10``, ``mAP``, ``mINP`` and the counts, as plain Python numbers."""
        return {
            "rank1": self.rank(1), "rank5": self.rank(5), "rank10": self.rank(10),
            "mAP": self.mAP, "mINP": self.mINP,
            "num_query": self.num_query, "num_gallery": self.num_gallery, "num_skipped": self.num_skipped,
        }


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 10,
) -> ReidMetrics:
    """CMC, mAP and mINP of a query×gallery distance matrix (protocol in the module docstring).

    Vectorised over queries (``O(Q·G log G)`` for the sort, ``Q×G`` memory).
    Ties in distance are broken by gallery index (stable sort).

    Args:
        distmat: Q×G distances (smaller = more similar), any float dtype.
        q_pids: Q person ids (ints); g_pids: G person ids.
        q_camids: Q camera ids; g_camids: G camera ids.
        max_rank: length of the CMC curve (≥ 1).

    Returns:
        :class:`ReidMetrics`; with no valid query all metrics are 0.

    Raises:
        ValueError: shapes disagree, ``max_rank < 1`` or ``distmat`` holds NaN.
    """
    dist = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids).ravel(), np.asarray(g_pids).ravel()
    q_camids, g_camids = np.asarray(q_camids).ravel(), np.asarray(g_camids).ravel()
    if dist.ndim != 2 or dist.shape != (len(q_pids), len(g_pids)) or len(q_camids) != len(q_pids) \
            or len(g_camids) != len(g_pids):
        raise ValueError(
            f"distmat must be Q×G with Q={len(q_pids)} query and G={len(g_pids)} gallery ids/cameras, "
            f"got {dist.shape}, {len(q_camids)} query and {len(g_camids)} gallery cameras"
        )
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    if np.isnan(dist).any():
        raise ValueError("distmat holds NaN")
    num_q, num_g = dist.shape
    order = np.argsort(dist, axis=1, kind="stable")
    same_id = g_pids[order] == q_pids[:, None]
    keep = ~(same_id & (g_camids[order] == q_camids[:, None]))
    match = same_id & keep
    num_rel = match.sum(axis=1)
    valid = num_rel > 0
    empty = np.zeros(max_rank)
    if not valid.any():
        return ReidMetrics(empty, 0.0, 0.0, 0, num_g, int(num_q), np.zeros(0))
    match, keep, num_rel = match[valid], keep[valid], num_rel[valid]
    rank = np.cumsum(keep, axis=1)  # 1-based rank among kept entries (valid where keep)
    hits = np.cumsum(match, axis=1)
    ap = np.where(match, hits / np.maximum(rank, 1), 0.0).sum(axis=1) / num_rel
    first = np.where(match, rank, np.iinfo(np.int64).max).min(axis=1)
    last = np.where(match, rank, 0).max(axis=1)
    cmc = (first[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(axis=0)
    inp = num_rel / last
    return ReidMetrics(
        cmc=cmc, mAP=float(ap.mean()), mINP=float(inp.mean()), num_query=int(valid.sum()),
        num_gallery=num_g, num_skipped=int(num_q - valid.sum()), ap=ap,
    )
