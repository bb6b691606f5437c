"""The training set ``mtmc adapt`` builds from a run's own tracklets: free supervision, no labels.

Tracklet association learning (Li, Zhu and Gong, "Unsupervised Person
Re-identification by Deep Learning Tracklet Association", ECCV 2018 — TAUDL): the crops
of one tracklet are one person, so every tracklet is a pseudo-identity, and two
tracklets of one camera at the same time are two people, so they are hard negatives
(put in one P×K batch, :class:`reid.sampler.PKSampler`), as are two tracklets of cameras
(or at a transit gap) the run's ``linking.topology`` forbids. :func:`pseudo_ids` joins
tracklets (e.g. confident cross-camera links, :mod:`pipeline.adapt`) into one
pseudo-identity.

Crops: per tracklet up to ``max_crops`` boxes that pass the same quality filter as the
tracklet features (:func:`pipeline.tracklets.quality_mask`: tall enough, scored high,
not cut by the border, not overlapped), evenly spaced in time; they are cut from the
run's sources (each camera decoded once) and written as
``DIR/crops/<camera>/<local id>/<frame>.jpg`` — or, when the run saved its crops
(``mtmc run --save-crops``: ``OUT/crops``, the crops behind each tracklet's feature, which
passed that filter), taken from there without decoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.config import TrackletConfig
from pipeline.errors import InputError
from pipeline.report.images import camera_spec
from pipeline.report.run_view import RunView, Segment
from pipeline.sources import CameraError, frames_at
from pipeline.tracklets import quality_mask
from reid.datasets import ReidItem
from reid.preprocess import crop_boxes
from trackers.linking.topology import PairRules


@dataclass
class AdaptSet:
    """The crops of a run's tracklets, by tracklet, and which tracklets are hard negatives of each other.

    Attributes:
        crops: ``(camera, local id)`` → the crop files written for it (at least 2).
        negatives: ``(camera, local id)`` → tracklets that cannot be the same person (one camera at the
            same time; cameras or transit gaps the run's ``linking.topology`` forbids).
        source: ``"saved"`` (the run's ``OUT/crops``) or ``"sources"`` (cut from the run's inputs).
    """

    crops: dict[tuple[str, int], list[Path]] = field(default_factory=dict)
    negatives: dict[tuple[str, int], list[tuple[str, int]]] = field(default_factory=dict)
    source: str = "sources"

    @property
    def keys(self) -> list[tuple[str, int]]:
        """The tracklets with crops, sorted."""
        return sorted(self.crops)

    def items(self, pseudo_of: dict[tuple[str, int], int]) -> list[ReidItem]:
        """Training items: every crop labelled with its tracklet's pseudo id (camera index by camera id order)."""
        cams = {c: i for i, c in enumerate(sorted({k[0] for k in self.crops}))}
        return [ReidItem(p, pseudo_of[k], cams[k[0]]) for k in self.keys for p in self.crops[k]]

    def hard_negatives(self, pseudo_of: dict[tuple[str, int], int]) -> dict[int, list[int]]:
        """Pseudo id → pseudo ids of its tracklets' same-camera, same-time tracklets."""
        out: dict[int, set[int]] = {}
        for k, others in self.negatives.items():
            for o in others:
                if k in pseudo_of and o in pseudo_of and pseudo_of[k] != pseudo_of[o]:
                    out.setdefault(pseudo_of[k], set()).add(pseudo_of[o])
        return {a: sorted(b) for a, b in out.items()}


def _good_frames(view: RunView, cfg: TrackletConfig) -> dict[tuple[str, int], list[tuple[int, np.ndarray]]]:
    """(camera, local id) → its ``(frame, xyxy)`` boxes that pass :func:`quality_mask` in their frame."""
    out: dict[tuple[str, int], list[tuple[int, np.ndarray]]] = {}
    size = {c["id"]: (int(c.get("width") or 0), int(c.get("height") or 0)) for c in view.cameras}
    by_frame: dict[tuple[str, int], list[tuple[tuple[str, int], np.ndarray, float]]] = {}
    for ident in view.identities:
        for s in ident.segments:
            for f, b, sc in zip(s.frames, s.boxes, s.scores, strict=True):
                by_frame.setdefault((s.camera, int(f)), []).append(((s.camera, s.local_id), b, float(sc)))
    for (cam, f), rows in by_frame.items():
        w, h = size.get(cam, (0, 0))
        ok = quality_mask(np.stack([r[1] for r in rows]), np.array([r[2] for r in rows]), w or 10**6, h or 10**6, cfg)
        for (key, box, _), good in zip(rows, ok, strict=True):
            if good:
                out.setdefault(key, []).append((f, box))
    return out


def _negatives(segs: list[Segment], keys: set[tuple[str, int]],
               topology: dict[str, Any] | None = None) -> dict[tuple[str, int], list[tuple[str, int]]]:
    """Tracklet → the tracklets that cannot be the same person: one camera at the same time, or cameras
    (or a transit gap) the run's ``linking.topology`` forbids (:class:`~trackers.linking.topology.PairRules`)."""
    segs = [s for s in segs if (s.camera, s.local_id) in keys]
    if len(segs) < 2:
        return {}
    rules = PairRules([s.camera for s in segs], np.array([s.start_time for s in segs], np.float64),
                      np.array([s.end_time for s in segs], np.float64), topology=topology or None)
    out: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for i, j in zip(*np.nonzero(np.triu(rules.dense(), 1)), strict=True):
        ka, kb = (segs[i].camera, segs[i].local_id), (segs[j].camera, segs[j].local_id)
        out.setdefault(ka, []).append(kb)
        out.setdefault(kb, []).append(ka)
    return out


def pseudo_ids(keys: list[tuple[str, int]], joins: list[tuple[int, int]]) -> dict[tuple[str, int], int]:
    """One pseudo id per tracklet of ``keys`` (0, 1, …), tracklets joined by ``joins`` (index pairs) sharing one."""
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in joins:
        parent[root(a)] = root(b)
    roots: dict[int, int] = {}
    return {k: roots.setdefault(root(i), len(roots)) for i, k in enumerate(keys)}


def build_adapt_set(view: RunView, root: Path, cfg: TrackletConfig, max_crops: int = 16) -> AdaptSet:
    """Cut the crops of ``view``'s tracklets into ``root/<camera>/<local id>/<frame>.jpg`` (module docstring).

    Args:
        view: the run (``trajectories.json`` with boxes and scores; ``OUT/crops`` or its sources).
        root: folder for the crops. cfg: the quality filter. max_crops: crops per tracklet at most.

    Returns:
        :class:`AdaptSet`; tracklets with fewer than 2 good crops are left out.

    Raises:
        InputError: a camera's source cannot be opened or decoded (the run's sources are needed).
    """
    segs = [s for i in view.identities for s in i.segments]
    data = AdaptSet()
    saved = saved_crops(view.out / "crops", {(s.camera, s.local_id) for s in segs}, max_crops)
    if saved:
        data.crops, data.source = saved, "saved"
    else:
        good = {k: v for k, v in _good_frames(view, cfg).items() if len(v) >= 2}
        wanted: dict[str, dict[int, list[tuple[tuple[str, int], np.ndarray]]]] = {}
        for key, boxes in good.items():
            for f, b in [boxes[i] for i in _spaced(len(boxes), max_crops)]:
                wanted.setdefault(key[0], {}).setdefault(f, []).append((key, b))
        for cam in view.cameras:
            if cam["id"] in wanted:
                _cut(cam, wanted[cam["id"]], root, data)
    data.crops = {k: v for k, v in data.crops.items() if len(v) >= 2}
    topology = ((view.summary.get("config") or {}).get("linking") or {}).get("topology")
    data.negatives = _negatives(segs, set(data.crops), topology)
    return data


def _spaced(n: int, k: int) -> list[int]:
    """At most ``k`` indices of ``range(n)``, evenly spaced, first and last included."""
    return sorted({int(i) for i in np.linspace(0, n - 1, min(k, n)).astype(int)}) if n else []


def saved_crops(root: Path, keys: set[tuple[str, int]], max_crops: int) -> dict[tuple[str, int], list[Path]]:
    """The crops ``mtmc run --save-crops`` wrote (``root/<global id>/<camera>/<local id>_<frame>.jpg``,
    :mod:`pipeline.crops`) of the tracklets ``keys``, at most ``max_crops`` each, evenly spaced in time;
    empty when the run saved none."""
    found: dict[tuple[str, int], list[tuple[int, Path]]] = {}
    for path in root.glob("*/*/*_*.jpg") if root.is_dir() else []:
        local, _, frame = path.stem.partition("_")
        if local.isdigit() and frame.isdigit() and (path.parent.name, int(local)) in keys:
            found.setdefault((path.parent.name, int(local)), []).append((int(frame), path))
    out = {}
    for key, items in found.items():
        items.sort()
        out[key] = [items[i][1] for i in _spaced(len(items), max_crops)]
    return out


def _cut(cam: dict, wanted: dict[int, list[tuple[tuple[str, int], np.ndarray]]], root: Path, data: AdaptSet) -> None:
    try:
        for frame in frames_at(camera_spec(cam), wanted):
            if frame.image is None:
                raise InputError(f"camera {cam['id']} has no pixels (detections only): mtmc adapt needs images")
            here = wanted[frame.index]
            crops, _ = crop_boxes(frame.image, np.stack([b for _, b in here]))
            for (key, _), crop in zip(here, crops, strict=True):
                if crop is not None:
                    path = root / cam["id"] / str(key[1]) / f"{frame.index:06d}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(path), crop)
                    data.crops.setdefault(key, []).append(path)
    except CameraError as exc:
        raise InputError(f"{exc}; mtmc adapt cuts its crops from the run's sources: keep them where the run "
                         "read them, or run mtmc run with --save-crops") from None
