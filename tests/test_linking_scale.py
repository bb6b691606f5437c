"""Linking at scale and online: sparse re-ranking and clustering, topology, incremental linking."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_script
from test_linking import make_tracklet, same_partition, unit

from pipeline.config import LinkConfig, load_config
from pipeline.errors import ConfigError
from pipeline.types import Tracklet
from reid.rerank import _initial_rank, effective_k, rerank_distance
from reid.rerank_sparse import knn, sparse_rerank_pairs
from trackers.linking.incremental import IncrementalLinker, LinkEvent
from trackers.linking.offline import constrained_agglomerative, cosine_distance_matrix, link_tracklets_detailed
from trackers.linking.sparse_cluster import sparse_agglomerative
from trackers.linking.topology import PairRules

bench = load_script("benchmark_linking")



# These tests check the linking mechanics (clustering, constraints, modes) on synthetic worlds in which
# people re-enter cameras, so they pin the pre-calibration policy: a fixed threshold and same-camera
# links allowed. The defaults (auto threshold, no same-camera links) are tested in test_linking_policy.py.
MECHANICS = {"threshold": 0.4, "same_camera": "any", "camera_bias": False}

def clustered(n: int, dim: int, seed: int, spread: float = 0.8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 6), dim))
    return centres[rng.integers(0, len(centres), n)] + spread * rng.normal(size=(n, dim))


def random_rules(n: int, seed: int, topology: dict | None = None) -> PairRules:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 100, n)
    return PairRules([f"c{k}" for k in rng.integers(0, 4, n)], start, start + rng.uniform(0, 10, n),
                     topology=topology)


# --------------------------------------------------------------------------------------
# sparse re-ranking = dense re-ranking on candidate pairs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed"), [(7, 0), (60, 1), (400, 2), (2000, 3)])
def test_knn_equals_dense_initial_rank(n, seed):
    f = clustered(n, 32, seed)
    k1, k2 = effective_k(20, 6, n)
    m = max(k1 + 1, k2)
    idx, dist = knn(f, m, index="flat")
    d = cosine_distance_matrix(f)
    np.testing.assert_array_equal(idx, _initial_rank(d, m))
    np.testing.assert_allclose(dist, np.take_along_axis(d, idx, axis=1), atol=1e-7)


@pytest.mark.parametrize(("n", "seed", "lam"), [(12, 0, 0.3), (150, 1, 0.3), (700, 2, 0.0), (2000, 3, 0.3)])
def test_sparse_rerank_matches_dense_on_candidate_pairs(n, seed, lam):
    f = clustered(n, 48, seed)
    k1, k2 = effective_k(20, 6, n)
    dense = rerank_distance(cosine_distance_matrix(f), k1=k1, k2=k2, lambda_=lam, normalize=False)
    dense = (dense + dense.T) / np.float32(2.0)
    rank, _ = knn(f, max(31, k1 + 1, k2), index="flat")
    i = np.repeat(np.arange(n), rank.shape[1])
    j = rank.reshape(-1)
    sparse_d = sparse_rerank_pairs(f, rank, i, j, k1=k1, k2=k2, lambda_=lam)
    assert np.abs(sparse_d - dense[i, j]).max() <= 1e-5
    if n <= 700:  # every pair as a candidate
        a, b = np.triu_indices(n, 1)
        assert np.abs(sparse_rerank_pairs(f, rank, a, b, k1=k1, k2=k2, lambda_=lam) - dense[a, b]).max() <= 1e-5


def test_approximate_indexes_find_most_neighbours():
    f = clustered(3000, 32, 4, spread=0.5)
    exact, _ = knn(f, 11, index="flat")
    for kind in ("ivf", "hnsw"):
        approx, _ = knn(f, 11, index=kind)
        assert (approx[:, 0] == np.arange(3000)).all()
        recall = np.mean([len(set(a) & set(b)) / 11 for a, b in zip(exact, approx, strict=True)])
        assert recall > 0.8, kind  # approximate: most, not all


# --------------------------------------------------------------------------------------
# sparse clustering = dense clustering
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "seed"), [(2, 0), (40, 1), (300, 2), (1500, 3)])
def test_sparse_clusters_equal_dense_with_all_pairs(n, seed):
    d = cosine_distance_matrix(clustered(n, 16, seed))
    rules = random_rules(n, seed, {"c0": {"c1": False}, "c2": {"c3": [1.0, 20.0]}})
    cannot = rules.dense()
    a, b = np.triu_indices(n, 1)
    dense = constrained_agglomerative(d, cannot, 0.4)
    sparse = sparse_agglomerative(n, a, b, d[a, b], rules, 0.4)
    np.testing.assert_array_equal(dense, sparse)
    for x, y in zip(*np.nonzero(cannot), strict=True):
        assert sparse[x] != sparse[y]


@pytest.mark.parametrize("lam", [1.0, 0.3])
def test_missing_pairs_are_valued_from_features(lam):
    n = 400
    f = clustered(n, 16, 5)
    d = cosine_distance_matrix(f)
    rules = random_rules(n, 5)
    cannot = rules.dense()
    nn = np.argsort(d, axis=1)[:, :8]
    i, j = np.repeat(np.arange(n), 8), nn.reshape(-1)
    filled = ((1 - lam) + lam * d.astype(np.float64))  # Jaccard distance 1 for missing pairs
    known = 0.5 * d[i, j]  # any values for the candidates
    filled[i, j] = filled[j, i] = known
    np.fill_diagonal(filled, 0.0)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    dense = constrained_agglomerative(filled, cannot, 0.4)
    np.testing.assert_array_equal(dense, sparse_agglomerative(n, i, j, known, rules, 0.4, features=f, lam=lam))
    constant = np.ones_like(d)
    constant[i, j] = constant[j, i] = known
    np.fill_diagonal(constant, 0.0)
    np.testing.assert_array_equal(constrained_agglomerative(constant, cannot, 0.4),
                                  sparse_agglomerative(n, i, j, known, rules, 0.4, missing=1.0))
    with pytest.raises(ValueError, match="missing"):
        sparse_agglomerative(n, i, j, known, rules, 0.4, missing=0.3)


@pytest.mark.parametrize("rerank_min", [0, 10**6])
def test_link_sparse_equals_dense_on_synthetic_tracklets(rerank_min):
    tracklets, truth = bench.synthetic_tracklets(800, dim=64, seed=1)
    cfg = LinkConfig(**MECHANICS, rerank_min_tracklets=rerank_min, topology={"cam00": {"cam01": False}},
                     max_gap_s=300.0)
    dense = link_tracklets_detailed(tracklets, cfg.model_copy(update={"method": "dense"}))
    # every pair a candidate: the same clusters
    full = link_tracklets_detailed(tracklets, cfg.model_copy(update={"method": "sparse", "candidates": 800}))
    assert dense.method == "dense" and full.method == "sparse"
    assert (dense.k1 > 0) == (rerank_min == 0) and full.k1 == dense.k1
    assert full.num_candidate_pairs == 800 * 799 // 2
    coo = full.distance.tocoo()
    assert np.abs(coo.data - dense.distance[coo.row, coo.col]).max() <= 1e-5
    assert same_partition(dense.global_ids, full.global_ids)
    # 30 nearest neighbours as candidates: the same distances on them, about the same clusters
    knn30 = link_tracklets_detailed(tracklets, cfg.model_copy(update={"method": "sparse", "index": "flat"}))
    coo = knn30.distance.tocoo()
    assert knn30.num_candidate_pairs < 800 * 31
    assert np.abs(coo.data - dense.distance[coo.row, coo.col]).max() <= 1e-5
    f_dense = bench.pairwise_prf(truth, dense.global_ids)[2]
    assert bench.pairwise_prf(truth, knn30.global_ids)[2] >= f_dense - 1.0
    auto = link_tracklets_detailed(tracklets, cfg.model_copy(update={"dense_max": 100}))
    assert auto.method == "sparse"


# --------------------------------------------------------------------------------------
# topology and time window
# --------------------------------------------------------------------------------------

TOPOLOGY = {"a": {"b": False}, "c": {"d": [5.0, 10.0]}}


def topology_scene(same_look: bool = False) -> list[Tracklet]:
    """Four pairs of tracklets; within a pair one look, so only the rules keep them apart."""
    e = [unit(np.eye(8)[k] + (1.0 if same_look else 0.0)) for k in range(4)]
    return [
        make_tracklet("a", 1, 0, 2, e[0]), make_tracklet("b", 1, 3, 5, e[0]),  # incompatible pair
        make_tracklet("c", 1, 20, 22, e[1]), make_tracklet("d", 1, 24, 26, e[1]),  # gap 2 s < 5: too soon
        make_tracklet("c", 2, 40, 42, e[2]), make_tracklet("d", 2, 49, 51, e[2]),  # gap 7 s: fine
        make_tracklet("c", 3, 60, 62, e[3]), make_tracklet("d", 3, 61, 63, e[3]),  # overlap: not with a window
    ]


def _link_incrementally(tracklets: list[Tracklet], cfg: LinkConfig, batch: int = 1) -> IncrementalLinker:
    linker = IncrementalLinker(cfg)
    order = sorted(tracklets, key=lambda t: t.end_time)
    for k in range(0, len(order), batch):
        linker.add(order[k : k + batch])
    linker.flush()  # the tracklets still waiting for linking.decision_delay_s
    for t in tracklets:
        t.global_id = linker.resolve(t.global_id)
    return linker


def _assert_rules_hold(tracklets: list[Tracklet], cfg: LinkConfig) -> None:
    rules = PairRules.from_config(tracklets, cfg)
    ids = np.array([t.global_id for t in tracklets])
    a, b = np.triu_indices(len(tracklets), 1)
    same = ids[a] == ids[b]
    assert not rules.cannot_link(a[same], b[same]).any()


@pytest.mark.parametrize("mode", ["dense", "sparse", "incremental"])
def test_topology_constraints_respected(mode):
    tracklets = topology_scene()
    cfg = LinkConfig(**MECHANICS, topology=TOPOLOGY, rerank=False, method="sparse" if mode == "sparse" else "dense")
    if mode == "incremental":
        _link_incrementally(tracklets, cfg)
    else:
        link_tracklets_detailed(tracklets, cfg)
    _assert_rules_hold(tracklets, cfg)
    gid = {(t.camera_id, t.local_id): t.global_id for t in tracklets}
    assert gid["a", 1] != gid["b", 1]
    assert gid["c", 1] != gid["d", 1]
    assert gid["c", 2] == gid["d", 2]
    assert gid["c", 3] != gid["d", 3]
    # without the topology every pair links
    free = topology_scene()
    link_tracklets_detailed(free, LinkConfig(**MECHANICS, rerank=False))
    assert len({t.global_id for t in free}) == 4
    # one look for all: whatever links, no rule is broken
    alike = topology_scene(same_look=True)
    if mode == "incremental":
        _link_incrementally(alike, cfg)
    else:
        link_tracklets_detailed(alike, cfg)
    _assert_rules_hold(alike, cfg)


@pytest.mark.parametrize("mode", ["dense", "sparse", "incremental"])
def test_time_window_respected(mode):
    f = unit(np.ones(8))
    tracklets = [make_tracklet("a", 1, 0, 2, f), make_tracklet("b", 1, 4, 6, f), make_tracklet("c", 1, 100, 102, f)]
    cfg = LinkConfig(**MECHANICS, window_s=10.0, rerank=False, method="sparse" if mode == "sparse" else "dense")
    if mode == "incremental":
        _link_incrementally(tracklets, cfg)
    else:
        link_tracklets_detailed(tracklets, cfg)
    ids = [t.global_id for t in tracklets]
    assert ids[0] == ids[1] and ids[2] != ids[0]


def test_random_scene_rules_hold_in_every_mode():
    tracklets, _ = bench.synthetic_tracklets(600, dim=32, seed=3, num_cameras=6)
    cams = sorted({t.camera_id for t in tracklets})
    topo = {cams[0]: {cams[1]: False, cams[2]: [1.0, 30.0]}, cams[3]: {cams[4]: [0.0, 5.0]}}
    for mode in ("dense", "sparse", "incremental"):
        cfg = LinkConfig(**MECHANICS, topology=topo, max_gap_s=200.0, method="sparse" if mode == "sparse" else "dense")
        if mode == "incremental":
            _link_incrementally(tracklets, cfg, batch=25)
        else:
            link_tracklets_detailed(tracklets, cfg)
        _assert_rules_hold(tracklets, cfg)


@pytest.mark.parametrize(
    ("topology", "match"),
    [
        ({"a": {"b": [5, 2]}}, r"linking.topology.a.b: min_s 5.0 exceeds max_s 2.0"),
        ({"a": {"b": [-1, 2]}}, r"linking.topology.a.b: transit times must be >= 0"),
        ({"a": {"a": False}}, r"linking.topology.a.a: a camera cannot be paired with itself"),
        ({"a": {"b": [1, 2, 3]}}, r"linking.topology.a.b: expected false, true or \[min_s, max_s\]"),
        ({"a": {"b": False}, "b": {"a": [1, 2]}}, r"linking.topology.b.a: contradicts"),
        ({"a": [1, 2]}, r"linking.topology.a"),
    ],
)
def test_topology_config_errors(topology, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, {"linking": {"topology": topology}})


def test_topology_config_accepts_unknown_cameras_and_windows():
    cfg = load_config(None, {"linking": {"topology": {"x": {"y": [0, 30], "z": False}}, "window_s": 60}})
    assert cfg.linking.topology == {"x": {"y": [0.0, 30.0], "z": False}}
    with pytest.raises(ConfigError, match=r"linking.window_s"):
        load_config(None, {"linking": {"window_s": -1}})
    with pytest.raises(ConfigError, match=r"linking.mode"):
        load_config(None, {"linking": {"mode": "online"}})


# --------------------------------------------------------------------------------------
# incremental linking
# --------------------------------------------------------------------------------------


def test_incremental_ids_are_stable_across_batches():
    tracklets, truth = bench.synthetic_tracklets(400, dim=512, seed=2)
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=0.0))
    order = sorted(tracklets, key=lambda t: t.end_time)
    seen: dict[int, int] = {}
    events: list[LinkEvent] = []
    for k in range(0, len(order), 17):
        events += linker.add(order[k : k + 17])
        for t in order[: k + 17]:
            assert seen.setdefault(id(t), t.global_id) == t.global_id  # never changed once emitted
    assigned = [e for e in events if e.kind == "identity_assigned"]
    assert len(assigned) == len(tracklets)
    assert sorted(e.global_id for e in assigned if e.new_identity) == list(range(1, linker._next_id))
    assert all(e.time == pytest.approx(t.end_time) for e, t in zip(assigned, order, strict=True))
    merged = [e for e in events if e.kind == "identity_merged"]
    assert linker.num_identities == linker._next_id - 1 - len(merged)
    assert all(e.merged_into < e.global_id and e.camera_id is None for e in merged)
    pred = np.array([linker.resolve(t.global_id) for t in tracklets])
    offline = link_tracklets_detailed(tracklets, LinkConfig(**MECHANICS, rerank=False)).global_ids  # the same distance
    assert bench.pairwise_prf(truth, pred)[2] >= bench.pairwise_prf(truth, offline)[2] - 1.0


def test_incremental_merge_is_reported_not_rewritten():
    rng = np.random.default_rng(0)
    base = unit(rng.normal(size=16))
    other = rng.normal(size=16)
    other = unit(other - (other @ base) * base)
    f1 = base
    f2 = unit(base + 1.52 * other)  # cosine distance to f1 a bit above the threshold
    assert 0.4 < 1 - float(f1 @ f2) < 0.5
    bridge = unit(f1 + f2 + 0.01 * other)
    a, b = make_tracklet("cam1", 1, 0, 2, f1), make_tracklet("cam2", 1, 1, 3, f2)
    c = make_tracklet("cam3", 1, 5, 7, bridge)
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=0.0))
    ev1 = linker.add([a, b])
    assert [(e.global_id, e.new_identity) for e in ev1] == [(1, True), (2, True)]
    ev2 = linker.add([c])
    t_end = float(c.end_time)
    assert ev2[0] == LinkEvent("identity_assigned", t_end, c.global_id, "cam3", 1, new_identity=False)
    assert ev2[1:] == [LinkEvent("identity_merged", t_end, 2, merged_into=1)]
    assert (a.global_id, b.global_id) == (1, 2)  # history is not rewritten
    assert linker.resolve(2) == 1 and linker.resolve(1) == 1 and linker.num_identities == 1
    with pytest.raises(KeyError):
        linker.resolve(99)


def test_incremental_re_add_and_featureless():
    f = unit(np.arange(1, 9))
    snap = make_tracklet("cam1", 4, 0, 2, f)
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=0.0))
    assert linker.add([snap])[0].new_identity
    full = make_tracklet("cam1", 4, 0, 9, unit(np.arange(1, 9) + 0.1))
    assert linker.add([full]) == [] and full.global_id == snap.global_id
    blind = make_tracklet("cam2", 1, 20, 25, None)
    (ev,) = linker.add([blind])
    assert ev.new_identity and blind.global_id == 2
    # the snapshot's interval was replaced: a same-camera tracklet overlapping 0–9 s cannot join
    overlap = make_tracklet("cam1", 5, 8, 12, f)
    linker.add([overlap])
    assert overlap.global_id != snap.global_id
    # a snapshot and the final track in one batch: one assignment, one id
    early, final = make_tracklet("cam9", 1, 30, 32, f), make_tracklet("cam9", 1, 30, 35, f)
    events = linker.add([final, early])
    assert [(e.camera_id, e.local_id) for e in events if e.kind == "identity_assigned"] == [("cam9", 1)]
    assert early.global_id == final.global_id is not None
    with pytest.raises(ValueError, match="disagree in length"):
        linker.add([make_tracklet("cam3", 1, 30, 31, unit(np.ones(4)))])


def test_incremental_still_open_snapshot_blocks_its_camera_and_transit():
    """A snapshot of a track still in view lasts, for the rules, until the track's final version comes."""
    f = unit(np.arange(1, 9))
    topo = {"a": {"c": [2.0, 10.0]}}
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=0.0, topology=topo, window_s=5.0))
    snap = make_tracklet("a", 1, 0, 3, f)
    assert linker.add([snap], still_open=True)[0].new_identity
    # same camera, after the snapshot's last box but while the track is still in view: a second person
    later = make_tracklet("a", 2, 5, 8, f)
    linker.add([later])
    assert later.global_id != snap.global_id
    # camera c is entered 2-10 s after leaving a; 4 s after the snapshot, a has not been left yet
    early_c = make_tracklet("c", 1, 7, 8, f)
    linker.add([early_c])
    assert early_c.global_id not in (snap.global_id, later.global_id)
    # still in view at 20 s: its identity stays in the gallery although window_s (5 s) has passed
    b = make_tracklet("b", 1, 19, 20, f)
    linker.add([b])
    assert b.global_id == snap.global_id
    # the final version ends at 21 s: the same id, and now c 3 s later may be the same person
    final = make_tracklet("a", 1, 0, 21, f)
    assert linker.add([final]) == [] and final.global_id == snap.global_id
    c = make_tracklet("c", 2, 24, 25, f)
    linker.add([c])
    assert c.global_id == snap.global_id


def test_incremental_decision_delay_defers_ids_and_flush_decides():
    tracklets, truth = bench.synthetic_tracklets(300, dim=512, seed=4)
    order = sorted(tracklets, key=lambda t: t.end_time)
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=30.0))
    events: list[LinkEvent] = []
    for k in range(0, len(order), 10):
        events += linker.add(order[k : k + 10])
        now = order[min(k + 10, len(order)) - 1].end_time
        for t in order[: k + 10]:  # decided exactly once its end is decision_delay_s behind the clock
            assert (t.global_id is not None) == (t.end_time <= now - 30.0)
    assert linker.pending > 0
    assert linker.flush(order[-1].end_time) == []  # the clock has not moved: nothing new is due
    events += linker.flush()
    assert linker.pending == 0 and all(t.global_id is not None for t in tracklets)
    assigned = [e for e in events if e.kind == "identity_assigned"]
    assert sorted((e.camera_id, e.local_id) for e in assigned) == sorted((t.camera_id, t.local_id)
                                                                          for t in tracklets)
    pred = np.array([linker.resolve(t.global_id) for t in tracklets])
    undelayed = [Tracklet(**{**t.__dict__, "global_id": None}) for t in tracklets]
    _link_incrementally(undelayed, LinkConfig(**MECHANICS, decision_delay_s=0.0), batch=10)
    f_now = bench.pairwise_prf(truth, np.array([t.global_id for t in undelayed]))[2]
    assert bench.pairwise_prf(truth, pred)[2] >= f_now - 1.0


def test_incremental_decision_delay_one_wait_equals_one_batch():
    """Everything decided at one flush = everything in one batch (= offline, cosine distance)."""
    tracklets, _ = bench.synthetic_tracklets(200, dim=512, seed=6)
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=1e6))
    for t in sorted(tracklets, key=lambda t: t.end_time):
        assert linker.add([t]) == []
    linker.flush()
    pred = np.array([linker.resolve(t.global_id) for t in tracklets])
    offline = link_tracklets_detailed(tracklets, LinkConfig(**MECHANICS, rerank=False, method="dense")).global_ids
    assert same_partition(pred, np.asarray(offline))


def test_incremental_decision_delay_re_add_and_featureless():
    f = unit(np.arange(1, 9))
    linker = IncrementalLinker(LinkConfig(**MECHANICS, decision_delay_s=10.0))
    snap = make_tracklet("cam1", 4, 0, 2, f)
    assert linker.add([snap]) == [] and snap.global_id is None
    blind = make_tracklet("cam2", 1, 1, 3, None)
    (ev,) = linker.add([blind])  # nothing to compare: decided at once
    assert ev.new_identity and blind.global_id is not None
    full = make_tracklet("cam1", 4, 0, 9, f)  # the same track again while pending: still one member
    assert linker.add([full]) == []
    (ev,) = linker.flush(19.5)
    assert (ev.camera_id, ev.local_id, ev.time) == ("cam1", 4, pytest.approx(9.0))
    assert snap.global_id == full.global_id == ev.global_id and linker.pending == 0


def test_runner_incremental_mode_resolves_ids_and_counts_merges():
    from pipeline.run_linking import _link

    tracklets, truth = bench.synthetic_tracklets(300, dim=512, seed=5)
    cfg = load_config(None, {"linking": {"mode": "incremental", "incremental_batch_s": 5.0}})
    summary = _link(tracklets, cfg, with_reid=True)
    assert summary["mode"] == "incremental" and summary["merges"] == len(summary["merge_events"])
    ids = {t.global_id for t in tracklets}
    assert summary["identities"] == len(ids)
    gone = {m["global_id"] for m in summary["merge_events"]}
    assert not ids & gone  # the tracks files get resolved ids
    offline = [Tracklet(**{**t.__dict__, "global_id": None}) for t in tracklets]
    off = _link(offline, load_config(None, {"linking": {"rerank": False}}), with_reid=True)
    assert off["merges"] == 0 and off["merge_events"] == []
    f_inc = bench.pairwise_prf(truth, np.array([t.global_id for t in tracklets]))[2]
    f_off = bench.pairwise_prf(truth, np.array([t.global_id for t in offline]))[2]
    assert f_inc >= f_off - 1.0


def test_trajectories_json_lists_merges_and_validates():
    import jsonschema

    from pipeline.export import trajectories, trajectories_schema
    from pipeline.results import CameraResult, RunResult
    from pipeline.runner import relink

    tracklets, _ = bench.synthetic_tracklets(300, dim=512, seed=5)
    cfg = load_config(None, {"linking": {"mode": "incremental", "incremental_batch_s": 5.0}})
    cams: dict[str, CameraResult] = {}
    for t in tracklets:
        cams.setdefault(t.camera_id, CameraResult(t.camera_id, t.camera_id, "video")).tracklets.append(t)
    run_result = RunResult(cameras=cams, stages={}, wall_s=1.0, detector="d", reid="r",
                           config=load_config(None).model_dump(by_alias=True))
    result = relink(run_result, cfg)
    assert all(t.global_id is None for t in run_result.tracklets)  # the input is left as it was
    assert result.config["linking"]["mode"] == "incremental" and run_result.config["linking"]["mode"] == "offline"
    assert result.merges, "the synthetic stream should need at least one merge"
    doc = trajectories(result)
    jsonschema.validate(doc, trajectories_schema())
    assert doc["merges"] == result.merges and doc["run"]["linking"]["merges"] == len(result.merges)
    assert {m["global_id"] for m in doc["merges"]}.isdisjoint(i["global_id"] for i in doc["identities"])


def test_benchmark_rows_for_every_mode():
    """The benchmark's cases run and score (incremental flushes the ids still within the decision delay)."""
    rows = {m: bench.run_case(400, m) for m in bench.MODES}
    assert all(r["n"] == 400 and r["f1"] > 90.0 and r["wall_s"] >= 0.0 for r in rows.values()), rows
    assert rows["incremental"]["delay_s"] == LinkConfig(**MECHANICS).decision_delay_s > 0
    assert rows["dense"]["delay_s"] is None
    at_once = bench.run_case(400, "incremental", delay_s=0.0)
    assert at_once["delay_s"] == 0.0 and at_once["true_identities"] == rows["incremental"]["true_identities"]
