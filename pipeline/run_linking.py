"""Linking of a finished run: global ids for every tracklet, offline or incremental, and the learned topology.

:func:`link_run` is what ``mtmc run`` does after decoding; :func:`relink` links a
finished run again with other linking settings, without decoding anything.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy import sparse

from pipeline.config import LinkConfig, MtmcConfig
from pipeline.results import RunResult
from pipeline.summary import identity_counts, merge_record
from pipeline.types import Tracklet
from trackers.linking.incremental import IncrementalLinker
from trackers.linking.learn_topology import LearnedTopology, learn_topology
from trackers.linking.offline import count_same_camera_links, link_tracklets_detailed
from trackers.linking.topology import validate_topology


def _link_incremental(tracklets: list[Tracklet], cfg: LinkConfig) -> list[dict[str, Any]]:
    """Link as live mode would: tracklets in order of ``end_time``, in batches of
    ``cfg.incremental_batch_s`` seconds of stream time, through one
    :class:`~trackers.linking.incremental.IncrementalLinker`. Afterwards every
    tracklet's ``global_id`` is its resolved id (merges applied); returns the
    merges as ``{"global_id", "merged_into", "time"}`` dicts in stream order."""
    linker = IncrementalLinker(cfg)
    order = sorted(tracklets, key=lambda t: (t.end_time, t.camera_id, t.local_id))
    merges: list[dict[str, Any]] = []
    start = 0
    while start < len(order):
        stop = start + 1
        limit = (np.floor(order[start].end_time / cfg.incremental_batch_s) + 1) * cfg.incremental_batch_s
        while stop < len(order) and order[stop].end_time < limit:
            stop += 1
        events = linker.add(order[start:stop])
        start = stop
        if start == len(order):
            events += linker.flush()  # tracklets still waiting for linking.decision_delay_s
        merges += [merge_record(e.global_id, e.merged_into or 0, e.time) for e in events if e.kind == "identity_merged"]
    for t in tracklets:
        t.global_id = linker.resolve(int(t.global_id or 0))
    return merges


def _link(tracklets: list[Tracklet], cfg: MtmcConfig, with_reid: bool,
          frame_sizes: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """Give every tracklet a global id (linked across cameras when ReID and linking are on).

    Returns the ``linking`` summary (method, threshold and how it was set, counts,
    ``same_camera_links``, ``merges``: number of identity merges, 0 offline) plus
    ``merge_events``, the merges themselves (see :func:`_link_incremental`), which the
    caller moves to the result.
    """
    linkable = [t for t in tracklets if len(t) >= cfg.tracklets.min_length]
    merges: list[dict[str, Any]] = []
    nearest: dict[tuple[str, int], float] = {}
    lc = cfg.linking
    threshold: dict[str, Any] = {}
    if with_reid and lc.enabled and linkable and lc.mode == "incremental":
        merges = _link_incremental(linkable, lc)
        value = lc.incremental_threshold
        source = f"fixed: {value:g} (linking.incremental_threshold; camera_bias and 'auto' need the whole run)"
        threshold = {"threshold": value, "threshold_source": source}
        method = (f"incremental: each {lc.incremental_batch_s} s batch clustered with the identities near it, "
                  f"cosine average linkage at {value:g}, ids decided {lc.decision_delay_s} s after a "
                  "tracklet ends")
    elif with_reid and lc.enabled and linkable:
        res = link_tracklets_detailed(linkable, lc, frame_sizes)
        nearest = nearest_other_camera(res.distance, linkable)
        method = f"k-reciprocal re-ranked (k1={res.k1}, k2={res.k2})" if res.k1 else "cosine"
        if lc.camera_bias:
            method = f"camera bias removed (per-camera mean subtracted), {method}"
        if res.threshold is not None:
            threshold = {"threshold": round(res.threshold.value, 4), "threshold_source": res.threshold.describe()}
            method += f" distance, constrained average-linkage clustering at {res.threshold.value:.3g}"
            method += " (long tracklets first)" if lc.merge_order == "coverage" else " (closest first)"
        if res.method == "sparse":
            method = f"sparse ({res.num_candidate_pairs} candidate pairs) {method}"
        method += f", same-camera links: {lc.same_camera}"
        if res.fragments is not None:
            threshold["same_camera_threshold"] = (None if res.fragments.threshold is None
                                                  else round(res.fragments.threshold, 4))
            threshold["same_camera_threshold_source"] = res.fragments.describe(lc.same_camera_fmr,
                                                                               lc.same_camera_gap_s)
    else:
        linkable = []
        why = "no ReID model" if not with_reid else "linking.enabled is false" if not lc.enabled else "no tracklets"
        method = f"no linking ({why})"
    # tracklets left out of linking get their own ids, after the linked ones, by start time
    next_id = max((int(t.global_id or 0) for t in linkable), default=0) + 1
    linked = {id(t) for t in linkable}
    for t in sorted((t for t in tracklets if id(t) not in linked), key=lambda t: (t.start_time, t.camera_id)):
        t.global_id = next_id
        next_id += 1
    return {
        "method": method,
        "mode": lc.mode,
        "camera_bias": bool(lc.camera_bias and lc.mode == "offline" and linkable),
        **threshold,
        **identity_counts(tracklets),
        "same_camera_links": count_same_camera_links(tracklets),
        "merges": len(merges),
        "merge_events": merges,
        "nearest_distances": nearest,
    }


def nearest_other_camera(distance: np.ndarray | sparse.csr_matrix | None, tracklets: list[Tracklet]
                         ) -> dict[tuple[str, int], float]:
    """Per tracklet, the smallest linking distance to a tracklet of another camera.

    Args:
        distance: N×N distances the linker clustered on (:attr:`LinkResult.distance`: dense
            ``float32`` with ``NaN`` for tracklets without a feature, or sparse candidate pairs).
        tracklets: the N tracklets, in the matrix's order.

    Returns:
        ``(camera_id, local_id)`` → distance, for tracklets with at least one other-camera
        distance (the report's histogram of linking distances).
    """
    if distance is None or not tracklets:
        return {}
    cams = np.array([t.camera_id for t in tracklets])
    if sparse.issparse(distance):
        coo = distance.tocoo()
        other = cams[coo.row] != cams[coo.col]
        best = np.full(len(tracklets), np.inf)
        np.minimum.at(best, coo.row[other], coo.data[other])
    else:
        d = np.where(cams[:, None] != cams[None, :], np.asarray(distance, np.float64), np.nan)
        d = np.where(np.isnan(d), np.inf, d)
        best = d.min(axis=1)
    return {(t.camera_id, int(t.local_id)): float(b) for t, b in zip(tracklets, best, strict=True) if np.isfinite(b)}


def _frame_sizes(result: RunResult) -> dict[str, tuple[float, float]]:
    return {c.camera_id: (float(c.width), float(c.height)) for c in result.cameras.values() if c.width and c.height}


def link_run(result: RunResult, cfg: MtmcConfig) -> LearnedTopology | None:
    """Link ``result``'s tracklets (sets ``linking`` and ``merges``); returns the topology learned from them.

    Offline with ReID and more than one camera, the camera topology is learned from the first
    pass (:func:`trackers.linking.learn_topology.learn_topology`); with ``linking.learn_topology`` the
    tracklets are then linked again under it, the config's own ``linking.topology`` entries winning.
    """
    with_reid = result.reid is not None
    sizes = _frame_sizes(result)
    tracklets = result.tracklets
    result.linking = _link(tracklets, cfg, with_reid, sizes)
    lc = cfg.linking
    learned = None
    if with_reid and lc.enabled and lc.mode == "offline" and len({t.camera_id for t in tracklets}) > 1:
        evidence = _topology_evidence(tracklets, cfg, sizes)
        learned = learn_topology(evidence, max_distance=lc.learn_max_distance, min_pairs=lc.learn_min_pairs)
        rules = learned.to_config()
        if lc.learn_topology and rules:
            topo = _merge_topology(rules, lc.topology)
            second = cfg.model_copy(update={"linking": lc.model_copy(update={"topology": topo})})
            for t in tracklets:
                t.global_id = None
            result.linking = _link(tracklets, second, with_reid, sizes)
            result.linking["method"] += f"; second pass with the learned topology ({_pair_kinds(learned)})"
    result.merges = result.linking.pop("merge_events")
    result.link_distances = result.linking.pop("nearest_distances")
    return learned


def _topology_evidence(tracklets: list[Tracklet], cfg: MtmcConfig,
                       sizes: dict[str, tuple[float, float]]) -> list[Tracklet]:
    """The tracklets whose global ids topology learning reads: the run's own, or after a ``coverage`` run
    copies linked again closest first. A transit shows as the gap between a person's tracklets closest in
    time in two cameras; coverage first gives a person's long tracklet precedence over the fragment next to
    the other camera's, which hid the adjacent pair's window more often (12 PETS09 variants of
    ``scripts/benchmark_identity.py``, ``four``: window found on 9 against 10, one false window on an
    overlapping pair against none)."""
    if cfg.linking.merge_order == "closest":
        return tracklets
    copies = [copy.copy(t) for t in tracklets]
    closest = cfg.model_copy(update={"linking": cfg.linking.model_copy(update={"merge_order": "closest"})})
    _link(copies, closest, True, sizes)
    return copies


def _merge_topology(learned: dict[str, dict[str, Any]], own: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``linking.topology`` of the config plus the learned pairs it does not mention (in either order)."""
    mine = set(validate_topology(own))
    out = {a: dict(row) for a, row in own.items()}
    for a, row in learned.items():
        for b, rule in row.items():
            if (min(a, b), max(a, b)) not in mine:
                out.setdefault(a, {})[b] = rule
    return out


def _pair_kinds(learned: LearnedTopology) -> str:
    known = [f"{a}-{b} {e.kind}" for (a, b), e in sorted(learned.pairs.items()) if e.kind != "unknown"]
    return ", ".join(known) or "no pair known"


def relink(result: RunResult, cfg: MtmcConfig) -> RunResult:
    """Link a finished run's tracklets again, with ``cfg.linking``, without decoding anything.

    The way to compare linking settings or modes (``linking.mode: offline`` vs
    ``incremental``, a threshold, a topology) on the same input: per-camera
    tracks and tracklet features stay those of ``result``. Tracklets are linked
    only when the run had a ReID model.

    Args:
        result: a :class:`~pipeline.results.RunResult` of :func:`run` (not changed).
        cfg: config whose ``linking`` and ``tracklets.min_length`` are used.

    Returns:
        A deep copy of ``result`` with new ``global_id`` s, ``linking`` summary,
        ``merges`` and the ``linking`` section of ``config`` replaced; write it
        with :mod:`pipeline.export` as :func:`run` would.

    Raises:
        ValueError: tracklet features disagree in length.
    """
    out = copy.deepcopy(result)
    for t in out.tracklets:
        t.global_id = None
    link_run(out, cfg)
    out.config = {**out.config, "linking": cfg.model_dump(by_alias=True)["linking"]}
    return out
