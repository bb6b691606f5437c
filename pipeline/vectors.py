"""Vector helpers shared by ReID, tracking and linking."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


def l2_normalize(x: np.ndarray, axis: int = -1, dtype: DTypeLike | None = None) -> np.ndarray:
    """A copy of ``x`` scaled to unit L2 norm along ``axis`` (default: each row / the last axis).

    All-zero vectors stay zero (no NaN). Works on a single D vector, N×D rows or
    any N×…×D array.

    Args:
        x: array of features (any numeric dtype).
        axis: the axis holding each vector's components.
        dtype: dtype of the result; default ``float32`` for ``float32`` input (the fast
            path at scale), else ``float64``.

    Returns:
        An array of ``x``'s shape.
    """
    a = np.asarray(x)
    dt = dtype or (np.float32 if a.dtype == np.float32 else np.float64)
    a = a.astype(dt, copy=True)
    norm = np.linalg.norm(a, axis=axis, keepdims=True)
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)
