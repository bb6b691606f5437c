"""Coverage-first merging (linking.merge_order, trackers/linking/dense_cluster.py and sparse_cluster.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import LinkConfig
from pipeline.types import Tracklet
from trackers.linking.dense_cluster import constrained_agglomerative
from trackers.linking.offline import cosine_distance_matrix, link_tracklets_detailed
from trackers.linking.sparse_cluster import sparse_agglomerative
from trackers.linking.topology import PairRules


def _tracklet(cam: str, local_id: int, first: int, boxes: int, feature: np.ndarray, fps: float = 10.0) -> Tracklet:
    frames = np.arange(first, first + boxes, dtype=np.int64)
    return Tracklet(camera_id=cam, local_id=local_id, frames=frames, timestamps=frames / fps,
                    boxes=np.tile(np.array([[10, 10, 50, 120]], np.float32), (boxes, 1)),
                    scores=np.full(boxes, 0.9, np.float32), feature=feature.astype(np.float32), num_features=1)


def _at_cosine(c: float, axis: int, dim: int = 8) -> np.ndarray:
    """A unit vector at cosine ``c`` to e0, the rest along ``axis``."""
    v = np.zeros(dim)
    v[0], v[axis] = c, np.sqrt(1 - c * c)
    return v


def _fragment_scene() -> list[Tracklet]:
    """One person: 100 boxes in camera A, then a 5-box fragment in A; 100 boxes in camera B, which sits a
    hair closer to the fragment (distance 0.30) than to the long tracklet (0.35)."""
    return [_tracklet("A", 1, 0, 100, _at_cosine(0.65, 1)),
            _tracklet("A", 2, 120, 5, _at_cosine(0.70, 2)),
            _tracklet("B", 1, 20, 100, _at_cosine(1.0, 3))]


@pytest.mark.parametrize(("order", "joined"), [("coverage", (0, 2)), ("closest", (1, 2))])
def test_the_long_tracklet_gets_the_person_first(order, joined):
    ts = _fragment_scene()
    cfg = LinkConfig(threshold=0.5, camera_bias=False, same_camera="never", merge_order=order)
    ids = link_tracklets_detailed(ts, cfg).global_ids
    a, b = joined
    assert ids[a] == ids[b]
    assert len(set(ids.tolist())) == 2  # the other tracklet of camera A keeps an id of its own


def _naive_coverage(d: np.ndarray, c: np.ndarray, thr: float, w: np.ndarray) -> list[frozenset[int]]:
    """Reference: recompute every pair's (thr - d) * sqrt(w w) before each merge (average linkage)."""
    clusters = [frozenset([k]) for k in range(len(d))]
    wsum = {cl: float(w[next(iter(cl))]) for cl in clusters}
    while True:
        best, pair = -np.inf, None
        for x in range(len(clusters)):
            for y in range(x + 1, len(clusters)):
                p, q = clusters[x], clusters[y]
                if any(c[i, j] for i in p for j in q):
                    continue
                dist = float(np.mean([d[i, j] for i in p for j in q]))
                gain = (thr - dist) * np.sqrt(wsum[p] * wsum[q])
                if dist <= thr and gain > best:
                    best, pair = gain, (x, y)
        if pair is None:
            return sorted(clusters, key=min)
        p, q = clusters[pair[0]], clusters[pair[1]]
        merged = p | q
        wsum[merged] = wsum[p] + wsum[q]
        clusters = [cl for k, cl in enumerate(clusters) if k not in pair] + [merged]


@pytest.mark.parametrize("seed", range(6))
def test_cached_coverage_order_equals_the_naive_one(seed):
    rng = np.random.default_rng(seed)
    n = 14
    d = cosine_distance_matrix(rng.normal(size=(4, 6))[rng.integers(0, 4, n)] + 0.6 * rng.normal(size=(n, 6)))
    c = rng.random((n, n)) < 0.15
    c = (c | c.T) & ~np.eye(n, dtype=bool)
    w = rng.integers(1, 300, n).astype(float)
    labels = constrained_agglomerative(d, c, 0.5, weights=w)
    ours = sorted((frozenset(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)), key=min)
    assert ours == _naive_coverage(d.astype(np.float64), c, 0.5, w)


@pytest.mark.parametrize(("n", "seed"), [(30, 0), (200, 1)])
def test_sparse_coverage_equals_dense_with_all_pairs(n, seed):
    rng = np.random.default_rng(seed)
    d = cosine_distance_matrix(rng.normal(size=(n // 5, 16))[rng.integers(0, n // 5, n)]
                               + 0.5 * rng.normal(size=(n, 16)))
    cams = [f"c{k}" for k in rng.integers(0, 4, n)]
    start = rng.uniform(0, 50, n)
    rules = PairRules(cams, start, start + rng.uniform(0.5, 8, n), same_camera="never")
    w = rng.integers(1, 500, n).astype(float)
    a, b = np.triu_indices(n, 1)
    dense = constrained_agglomerative(d, rules.dense(), 0.45, weights=w)
    np.testing.assert_array_equal(dense, sparse_agglomerative(n, a, b, d[a, b], rules, 0.45, weights=w))
    assert not np.array_equal(dense, constrained_agglomerative(d, rules.dense(), 0.45))  # the order mattered


def test_bad_weights_are_refused():
    d, c = np.zeros((2, 2)), np.zeros((2, 2), bool)
    with pytest.raises(ValueError, match="weights must have 2"):
        constrained_agglomerative(d, c, 1.0, weights=np.ones(3))
    with pytest.raises(ValueError, match="finite and > 0"):
        constrained_agglomerative(d, c, 1.0, weights=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="finite and > 0"):
        sparse_agglomerative(2, np.array([0]), np.array([1]), np.array([0.1]), None, 0.5, weights=[1, np.nan])
