"""Learn ``linking.topology`` (overlapping views, transit windows) from the tracklets of a run.

Idea (Javed et al., "Tracking across multiple cameras with disjoint views",
ICCV 2003; Makris et al., "Bridging the gaps between cameras", CVPR 2004):
the relation between two cameras can be estimated from correspondences
between them. Javed et al. learn inter-camera transit times from known
correspondences, Makris et al. from the statistics of departures and arrivals
without them. Here the correspondences are the *confident matches* of a first
pass, and each camera pair gets one of three verdicts:

* ``"overlap"``: most matched people are seen by both cameras at once (signed
  gap < 0): the views overlap → rule ``true`` (compatible, any gap);
* ``"transit"``: (almost) nobody is seen at once, so people walk from one view
  into the other → window ``[max(0, q_lo - margin_s), q_hi + margin_s]`` from
  the low and high quantiles of the non-negative gaps;
* ``"unknown"``: too few matches or mixed evidence → not listed. Absence of
  matches is never turned into ``false``: the cameras may simply not have seen
  the same person in this run.

Confident match (the choice made here): a cross-camera pair of tracklets with
features whose cosine distance ``1 - f_a·f_b`` is at most ``max_distance`` *and*
that are mutual nearest neighbours across that camera pair (each is the
other's closest tracklet in the other camera). Appearance alone decides
which pairs count, so a wrong merge of the first pass adds no evidence and
each tracklet enters at most one match per camera pair. First-pass global
ids, when set, only refine the gap: when both tracklets of a match carry the
same global id, the gap is the smallest signed gap between any tracklets of
that id in the two cameras, so a person whose track broke into pieces in one
view still counts as seen at once in overlapping views. This can only make
gaps smaller, i.e. push a pair away from ``"transit"`` (the only verdict that
forbids links).

The signed gap of tracklets ``a`` and ``b`` is
``max(b.start - a.end, a.start - b.end)`` in seconds (negative: both seen at
the same time), as in :mod:`trackers.linking.topology`. Times share one clock.
The result is a starting point for a reviewed config, not ground truth.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from pipeline.types import Tracklet
from pipeline.vectors import l2_normalize
from trackers.linking.topology import validate_topology

__all__ = [
    "LearnedTopology",
    "PairEvidence",
    "learn_topology",
    "mutual_matches",
    "signed_gap",
    "write_topology_yaml",
]

Kind = Literal["overlap", "transit", "unknown"]


@dataclass
class PairEvidence:
    """What a run says about one unordered camera pair ``(cam_a, cam_b)``, ``cam_a < cam_b``.

    Attributes:
        kind: ``"overlap"`` (rule ``true``), ``"transit"`` (rule ``window``) or
            ``"unknown"`` (not written to the config).
        matches: number of confident matches (see the module docstring).
        simultaneous: how many of them have a signed gap < 0 s (seen at once).
        gaps: signed gaps (s) of the matches, in the order of ``local_ids``.
        distances: cosine distances of the matches, in the same order.
        local_ids: ``(local_id in cam_a, local_id in cam_b)`` of each match.
        window: ``(min_s, max_s)`` for ``"transit"``, else ``None``.
    """

    kind: Kind
    matches: int
    simultaneous: int
    gaps: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    local_ids: list[tuple[int, int]] = field(default_factory=list)
    window: tuple[float, float] | None = None

    def summary(self) -> str:
        """One line: kind, counts, gap range (s) and window, for logs and YAML comments."""
        text = f"{self.kind}: {self.matches} confident matches, {self.simultaneous} seen at once"
        if self.gaps:
            text += f", gaps {min(self.gaps):.2f}..{max(self.gaps):.2f} s"
        if self.window is not None:
            text += f", window [{self.window[0]:g}, {self.window[1]:g}] s"
        return text


@dataclass
class LearnedTopology:
    """Per-pair evidence of :func:`learn_topology` and its ``linking.topology`` form.

    Attributes:
        pairs: ``(cam_a, cam_b)`` with ``cam_a < cam_b`` → :class:`PairEvidence`,
            for every pair of cameras that had tracklets with features.
        params: the arguments used (for the YAML header).
    """

    pairs: dict[tuple[str, str], PairEvidence]
    params: dict[str, float | int | bool] = field(default_factory=dict)

    def to_config(self) -> dict[str, dict[str, bool | list[float]]]:
        """The ``linking.topology`` mapping: ``{cam_a: {cam_b: true | [min_s, max_s]}}``.

        Only ``"overlap"`` (``true``) and ``"transit"`` (window, seconds) pairs
        are listed; ``"unknown"`` pairs are left out (compatible, any gap). The
        result passes :func:`trackers.linking.topology.validate_topology`.
        """
        out: dict[str, dict[str, bool | list[float]]] = {}
        for (a, b), ev in sorted(self.pairs.items()):
            if ev.kind == "overlap":
                out.setdefault(a, {})[b] = True
            elif ev.kind == "transit" and ev.window is not None:
                out.setdefault(a, {})[b] = [float(ev.window[0]), float(ev.window[1])]
        validate_topology(out)
        return out

    def to_yaml(self) -> str:
        """A YAML document ``linking: {topology: ...}`` (usable with ``mtmc run --config``).

        It starts with comments saying that it was learned from one run and
        should be reviewed, the parameters, and one line of evidence per camera
        pair (the ``"unknown"`` ones too).
        """
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [
            "# Camera topology LEARNED from the tracklets of one run (trackers/linking/learn_topology.py).",
            "# Review it before use: a window forbids links outside it, and pairs without",
            "# evidence are left out (compatible), never marked false.",
        ]
        if params:
            lines.append(f"# parameters: {params}")
        lines += [f"#   {a} - {b}: {ev.summary()}" for (a, b), ev in sorted(self.pairs.items())]
        body = yaml.safe_dump({"linking": {"topology": self.to_config()}}, sort_keys=False, default_flow_style=None)
        return "\n".join(lines) + "\n" + body


def signed_gap(a: Tracklet, b: Tracklet) -> float:
    """Signed gap (s) ``max(b.start - a.end, a.start - b.end)``; negative when both are seen at once.

    Raises:
        ValueError: a tracklet has no timestamps.
    """
    if len(a.timestamps) == 0 or len(b.timestamps) == 0:
        raise ValueError("every tracklet needs at least one timestamp")
    return max(b.start_time - a.end_time, a.start_time - b.end_time)


def mutual_matches(feat_a: np.ndarray, feat_b: np.ndarray, max_distance: float) -> list[tuple[int, int, float]]:
    """Mutual nearest neighbours between two sets of features within a cosine distance.

    Args:
        feat_a: N×D features of camera a (any float dtype; rows are L2-normalised here).
        feat_b: M×D features of camera b.
        max_distance: largest cosine distance ``1 - f_a·f_b`` of a match (> 0).

    Returns:
        ``(i, j, distance)`` for each row ``i`` of ``feat_a`` and ``j`` of ``feat_b``
        that are each other's nearest neighbour with ``distance <= max_distance``,
        by increasing ``i``.

    Raises:
        ValueError: ``max_distance <= 0``, or the feature dimensions differ.
    """
    if not max_distance > 0:
        raise ValueError(f"max_distance must be > 0, got {max_distance}")
    fa, fb = (l2_normalize(np.atleast_2d(f), dtype=np.float64) for f in (feat_a, feat_b))
    if fa.size == 0 or fb.size == 0:
        return []
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature dimensions differ: {fa.shape[1]} vs {fb.shape[1]}")
    dist = 1.0 - fa @ fb.T
    best_b, best_a = dist.argmin(axis=1), dist.argmin(axis=0)
    return [
        (i, int(j), float(dist[i, j]))
        for i, j in enumerate(best_b)
        if best_a[j] == i and dist[i, j] <= max_distance
    ]


def _match_gap(x: Tracklet, y: Tracklet, by_id: dict[tuple[str, int], list[Tracklet]]) -> float:
    """Gap of a match; with one shared global id, the smallest gap between any of its tracklets."""
    if x.global_id is None or x.global_id != y.global_id:
        return signed_gap(x, y)
    xs = by_id.get((x.camera_id, x.global_id), [x])
    ys = by_id.get((y.camera_id, y.global_id), [y])
    return min(signed_gap(p, q) for p in xs for q in ys)


def _decide(gaps: list[float], min_pairs: int, overlap_frac: float, max_simultaneous_frac: float,
            quantile: float, margin_s: float) -> tuple[Kind, tuple[float, float] | None]:
    """Verdict and window (s) from the signed gaps of one pair's confident matches."""
    n = len(gaps)
    if n < min_pairs:
        return "unknown", None
    g = np.asarray(gaps, dtype=np.float64)
    at_once = int((g < 0).sum())
    if at_once >= overlap_frac * n:
        return "overlap", None
    positive = g[g >= 0]
    if at_once > max_simultaneous_frac * n or len(positive) < min_pairs:
        return "unknown", None
    lo = float(np.quantile(positive, quantile)) - margin_s
    hi = float(np.quantile(positive, 1.0 - quantile)) + margin_s
    # floor / ceil to 0.01 s (after rounding away float noise) so that the config's window is never narrower
    return "transit", (max(0.0, math.floor(round(lo * 100, 6)) / 100), math.ceil(round(hi * 100, 6)) / 100)


def _check_args(max_distance: float, min_pairs: int, margin_s: float, overlap_frac: float,
                max_simultaneous_frac: float, quantile: float) -> None:
    """Raise ValueError for an argument of :func:`learn_topology` out of range."""
    if not max_distance > 0:
        raise ValueError(f"max_distance must be > 0, got {max_distance}")
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, (int, np.integer)) or min_pairs < 1:
        raise ValueError(f"min_pairs must be an integer >= 1, got {min_pairs!r}")
    if not (np.isfinite(margin_s) and margin_s >= 0):
        raise ValueError(f"margin_s must be a finite number >= 0 s, got {margin_s}")
    if not 0 < overlap_frac <= 1:
        raise ValueError(f"overlap_frac must be in (0, 1], got {overlap_frac}")
    if not 0 <= max_simultaneous_frac < overlap_frac:
        raise ValueError(f"max_simultaneous_frac must be in [0, overlap_frac), got {max_simultaneous_frac}")
    if not 0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), got {quantile}")


def learn_topology(
    tracklets: Sequence[Tracklet],
    *,
    max_distance: float = 0.25,
    min_pairs: int = 3,
    margin_s: float = 2.0,
    overlap_frac: float = 0.5,
    max_simultaneous_frac: float = 0.1,
    quantile: float = 0.05,
    use_global_ids: bool = True,
) -> LearnedTopology:
    """Learn which camera pairs overlap and the transit windows of the others from a run's tracklets.

    See the module docstring for the method (confident matches = mutual nearest
    neighbours within ``max_distance``; Javed et al., ICCV 2003; Makris et al., CVPR 2004).

    Args:
        tracklets: tracklets of all cameras; ``feature`` (D ``float32``, L2-normalised)
            and ``timestamps`` (s, one clock for all cameras) are used, ``global_id``
            of a first linking pass when ``use_global_ids``. Tracklets without a
            feature are ignored.
        max_distance: largest cosine distance of a confident match; keep it strict
            (0.25: on TUD-Stadtmitte crops every mutual match below it was one person).
        min_pairs: fewest confident matches (and, for a window, non-negative gaps)
            for a verdict other than ``"unknown"``.
        margin_s: seconds added on both sides of the transit window (the low end
            is clipped at 0), for people faster or slower than those seen.
        overlap_frac: ``"overlap"`` when at least this fraction of matches has gap < 0.
        max_simultaneous_frac: ``"transit"`` only when at most this fraction has gap < 0.
        quantile: the window spans the ``quantile`` and ``1 - quantile`` quantiles
            (linear interpolation) of the non-negative gaps, before the margin.
        use_global_ids: refine gaps of matches sharing a first-pass global id
            (smallest gap between any tracklets of that id in the two cameras).

    Returns:
        :class:`LearnedTopology` with evidence for every pair of cameras that have
        tracklets with features (``"unknown"`` ones included).

    Raises:
        ValueError: an argument is out of range (``max_distance <= 0``,
            ``min_pairs < 1``, ``margin_s < 0``, fractions or ``quantile`` outside
            their ranges), feature dimensions differ, or a tracklet has no timestamps.
    """
    _check_args(max_distance, min_pairs, margin_s, overlap_frac, max_simultaneous_frac, quantile)
    by_cam: dict[str, list[Tracklet]] = {}
    by_id: dict[tuple[str, int], list[Tracklet]] = {}
    for t in tracklets:
        if t.feature is not None:
            by_cam.setdefault(str(t.camera_id), []).append(t)
        if use_global_ids and t.global_id is not None:
            by_id.setdefault((str(t.camera_id), int(t.global_id)), []).append(t)
    pairs: dict[tuple[str, str], PairEvidence] = {}
    for a, b in combinations(sorted(by_cam), 2):
        ta, tb = by_cam[a], by_cam[b]
        found = mutual_matches(np.stack([t.feature for t in ta]), np.stack([t.feature for t in tb]), max_distance)
        gaps = [_match_gap(ta[i], tb[j], by_id) for i, j, _ in found]
        kind, window = _decide(gaps, min_pairs, overlap_frac, max_simultaneous_frac, quantile, margin_s)
        pairs[(a, b)] = PairEvidence(
            kind=kind,
            matches=len(found),
            simultaneous=sum(g < 0 for g in gaps),
            gaps=[round(g, 3) for g in gaps],
            distances=[round(d, 4) for _, _, d in found],
            local_ids=[(ta[i].local_id, tb[j].local_id) for i, j, _ in found],
            window=window,
        )
    params: dict[str, float | int | bool] = {
        "max_distance": max_distance, "min_pairs": min_pairs, "margin_s": margin_s, "overlap_frac": overlap_frac,
        "max_simultaneous_frac": max_simultaneous_frac, "quantile": quantile, "use_global_ids": use_global_ids,
    }
    return LearnedTopology(pairs=pairs, params=params)


def write_topology_yaml(path: str | Path, learned: LearnedTopology) -> Path:
    """Write :meth:`LearnedTopology.to_yaml` to ``path`` atomically (``<path>.tmp``, then ``os.replace``).

    The file's top level is ``linking: {topology: ...}``, so it can be passed
    to ``mtmc run --config`` as is (or merged into a larger config by hand).

    Args:
        path: destination file; missing parent folders are created.
        learned: the result of :func:`learn_topology`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the file cannot be written (the ``.tmp`` file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(learned.to_yaml(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return path
