"""Learn ``linking.topology`` (overlapping views, transit windows) from the tracklets of a run.

Idea (Javed et al., "Tracking across multiple cameras with disjoint views",
ICCV 2003; Makris et al., "Bridging the gaps between cameras", CVPR 2004):
the relation between two cameras can be estimated from correspondences
between them. Javed et al. learn inter-camera transit times from known
correspondences, Makris et al. from the statistics of departures and arrivals
without them. Here the correspondences are the *confident matches* of a first
pass, and each camera pair gets one of three verdicts:

* ``"overlap"``: most matched people are seen by both cameras at once (signed
  gap below ``at_once_s``, see below): the views overlap → rule ``true`` (compatible, any gap);
* ``"transit"``: few are seen at once and the non-negative gaps pile up in one
  interval far more than chance allows, so people walk from one view into the
  other → window ``[max(0, lo - margin_s), hi + margin_s]`` around that pile-up;
* ``"unknown"``: too few matches or mixed evidence → not listed. Absence of
  matches is never turned into ``false``: the cameras may simply not have seen
  the same person in this run.

The matches of a camera pair (the choice made here, measured on the 36 crop variants
of ``scripts/benchmark_identity.py`` and two full PETS09 scenes, 2026-12-02, before
``tracklets.min_mean_score``):

* ``"identities"``, when every tracklet of both cameras carries a global id of a
  first linking pass: one match per identity seen by both cameras, its two
  tracklets closest in time. The first pass links with everything appearance and
  the run's own statistics offer (camera bias removal, re-ranking), and recovered
  the adjacent PETS09 pair as a transit pair in 6 of 14 scenes, against 1 of 14
  for mutual neighbours at ``max_distance`` 0.25 (2 of 14 on camera-bias-removed
  features at 0.4–0.6); in 334 truly overlapping pairs neither gave a window.
* ``"mutual"`` otherwise: cross-camera pairs of tracklets with features whose cosine
  distance ``1 - f_a·f_b`` is at most ``max_distance`` *and* that are mutual nearest
  neighbours across that camera pair, so each tracklet enters at most one match per
  camera pair. First-pass global ids, where some are set, only refine the gap: when
  both tracklets of a match carry the same global id, the gap is the smallest signed
  gap between any tracklets of that id in the two cameras.

A match whose gap is below ``at_once_s`` (1.5 s) counts as seen at once: a track
starts a little after its person enters a view (confirmation, a body cut by the
image edge), so someone crossing into a barely overlapping view looks like a
transit of up to about a second. Calling such a pair "overlap" forbids nothing.

Wrong matches are common at the sizes of real footage (on a PETS09 crop scene
2 to 3 of 7 mutual matches between adjacent views were other people, or the
same person coming back half a minute later), and they scatter their gaps over
the whole run while true transits pile up. The transit interval is therefore a
scan statistic (the peak-over-background idea of Makris et al.): among the
intervals ``[lo, hi]`` spanned by ``min_pairs`` or more sorted gaps of at least ``at_once_s``,
the one whose count is least likely under a uniform background, where the
``n`` matches of the pair would fall anywhere in ``[-T, T]`` (``T``: the time
the two cameras' tracklets span) and the interval is widened by ``margin_s`` on
both sides: Poisson tail ``P(X >= count)`` with mean
``n * (hi - lo + 2 margin_s) / (2 T)``. The pair is a transit pair when that
tail is at most ``alpha`` and the interval holds more matches than are seen at
once (seen at once is impossible between disjoint views, so those are wrong
matches, and many of them mean the views may overlap after all).

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
from scipy.stats import poisson

from pipeline.types import Tracklet
from pipeline.vectors import l2_normalize
from trackers.linking.topology import validate_topology

__all__ = [
    "LearnedTopology",
    "PairEvidence",
    "identity_matches",
    "learn_topology",
    "mutual_matches",
    "signed_gap",
    "write_topology_yaml",
]

Kind = Literal["overlap", "transit", "unknown"]
Source = Literal["identities", "mutual"]


@dataclass
class PairEvidence:
    """What a run says about one unordered camera pair ``(cam_a, cam_b)``, ``cam_a < cam_b``.

    Attributes:
        kind: ``"overlap"`` (rule ``true``), ``"transit"`` (rule ``window``) or
            ``"unknown"`` (not written to the config).
        matches: number of confident matches (see the module docstring).
        simultaneous: how many of them count as seen at once (signed gap below ``at_once_s``).
        gaps: signed gaps (s) of the matches, in the order of ``local_ids``.
        distances: cosine distances of the matches, in the same order.
        local_ids: ``(local_id in cam_a, local_id in cam_b)`` of each match.
        window: ``(min_s, max_s)`` for ``"transit"``, else ``None``.
        source: ``"identities"`` (matches are the first pass's identities) or ``"mutual"``
            (mutual nearest neighbours of the features), see the module docstring.
    """

    kind: Kind
    matches: int
    simultaneous: int
    gaps: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    local_ids: list[tuple[int, int]] = field(default_factory=list)
    window: tuple[float, float] | None = None
    source: Source = "mutual"

    def summary(self) -> str:
        """One line: kind, counts, gap range (s) and window, for logs and YAML comments."""
        text = f"{self.kind}: {self.matches} matches ({self.source}), {self.simultaneous} seen at once"
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


def identity_matches(ta: Sequence[Tracklet], tb: Sequence[Tracklet], feat_a: np.ndarray, feat_b: np.ndarray
                     ) -> list[tuple[int, int, float]]:
    """One match per global id that both cameras' tracklets carry: the two tracklets closest in time.

    Args:
        ta, tb: tracklets of camera a and b, every one with a ``global_id`` and timestamps.
        feat_a, feat_b: their features, ``len(ta)×D`` and ``len(tb)×D`` (rows L2-normalised here).

    Returns:
        ``(i, j, cosine distance)`` with the smallest :func:`signed_gap` among the id's tracklets,
        by increasing global id.

    Raises:
        ValueError: a tracklet has no timestamps.
    """
    fa, fb = (l2_normalize(np.atleast_2d(f), dtype=np.float64) for f in (feat_a, feat_b))
    rows_b: dict[int, list[int]] = {}
    for j, t in enumerate(tb):
        rows_b.setdefault(int(t.global_id), []).append(j)  # type: ignore[arg-type]
    best: dict[int, tuple[float, int, int]] = {}
    for i, t in enumerate(ta):
        gid = int(t.global_id)  # type: ignore[arg-type]
        for j in rows_b.get(gid, []):
            gap = signed_gap(t, tb[j])
            if gid not in best or gap < best[gid][0]:
                best[gid] = (gap, i, j)
    return [(i, j, float(1.0 - fa[i] @ fb[j])) for _, (_, i, j) in sorted(best.items())]


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


def _peak(later: np.ndarray, n: int, span_s: float, min_pairs: int, margin_s: float
          ) -> tuple[float, float, float]:
    """The most significant pile-up of the sorted gaps ``later`` (s; those of at least ``at_once_s``):
    ``(Poisson tail, lo, hi)`` (see the module docstring); tail 1 when fewer than ``min_pairs`` gaps.
    One row of candidate intervals at a time: O(m) memory, O(m²) time for m gaps."""
    best = (1.0, 0.0, 0.0)
    rate = n / max(2.0 * span_s, 1e-9)  # matches per second of gap under the uniform background
    for i in range(len(later) - min_pairs + 1):
        j = np.arange(i + min_pairs - 1, len(later))
        tail = poisson.sf(j - i, rate * (later[j] - later[i] + 2.0 * margin_s))  # P(X >= j - i + 1)
        k = int(np.argmin(tail))
        if tail[k] < best[0]:
            best = (float(tail[k]), float(later[i]), float(later[j[k]]))
    return best


def _decide(gaps: list[float], span_s: float, min_pairs: int, overlap_frac: float, at_once_s: float,
            alpha: float, margin_s: float) -> tuple[Kind, tuple[float, float] | None]:
    """Verdict and window (s) from the signed gaps of one pair's confident matches; ``span_s``: the time
    the two cameras' tracklets span (s)."""
    n = len(gaps)
    if n < min_pairs:
        return "unknown", None
    g = np.asarray(gaps, dtype=np.float64)
    at_once = int((g < at_once_s).sum())
    if at_once >= overlap_frac * n:
        return "overlap", None
    later = np.sort(g[g >= at_once_s])
    p, lo, hi = _peak(later, n, span_s, min_pairs, margin_s)
    if p > alpha or int(((later >= lo) & (later <= hi)).sum()) <= at_once:
        return "unknown", None
    lo, hi = lo - margin_s, hi + margin_s
    # floor / ceil to 0.01 s (after rounding away float noise) so that the config's window is never narrower
    return "transit", (max(0.0, math.floor(round(lo * 100, 6)) / 100), math.ceil(round(hi * 100, 6)) / 100)


def _check_args(max_distance: float, min_pairs: int, margin_s: float, overlap_frac: float,
                at_once_s: float, alpha: float) -> None:
    """Raise ValueError for an argument of :func:`learn_topology` out of range."""
    if not max_distance > 0:
        raise ValueError(f"max_distance must be > 0, got {max_distance}")
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, (int, np.integer)) or min_pairs < 1:
        raise ValueError(f"min_pairs must be an integer >= 1, got {min_pairs!r}")
    if not (np.isfinite(margin_s) and margin_s >= 0):
        raise ValueError(f"margin_s must be a finite number >= 0 s, got {margin_s}")
    if not 0 < overlap_frac <= 1:
        raise ValueError(f"overlap_frac must be in (0, 1], got {overlap_frac}")
    if not (np.isfinite(at_once_s) and at_once_s >= 0):
        raise ValueError(f"at_once_s must be a finite number >= 0 s, got {at_once_s}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def learn_topology(
    tracklets: Sequence[Tracklet],
    *,
    max_distance: float = 0.25,
    min_pairs: int = 3,
    margin_s: float = 2.0,
    overlap_frac: float = 0.5,
    at_once_s: float = 1.5,
    alpha: float = 0.01,
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
        overlap_frac: ``"overlap"`` when at least this fraction of matches has a gap below ``at_once_s``.
        at_once_s: a match with a gap below this (s) counts as seen at once.
        alpha: ``"transit"`` only when the pile-up of gaps has a Poisson tail probability
            of at most this under the uniform background (see the module docstring).
        use_global_ids: with first-pass global ids on every tracklet of a camera pair, its
            matches are those identities (``"identities"``, ``max_distance`` unused); with ids
            on some, they refine the gaps of mutual matches (see the module docstring).

    Returns:
        :class:`LearnedTopology` with evidence for every pair of cameras that have
        tracklets with features (``"unknown"`` ones included).

    Raises:
        ValueError: an argument is out of range (``max_distance <= 0``,
            ``min_pairs < 1``, ``margin_s < 0``, fractions or ``alpha`` outside
            their ranges), feature dimensions differ, or a tracklet has no timestamps.
    """
    _check_args(max_distance, min_pairs, margin_s, overlap_frac, at_once_s, alpha)
    by_cam: dict[str, list[Tracklet]] = {}
    by_id: dict[tuple[str, int], list[Tracklet]] = {}
    for t in tracklets:
        if t.feature is not None:
            by_cam.setdefault(str(t.camera_id), []).append(t)
        if use_global_ids and t.global_id is not None:
            by_id.setdefault((str(t.camera_id), int(t.global_id)), []).append(t)
    feats = {c: np.stack([t.feature for t in ts]) for c, ts in by_cam.items()}
    pairs: dict[tuple[str, str], PairEvidence] = {}
    for a, b in combinations(sorted(by_cam), 2):
        ta, tb = by_cam[a], by_cam[b]
        source: Source = "identities" if use_global_ids and all(t.global_id is not None for t in ta + tb) else "mutual"
        if source == "identities":
            found = identity_matches(ta, tb, feats[a], feats[b])
            gaps = [signed_gap(ta[i], tb[j]) for i, j, _ in found]
        else:
            found = mutual_matches(feats[a], feats[b], max_distance)
            gaps = [_match_gap(ta[i], tb[j], by_id) for i, j, _ in found]
        span = max(t.end_time for t in ta + tb) - min(t.start_time for t in ta + tb)
        kind, window = _decide(gaps, span, min_pairs, overlap_frac, at_once_s, alpha, margin_s)
        pairs[(a, b)] = PairEvidence(
            kind=kind,
            matches=len(found),
            simultaneous=sum(g < at_once_s for g in gaps),
            gaps=[round(g, 3) for g in gaps],
            distances=[round(d, 4) for _, _, d in found],
            local_ids=[(ta[i].local_id, tb[j].local_id) for i, j, _ in found],
            window=window,
            source=source,
        )
    params: dict[str, float | int | bool] = {
        "max_distance": max_distance, "min_pairs": min_pairs, "margin_s": margin_s, "overlap_frac": overlap_frac,
        "at_once_s": at_once_s, "alpha": alpha, "use_global_ids": use_global_ids,
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
