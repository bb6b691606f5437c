"""Sparse k-reciprocal re-ranking for 10⁵ items and more: faiss kNN, sparse encodings, Jaccard on candidate pairs.

Same definitions as the dense :mod:`reid.rerank` (Zhong, Zheng, Cao & Li,
"Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017):
initial rank (self first, then by distance, ties by index), k-reciprocal sets
``R(p, k1)``, their expansion ``R*`` with the ⅔ rule over ``R(q, round(k1/2))``,
Gaussian-weighted encoding ``V`` (rows summing to 1), local query expansion
over the ``k2`` nearest, Jaccard distance from the sum of minima and
``d* = (1 - λ) d_J + λ d``. Only two things differ:

* the ranking comes from a faiss index (:func:`knn`) instead of a full sort of
  an N×N matrix: exact ``IndexFlatIP`` (then, with a few spare neighbours
  re-scored in ``float64``, the same lists as the dense code), or approximate
  ``IndexIVFFlat`` / ``IndexHNSWFlat`` beyond ``exact_max`` items;
* ``d*`` is evaluated only for the given candidate pairs (normally the kNN
  graph's edges), never for all N² pairs.

The original distance is the cosine distance ``1 - cos`` of L2-normalised
features, as :func:`trackers.linking.offline.cosine_distance_matrix` computes it
(``float64`` products rounded to ``float32``) and without row-max
normalisation (``normalize=False`` of :func:`reid.rerank.rerank_distance`).
With exact search, :func:`sparse_rerank_pairs` equals the dense
``rerank_distance(cosine_distance_matrix(F), k1, k2, λ, normalize=False)`` on
every candidate pair up to float rounding (tested to 1e-5).

Memory is ``O(N·(k1 + k2·|R*|))``: the kNN lists (``int64``), ``V`` after query
expansion (about ``k2 · 1.5 k1`` non-zeros per row) and the candidate pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from pipeline.vectors import l2_normalize

__all__ = ["knn", "pair_cosine_distance", "set_faiss_threads", "sorted_unique",
           "sparse_rerank_pairs"]

_SPARE = 8  # extra neighbours fetched so float32 search ties/rounding cannot change the exact top-m


def set_faiss_threads(threads: int) -> None:
    """``faiss.omp_set_num_threads(threads)``, with 0 meaning all cores (``os.cpu_count()``)."""
    import os

    import faiss

    faiss.omp_set_num_threads(int(threads) if threads > 0 else (os.cpu_count() or 1))


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (sort + neighbour test; several times faster
    than ``np.unique`` of NumPy 2, which hashes, on 10⁶–10⁷ keys)."""
    k = np.sort(keys, kind="stable")
    if len(k) == 0:
        return k
    keep = np.empty(len(k), dtype=bool)
    keep[0] = True
    np.not_equal(k[1:], k[:-1], out=keep[1:])
    return k[keep]


def pair_cosine_distance(f: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 13) -> np.ndarray:
    """Cosine distance ``clip(1 - f_i·f_j, 0, 2)`` of pairs, rounded to ``float32`` like the dense matrix.

    Args:
        f: N×D L2-normalised features (:func:`pipeline.vectors.l2_normalize`); ``float64`` reproduces
            the dense matrix exactly, ``float32`` is about 4× faster (differences ~1e-7).
        i, j: equal-shape integer index arrays.
        chunk: pairs per vectorised step (bounds memory to ``chunk × D`` floats).

    Returns:
        ``float32`` array of the shape of ``i``; exactly 0 where ``i == j``.
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    flat_i, flat_j = i.reshape(-1), j.reshape(-1)
    out = np.empty(flat_i.shape, dtype=np.float32)
    for a in range(0, len(flat_i), chunk):
        ii, jj = flat_i[a : a + chunk], flat_j[a : a + chunk]
        dot = np.einsum("nd,nd->n", f[ii], f[jj])
        out[a : a + chunk] = np.clip(1.0 - dot, 0.0, 2.0)
    out[flat_i == flat_j] = 0.0
    return out.reshape(i.shape)


def _build_index(x: np.ndarray, index: str, exact_max: int) -> Any:
    """A faiss inner-product index over the N×D ``float32`` rows of ``x`` (see :func:`knn`)."""
    import faiss

    if index not in ("auto", "flat", "hnsw", "ivf"):
        raise ValueError(f"index must be 'auto', 'flat', 'hnsw' or 'ivf', got {index!r}")
    n, dim = x.shape
    kind = index if index != "auto" else ("flat" if n <= exact_max else "ivf")
    if kind == "flat" or n < 1000:
        idx = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        idx = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = 64
        idx.hnsw.efSearch = 128
    else:
        nlist = int(min(max(16, 4 * np.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        idx = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        idx.cp.niter = 8
        idx.cp.min_points_per_centroid = 5  # 20 per list are enough for a coarse quantizer
        idx.cp.max_points_per_centroid = 20
        idx.train(x[rng.choice(n, size=min(n, 20 * nlist), replace=False)])
        idx.nprobe = min(nlist, 8)
    idx.add(x)
    return idx


def knn(
    features: np.ndarray,
    m: int,
    index: str = "auto",
    exact_max: int = 20000,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` first entries of every item's ranking under cosine distance (self first).

    Search uses faiss inner product on ``float32`` copies of the normalised
    features; the returned lists are re-scored with :func:`pair_cosine_distance`
    (in the features' precision: pass ``float64`` features for the exact lists)
    and sorted by (distance, index), self forced first, so with an exact index
    they equal the first ``m`` columns of the dense initial rank of
    :mod:`reid.rerank` (``_initial_rank``).

    Args:
        features: N×D features (normalised here; ``float32`` input is searched and
            re-scored in ``float32``, anything else in ``float64``).
        m: list length including self, ``1 ≤ m``; capped at N.
        index: ``"flat"`` (exact ``IndexFlatIP``), ``"ivf"`` (``IndexIVFFlat``,
            ``4√N`` lists, k-means on 20 points per list, 8 probed), ``"hnsw"`` (``IndexHNSWFlat``, M = 32,
            efSearch 128), or ``"auto"``: flat up to ``exact_max`` items, else ivf.
            Below 1000 items flat is always used.
        exact_max: see ``index``.
        threads: faiss OpenMP threads (:func:`set_faiss_threads`); 0 = all cores.

    Returns:
        ``(idx, dist)``: N×m ``int64`` neighbour indices and N×m ``float32``
        cosine distances. An approximate index may find fewer than ``m``
        neighbours for some rows; the missing slots hold ``-1`` and ``inf``.

    Raises:
        ValueError: ``features`` is not 2-D or ``m < 1``; ``index`` unknown.
    """
    if np.ndim(features) != 2:
        raise ValueError(f"features must be N×D, got shape {np.shape(features)}")
    f = l2_normalize(features)
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    n = f.shape[0]
    m = min(m, n)
    if n == 0:
        return np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float32)
    set_faiss_threads(threads)
    x = np.ascontiguousarray(f, dtype=np.float32)
    idx = _build_index(x, index, exact_max)
    kk = min(n, m + _SPARE)
    _, cand = idx.search(x, kk)
    cand = cand.astype(np.int64)
    rows = np.arange(n)[:, None]
    valid = cand >= 0
    key = np.full(cand.shape, np.inf, dtype=np.float64)
    key[valid] = pair_cosine_distance(f, np.broadcast_to(rows, cand.shape)[valid], cand[valid])
    key[cand == rows] = -np.inf
    has_self = (cand == rows).any(axis=1)
    if not has_self.all():  # self pushed out (duplicates) or not found: put it in the last slot
        miss = np.flatnonzero(~has_self)
        cand[miss, -1] = miss
        key[miss, -1] = -np.inf
    # drop repeated ids (approximate indexes can return one twice), missing slots last
    order = np.argsort(cand, axis=1, kind="stable")
    sc = np.take_along_axis(cand, order, axis=1)
    dup = np.zeros_like(sc, dtype=bool)
    dup[:, 1:] = (sc[:, 1:] == sc[:, :-1]) & (sc[:, 1:] >= 0)
    sk = np.take_along_axis(key, order, axis=1)
    sk[dup | (sc < 0)] = np.inf
    sc[dup | (sc < 0)] = np.iinfo(np.int64).max
    second = np.argsort(sk, axis=1, kind="stable")  # by distance, ties by index (sc is sorted)
    out_idx = np.take_along_axis(sc, second, axis=1)[:, :m]
    out_key = np.take_along_axis(sk, second, axis=1)[:, :m]
    missing = out_idx == np.iinfo(np.int64).max
    out_idx[missing] = -1
    out_key[np.isneginf(out_key)] = 0.0
    return out_idx, out_key.astype(np.float32)


def _member_keys(idx: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Sorted ``p·n + g`` keys of the pairs ``(p, idx[p, a])`` where ``mask``."""
    rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    return np.sort(rows[mask] * n + idx[mask])


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    return sorted_keys[pos] == keys if len(sorted_keys) else np.zeros(keys.shape, dtype=bool)


def _reciprocal(rank: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``idx = N(p, k)`` (N×(k+1)) and ``mask`` (which are in ``R(p, k)``): ``p ∈ N(g, k)``."""
    n = rank.shape[0]
    idx = rank[:, : k + 1]
    valid = idx >= 0
    forward = _member_keys(idx, valid, n)
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    mask = valid & _contains(forward, np.where(valid, idx, 0) * n + rows)
    return idx, mask


def _expanded_pairs(rank: np.ndarray, k1: int, chunk: int = 1 << 14) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of ``R*(p, k1)`` membership (eq. 6), as two ``int64`` arrays (unique pairs)."""
    n = rank.shape[0]
    k_half = int(np.around(k1 / 2.0))
    idx, mask = _reciprocal(rank, k1)
    h_idx, h_mask = _reciprocal(rank, k_half)
    h_size = h_mask.sum(axis=1)
    members = _member_keys(idx, mask, n)  # R(p, k1) as sorted keys
    parts = [members]
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        q = np.where(idx[a:b] >= 0, idx[a:b], 0)  # (rows)×(k1+1) candidates q
        hq, hm = h_idx[q], h_mask[q]  # (rows)×(k1+1)×(k½+1)
        p = np.arange(a, b)[:, None, None]
        inside = hm & _contains(members, p * n + np.where(hq >= 0, hq, 0))
        inter = inside.sum(axis=2)  # |R(p, k1) ∩ R(q, k½)|
        accept = mask[a:b] & (3 * inter >= 2 * h_size[q])
        add = accept[:, :, None] & hm
        parts.append((np.broadcast_to(p, hq.shape)[add]) * n + hq[add])
    keys = sorted_unique(np.concatenate(parts))
    return keys // n, keys % n


def _pair_sum_of_minima(v: sparse.csr_matrix, i: np.ndarray, j: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``Σ_k min(v[i, k], v[j, k])`` for every pair, ``float64`` (rows gathered chunk by chunk)."""
    out = np.empty(len(i), dtype=np.float64)
    for a in range(0, len(i), chunk):
        vi, vj = v[i[a : a + chunk]], v[j[a : a + chunk]]
        out[a : a + chunk] = np.asarray(vi.minimum(vj).sum(axis=1)).reshape(-1)
    return out


def sparse_rerank_pairs(
    features: np.ndarray,
    rank: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_: float = 0.3,
) -> np.ndarray:
    """Re-ranked distance ``d*`` of the candidate pairs ``(i[k], j[k])``.

    Args:
        features: N×D features (normalised here; cosine distance is the original distance).
        rank: N×m ``int64`` initial rank from :func:`knn` with ``m ≥ max(k1 + 1, k2)``
            (``-1`` for missing slots of an approximate search).
        i, j: P ``int64`` item indices of the pairs.
        k1: k-reciprocal neighbourhood size (≥ 1; cap it with :func:`reid.rerank.effective_k`).
        k2: local query expansion size (≥ 1, self included).
        lambda_: weight of the original distance, in [0, 1].

    Returns:
        P ``float32`` distances ``(1 - λ) d_J + λ d``; the Jaccard part is
        symmetric, so ``(i, j)`` and ``(j, i)`` give the same value.

    Raises:
        ValueError: ``rank`` is too short for ``k1``/``k2``, or a parameter is out of range.
    """
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}")
    f = l2_normalize(features)
    n = f.shape[0]
    need = min(n, max(k1 + 1, k2))
    if rank.shape != (n, rank.shape[1]) or rank.shape[1] < need:
        raise ValueError(f"rank must be N×m with m >= {need}, got shape {rank.shape}")
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if len(i) == 0:
        return np.zeros(0, dtype=np.float32)

    rows, cols = _expanded_pairs(rank, k1)
    w = np.exp(-pair_cosine_distance(f, rows, cols).astype(np.float64))
    w /= np.bincount(rows, weights=w, minlength=n)[rows]
    v = sparse.csr_matrix((w, (rows, cols)), shape=(n, n))
    del rows, cols, w
    if k2 > 1:  # local query expansion: mean of V over the k2 nearest, self included
        nn = rank[:, :k2]
        ok = nn >= 0
        cnt = ok.sum(axis=1)
        r = np.broadcast_to(np.arange(n)[:, None], nn.shape)[ok]
        mean_op = sparse.csr_matrix((1.0 / cnt[r], (r, nn[ok])), shape=(n, n))
        v = (mean_op @ v).tocsr()
    v.sort_indices()
    row_sum = np.asarray(v.sum(axis=1)).reshape(-1)
    s_min = _pair_sum_of_minima(v, i, j)
    s_max = row_sum[i] + row_sum[j] - s_min
    jac = (1.0 - s_min / s_max).astype(np.float32)
    jac[i == j] = 0.0
    return ((1.0 - lambda_) * jac + lambda_ * pair_cosine_distance(f, i, j)).astype(np.float32, copy=False)
