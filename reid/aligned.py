"""AlignedReID local distance (Zhang et al., "AlignedReID: Surpassing Human-Level Performance in
Person Re-Identification", arXiv:1711.08184, 2017): small pure functions, numpy and batched torch.

An image is described by ``H`` local features, one per horizontal stripe (top to
bottom). For two images with local features ``f_1..f_H`` and ``g_1..g_H``:

* element distance ``d_ij = (e^‖f_i − g_j‖ − 1) / (e^‖f_i − g_j‖ + 1)`` (Euclidean
  norm, result in ``[0, 1)``); it equals ``tanh(‖f_i − g_j‖ / 2)``, which is how it is
  computed here (no overflow for large norms);
* local distance = the total of the shortest path from ``(1, 1)`` to ``(H, H)`` in
  the ``H×H`` matrix ``d``, moving one step right or down at a time, i.e.
  ``S[i, j] = d[i, j] + min(S[i−1, j], S[i, j−1])`` (one boundary term only on the
  first row / column) and the distance is ``S[H, H]``. A path visits ``2H − 1`` cells.

Stable API (training losses reuse it): :func:`element_distance`,
:func:`shortest_path`, :func:`local_distance_matrix`, :func:`local_distance`. Each
accepts numpy arrays (computed in numpy, ``float32`` out) or torch tensors
(computed in torch, differentiable, same dtype/device as the input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["element_distance", "local_distance", "local_distance_matrix", "shortest_path"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def element_distance(dist: Any) -> Any:
    """AlignedReID element distance ``(e^x − 1)/(e^x + 1) = tanh(x/2)`` of Euclidean distances ``x ≥ 0``.

    Args:
        dist: any-shape array/tensor of Euclidean distances (feature units).

    Returns:
        Same shape, values in ``[0, 1)``; numpy → ``float32``, torch → same dtype.
    """
    if _is_torch(dist):
        return (dist / 2).tanh()
    return np.tanh(np.asarray(dist, dtype=np.float32) / 2).astype(np.float32, copy=False)


def shortest_path(d: Any) -> Any:
    """Shortest monotone path total from the top-left to the bottom-right cell of ``...×H×H`` matrices.

    Dynamic programming ``S[i, j] = d[i, j] + min(S[i−1, j], S[i, j−1])``, batched over
    the leading dimensions (``O(H²)`` vectorised steps). Rectangular ``...×H×W`` works too.

    Args:
        d: ``...×H×W`` non-negative element distances (numpy array or torch tensor).

    Returns:
        ``...`` path totals (numpy ``float32`` array, or a torch tensor differentiable
        with respect to ``d``).

    Raises:
        ValueError: ``d`` has fewer than 2 dimensions or an empty last axis.
    """
    if d.ndim < 2 or d.shape[-1] == 0 or d.shape[-2] == 0:
        raise ValueError(f"shortest_path needs a ...×H×W array with H, W ≥ 1, got shape {tuple(d.shape)}")
    if _is_torch(d):
        import torch

        h, w = d.shape[-2], d.shape[-1]
        prev: list[Any] = []
        for i in range(h):
            row: list[Any] = []
            for j in range(w):
                if i == 0 and j == 0:
                    best = d[..., 0, 0]
                elif i == 0:
                    best = row[j - 1] + d[..., 0, j]
                elif j == 0:
                    best = prev[0] + d[..., i, 0]
                else:
                    best = torch.minimum(prev[j], row[j - 1]) + d[..., i, j]
                row.append(best)
            prev = row
        return prev[-1]
    a = np.asarray(d, dtype=np.float32)
    h, w = a.shape[-2], a.shape[-1]
    s = np.cumsum(a[..., 0, :], axis=-1)  # first row
    for i in range(1, h):
        new = np.empty_like(s)
        new[..., 0] = s[..., 0] + a[..., i, 0]
        for j in range(1, w):
            new[..., j] = np.minimum(s[..., j], new[..., j - 1]) + a[..., i, j]
        s = new
    return s[..., -1].astype(np.float32, copy=False)


def _pair_dist(x: Any, y: Any) -> Any:
    """Euclidean distances of every stripe pair: ``...×H×C``, ``...×H×C`` → ``...×H×H``."""
    if _is_torch(x):
        sq = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2 * x @ y.transpose(-1, -2)
        return sq.clamp_min(1e-12).sqrt()
    sq = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :] - 2 * x @ np.swapaxes(y, -1, -2)
    return np.sqrt(np.maximum(sq, 0.0))


def local_distance(local_x: Any, local_y: Any) -> Any:
    """AlignedReID local distance of paired images (row ``n`` of ``x`` with row ``n`` of ``y``).

    Args:
        local_x: N×H×C local features (numpy or torch).
        local_y: N×H×C local features of the same kind.

    Returns:
        N shortest-path totals, each in ``[0, 2H − 1)``.

    Raises:
        ValueError: the shapes differ or are not N×H×C.
    """
    if local_x.ndim != 3 or tuple(local_x.shape) != tuple(local_y.shape):
        raise ValueError(f"local features must both be N×H×C, got {tuple(local_x.shape)} and {tuple(local_y.shape)}")
    if not _is_torch(local_x):
        local_x, local_y = np.asarray(local_x, np.float32), np.asarray(local_y, np.float32)
    return shortest_path(element_distance(_pair_dist(local_x, local_y)))


def local_distance_matrix(local_x: Any, local_y: Any, chunk: int = 64) -> Any:
    """AlignedReID local distance of every pair of images.

    Args:
        local_x: N×H×C local features (numpy or torch).
        local_y: M×H×C local features of the same kind and C (H may differ).
        chunk: rows of ``local_x`` per step (bounds memory to ``chunk·M·H²`` values).

    Returns:
        N×M shortest-path totals (numpy ``float32`` or torch), each in ``[0, 2H − 1)``.

    Raises:
        ValueError: not N×H×C / M×H×C with one C.
    """
    if local_x.ndim != 3 or local_y.ndim != 3 or local_x.shape[-1] != local_y.shape[-1]:
        raise ValueError(
            f"local features must be N×H×C and M×H×C, got {tuple(local_x.shape)} and {tuple(local_y.shape)}"
        )
    torch_in = _is_torch(local_x)
    if not torch_in:
        local_x, local_y = np.asarray(local_x, np.float32), np.asarray(local_y, np.float32)
    n, m = local_x.shape[0], local_y.shape[0]
    parts = []
    step = max(1, int(chunk))
    for start in range(0, n, step):
        xs = local_x[start : start + step]
        # (n_c, 1, H, C) against (1, M, H', C) → n_c×M×H×H'
        d = _pair_dist(xs[:, None], local_y[None])
        parts.append(shortest_path(element_distance(d)))
    if torch_in:
        import torch

        return torch.cat(parts, 0) if parts else local_x.new_zeros((0, m))
    return np.concatenate(parts, 0) if parts else np.zeros((0, m), np.float32)
