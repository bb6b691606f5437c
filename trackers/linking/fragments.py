"""Fragment evidence: same-camera pairs that may link, with a threshold calibrated on the run itself.

A camera's tracker deletes a track lost for longer than ``tracker.max_age_s`` (1 s); when the
person reappears a moment later, a new track starts. Such fragments cost both per-camera and
cross-camera IDF1, and linking is the place to join them, but a wrong same-camera join costs
the camera its own identities, which appearance alone did on held-out footage (README
"Held-out identities"). With ``linking.same_camera: fragments`` a same-camera pair may link only
when

* the later tracklet starts after the earlier one ended, at most ``linking.same_camera_gap_s``
  seconds later (a fragment, not a person coming back from elsewhere: on PETS09 same-camera
  joins more than 10 s apart were right 36 % of the time, 1–3 s apart 79 %), and
* their distance (on the linker's scale: after camera bias removal when ``linking.camera_bias``)
  is at most the ``linking.same_camera_fmr`` quantile of the run's own same-camera known
  negatives — pairs of tracklets of one camera seen at the same time, which are two people.

Those negatives are the calibration data that fits this decision exactly: same camera, same
light and angle, neighbours in the scene. (For cross-camera links they are a poor guide, see
:mod:`trackers.linking.calibrate`.) The bar therefore follows the footage: where appearance
separates people of one camera well, it sits high; at the sizes where it does not, it sits so
low that almost nothing joins. With fewer than ``linking.auto_min_negatives`` known negatives
nothing is granted.

Granted pairs only become *allowed* (:meth:`trackers.linking.topology.PairRules.allow_same_camera`);
whether they join is still the clustering's decision under ``linking.threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.config import LinkConfig
from pipeline.types import Tracklet
from pipeline.vectors import l2_normalize
from reid.rerank_sparse import pair_cosine_distance

__all__ = ["FragmentGrant", "fragment_pairs"]

MAX_NEGATIVES = 200_000
"""Known-negative pairs used for the quantile at most (a random sample beyond, seeded)."""


@dataclass
class FragmentGrant:
    """Same-camera pairs granted by :func:`fragment_pairs`.

    Attributes:
        i, j: K ``int64`` indices (into the tracklets given) of the granted pairs, ``i`` the earlier.
        threshold: the calibrated same-camera distance (``None``: too few known negatives, nothing granted).
        negatives: number of same-camera known-negative pairs the threshold came from.
        candidates: same-camera pairs within the gap before the distance test.
    """

    i: np.ndarray
    j: np.ndarray
    threshold: float | None
    negatives: int
    candidates: int

    def describe(self, fmr: float, gap_s: float) -> str:
        """One line for ``summary.json``: the threshold and how it was set."""
        if self.threshold is None:
            return f"none granted: {self.negatives} same-camera known negatives, too few to calibrate"
        return (f"{self.threshold:.3f} = {fmr:g} quantile of {self.negatives} same-camera pairs seen at once; "
                f"{len(self.i)} of {self.candidates} pairs at most {gap_s:g} s apart granted")


def _camera_pairs(start: np.ndarray, end: np.ndarray, gap_s: float) -> tuple[np.ndarray, ...]:
    """For one camera's tracklets (times in s): ``(neg_a, neg_b, cand_a, cand_b)``, index pairs seen at once
    (closed intervals) and pairs where b starts after a ends, at most ``gap_s`` later."""
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    k = np.arange(len(s))
    hi = np.searchsorted(s, e, side="right")  # b > a in start order with s_b <= e_a: seen at once
    neg_a = np.repeat(k, np.maximum(hi - k - 1, 0))
    neg_b = np.concatenate([np.arange(a + 1, h) for a, h in zip(k, hi, strict=True)]) if len(k) else k
    last = np.searchsorted(s, e + gap_s, side="right")  # b starting after a ended, at most gap_s later
    cand_a = np.repeat(k, last - hi)
    cand_b = np.concatenate([np.arange(a, b) for a, b in zip(hi, last, strict=True)]) if len(k) else k
    return order[neg_a], order[neg_b.astype(np.int64)], order[cand_a], order[cand_b.astype(np.int64)]


def fragment_pairs(tracklets: Sequence[Tracklet], features: np.ndarray, cfg: LinkConfig) -> FragmentGrant:
    """Same-camera pairs that may link under ``same_camera: fragments`` (see the module docstring).

    Args:
        tracklets: M tracklets with features (times in s on one clock).
        features: M×D features on the linker's scale (camera bias removed when the linker removes
            it), row k for ``tracklets[k]``; any norm (rows are L2-normalised here, distances are
            cosine distances ``1 - cos`` in ``float32``, :func:`reid.rerank_sparse.pair_cosine_distance`,
            computed in chunks so that 200 000 negatives need no 200 000 × D copy).
        cfg: ``same_camera_gap_s``, ``same_camera_fmr`` and ``auto_min_negatives`` are read.

    Returns:
        A :class:`FragmentGrant`.

    Raises:
        ValueError: ``features`` does not have M rows.
    """
    if len(features) != len(tracklets):
        raise ValueError(f"{len(features)} features for {len(tracklets)} tracklets")
    f = l2_normalize(np.asarray(features), dtype=np.float64)
    cams = np.array([str(t.camera_id) for t in tracklets], dtype=object)
    start = np.array([t.start_time for t in tracklets], np.float64)
    end = np.array([t.end_time for t in tracklets], np.float64)
    parts = [[], [], [], []]
    for cam in dict.fromkeys(cams.tolist()):
        rows = np.flatnonzero(cams == cam)
        for acc, idx in zip(parts, _camera_pairs(start[rows], end[rows], cfg.same_camera_gap_s), strict=True):
            acc.append(rows[idx])
    neg_a, neg_b, cand_a, cand_b = (np.concatenate(p).astype(np.int64) if p else np.zeros(0, np.int64)
                                    for p in parts)
    if len(neg_a) > MAX_NEGATIVES:
        pick = np.random.default_rng(0).choice(len(neg_a), MAX_NEGATIVES, replace=False)
        neg_a, neg_b = neg_a[pick], neg_b[pick]
    if len(neg_a) < cfg.auto_min_negatives:
        return FragmentGrant(np.zeros(0, np.int64), np.zeros(0, np.int64), None, len(neg_a), len(cand_a))
    thr = float(np.quantile(pair_cosine_distance(f, neg_a, neg_b), cfg.same_camera_fmr))
    ok = pair_cosine_distance(f, cand_a, cand_b) <= thr
    return FragmentGrant(cand_a[ok], cand_b[ok], thr, len(neg_a), len(cand_a))
