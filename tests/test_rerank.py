"""k-reciprocal re-ranking (reid/rerank.py) against hand-checked sets and a brute-force transcription."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import sparse

from reid.rerank import (
    _expanded_sets,
    _initial_rank,
    _reciprocal,
    _sum_of_minima,
    effective_k,
    rerank_distance,
    rerank_features,
)

# --------------------------------------------------------------------------------------
# brute-force reference: a literal, loop-based transcription of the paper's equations
# (Zhong et al., CVPR 2017, eq. 4-12) with the released code's conventions, written
# independently of the vectorised implementation.
# --------------------------------------------------------------------------------------


def reference_rerank(dist, k1, k2, lam, num_query=None, normalize=True):
    n = len(dist)
    d = [[0.0 if p == g else float(dist[p][g]) for g in range(n)] for p in range(n)]
    if normalize:
        for p in range(n):
            m = max(d[p])
            if m > 0:
                d[p] = [x / m for x in d[p]]

    order = [sorted(range(n), key=lambda g, p=p: (g != p, d[p][g], g)) for p in range(n)]

    def neighbours(p, k):  # N(p, k): p and its k nearest items
        return set(order[p][: k + 1])

    def reciprocal(p, k):  # R(p, k), eq. 4
        return {g for g in neighbours(p, k) if p in neighbours(g, k)}

    k_half = round(k1 / 2)
    v = []
    for p in range(n):
        r_p = reciprocal(p, k1)
        r_star = set(r_p)
        for q in r_p:  # eq. 6
            r_q = reciprocal(q, k_half)
            if len(r_p & r_q) >= Fraction(2, 3) * len(r_q):
                r_star |= r_q
        w = {g: math.exp(-d[p][g]) for g in r_star}  # eq. 7
        total = sum(w.values())
        v.append([w.get(g, 0.0) / total for g in range(n)])

    if k2 > 1:  # eq. 9, local query expansion over the k2 nearest (self included)
        v = [[sum(v[g][j] for g in order[p][:k2]) / len(order[p][:k2]) for j in range(n)] for p in range(n)]

    queries = range(n) if num_query is None else range(num_query)
    gallery = range(n) if num_query is None else range(num_query, n)
    out = np.zeros((len(queries), len(gallery)))
    for a, p in enumerate(queries):
        for b, g in enumerate(gallery):
            s_min = sum(min(v[p][j], v[g][j]) for j in range(n))
            s_max = sum(max(v[p][j], v[g][j]) for j in range(n))
            d_j = 1.0 - s_min / s_max  # eq. 10-11
            out[a, b] = (1 - lam) * d_j + lam * d[p][g]  # eq. 12
    return out


# --------------------------------------------------------------------------------------
# hand-checked case: six points on a line
# --------------------------------------------------------------------------------------

X = np.array([0.0, 1.0, 10.0, 16.0, 24.0, 28.0])
# k1 = 4, k½ = round(2) = 2
#   N(p,4): 0:{0,1,2,3,4} 1:{1,0,2,3,4} 2:{2,3,1,0,4} 3:{3,2,4,5,1} 4:{4,5,3,2,1} 5:{5,4,3,2,1}
#   R(p,4): 0:{0,1,2} 1:{0,1,2,3,4} 2:{0,1,2,3,4} 3:{1,2,3,4,5} 4:{1,2,3,4,5} 5:{3,4,5}
#   N(p,2): 0:{0,1,2} 1:{1,0,2} 2:{2,3,1} 3:{3,2,4} 4:{4,5,3} 5:{5,4,3}
#   R(p,2): 0:{0,1} 1:{0,1,2} 2:{1,2,3} 3:{2,3,4} 4:{3,4,5} 5:{4,5}
#   R*(0): q=2 has R(2,2)={1,2,3}, |{0,1,2} ∩ {1,2,3}| = 2 ≥ ⅔·3 → add 3 (the code's '>' would not)
#   R*(1), R*(2): q=4 adds 5;  R*(3), R*(4): q=1 adds 0;  R*(5): q=3 adds 2
R4 = [{0, 1, 2}, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4}, {1, 2, 3, 4, 5}, {1, 2, 3, 4, 5}, {3, 4, 5}]
R2 = [{0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5}]
RSTAR = [{0, 1, 2, 3}, set(range(6)), set(range(6)), set(range(6)), set(range(6)), {2, 3, 4, 5}]
NEAREST = [1, 0, 3, 2, 5, 4]  # each point's nearest other point (for k2 = 2)


def _line_dist() -> np.ndarray:
    return np.abs(X[:, None] - X[None, :]) / 10.0  # distances 0 … 2.8


def _hand_final(k2: int, lam: float) -> np.ndarray:
    d = _line_dist()
    v = np.zeros((6, 6))
    for p in range(6):
        for g in RSTAR[p]:
            v[p, g] = np.exp(-d[p, g])
        v[p] /= v[p].sum()
    if k2 == 2:
        v = np.stack([(v[p] + v[NEAREST[p]]) / 2 for p in range(6)])
    jac = np.zeros((6, 6))
    for p in range(6):
        for g in range(6):
            jac[p, g] = 1 - np.minimum(v[p], v[g]).sum() / np.maximum(v[p], v[g]).sum()
    return (1 - lam) * jac + lam * d


def _as_sets(member: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(row).tolist()) for row in member]


def test_hand_checked_sets():
    rank = _initial_rank(_line_dist().astype(np.float32), 6)
    assert _as_sets(_reciprocal(rank, 4)[2]) == R4
    assert _as_sets(_reciprocal(rank, 2)[2]) == R2
    assert _as_sets(_expanded_sets(rank, 4)) == RSTAR


@pytest.mark.parametrize("k2", [1, 2])
def test_hand_checked_distance(k2):
    got = rerank_distance(_line_dist(), k1=4, k2=k2, lambda_=0.3, normalize=False)
    np.testing.assert_allclose(got, _hand_final(k2, 0.3), atol=1e-6)
    # and through the query/gallery path: first two points are queries
    got_qg = rerank_distance(_line_dist(), k1=4, k2=k2, lambda_=0.3, num_query=2, normalize=False)
    np.testing.assert_allclose(got_qg, _hand_final(k2, 0.3)[:2, 2:], atol=1e-6)


def test_hand_checked_two_clusters_saturate():
    # two clusters of three far apart, k1 = 2: every R* is its own cluster,
    # so across clusters the Jaccard distance is exactly 1
    x = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.2])
    d = np.abs(x[:, None] - x[None, :])
    got = rerank_distance(d, k1=2, k2=1, lambda_=0.0, normalize=False)
    np.testing.assert_allclose(got[:3, 3:], 1.0, atol=1e-7)
    assert got[:3, :3].max() < 0.2 and got[3:, 3:].max() < 0.2


def test_reference_agrees_on_hand_case():
    np.testing.assert_allclose(
        reference_rerank(_line_dist(), 4, 2, 0.3, normalize=False), _hand_final(2, 0.3), atol=1e-12
    )


# --------------------------------------------------------------------------------------
# random data against the brute-force reference
# --------------------------------------------------------------------------------------


def _random_features(rng, n, dim=8, ids=None):
    ids = ids or max(2, n // 5)
    centres = rng.normal(size=(ids, dim))
    x = centres[rng.integers(0, ids, size=n)] + 0.6 * rng.normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


CASES = [
    (10, 3, 2, 0.3),
    (17, 5, 3, 0.3),
    (25, 8, 4, 0.5),
    (33, 1, 1, 0.3),
    (40, 20, 6, 0.3),
    (60, 12, 6, 0.1),
    (60, 7, 1, 0.0),
]


@pytest.mark.parametrize("n,k1,k2,lam", CASES)
def test_all_vs_all_matches_reference(n, k1, k2, lam):
    rng = np.random.default_rng(n * 100 + k1)
    f = _random_features(rng, n)
    sq = np.clip(2.0 - 2.0 * f @ f.T, 0, None)  # squared Euclidean, released-code convention
    got = rerank_distance(sq, k1=k1, k2=k2, lambda_=lam)
    ref = reference_rerank(sq, k1, k2, lam)
    assert got.shape == (n, n) and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-5


@pytest.mark.parametrize("n,k1,k2,lam", CASES)
def test_query_gallery_matches_reference(n, k1, k2, lam):
    rng = np.random.default_rng(n * 7 + k2)
    f = _random_features(rng, n)
    nq = max(1, n // 3)
    got = rerank_features(f[:nq], f[nq:], k1=k1, k2=k2, lambda_=lam)
    sq = np.clip(2.0 - 2.0 * f @ f.T, 0, None)
    ref = reference_rerank(sq, k1, k2, lam, num_query=nq)
    assert got.shape == (nq, n - nq)
    assert np.abs(got - ref).max() <= 1e-5


@pytest.mark.parametrize("n,k1,k2", [(20, 4, 3), (45, 9, 5)])
def test_unnormalised_cosine_matches_reference(n, k1, k2):
    rng = np.random.default_rng(n)
    f = _random_features(rng, n)
    cos = np.clip(1.0 - f @ f.T, 0, 2)
    got = rerank_distance(cos, k1=k1, k2=k2, lambda_=0.3, normalize=False)
    ref = reference_rerank(cos, k1, k2, 0.3, normalize=False)
    assert np.abs(got - ref).max() <= 1e-5
    np.testing.assert_allclose(got, got.T, atol=1e-6)  # symmetric without row normalisation


# --------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------


def test_lambda_one_gives_original_distance():
    rng = np.random.default_rng(3)
    f = _random_features(rng, 30)
    cos = np.clip(1.0 - f @ f.T, 0, 2)
    np.fill_diagonal(cos, 0)
    np.testing.assert_allclose(rerank_distance(cos, 5, 3, lambda_=1.0, normalize=False), cos, atol=1e-6)
    normed = cos / cos.max(axis=1, keepdims=True)
    np.testing.assert_allclose(rerank_distance(cos, 5, 3, lambda_=1.0), normed, atol=1e-6)
    np.testing.assert_allclose(rerank_distance(cos, 5, 3, lambda_=1.0, num_query=10), normed[:10, 10:], atol=1e-6)


def test_query_gallery_is_block_of_all_vs_all():
    rng = np.random.default_rng(4)
    f = _random_features(rng, 50)
    sq = np.clip(2.0 - 2.0 * f @ f.T, 0, None)
    full = rerank_distance(sq, 10, 4, 0.3)
    block = rerank_distance(sq, 10, 4, 0.3, num_query=15)
    np.testing.assert_allclose(block, full[:15, 15:], atol=1e-6)
    np.testing.assert_allclose(np.diag(full), 0.0)


def test_shapes_and_edge_sizes():
    rng = np.random.default_rng(5)
    f = _random_features(rng, 12)
    assert rerank_features(f).shape == (12, 12)
    assert rerank_features(f[:5], f[5:]).shape == (5, 7)
    sq = np.clip(2.0 - 2.0 * f @ f.T, 0, None)
    assert rerank_distance(sq, num_query=0).shape == (0, 12)
    assert rerank_distance(sq, num_query=12).shape == (12, 0)
    assert rerank_distance(np.zeros((0, 0))).shape == (0, 0)
    assert rerank_distance(np.zeros((1, 1))).tolist() == [[0.0]]
    # identical items: no division by zero, distance 0
    assert np.all(rerank_distance(np.zeros((4, 4)), 20, 6) == 0)
    # k1 beyond N uses every item
    assert np.all(np.isfinite(rerank_distance(sq, k1=100, k2=50)))


def test_partial_rank_equals_full_stable_sort_with_ties():
    rng = np.random.default_rng(6)
    d = rng.integers(0, 4, size=(40, 40)).astype(np.float32)  # many ties, including zeros off the diagonal
    key = d.copy()
    np.fill_diagonal(key, -np.inf)
    full = np.argsort(key, axis=1, kind="stable")
    for m in (1, 2, 7, 21, 39, 40, 60):
        np.testing.assert_array_equal(_initial_rank(d, m), full[:, : min(m, 40)])
        assert np.all(_initial_rank(d, m)[:, 0] == np.arange(40))


def test_sum_of_minima_matches_dense_in_small_chunks():
    rng = np.random.default_rng(7)
    a = rng.random((9, 30)).astype(np.float32) * (rng.random((9, 30)) < 0.3)
    b = rng.random((13, 30)).astype(np.float32) * (rng.random((13, 30)) < 0.3)
    dense = np.minimum(a[:, None, :], b[None, :, :]).sum(axis=2)
    for chunk in (1, 5, 64, 1 << 22):
        got = _sum_of_minima(sparse.csr_matrix(a), sparse.csr_matrix(b), chunk=chunk)
        np.testing.assert_allclose(got, dense, atol=1e-6)
    assert _sum_of_minima(sparse.csr_matrix((0, 30)), sparse.csr_matrix(b)).shape == (0, 13)


def test_invalid_inputs_raise():
    d = np.zeros((3, 3))
    with pytest.raises(ValueError, match="square"):
        rerank_distance(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="k1"):
        rerank_distance(d, k1=0)
    with pytest.raises(ValueError, match="lambda_"):
        rerank_distance(d, lambda_=1.5)
    with pytest.raises(ValueError, match="num_query"):
        rerank_distance(d, num_query=4)
    with pytest.raises(ValueError, match="NaN"):
        rerank_distance(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="negative"):
        rerank_distance(-np.ones((3, 3)))
    with pytest.raises(ValueError, match="feats_g"):
        rerank_features(np.zeros((2, 4)), np.zeros((2, 3)))


def test_effective_k_caps():
    assert effective_k(20, 6, 1000) == (20, 6)
    assert effective_k(20, 6, 41) == (20, 6)
    assert effective_k(20, 6, 40) == (19, 6)
    assert effective_k(20, 6, 12) == (5, 5)
    assert effective_k(20, 6, 5) == (2, 2)
    for n in range(0, 5):
        assert effective_k(20, 6, n) == (1, 1)
    assert effective_k(3, 10, 100) == (3, 3)
    for n in range(2, 200):
        k1, k2 = effective_k(20, 6, n)
        assert 1 <= k2 <= k1 and k1 + 1 <= max(2, (n + 1) // 2 + 1) and k1 + 1 <= max(2, n)
    with pytest.raises(ValueError):
        effective_k(0, 6, 10)
    with pytest.raises(ValueError):
        effective_k(20, 6, -1)
