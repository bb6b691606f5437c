"""Camera topology and time rules as cannot-link constraints, checked pair by pair.

The rules that say two tracklets ``a`` and ``b`` can never be one person
(cannot-link constraints of constrained clustering; Wagstaff et al., ICML 2001)
and the rule that says whether they are compared at all:

* same camera and overlapping in time (closed intervals ``[start_time, end_time]``):
  two people (unchanged from :func:`trackers.linking.offline.cannot_link_matrix`);
* ``linking.same_camera``: ``"never"`` forbids every same-camera pair, ``"reentry"`` and
  ``"fragments"`` every same-camera pair not granted by :meth:`PairRules.allow_same_camera` (the
  re-entry evidence of :mod:`trackers.linking.reentry`, the fragment evidence of
  :mod:`trackers.linking.fragments`), ``"any"`` only the overlapping ones;
* ``linking.max_gap_s``: the gap between the two intervals exceeds it;
* ``linking.topology``: the camera pair is marked incompatible (``false``), or
  it has a transit window ``[min_s, max_s]`` and the signed gap between the
  intervals ``gap = max(b.start - a.end, a.start - b.end)`` (seconds between
  leaving one camera and entering the other; negative when both are seen at
  once) lies outside it. A window thus also forbids simultaneous presence, as
  it should for cameras whose views do not overlap. Pairs not listed are
  compatible with any gap. Windows are symmetric (``A: {B: w}`` also holds
  for ``B → A``);
* ``linking.window_s``: only tracklets at most this far apart in time are
  compared, so pairs further apart never link (offline this is the same test as
  ``max_gap_s``; the incremental linker also drops identities silent for longer
  from its gallery).

Everything works on index arrays of candidate pairs, so 10⁵ tracklets never
need an N×N matrix; :meth:`PairRules.dense` builds the matrix for the dense path.
Times are seconds on one clock shared by all cameras.

Config format (``linking.topology`` in YAML)::

    topology:
      entrance:              # camera id
        hall: [2.0, 40.0]    # a person leaving one enters the other 2–40 s later
        roof: false          # never the same person
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.config import validate_topology
from pipeline.types import Tracklet

__all__ = ["PairRules", "validate_topology"]


class PairRules:
    """The constraints of one set of N tracklets, evaluated on pairs of indices.

    Args:
        cameras: N camera ids.
        start, end: N interval bounds (seconds, ``float64``-convertible), ``start ≤ end``.
        max_gap_s: hard limit on the gap between linked tracklets (s), or ``None``.
        topology: ``linking.topology`` mapping (validated with :func:`validate_topology`).
        window_s: comparison window (s), or ``None``; a pair further apart cannot link.
        same_camera: ``"any"`` (default here: only same-camera pairs overlapping in time are
            forbidden), ``"never"`` (every same-camera pair) or ``"reentry"`` / ``"fragments"`` (every
            same-camera pair except those given to :meth:`allow_same_camera`).

    Raises:
        ValueError: lengths differ, the topology is invalid, or ``same_camera`` is unknown.
    """

    def __init__(
        self,
        cameras: Sequence[str],
        start: np.ndarray,
        end: np.ndarray,
        max_gap_s: float | None = None,
        topology: Mapping[str, Any] | None = None,
        window_s: float | None = None,
        same_camera: str = "any",
    ) -> None:
        if same_camera not in ("any", "never", "reentry", "fragments"):
            raise ValueError(f"same_camera must be 'any', 'never', 'reentry' or 'fragments', got {same_camera!r}")
        self.same_camera = same_camera
        self._allowed_same = np.zeros(0, dtype=np.int64)  # sorted keys min(i,j) * N + max(i,j)
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        end = np.asarray(end, dtype=np.float64).reshape(-1)
        if not (len(cameras) == len(start) == len(end)):
            raise ValueError("cameras, start and end must have the same length")
        self.max_gap_s = max_gap_s
        self.window_s = window_s
        self._pairs = validate_topology(topology or {})
        self._codes: dict[str, int] = {}
        self.compatible = np.ones((0, 0), dtype=bool)
        self.tmin = self.tmax = np.zeros((0, 0))
        self.has_topology = False
        cam = np.array([self._code(str(c)) for c in cameras], dtype=np.int64)
        self._buf = (start.copy(), end.copy(), cam)
        self._n = len(start)
        self._views()

    def _views(self) -> None:
        self.start, self.end, self.cam = (b[: self._n] for b in self._buf)

    def _code(self, camera: str) -> int:
        """Code of ``camera``; a new camera extends the topology tables."""
        code = self._codes.get(camera)
        if code is not None:
            return code
        code = self._codes[camera] = len(self._codes)
        c = len(self._codes)
        self.compatible = np.ones((c, c), dtype=bool)
        self.tmin = np.full((c, c), -np.inf)
        self.tmax = np.full((c, c), np.inf)
        self.has_topology = False
        for (a, b), rule in self._pairs.items():
            if a not in self._codes or b not in self._codes:
                continue  # a camera of the config that this run does not have (yet)
            ia, ib = self._codes[a], self._codes[b]
            self.has_topology = True
            if rule is False:
                self.compatible[ia, ib] = self.compatible[ib, ia] = False
            elif rule is not True:
                self.tmin[ia, ib] = self.tmin[ib, ia] = rule[0]
                self.tmax[ia, ib] = self.tmax[ib, ia] = rule[1]
        return code

    def append(self, camera: str, start: float, end: float) -> int:
        """Add one item (amortised ``O(1)``) and return its index."""
        if self._n == len(self._buf[0]):
            cap = max(16, 2 * self._n)
            self._buf = tuple(np.resize(b, cap) for b in self._buf)  # type: ignore[assignment]
        k = self._n
        self._buf[0][k], self._buf[1][k], self._buf[2][k] = start, end, self._code(str(camera))
        self._n += 1
        self._views()
        return k

    def set_interval(self, k: int, start: float, end: float) -> None:
        """Change the time interval (seconds) of item ``k``."""
        self._buf[0][k], self._buf[1][k] = start, end

    def keep(self, idx: np.ndarray) -> None:
        """Keep only items ``idx`` (increasing indices), renumbered ``0 … len(idx)-1``; memory is released.

        Same-camera grants (:meth:`allow_same_camera`) are dropped: their indices no longer hold.
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        self._buf = tuple(b[idx].copy() for b in self._buf)  # type: ignore[assignment]
        self._n = len(idx)
        self._allowed_same = np.zeros(0, dtype=np.int64)
        self._views()

    @classmethod
    def from_tracklets(
        cls,
        tracklets: Sequence[Tracklet],
        max_gap_s: float | None = None,
        topology: Mapping[str, Any] | None = None,
        window_s: float | None = None,
        same_camera: str = "any",
    ) -> PairRules:
        """Rules for ``tracklets`` (cameras and ``[start_time, end_time]`` in seconds).

        Raises:
            ValueError: a tracklet has no timestamps, or the topology is invalid.
        """
        if any(len(t.timestamps) == 0 for t in tracklets):
            raise ValueError("every tracklet needs at least one timestamp")
        return cls(
            [t.camera_id for t in tracklets],
            np.array([t.start_time for t in tracklets], dtype=np.float64),
            np.array([t.end_time for t in tracklets], dtype=np.float64),
            max_gap_s=max_gap_s,
            topology=topology,
            window_s=window_s,
            same_camera=same_camera,
        )

    @classmethod
    def from_config(cls, tracklets: Sequence[Tracklet], cfg: Any) -> PairRules:
        """:meth:`from_tracklets` with ``max_gap_s``, ``topology``, ``window_s`` and ``same_camera`` of a
        :class:`~pipeline.config.LinkConfig`."""
        return cls.from_tracklets(tracklets, cfg.max_gap_s, cfg.topology, cfg.window_s, cfg.same_camera)

    def allow_same_camera(self, i: np.ndarray, j: np.ndarray) -> None:
        """With ``same_camera`` ``"reentry"`` or ``"fragments"``: let the same-camera pairs ``(i[k], j[k])`` link
        (if nothing else forbids).

        Args:
            i, j: equal-length integer index arrays of pairs granted by re-entry or fragment evidence.
        """
        i = np.asarray(i, dtype=np.int64).reshape(-1)
        j = np.asarray(j, dtype=np.int64).reshape(-1)
        keys = np.minimum(i, j) * self._n + np.maximum(i, j)
        self._allowed_same = np.union1d(self._allowed_same, keys)

    def _same_allowed(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        keys = np.minimum(i, j) * self._n + np.maximum(i, j)
        return np.isin(keys, self._allowed_same)

    def known_negative(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``bool``, True where pair ``(i[k], j[k])`` is certainly two people: one camera at the same time, or
        a camera pair marked ``false`` in the topology (the calibration data of :mod:`trackers.linking.calibrate`)."""
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        ci, cj = self.cam[i], self.cam[j]
        out = (ci == cj) & (self.gap(i, j) <= 0.0)
        if self.has_topology:
            out |= ~self.compatible[ci, cj]
        return out & (i != j)

    def count_known_negatives(self) -> int:
        """Number of unordered pairs :meth:`known_negative` holds for, counted without an N×N matrix."""
        total = 0
        counts = np.bincount(self.cam, minlength=len(self._codes))
        for c in range(len(counts)):
            idx = np.flatnonzero(self.cam == c)
            order = np.argsort(self.start[idx], kind="stable")
            s, e = self.start[idx][order], self.end[idx][order]
            # pairs (a, b) with a before b in start order and b starting no later than a ends
            total += int((np.searchsorted(s, e, side="right") - np.arange(1, len(s) + 1)).sum())
        if self.has_topology:
            ia, ib = np.nonzero(np.triu(~self.compatible, 1))
            total += int((counts[ia] * counts[ib]).sum())
        return total

    def __len__(self) -> int:
        return len(self.start)

    def gap(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Signed gap in seconds between the intervals of pairs ``(i[k], j[k])`` (negative: overlap)."""
        return np.maximum(self.start[j] - self.end[i], self.start[i] - self.end[j])

    def cannot_link(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """``bool`` array, True where pair ``(i[k], j[k])`` must not share an identity.

        Args:
            i, j: equal-length integer index arrays (any shape); a pair ``(k, k)`` is never constrained.
        """
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        gap = self.gap(i, j)
        ci, cj = self.cam[i], self.cam[j]
        same = ci == cj
        out = same & (gap <= 0.0)
        if self.same_camera == "never":
            out |= same
        elif self.same_camera in ("reentry", "fragments"):
            out |= same & ~self._same_allowed(i, j)
        if self.max_gap_s is not None:
            out |= gap > self.max_gap_s
        if self.window_s is not None:
            out |= gap > self.window_s
        if self.has_topology:
            out |= ~self.compatible[ci, cj]
            out |= (ci != cj) & ((gap < self.tmin[ci, cj]) | (gap > self.tmax[ci, cj]))
        return out & (i != j)

    def dense(self) -> np.ndarray:
        """N×N symmetric ``bool`` cannot-link matrix for the dense path (``O(N²)`` memory)."""
        idx = np.arange(len(self))
        return self.cannot_link(idx[:, None], idx[None, :])

    def clusters_conflict(self, a: np.ndarray, b: np.ndarray) -> bool:
        """True when some member of index set ``a`` cannot link with some member of ``b``
        (the constraint of two clusters is the union of their members'; ``O(|a|·|b|)``)."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        return bool(self.cannot_link(a[:, None], b[None, :]).any())
