"""Cross-camera linking of per-camera tracklets into global identities.

Pipeline: cosine distances between tracklet features → optional k-reciprocal
re-ranking (Zhong et al., CVPR 2017; :mod:`reid.rerank`) → agglomerative
clustering with average linkage (UPGMA; Sokal & Michener 1958) under
cannot-link constraints (constrained agglomerative clustering, cf. Davidson &
Ravi, "Agglomerative hierarchical clustering with constraints", SDM 2005),
stopped at a distance threshold, long tracklets settled first
(``linking.merge_order``, :mod:`trackers.linking.dense_cluster`). Two methods: dense N×N matrices, or for
10⁵ tracklets and more a sparse kNN candidate graph (faiss;
:mod:`reid.rerank_sparse`, :mod:`trackers.linking.sparse_cluster`). Online linking
with stable ids is :mod:`trackers.linking.incremental`.

Cannot-link constraints encode what appearance cannot: two tracklets of one
camera that coexist in time are two people, (optionally) tracklets further
apart in time than ``max_gap_s`` / ``window_s`` are not linked, and camera
pairs of ``linking.topology`` are incompatible or need a transit time in a
window (:mod:`trackers.linking.topology`). Timestamps of all cameras are
assumed to share one clock (seconds from the start of each stream, streams
started together).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from pipeline.config import LinkConfig
from pipeline.types import Tracklet
from pipeline.vectors import l2_normalize
from reid.rerank import effective_k, rerank_distance
from reid.rerank_sparse import knn, pair_cosine_distance, sorted_unique, sparse_rerank_pairs
from trackers.linking.calibrate import ThresholdChoice, choose_threshold
from trackers.linking.camera_bias import remove_camera_bias
from trackers.linking.dense_cluster import constrained_agglomerative
from trackers.linking.fragments import FragmentGrant, fragment_pairs
from trackers.linking.reentry import reentry_pairs
from trackers.linking.sparse_cluster import sparse_agglomerative
from trackers.linking.topology import PairRules

__all__ = [
    "LinkResult",
    "cannot_link_matrix",
    "constrained_agglomerative",
    "count_same_camera_links",
    "cosine_distance_matrix",
    "link_tracklets",
    "link_tracklets_detailed",
]


def cannot_link_matrix(tracklets: list[Tracklet], max_gap_s: float | None = None) -> np.ndarray:
    """Pairs of tracklets that must not share a global id.

    ``(i, j)`` cannot link when

    * both are from the same camera and their time intervals
      ``[start_time, end_time]`` overlap (closed intervals: sharing a frame
      counts; a person seen twice in one frame is two people). Same-camera
      tracklets that do not overlap may link (a person re-entering the view);
    * ``max_gap_s`` is set and the gap between their intervals (0 when they
      overlap) exceeds it, whatever the cameras.

    Args:
        tracklets: N tracklets (times in seconds, one clock for all cameras).
        max_gap_s: largest allowed time gap in seconds between linked tracklets,
            or ``None`` for no limit.

    Returns:
        N×N symmetric ``bool`` matrix, ``False`` on the diagonal.

    Raises:
        ValueError: ``max_gap_s`` is negative, or a tracklet has no timestamps.
    """
    if max_gap_s is not None and max_gap_s < 0:
        raise ValueError(f"max_gap_s must be >= 0 or None, got {max_gap_s}")
    return PairRules.from_tracklets(tracklets, max_gap_s).dense()


def cosine_distance_matrix(features: np.ndarray) -> np.ndarray:
    """Cosine distance ``1 - cos`` between all rows.

    Args:
        features: N×D features (any float dtype); rows are L2-normalised here
            (a zero row is left as zeros and gets distance 1 to everything).

    Returns:
        N×N ``float32`` in [0, 2], zero diagonal, exactly symmetric.
    """
    f = l2_normalize(features, dtype=np.float64)
    dist = np.clip(1.0 - f @ f.T, 0.0, 2.0)
    dist = (dist + dist.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    return dist.astype(np.float32)


@dataclass
class LinkResult:
    """Outcome of :func:`link_tracklets_detailed`.

    Attributes:
        global_ids: N ``int64`` global ids ``1..K`` in the tracklets' order,
            numbered by first appearance (earliest ``start_time`` first; ties by
            camera id, then local id).
        distance: the distances the clustering used (re-ranked when re-ranking
            ran, else cosine distance). Dense method: N×N ``float32``, ``NaN`` in
            rows/columns of tracklets without a usable feature. Sparse
            method: N×N ``scipy.sparse.csr_matrix`` (``float32``) holding only the
            candidate pairs (both triangles). ``None`` when linking is disabled.
        cannot_link: N×N ``bool`` constraints (same camera overlap, ``max_gap_s``,
            ``window_s``, topology; see :class:`trackers.linking.topology.PairRules`) for the dense
            method; ``None`` for the sparse method (checked on pairs) or when disabled.
        num_ids: K, the number of global identities.
        num_linked: tracklets sharing their global id with at least one other.
        num_without_feature: tracklets that got a singleton id for lack of a feature.
        k1: k1 used for re-ranking after :func:`reid.rerank.effective_k` (0 when not re-ranked).
        k2: k2 used for re-ranking (0 when not re-ranked).
        method: ``"dense"``, ``"sparse"`` or ``"none"`` (linking disabled or nothing to link).
        num_candidate_pairs: pairs that carried a distance (sparse: candidate
            pairs within the window; dense: all pairs of featured tracklets).
        threshold: the clustering threshold used and how it was found
            (:class:`trackers.linking.calibrate.ThresholdChoice`); ``None`` when nothing was clustered.
        same_camera_links: tracklets that joined an earlier tracklet of their own camera
            (sum over identities and cameras of tracklets − 1).
        fragments: with ``same_camera: fragments``, the granted pairs and the calibrated
            same-camera threshold (:class:`trackers.linking.fragments.FragmentGrant`), else ``None``.
    """

    global_ids: np.ndarray
    distance: np.ndarray | sparse.csr_matrix | None
    cannot_link: np.ndarray | None
    num_ids: int
    num_linked: int
    num_without_feature: int
    k1: int = 0
    k2: int = 0
    method: str = "none"
    num_candidate_pairs: int = 0
    threshold: ThresholdChoice | None = None
    same_camera_links: int = 0
    fragments: FragmentGrant | None = None


def _usable_features(tracklets: list[Tracklet]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of tracklets with a finite, non-zero feature and their M×D ``float64`` features."""
    have = [k for k, t in enumerate(tracklets) if t.feature is not None and np.size(t.feature)]
    if len({np.size(tracklets[k].feature) for k in have}) == 1:  # the usual case, vectorised
        stacked = np.stack([np.asarray(tracklets[k].feature).reshape(-1) for k in have]).astype(np.float64)
        ok = np.isfinite(stacked).all(axis=1) & stacked.any(axis=1)
        if ok.any():
            return np.asarray(have, dtype=np.int64)[ok], stacked[ok]
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float64)
    keep: list[int] = []
    feats: list[np.ndarray] = []
    dim: int | None = None
    for idx, t in enumerate(tracklets):
        if t.feature is None:
            continue
        f = np.asarray(t.feature, dtype=np.float64).reshape(-1)
        if f.size == 0 or not np.all(np.isfinite(f)) or not np.any(f):
            continue
        if dim is None:
            dim = f.size
        elif f.size != dim:
            raise ValueError(
                f"tracklet features disagree in length: {dim} vs {f.size} "
                f"(camera {t.camera_id!r}, local id {t.local_id})"
            )
        keep.append(idx)
        feats.append(f)
    if not feats:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float64)
    return np.asarray(keep, dtype=np.int64), np.stack(feats)


def _number_by_first_appearance(tracklets: list[Tracklet], labels: np.ndarray) -> np.ndarray:
    """Map cluster labels (N ints) to ids 1..K ordered by each cluster's earliest tracklet."""
    first: dict[int, tuple[float, str, int]] = {}
    for t, lab in zip(tracklets, labels.tolist(), strict=True):
        key = (t.start_time, str(t.camera_id), int(t.local_id))
        if lab not in first or key < first[lab]:
            first[lab] = key
    ranked = sorted(first, key=lambda lab: first[lab])
    new_id = {lab: k + 1 for k, lab in enumerate(ranked)}
    return np.array([new_id[lab] for lab in labels.tolist()], dtype=np.int64)


def _use_sparse(cfg: LinkConfig, m: int) -> bool:
    return cfg.method == "sparse" or (cfg.method == "auto" and m > cfg.dense_max)


def _merge_weights(tracklets: list[Tracklet], keep: np.ndarray, cfg: LinkConfig) -> np.ndarray | None:
    """Boxes of each featured tracklet (M ``float64``) for ``merge_order: coverage``, else ``None``."""
    if cfg.merge_order != "coverage":
        return None
    return np.array([max(1, len(tracklets[k])) for k in keep.tolist()], dtype=np.float64)


def _link_dense(
    feats: np.ndarray, rules: PairRules, cfg: LinkConfig, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, ThresholdChoice, int, int]:
    """Dense path on M featured tracklets (``weights``: coverage-first merge weights or ``None``): labels,
    M×M distance, threshold used, k1, k2."""
    m = len(feats)
    k1 = k2 = 0
    dist = cosine_distance_matrix(feats)
    if cfg.rerank and m >= max(2, cfg.rerank_min_tracklets):
        k1, k2 = effective_k(cfg.k1, cfg.k2, m)
        dist = rerank_distance(dist, k1=k1, k2=k2, lambda_=cfg.lambda_, normalize=False)
        dist = (dist + dist.T) / np.float32(2.0)
    i, j = np.triu_indices(m, 1)
    neg = rules.known_negative(i, j)
    choice = choose_threshold(cfg, dist[i[neg], j[neg]], int(neg.sum()))
    labels = constrained_agglomerative(dist, rules.dense(), choice.value, weights=weights)
    return labels, dist, choice, k1, k2


def _link_sparse(
    feats: np.ndarray, rules: PairRules, cfg: LinkConfig, weights: np.ndarray | None
) -> tuple[np.ndarray, sparse.csr_matrix, ThresholdChoice, int, int]:
    """Sparse path on M featured tracklets (``weights`` as :func:`_link_dense`): labels, M×M sparse candidate
    distances, threshold used, k1, k2."""
    m = len(feats)
    k1 = k2 = 0
    rerank = cfg.rerank and m >= max(2, cfg.rerank_min_tracklets)
    if rerank:
        k1, k2 = effective_k(cfg.k1, cfg.k2, m)
    exact = cfg.index == "flat" or (cfg.index == "auto" and m <= cfg.exact_max)
    f = l2_normalize(feats if exact else feats.astype(np.float32))  # float32: ~4x faster gathers at scale
    rank, _ = knn(f, max(cfg.candidates + 1, k1 + 1, k2), cfg.index, cfg.exact_max, cfg.threads)
    cand = rank[:, 1 : cfg.candidates + 1]
    rows = np.broadcast_to(np.arange(m)[:, None], cand.shape)
    ok = cand >= 0
    keys = sorted_unique(np.minimum(rows[ok], cand[ok]) * m + np.maximum(rows[ok], cand[ok]))
    i, j = keys // m, keys % m
    if rerank:
        d = sparse_rerank_pairs(f, rank, i, j, k1=k1, k2=k2, lambda_=cfg.lambda_)
    else:
        d = pair_cosine_distance(f, i, j)
    # the candidates are each tracklet's nearest neighbours, so they hold every negative that could fall low
    choice = choose_threshold(cfg, d[rules.known_negative(i, j)], rules.count_known_negatives())
    lam = cfg.lambda_ if rerank else 1.0
    labels = sparse_agglomerative(m, i, j, d, rules, choice.value, features=f, lam=lam, weights=weights)
    dist = sparse.csr_matrix((np.concatenate([d, d]), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(m, m))
    return labels, dist, choice, k1, k2


def _same_camera_grants(
    tracklets: list[Tracklet], keep: np.ndarray, feats: np.ndarray, cfg: LinkConfig,
    frame_sizes: dict[str, tuple[float, float]] | None,
) -> tuple[tuple[np.ndarray, np.ndarray] | None, tuple[np.ndarray, np.ndarray] | None, FragmentGrant | None]:
    """Same-camera pairs granted by re-entry or fragment evidence: ``(pairs as indices into tracklets,
    the same as indices into keep, the fragment grant)``; ``None`` s under ``never`` / ``any``."""
    if cfg.same_camera == "fragments":
        frag = fragment_pairs([tracklets[k] for k in keep.tolist()], feats, cfg)
        return (keep[frag.i], keep[frag.j]), (frag.i, frag.j), frag
    if cfg.same_camera != "reentry":
        return None, None, None
    granted = reentry_pairs(tracklets, cfg, frame_sizes)
    pos = np.full(len(tracklets), -1, dtype=np.int64)  # only tracklets with features qualify: both ends in keep
    pos[keep] = np.arange(len(keep))
    return granted, (pos[granted[0]], pos[granted[1]]), None


def count_same_camera_links(tracklets: list[Tracklet]) -> int:
    """Tracklets that share their ``global_id`` with an earlier tracklet of their own camera
    (N minus the number of distinct ``(global_id, camera_id)`` pairs)."""
    return len(tracklets) - len({(int(t.global_id or 0), t.camera_id) for t in tracklets})


def _pair_rules(tracklets: list[Tracklet], cfg: LinkConfig, reentry: tuple[np.ndarray, np.ndarray] | None
                ) -> PairRules:
    """:class:`PairRules` of ``tracklets`` with the re-entry pairs ``(i, j)`` (indices into them) granted."""
    rules = PairRules.from_config(tracklets, cfg)
    if reentry is not None:
        rules.allow_same_camera(*reentry)
    return rules


def link_tracklets_detailed(
    tracklets: list[Tracklet], cfg: LinkConfig, frame_sizes: dict[str, tuple[float, float]] | None = None
) -> LinkResult:
    """Link tracklets of all cameras into global identities, all at once (offline); see :func:`link_tracklets`.

    Steps: tracklets with a usable feature (not ``None``, finite, non-zero)
    get cosine distances ``1 - cos`` (features re-normalised; with ``cfg.camera_bias``
    after each camera's mean feature is subtracted,
    :func:`trackers.linking.camera_bias.remove_camera_bias`); with
    ``cfg.rerank`` and at least ``cfg.rerank_min_tracklets`` featured tracklets
    (with few, the Jaccard term saturates and re-ranking lowered cross-camera
    IDF1 on the PETS09/TUD multi-camera scenes) these are re-ranked
    (k-reciprocal, Zhong et al. CVPR 2017) using ``effective_k(cfg.k1, cfg.k2, M)``
    over the M featured tracklets, ``lambda_ = cfg.lambda_`` and no row-max
    normalisation (cosine distance is on a fixed scale already; the released
    code's normalisation would make every distance depend on each tracklet's
    farthest one, so one threshold could not serve all scenes). Then
    average-linkage agglomerative clustering under the cannot-link constraints
    of :class:`trackers.linking.topology.PairRules` (same camera overlapping in time,
    ``cfg.max_gap_s``, ``cfg.window_s``, ``cfg.topology``) stopped at
    ``cfg.threshold`` (``"auto"``: calibrated on the run's known negatives,
    :func:`trackers.linking.calibrate.choose_threshold`), merging closest pairs first or,
    with ``cfg.merge_order: coverage``, the pairs of largest
    ``(threshold - d) · sqrt(boxes_a · boxes_b)`` first (:mod:`trackers.linking.dense_cluster`). Same-camera
    pairs follow
    ``cfg.same_camera`` (``"never"``, ``"fragments"``: :mod:`trackers.linking.fragments`, ``"reentry"``:
    :mod:`trackers.linking.reentry`, ``"any"``).
    Tracklets without a usable feature stay singletons.

    Two methods, chosen by ``cfg.method`` (``"auto"``: dense up to
    ``cfg.dense_max`` featured tracklets):

    * dense: N×N matrices, :func:`reid.rerank.rerank_distance` and
      :func:`constrained_agglomerative` (``O(N²)`` memory);
    * sparse: ``cfg.candidates`` nearest neighbours per tracklet from faiss
      (:func:`reid.rerank_sparse.knn`, index ``cfg.index``), re-ranked distances
      on those candidate pairs only (:func:`reid.rerank_sparse.sparse_rerank_pairs`)
      and :func:`trackers.linking.sparse_cluster.sparse_agglomerative`, where a pair
      that is not a candidate is valued with Jaccard distance 1
      (``(1 - λ) + λ · cosine``; plain cosine without re-ranking) and clusters
      merge only along candidate edges. With an exact index the candidate
      distances equal the dense ones, and so do the clusters unless a
      non-candidate pair shares a k-reciprocal neighbourhood inside a would-be cluster.

    Sets ``global_id`` on every tracklet (in place).

    Args:
        tracklets: N tracklets of any cameras (times in seconds, one clock).
        cfg: linking settings.
        frame_sizes: camera id → frame ``(width, height)`` in pixels, for the re-entry border
            test (estimated from the boxes for cameras not given).

    Returns:
        A :class:`LinkResult`.

    Raises:
        ValueError: usable features differ in length, or a tracklet has no timestamps.
    """
    n = len(tracklets)
    if not cfg.enabled or n == 0:
        labels = np.arange(n, dtype=np.int64)
        ids = _number_by_first_appearance(tracklets, labels)
        for t, gid in zip(tracklets, ids.tolist(), strict=True):
            t.global_id = gid
        return LinkResult(ids, None, None, n, 0, sum(t.feature is None for t in tracklets))

    keep, feats = _usable_features(tracklets)
    m = len(keep)
    if cfg.camera_bias and m:
        feats = remove_camera_bias(feats, [tracklets[k].camera_id for k in keep.tolist()],
                                   cfg.camera_bias_min_tracklets)
    labels = np.arange(n, dtype=np.int64) + n  # singletons unless clustered below
    k1 = k2 = 0
    method = "sparse" if _use_sparse(cfg, m) else "dense"
    distance: np.ndarray | sparse.csr_matrix
    cannot: np.ndarray | None = None
    choice: ThresholdChoice | None = None
    granted, sub, frag = _same_camera_grants(tracklets, keep, feats, cfg, frame_sizes)
    rules = _pair_rules([tracklets[k] for k in keep.tolist()], cfg, sub)
    weights = _merge_weights(tracklets, keep, cfg)
    if method == "dense":
        cannot = _pair_rules(tracklets, cfg, granted).dense()
        distance = np.full((n, n), np.nan, dtype=np.float32)
        if m:
            labels[keep], dist, choice, k1, k2 = _link_dense(feats, rules, cfg, weights)
            distance[np.ix_(keep, keep)] = dist
        pairs = m * (m - 1) // 2
    else:
        sub_labels, dist, choice, k1, k2 = _link_sparse(feats, rules, cfg, weights)
        labels[keep] = sub_labels
        coo = dist.tocoo()
        distance = sparse.csr_matrix((coo.data, (keep[coo.row], keep[coo.col])), shape=(n, n))
        pairs = dist.nnz // 2
    ids = _number_by_first_appearance(tracklets, labels)
    for t, gid in zip(tracklets, ids.tolist(), strict=True):
        t.global_id = gid
    counts = np.bincount(ids)
    return LinkResult(
        global_ids=ids,
        distance=distance,
        cannot_link=cannot,
        num_ids=int(np.count_nonzero(counts)),
        num_linked=int((counts[ids] > 1).sum()),
        num_without_feature=n - m,
        k1=k1,
        k2=k2,
        method=method,
        num_candidate_pairs=pairs,
        threshold=choice,
        same_camera_links=count_same_camera_links(tracklets),
        fragments=frag,
    )


def link_tracklets(tracklets: list[Tracklet], cfg: LinkConfig) -> np.ndarray:
    """Assign every tracklet exactly one global id (cross-camera linking).

    Cosine distances of tracklet features, k-reciprocal re-ranking when
    ``cfg.rerank`` (Zhong et al., CVPR 2017, with k1/k2 capped by
    :func:`reid.rerank.effective_k`), then average-linkage agglomerative
    clustering under cannot-link constraints (same camera and overlapping in
    time; optionally a time gap above ``cfg.max_gap_s`` seconds) stopped at
    ``cfg.threshold``. Tracklets without a feature, and all tracklets when
    ``cfg.enabled`` is False, get their own id. Use
    :func:`link_tracklets_detailed` for the distance matrix and counts.

    Args:
        tracklets: N tracklets; their ``global_id`` is set in place.
        cfg: linking settings.

    Returns:
        N ``int64`` global ids ``1..K``, numbered by first appearance time.

    Raises:
        ValueError: usable features differ in length, or a tracklet has no timestamps.
    """
    return link_tracklets_detailed(tracklets, cfg).global_ids
