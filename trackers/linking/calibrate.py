"""A linking threshold that calibrates itself on the run's own known negatives.

A run carries pairs of tracklets that are certainly two people: two tracklets of one camera
at the same time, and tracklets of camera pairs the topology marks incompatible
(:meth:`trackers.linking.topology.PairRules.known_negative`). Their distances are a free sample of
what "two different people" looks like on this site, with this model, at this resolution.
``linking.threshold: auto`` sets the clustering threshold just below the distance under which
a share ``linking.target_fmr`` of those pairs falls: the threshold at which that false-merge
rate (FMR) holds on the known negatives, the way a face-verification threshold is set at a
chosen false-match rate on impostor pairs (e.g. NIST FRVT reports accuracy at FMR 10⁻⁴…10⁻²).

Known negatives seen at the same time in one camera are a biased sample (same lighting and
viewpoint, often next to each other), so the chosen value is clipped to
``[linking.auto_min, linking.auto_max]``; with fewer than ``linking.auto_min_negatives`` pairs
``linking.threshold_fallback`` is used. A number for ``linking.threshold`` is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import LinkConfig

__all__ = ["ThresholdChoice", "choose_threshold"]


@dataclass(frozen=True)
class ThresholdChoice:
    """The linking threshold a run used and how it was found.

    Attributes:
        value: the distance threshold of the clustering (same scale as the linking distance).
        source: ``"fixed"`` (a number in the config), ``"auto"`` or ``"fallback"`` (too few negatives).
        negatives: known-negative pairs in the run (all of them, not only those with a distance).
        fmr: share of the known negatives at or below ``value`` (``nan`` when not computed).
    """

    value: float
    source: str
    negatives: int = 0
    fmr: float = float("nan")

    def describe(self) -> str:
        """One line for ``summary.json`` / ``trajectories.json``, e.g.
        ``auto: 0.312 (0.9 % of 418 known-negative pairs at or below; target 1.0 %)``."""
        if self.source == "fixed":
            return f"fixed: {self.value:g} (linking.threshold)"
        if self.source == "fallback":
            return (f"fallback: {self.value:g} (linking.threshold_fallback; only {self.negatives} known-negative "
                    "pairs to calibrate on)")
        return f"auto: {self.value:.3f} ({100 * self.fmr:.1f} % of {self.negatives} known-negative pairs at or below)"


def choose_threshold(cfg: LinkConfig, negative_dist: np.ndarray, total_negatives: int) -> ThresholdChoice:
    """Pick the clustering threshold for one run.

    Args:
        cfg: linking settings (``threshold``, ``target_fmr``, ``auto_min_negatives``, ``auto_min``,
            ``auto_max``, ``threshold_fallback``).
        negative_dist: linking distances (any float dtype, 1-D) of known-negative pairs; may be a
            subset of all of them (the sparse method has distances of its candidate pairs only,
            which are the nearest ones, so the subset holds every negative that could fall low).
        total_negatives: number of known-negative pairs in the run (the denominator of the FMR).

    Returns:
        :class:`ThresholdChoice`. With ``auto``: the largest value such that at most
        ``floor(target_fmr · total_negatives)`` of the known negatives lie at or below it,
        clipped to ``[auto_min, auto_max]``.

    Raises:
        ValueError: ``total_negatives`` is smaller than the number of distances given.
    """
    if cfg.threshold != "auto":
        return ThresholdChoice(float(cfg.threshold), "fixed")
    d = np.sort(np.asarray(negative_dist, dtype=np.float64).reshape(-1))
    d = d[np.isfinite(d)]
    if total_negatives < len(d):
        raise ValueError(f"total_negatives ({total_negatives}) is smaller than the {len(d)} distances given")
    if total_negatives < cfg.auto_min_negatives:
        return ThresholdChoice(float(cfg.threshold_fallback), "fallback", total_negatives)
    allowed = int(np.floor(cfg.target_fmr * total_negatives))
    value = float(np.nextafter(d[allowed], -np.inf)) if allowed < len(d) else cfg.auto_max
    value = float(np.clip(value, cfg.auto_min, cfg.auto_max))
    fmr = float(np.count_nonzero(d <= value)) / total_negatives
    return ThresholdChoice(value, "auto", total_negatives, fmr)
