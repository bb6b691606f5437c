"""Cross-camera linking (trackers/linking/offline.py): constraints, clustering, global ids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from pipeline.config import LinkConfig
from pipeline.types import Tracklet
from trackers.linking.offline import (
    LinkResult,
    cannot_link_matrix,
    constrained_agglomerative,
    cosine_distance_matrix,
    link_tracklets,
    link_tracklets_detailed,
)

# These tests check the linking mechanics (clustering, constraints, modes) on synthetic worlds in which
# people re-enter cameras, so they pin the pre-calibration policy: a fixed threshold and same-camera
# links allowed, plain cosine (no camera bias removal). The defaults are tested in test_linking_policy.py.
MECHANICS = {"threshold": 0.4, "same_camera": "any", "camera_bias": False}

def make_tracklet(cam: str, local_id: int, t0: float, t1: float, feature=None, fps: float = 10.0) -> Tracklet:
    ts = np.arange(t0, t1 + 1e-9, 1.0 / fps)
    n = len(ts)
    return Tracklet(
        camera_id=cam,
        local_id=local_id,
        frames=np.round(ts * fps).astype(np.int64),
        timestamps=ts.astype(np.float64),
        boxes=np.tile(np.array([[10, 10, 50, 120]], np.float32), (n, 1)),
        scores=np.full(n, 0.9, np.float32),
        feature=None if feature is None else np.asarray(feature, np.float32),
        num_features=0 if feature is None else 1,
    )


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :]))


def assert_constraints_hold(tracklets: list[Tracklet]) -> None:
    for i, a in enumerate(tracklets):
        for b in tracklets[i + 1 :]:
            if a.global_id == b.global_id and a.camera_id == b.camera_id:
                overlap = a.start_time <= b.end_time and b.start_time <= a.end_time
                assert not overlap, f"{a.camera_id}:{a.local_id} and {b.local_id} overlap but share an id"


# --------------------------------------------------------------------------------------
# cannot-link matrix
# --------------------------------------------------------------------------------------


def test_cannot_link_rules():
    ts = [
        make_tracklet("A", 1, 0.0, 5.0),
        make_tracklet("A", 2, 3.0, 8.0),  # overlaps A1 in camera A
        make_tracklet("A", 3, 8.0, 9.0),  # touches A2 at t = 8 s: both in one frame
        make_tracklet("A", 4, 20.0, 25.0),  # later re-entry
        make_tracklet("B", 1, 0.0, 5.0),  # other camera, same time
        make_tracklet("B", 2, 60.0, 61.0),
    ]
    c = cannot_link_matrix(ts)
    assert c.dtype == bool and c.shape == (6, 6)
    assert np.array_equal(c, c.T) and not c.diagonal().any()
    assert c[0, 1] and c[1, 2]
    assert not c[0, 2] and not c[0, 3] and not c[2, 3]  # same camera, disjoint in time
    assert not c[0, 4] and not c[1, 4]  # different cameras may overlap
    assert c.sum() == 4  # exactly the two overlapping pairs, both ways

    g = cannot_link_matrix(ts, max_gap_s=10.0)
    assert g[0, 3]  # A1 ends 5 s, A4 starts 20 s: gap 15 s
    assert g[2, 3]  # A3 ends 9 s, A4 starts 20 s: 11 s > 10 s
    assert g[1, 3]  # A2 ends 8 s: 12 s
    assert g[4, 5] and g[0, 5]  # 55 s each
    assert not g[2, 4]  # A3 starts 8 s, B1 ends 5 s: 3 s
    assert not g[0, 4]  # overlapping: gap 0
    assert not g.diagonal().any() and np.array_equal(g, g.T)


def test_cannot_link_gap_is_between_intervals():
    a = make_tracklet("A", 1, 0.0, 5.0)
    b = make_tracklet("B", 1, 9.0, 10.0)  # gap 4 s
    assert not cannot_link_matrix([a, b], max_gap_s=4.0)[0, 1]
    assert cannot_link_matrix([a, b], max_gap_s=3.9)[0, 1]
    assert cannot_link_matrix([], max_gap_s=1.0).shape == (0, 0)
    with pytest.raises(ValueError):
        cannot_link_matrix([a, b], max_gap_s=-1.0)


# --------------------------------------------------------------------------------------
# constrained agglomerative clustering
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["average", "single", "complete"])
@pytest.mark.parametrize("n,seed", [(2, 0), (7, 1), (40, 2), (150, 3), (400, 4)])
def test_unconstrained_equals_scipy(method, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)) + 3.0 * rng.normal(size=(max(1, n // 8), 5))[rng.integers(0, max(1, n // 8), n)]
    d = np.sqrt(((x[:, None] - x[None, :]) ** 2).sum(-1))
    z = linkage(squareform(d, checks=False), method=method)
    heights = z[:, 2]
    for thr in np.quantile(heights, [0.1, 0.5, 0.8, 0.95]):
        # avoid a threshold sitting exactly on a merge height
        thr = float(thr) + 1e-9
        ours = constrained_agglomerative(d, np.zeros((n, n), bool), thr, linkage=method)
        ref = fcluster(z, thr, criterion="distance")
        assert same_partition(ours, ref), (method, n, thr)
        assert set(ours.tolist()) == set(range(ours.max() + 1))


def test_constraint_propagates_to_merged_clusters():
    # a-b close, b-c close, a-c cannot link: c must not join {a, b}
    d = np.array([[0.0, 0.1, 0.2], [0.1, 0.0, 0.15], [0.2, 0.15, 0.0]])
    cl = np.zeros((3, 3), bool)
    cl[0, 2] = cl[2, 0] = True
    labels = constrained_agglomerative(d, cl, threshold=1.0)
    assert labels.tolist() == [0, 0, 1]
    # without the constraint all three merge
    assert constrained_agglomerative(d, np.zeros((3, 3), bool), threshold=1.0).tolist() == [0, 0, 0]


def test_constraints_hold_on_random_data():
    rng = np.random.default_rng(11)
    n = 300
    x = rng.normal(size=(n, 4))
    d = np.sqrt(((x[:, None] - x[None, :]) ** 2).sum(-1))
    cl = rng.random((n, n)) < 0.05
    cl = cl | cl.T
    np.fill_diagonal(cl, False)
    labels = constrained_agglomerative(d, cl, threshold=10.0)
    same = labels[:, None] == labels[None, :]
    assert not (same & cl).any()
    assert len(set(labels.tolist())) < n  # it did merge


def test_threshold_and_labels():
    d = np.array([[0, 1, 5], [1, 0, 5], [5, 5, 0]], float)
    none = np.zeros((3, 3), bool)
    assert constrained_agglomerative(d, none, 0.5).tolist() == [0, 1, 2]
    assert constrained_agglomerative(d, none, 1.0).tolist() == [0, 0, 1]  # ≤ threshold merges
    assert constrained_agglomerative(d, none, 5.0).tolist() == [0, 0, 0]
    assert constrained_agglomerative(np.zeros((0, 0)), np.zeros((0, 0), bool), 1.0).shape == (0,)
    assert constrained_agglomerative(np.zeros((1, 1)), np.zeros((1, 1), bool), 1.0).tolist() == [0]


def test_agglomerative_invalid_inputs():
    with pytest.raises(ValueError, match="linkage"):
        constrained_agglomerative(np.zeros((2, 2)), np.zeros((2, 2), bool), 1.0, linkage="ward")
    with pytest.raises(ValueError, match="symmetric"):
        constrained_agglomerative(np.array([[0, 1], [2, 0]], float), np.zeros((2, 2), bool), 1.0)
    with pytest.raises(ValueError, match="cannot_link"):
        constrained_agglomerative(np.zeros((2, 2)), np.zeros((3, 3), bool), 1.0)
    with pytest.raises(ValueError, match="square"):
        constrained_agglomerative(np.zeros((2, 3)), np.zeros((2, 3), bool), 1.0)


def test_a_few_thousand_items():
    rng = np.random.default_rng(5)
    n = 2000
    f = rng.normal(size=(n // 10, 32))[rng.integers(0, n // 10, n)] + 0.3 * rng.normal(size=(n, 32))
    d = cosine_distance_matrix(f)
    cl = np.zeros((n, n), bool)
    cl[:50, :50] = True
    np.fill_diagonal(cl, False)
    labels = constrained_agglomerative(d, cl, threshold=0.3)
    assert len(np.unique(labels[:50])) == 50
    assert len(np.unique(labels)) < n


# --------------------------------------------------------------------------------------
# link_tracklets
# --------------------------------------------------------------------------------------


def _two_people_three_cameras(rng, noise=0.25, dim=64):
    people = [rng.normal(size=dim), rng.normal(size=dim)]
    tracklets, truth = [], []
    lid = {"c1": 0, "c2": 0, "c3": 0}
    # each person walks c1 → c2 → c3, person 0 starting first; person 1 re-enters c1
    for p, t0 in ((0, 0.0), (1, 4.0)):
        for k, cam in enumerate(("c1", "c2", "c3")):
            lid[cam] += 1
            start = t0 + 12.0 * k
            feat = unit(people[p] + noise * np.linalg.norm(people[p]) / np.sqrt(dim) * rng.normal(size=dim))
            tracklets.append(make_tracklet(cam, lid[cam], start, start + 8.0, feat))
            truth.append(p)
    lid["c1"] += 1
    feat = unit(people[1] + noise * rng.normal(size=dim))
    tracklets.append(make_tracklet("c1", lid["c1"], 50.0, 55.0, feat))
    truth.append(1)
    return tracklets, np.array(truth)


@pytest.mark.parametrize("rerank", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_people_three_cameras(rerank, seed):
    rng = np.random.default_rng(seed)
    tracklets, truth = _two_people_three_cameras(rng)
    cfg = LinkConfig(**MECHANICS, rerank=rerank, rerank_min_tracklets=0)
    ids = link_tracklets(tracklets, cfg)
    assert sorted(set(ids.tolist())) == [1, 2]
    assert same_partition(ids, truth)
    assert ids[0] == 1  # the person seen first gets id 1
    assert [t.global_id for t in tracklets] == ids.tolist()
    assert_constraints_hold(tracklets)


def test_identical_features_overlapping_in_one_camera_stay_apart():
    f = unit(np.ones(16))
    ts = [make_tracklet("A", i + 1, float(i), 10.0 + i, f) for i in range(4)]  # all overlap in camera A
    ts.append(make_tracklet("B", 1, 2.0, 6.0, f))  # other camera, may join one of them
    for rerank in (True, False):
        ids = link_tracklets(ts, LinkConfig(rerank=rerank, rerank_min_tracklets=0, threshold=0.5, same_camera="any",
                                         camera_bias=False))
        assert len(set(ids[:4].tolist())) == 4
        assert_constraints_hold(ts)
        assert ids[4] in ids[:4]


def test_same_camera_reentry_links():
    rng = np.random.default_rng(3)
    base = rng.normal(size=32)
    ts = [
        make_tracklet("A", 1, 0.0, 5.0, unit(base + 0.1 * rng.normal(size=32))),
        make_tracklet("A", 2, 30.0, 35.0, unit(base + 0.1 * rng.normal(size=32))),
        make_tracklet("A", 3, 1.0, 4.0, unit(rng.normal(size=32))),  # someone else
    ]
    for rerank in (True, False):
        ids = link_tracklets(ts, LinkConfig(**MECHANICS, rerank=rerank, rerank_min_tracklets=0))
        assert ids[0] == ids[1] != ids[2]


def test_max_gap_respected():
    f = unit(np.arange(1, 9))
    ts = [make_tracklet("A", 1, 0.0, 5.0, f), make_tracklet("B", 1, 100.0, 105.0, f)]
    assert link_tracklets(ts, LinkConfig(**MECHANICS)).tolist() == [1, 1]
    assert link_tracklets(ts, LinkConfig(**MECHANICS, max_gap_s=30.0)).tolist() == [1, 2]
    assert link_tracklets(ts, LinkConfig(**MECHANICS, max_gap_s=95.0)).tolist() == [1, 1]


def test_featureless_tracklet_gets_own_id():
    rng = np.random.default_rng(4)
    tracklets, _ = _two_people_three_cameras(rng)
    bare = make_tracklet("c2", 99, 1.0, 3.0, None)
    zero = make_tracklet("c3", 98, 2.0, 3.0, np.zeros(64))
    all_t = [*tracklets, bare, zero]
    res = link_tracklets_detailed(all_t, LinkConfig(**MECHANICS, rerank_min_tracklets=0))
    assert isinstance(res, LinkResult)
    assert res.num_without_feature == 2
    ids = res.global_ids.tolist()
    assert ids.count(bare.global_id) == 1 and ids.count(zero.global_id) == 1
    assert res.num_ids == 4 == len(set(ids))
    assert res.num_linked == len(tracklets)
    assert np.isnan(res.distance[-1]).all() and np.isnan(res.distance[:, -2]).all()
    core = res.distance[: len(tracklets), : len(tracklets)]
    assert np.isfinite(core).all() and np.allclose(core, core.T)
    assert res.cannot_link.shape == (len(all_t), len(all_t))
    assert 1 <= res.k2 <= res.k1 <= (len(tracklets) - 1) // 2


def test_every_tracklet_exactly_one_id_numbered_by_first_appearance():
    rng = np.random.default_rng(8)
    cams = ["a", "b", "c", "d"]
    people = rng.normal(size=(12, 32))
    ts = []
    for k in range(80):
        p = int(rng.integers(0, 12))
        t0 = float(rng.uniform(0, 100))
        feat = None if k % 17 == 0 else unit(people[p] + 0.4 * rng.normal(size=32))
        ts.append(make_tracklet(cams[k % 4], k + 1, t0, t0 + float(rng.uniform(1, 10)), feat))
    ids = link_tracklets(ts, LinkConfig(**MECHANICS, max_gap_s=60.0))
    assert ids.shape == (80,) and ids.dtype == np.int64
    assert all(t.global_id == g for t, g in zip(ts, ids.tolist(), strict=True))
    k = ids.max()
    assert set(ids.tolist()) == set(range(1, k + 1))
    first = [min(t.start_time for t, g in zip(ts, ids, strict=True) if g == gid) for gid in range(1, k + 1)]
    assert first == sorted(first)
    assert_constraints_hold(ts)


def test_disabled_gives_each_its_own_id():
    f = unit(np.ones(8))
    ts = [make_tracklet("A", 1, 5.0, 6.0, f), make_tracklet("B", 1, 0.0, 2.0, f), make_tracklet("C", 1, 9.0, 9.5)]
    res = link_tracklets_detailed(ts, LinkConfig(**MECHANICS, enabled=False))
    assert res.global_ids.tolist() == [2, 1, 3]  # by first appearance
    assert res.num_ids == 3 and res.num_linked == 0 and res.distance is None
    assert [t.global_id for t in ts] == [2, 1, 3]
    assert link_tracklets([], LinkConfig(**MECHANICS)).shape == (0,)


def test_mismatched_feature_lengths_raise():
    ts = [make_tracklet("A", 1, 0.0, 1.0, unit(np.ones(8))), make_tracklet("B", 1, 0.0, 1.0, unit(np.ones(4)))]
    with pytest.raises(ValueError, match="disagree"):
        link_tracklets(ts, LinkConfig(**MECHANICS))


def test_cosine_distance_matrix():
    f = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0]])
    d = cosine_distance_matrix(f)
    assert d.dtype == np.float32 and np.array_equal(d, d.T)
    np.testing.assert_allclose(d[0], [0.0, 1.0, 2.0, 1.0], atol=1e-6)
    assert d[3, 3] == 0.0


def test_rerank_only_from_rerank_min_tracklets():
    rng = np.random.default_rng(5)
    tracklets, truth = _two_people_three_cameras(rng)
    n = sum(t.feature is not None for t in tracklets)
    assert link_tracklets_detailed(tracklets, LinkConfig(**MECHANICS, rerank=True, rerank_min_tracklets=n + 1)).k1 == 0
    res = link_tracklets_detailed(tracklets, LinkConfig(**MECHANICS, rerank=True, rerank_min_tracklets=n))
    assert res.k1 >= 1
    assert same_partition(res.global_ids, truth)
