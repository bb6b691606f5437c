"""Constrained agglomerative clustering on a dense N×N distance matrix, closest-first or coverage-first.

Agglomerative clustering (average linkage: UPGMA, Sokal & Michener 1958; single, complete) under
cannot-link constraints (Davidson & Ravi, "Agglomerative hierarchical clustering with constraints",
SDM 2005), stopped at a distance threshold. Two merge orders:

* **closest first** (``weights=None``): the classic order, the two clusters of smallest linkage
  distance merge next;
* **coverage first** (``weights`` given, e.g. each tracklet's number of boxes): among the pairs of
  clusters at most ``threshold`` apart, the one with the largest
  ``(threshold - d) · sqrt(w_a · w_b)`` merges next, ``w`` being the summed weights of a cluster.
  The margin under the threshold says how sure the merge is, the geometric mean of the weights how
  much of the scene it decides. Under cannot-link constraints merges exclude one another (a
  cluster takes one tracklet per camera): closest first lets two short fragments that happen to
  be a hair closer take the place of a person's long tracklet; coverage first settles the long
  tracklets first, which is what IDF1 (counted in boxes) rewards.

Both orders merge only pairs at most ``threshold`` apart and stop when no such unconstrained pair
is left; they differ in which of two conflicting merges happens.
"""

from __future__ import annotations

import numpy as np

from trackers.linking.sparse_cluster import checked_weights, labels_by_first_item

__all__ = ["LINKAGES", "constrained_agglomerative"]

LINKAGES = ("average", "single", "complete")


def constrained_agglomerative(
    dist: np.ndarray, cannot_link: np.ndarray, threshold: float, linkage: str = "average",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Agglomerative clustering with cannot-link constraints and a distance threshold.

    Repeatedly merges two clusters whose linkage distance is ``≤ threshold`` and
    between which no cannot-link pair runs — the closest pair, or with ``weights``
    the pair of largest ``(threshold - d) · sqrt(w_a · w_b)`` (see the module
    docstring); the constraint of a merged cluster is the union of its parts' (so
    no cluster ever holds a cannot-link pair). Cluster distances are updated with
    the Lance–Williams formula (average: ``d(k, i∪j) = (n_i d(k,i) + n_j d(k,j)) /
    (n_i + n_j)``; single: ``min``; complete: ``max``), not recomputed; a merged
    cluster's weight is the sum of its parts'. The next pair is found from a
    per-row cache of each cluster's best partner; a row is rescanned only when its
    best partner was merged, and every row compares its cached best with the merged
    cluster, which keeps the cache exact for both orders. Time ``O(N²)`` typical
    (``O(N³)`` worst case, vectorised over rows), memory ``O(N²)`` (two ``float64``
    and one ``bool`` N×N matrix).

    Closest first and without constraints, the clusters equal those of
    ``scipy.cluster.hierarchy.linkage(method=linkage)`` cut with
    ``fcluster(Z, threshold, criterion="distance")`` (up to ties).

    Args:
        dist: N×N symmetric distances (any float dtype); the diagonal is ignored.
        cannot_link: N×N ``bool``, ``True`` where two items must stay apart
            (symmetrised with ``|``).
        threshold: largest linkage distance at which clusters are merged.
        linkage: ``"average"`` (default), ``"single"`` or ``"complete"``.
        weights: N finite weights ``> 0`` (any float dtype; tracklets: their number
            of boxes) for coverage-first merging, or ``None`` for closest first.

    Returns:
        N ``int64`` labels ``0..K-1``, numbered by each cluster's first item.

    Raises:
        ValueError: shapes disagree or are not square, ``dist`` is not symmetric
            or holds NaN, ``linkage`` is unknown, or ``weights`` has another
            length or a value that is not finite and positive.
    """
    d, c = _checked(dist, cannot_link, linkage)
    if d.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    w = None if weights is None else checked_weights(weights, d.shape[0])
    return _Merges(d, c, float(threshold), linkage, w).run()


class _Merges:
    """State of one clustering: linkage distances ``d``, constraints ``c``, merge priorities ``score``
    (larger first; ``-inf``: not mergeable) and each row's best partner."""

    def __init__(self, d: np.ndarray, c: np.ndarray, threshold: float, linkage: str, w: np.ndarray | None):
        n = d.shape[0]
        self.d, self.c, self.threshold, self.linkage, self.w = d, c, threshold, linkage, w
        self.size = np.ones(n, dtype=np.int64)
        self.parent = np.arange(n)  # item -> representative cluster index after merges
        self.active = np.ones(n, dtype=bool)
        eff = np.where(c, np.inf, d)  # effective distance: +inf on the diagonal and between constrained clusters
        np.fill_diagonal(eff, np.inf)
        self.score = self._priority(eff, np.arange(n))
        self.best = np.argmax(self.score, axis=1)
        self.best_val = self.score[np.arange(n), self.best]

    def _priority(self, eff: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Merge priorities of clusters ``rows`` with every cluster, from their effective distances (R×N)."""
        if self.w is None:
            return -eff
        gain = (self.threshold - eff) * np.sqrt(self.w[rows, None] * self.w[None, :])
        return np.where(eff <= self.threshold, gain, -np.inf)

    def _mergeable(self, value: float) -> bool:
        if self.w is None:
            return -value <= self.threshold  # False on -inf too
        return value > -np.inf

    def run(self) -> np.ndarray:
        """Merge until no allowed pair is left; the labels of :func:`constrained_agglomerative`."""
        for _ in range(len(self.parent) - 1):
            i = int(np.argmax(self.best_val))
            if not self._mergeable(self.best_val[i]):
                break
            j = int(self.best[i])
            self._merge(min(i, j), max(i, j))
        return labels_by_first_item(self.parent)

    def _linkage_row(self, i: int, j: int) -> np.ndarray:
        """Lance–Williams distances of the merged cluster ``i ∪ j`` to every cluster."""
        d, size = self.d, self.size
        if self.linkage == "average":
            return (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        if self.linkage == "single":
            return np.minimum(d[i], d[j])
        return np.maximum(d[i], d[j])

    def _merge(self, i: int, j: int) -> None:
        """Merge cluster ``j`` into ``i`` (``i < j``) and bring the caches up to date."""
        new = self._linkage_row(i, j)
        self.d[i, :] = self.d[:, i] = new
        self.c[i, :] |= self.c[j, :]
        self.c[:, i] = self.c[i, :]
        self.size[i] += self.size[j]
        self.size[j] = 0
        if self.w is not None:
            self.w[i] += self.w[j]
        self.active[j] = False
        self.parent[self.parent == j] = i
        row = np.where(self.c[i] | ~self.active, np.inf, new)
        row[i] = np.inf
        prio = self._priority(row[None, :], np.array([i]))[0]
        self.score[i, :] = self.score[:, i] = prio
        self.score[j, :] = self.score[:, j] = -np.inf
        self.best_val[j] = -np.inf
        # rows whose best partner was i or j are rescanned ...
        stale = np.union1d(np.flatnonzero(self.active & ((self.best == i) | (self.best == j))), [i])
        self.best[stale] = np.argmax(self.score[stale], axis=1)
        self.best_val[stale] = self.score[stale, self.best[stale]]
        # ... every other row keeps its best unless the merged cluster beats it (coverage: its weight
        # grew; closest first: only by rounding, a weighted mean of equal values a hair below them)
        better = self.active & (prio > self.best_val)
        self.best[better] = i
        self.best_val[better] = prio[better]


def _checked(dist: np.ndarray, cannot_link: np.ndarray, linkage: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``float64`` distances and ``bool`` constraints, both symmetrised (see the caller's Raises)."""
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    d = np.array(dist, dtype=np.float64)
    n = d.shape[0] if d.ndim == 2 else -1
    if d.ndim != 2 or d.shape != (n, n):
        raise ValueError(f"dist must be a square N×N matrix, got shape {d.shape}")
    c = np.asarray(cannot_link, dtype=bool)
    if c.shape != (n, n):
        raise ValueError(f"cannot_link must be {n}×{n}, got shape {c.shape}")
    if np.isnan(d).any():
        raise ValueError("dist holds NaN")
    if not np.allclose(d, d.T, rtol=1e-6, atol=1e-6, equal_nan=False):
        raise ValueError("dist must be symmetric")
    return (d + d.T) / 2.0, c | c.T

