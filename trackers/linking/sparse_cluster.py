"""Constrained average-linkage clustering on a sparse candidate graph (10⁵ items and more).

The dense :func:`trackers.linking.offline.constrained_agglomerative` needs all N²
distances. Here only candidate pairs (edges of a kNN graph) carry a computed
distance. Every other pair is a *missing pair*, valued as if its items shared
no k-reciprocal neighbourhood: with ``features`` (L2-normalised, M×D) and
``lam`` (the weight λ of the original distance; 1 without re-ranking)

    ``d_missing(p, q) = (1 - λ) · 1 + λ · (1 - f_p·f_q)``

i.e. Jaccard distance 1 and the exact cosine distance. Between clusters this
average needs no pairs: ``(1 - λ) + λ (1 - s_K·s_Y / (n_K n_Y))`` from the
clusters' feature sums. Without ``features`` a missing pair counts as the
constant ``missing`` (default 1.0).

* cluster distances follow the dense Lance–Williams update
  ``d(k, i∪j) = (n_i d(k,i) + n_j d(k,j)) / (n_i + n_j)`` with a missing
  ``d(k, ·)`` read as above, so every stored value is the exact average over
  all member pairs;
* the closest pair ``(d, i, j)`` (lexicographic, ``i < j``) among clusters
  joined by at least one candidate edge is merged first, into the lower
  index, as the dense code does; it stops when that is above ``threshold``.
  With ``weights``, the pair of largest ``(threshold - d) · sqrt(w_i · w_j)``
  goes first instead (coverage first, see :mod:`trackers.linking.dense_cluster`);
* cannot-link constraints (:class:`trackers.linking.topology.PairRules`) between two
  clusters are checked on all their member pairs when they are about to merge
  (not only on candidate pairs), so no cluster ever holds a cannot-link pair.

Hence, with every pair a candidate, the clusters equal the dense ones (up to
exact ties); with kNN candidates they are equal whenever the dense distance
of every missing pair is its ``d_missing`` (re-ranking: the pair shares no
neighbourhood) and no two dense clusters merge without a candidate edge
between them. Merges happen only along candidate edges at most ``threshold``,
so the work splits into the connected components of the graph of such edges.

Cost: ``O(E log E)`` heap operations over the E edges inside those
components, in Python, plus one D-dimensional dot product per missing value
read; memory ``O(E + M·D)``.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from trackers.linking.topology import PairRules

__all__ = ["MISSING_DISTANCE", "checked_weights", "labels_by_first_item", "sparse_agglomerative"]

MISSING_DISTANCE = 1.0


def sparse_agglomerative(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    dist: np.ndarray,
    rules: PairRules | None,
    threshold: float,
    missing: float = MISSING_DISTANCE,
    features: np.ndarray | None = None,
    lam: float = 1.0,
    sizes: np.ndarray | None = None,
    groups: list[list[int]] | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Average-linkage clustering with cannot-link constraints on candidate pairs.

    Args:
        n: number of items N.
        i, j: E ``int64`` endpoints of the candidate pairs (any order; repeated
            pairs must carry the same distance; self pairs are ignored).
        dist: E distances (any float dtype, finite, ≥ 0).
        rules: constraints of the N items, or ``None`` for none.
        threshold: largest average-linkage distance at which clusters merge.
        missing: without ``features``: distance assumed for pairs that are not
            candidates; must be ``> threshold`` (``inf``: a missing pair blocks a merge).
        features: N×D L2-normalised features; when given, a missing pair is
            valued ``(1 - lam) + lam · cosine distance`` (see the module docstring).
        lam: weight of the cosine distance in a missing pair's value, in [0, 1].
        sizes: N ``int`` initial sizes when the items are clusters already
            (default 1 each); ``dist`` then holds their average-linkage
            distances and ``features`` their unnormalised mean features.
        groups: per item, the indices into ``rules`` of its members (default
            ``[k]`` for item k); constraints are checked between groups.
        weights: N finite weights ``> 0`` (tracklets: their number of boxes) for
            coverage-first merging (summed on merges), or ``None`` for closest first.

    Returns:
        N ``int64`` labels ``0..K-1`` numbered by each cluster's first item.

    Raises:
        ValueError: shapes disagree, an index is outside ``[0, N)``, a distance is
            NaN or negative, ``missing ≤ threshold`` (without ``features``),
            ``rules`` / ``features`` cover another N, or ``weights`` has another
            length or a value that is not finite and positive.
    """
    i, j, d = _checked(n, i, j, dist, rules, threshold, missing, features, sizes, groups)
    weight = None if weights is None else checked_weights(weights, n)
    keep = i != j
    a, b, d = np.minimum(i, j)[keep], np.maximum(i, j)[keep], d[keep]
    if rules is not None and len(a):  # a constrained pair never merges: its distance never matters
        if groups is None:
            ok = ~rules.cannot_link(a, b)
        else:
            ok = np.array([not rules.clusters_conflict(np.array(groups[x]), np.array(groups[y]))
                           for x, y in zip(a.tolist(), b.tolist(), strict=True)], dtype=bool)
        a, b, d = a[ok], b[ok], d[ok]
    # components of the graph of edges at most threshold: merges never cross them
    close = d <= threshold
    graph = sparse.coo_matrix((np.ones(int(close.sum())), (a[close], b[close])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    inside = comp[a] == comp[b]
    a, b, d = a[inside], b[inside], d[inside]

    adj: dict[int, dict[int, float]] = {}
    for x, y, v in zip(a.tolist(), b.tolist(), d.tolist(), strict=True):
        adj.setdefault(x, {})[y] = v
        adj.setdefault(y, {})[x] = v

    def key(v: float, x: int, y: int) -> tuple[float, float, int, int]:
        """Heap key of a candidate merge: smallest first (closest first, or the largest coverage gain)."""
        first = v if weight is None else -(threshold - v) * math.sqrt(weight[x] * weight[y])
        return first, v, x, y

    heap = [key(v, x, y) for x, y, v in zip(a.tolist(), b.tolist(), d.tolist(), strict=True) if v <= threshold]
    heapq.heapify(heap)
    size = {x: 1 if sizes is None else int(sizes[x]) for x in adj}
    members: dict[int, list[int]] = {x: [x] for x in adj}
    grouped: dict[int, list[int]] = {x: [x] if groups is None else list(groups[x]) for x in adj}
    sums: dict[int, np.ndarray] = {}
    if features is not None:
        f = np.asarray(features)
        sums = {x: f[x].astype(np.float64) * size[x] for x in adj}

    def absent(p: int, q: int) -> float:
        """Average over all member pairs of two clusters that share no candidate edge."""
        if features is None:
            return missing
        return (1.0 - lam) + lam * (1.0 - float(sums[p] @ sums[q]) / (size[p] * size[q]))

    parent = np.arange(n)
    inf = float("inf")
    while heap:
        first, v, x, y = heapq.heappop(heap)
        ax = adj.get(x)
        if ax is None or y not in adj or ax.get(y) != v or first != key(v, x, y)[0]:
            continue  # stale entry: a cluster was merged away, the distance or a weight changed
        if rules is not None and rules.clusters_conflict(np.array(grouped[x]), np.array(grouped[y])):
            ax[y] = adj[y][x] = inf  # constraints only grow with merges: blocked for good
            continue
        ay = adj.pop(y)
        sx, sy = size[x], size[y]
        del ax[y]
        del ay[x]
        for k in set(ax) | set(ay):
            dx = ax[k] if k in ax else absent(x, k)
            dy = ay[k] if k in ay else absent(y, k)
            new = (sx * dx + sy * dy) / (sx + sy)
            ak = adj[k]
            ak.pop(y, None)
            ax[k] = ak[x] = new
        size[x] = sx + sy
        if weight is not None:
            weight[x] += weight[y]
        for k in ax:
            if ax[k] <= threshold:
                heapq.heappush(heap, key(ax[k], min(x, k), max(x, k)))
        del size[y]
        members[x].extend(members.pop(y))
        grouped[x].extend(grouped.pop(y))
        if sums:
            sums[x] += sums.pop(y)
    for root, mem in members.items():
        parent[mem] = root
    return labels_by_first_item(parent)


def _checked(n: int, i: np.ndarray, j: np.ndarray, dist: np.ndarray, rules: PairRules | None, threshold: float,
             missing: float, features: np.ndarray | None, sizes: np.ndarray | None,
             groups: list[list[int]] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, dist)`` as flat ``int64``/``float64`` arrays after the checks of :func:`sparse_agglomerative`."""
    i = np.asarray(i, dtype=np.int64).reshape(-1)
    j = np.asarray(j, dtype=np.int64).reshape(-1)
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    if not (len(i) == len(j) == len(d)):
        raise ValueError("i, j and dist must have the same length")
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"pair indices must be in [0, {n})")
    if np.isnan(d).any() or (d < 0).any():
        raise ValueError("dist holds NaN or negative values")
    if features is None and not missing > threshold:
        raise ValueError(f"missing ({missing}) must exceed threshold ({threshold})")
    if features is not None and len(features) != n:
        raise ValueError(f"features cover {len(features)} items, expected {n}")
    if rules is not None and groups is None and len(rules) != n:
        raise ValueError(f"rules cover {len(rules)} items, expected {n}")
    if (sizes is not None and len(sizes) != n) or (groups is not None and len(groups) != n):
        raise ValueError(f"sizes and groups must have {n} entries")
    return i, j, d


def checked_weights(weights: np.ndarray, n: int) -> np.ndarray:
    """N coverage-first merge weights as a writable ``float64`` copy.

    Raises:
        ValueError: not ``n`` entries, or a weight that is not finite and ``> 0``.
    """
    w = np.array(weights, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ValueError(f"weights must have {n} entries, got {len(w)}")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and > 0")
    return w


def labels_by_first_item(parent: np.ndarray) -> np.ndarray:
    """Cluster labels ``0..K-1`` from representative indices, numbered by each cluster's first item."""
    n = len(parent)
    _, labels = np.unique(parent, return_inverse=True)
    first = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels].astype(np.int64)
