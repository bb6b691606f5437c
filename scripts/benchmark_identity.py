#!/usr/bin/env python
"""Held-out identity benchmark: per-camera and cross-camera scores over scene variants, and
leave-one-sequence-out (LOSO) choice of defaults.

Scene variants are cut in memory from every MOTChallenge sequence of ``../shared`` with pixels
(PETS09-S2L1 frames 1–300, TUD-Campus, TUD-Stadtmitte), the way ``scripts/make_multicam.py``
cuts them, but without the lossy video round trip:

* five views per source frame: ``full`` (the whole frame) and the four crops of
  ``make_multicam.crop_layout`` (``ov_left``/``ov_right`` share the middle 20 % of the width,
  ``dj_left``/``dj_right`` leave a 10 % gap nobody sees); each view gets its own
  colour/brightness jitter (``make_multicam.camera_jitter`` with the variant's seed);
* layouts: ``single`` (``full``: one camera, only same-camera re-entry links possible),
  ``overlap`` (the ``ov`` pair), ``adjacent`` (the ``dj`` pair), ``four`` (all four crops);
* image scale (``--scales``, default 1.0 / 0.625 / 0.5: PETS09's 768×576 becomes 480×360
  and 384×288; people 40–300 px tall), frame step (``--steps``, 1 = native, 2 = half the
  frame rate: 7 → 3.5 fps, 25 → 12.5 fps) and jitter seed (``--seeds``);
  ``--extra-scale SEQ=S`` adds scales for one sequence (TUD's people are 128–296 px tall at
  scale 1, PETS09's 57–103 px: ``TUD-Campus=0.3`` makes them 41–89 px, as small as PETS09's at
  0.5–0.625, so that a choice that matters only for small people can be made on either).

Each camera of a variant runs through the real stage code (:class:`pipeline.stages.CameraState`,
:func:`pipeline.stages.track_and_embed`) and linking (:func:`pipeline.runner.relink`) with the
config under test; scores come from TrackEval through :func:`pipeline.mot_eval.evaluate`.
Printed per variant and layout: per-camera IDF1/HOTA/MOTA of the tracker alone (linking off),
per-camera IDF1 after linking, the drop linking caused (worst camera), cross-camera
IDF1/HOTA and the cross-camera IDF1 of perfect linking of the same tracklets (``oracle``,
:func:`oracle_rows`); then per layout the mean and the worst variant, cross / per-camera
(``X/per``: per-camera IDF1 averaged over the cameras), cross / pooled per-camera (``X/pool``:
TrackEval's COMBINED IDF1 of the cameras after linking, identity counts summed over them, which
the cross-camera IDF1 cannot exceed: its global matching, restricted to one camera, is a matching
of that camera) and cross / oracle.

Caches (``--cache``, default ``~/.cache/mtmc/benchmark_identity``): detections of every view
frame at ``CACHE_CONF`` (filtering at a higher ``detector.conf`` afterwards gives exactly what
the detector would, since greedy NMS never lets a lower score suppress a higher one), keyed by
the detector file, sequence, scale, seed and view; ReID features keyed by the model file and a
hash of the crop's pixels. Re-tuning tracking or linking therefore runs neither model again.

``--loso KEY=V1,V2,...`` (repeatable; dotted config keys) runs every candidate value on every
variant, chooses per fold the value with the best mean identity score on the two other
sequences, and reports it on the held-out one (mean and worst variant), beside the current
default. The identity score of a variant is the mean over its layouts of cross-camera IDF1
(multi-camera layouts) and per-camera IDF1 after linking (``single``).

``--reference`` adds ultralytics BoT-SORT (its botsort.yaml defaults, 1 s lost buffer) given the
same OSNet features of every detection it can match in its first stage (score ≥ 0.25), per camera
(the reference of ``scripts/benchmark_trackers.py``).

``--boxmot PYTHON`` adds BoxMOT's BoT-SORT, per camera, run by ``scripts/boxmot_reference.py`` in BoxMOT's
own virtual environment (``PYTHON`` is its interpreter; BoxMOT is no dependency of mtmc): BoxMOT's
defaults (sparse optical flow camera-motion compensation, appearance in the first association), a
lost buffer of round(fps) frames (~1 s), the same OSNet features (it uses them in its first association
only, detections ≥ its ``track_high_thresh`` 0.63, all of which have one), detections ≥ 0.1 and
(``--boxmot-conf``) ≥ 0.3. One worker process per variant tracks all five views. Set BoxMOT up once with
``python3 -m venv /work/boxmot-venv && /work/boxmot-venv/bin/pip install boxmot``.

Examples::

    python scripts/benchmark_identity.py                                  # defaults, all variants
    python scripts/benchmark_identity.py --seqs TUD-Campus --scales 1.0 --steps 1 --seeds 0
    python scripts/benchmark_identity.py --loso detector.conf=0.1,0.2,0.3 --loso linking.threshold=0.3,0.4
    python scripts/benchmark_identity.py --loso tracklets.min_height=48,32 \\
        --extra-scale TUD-Campus=0.3 --extra-scale TUD-Stadtmitte=0.3   # TUD people as small as PETS09's
    python scripts/benchmark_identity.py --reference --boxmot /work/boxmot-venv/bin/python
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "scripts"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import boxmot_reference  # noqa: E402  (its file helpers need numpy only; BoxMOT itself runs in its own venv)
import make_multicam  # noqa: E402

from pipeline.config import MtmcConfig, load_config  # noqa: E402
from pipeline.config import _deep_merge as deep_merge  # noqa: E402
from pipeline.mot_eval import evaluate  # noqa: E402
from pipeline.mot_format import SeqInfo, read_mot_txt, write_mot_txt  # noqa: E402
from pipeline.results import CameraResult, RunResult  # noqa: E402
from pipeline.sources import CameraSpec, discover_cameras, iter_frames  # noqa: E402
from pipeline.stages import CameraState, track_and_embed  # noqa: E402
from pipeline.types import Detections, Frame, Tracklet  # noqa: E402
from reid.extractor import FeatureExtractor  # noqa: E402
from trackers.matching import iou_matrix  # noqa: E402

SHARED = REPO.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "MOT15"
DEFAULT_MODELS = SHARED / "models"
PIXEL_SEQS = ("PETS09-S2L1", "TUD-Campus", "TUD-Stadtmitte")
VIEWS = ("full", "ov_left", "ov_right", "dj_left", "dj_right")
LAYOUTS: dict[str, tuple[str, ...]] = {
    "single": ("full",),
    "overlap": ("ov_left", "ov_right"),
    "adjacent": ("dj_left", "dj_right"),
    "four": ("ov_left", "ov_right", "dj_left", "dj_right"),
}
CACHE_CONF = 0.05
"""Detections are cached down to this score; runs filter them at their own ``detector.conf``."""
REF_REID_MIN_SCORE = 0.25
"""The reference BoT-SORT uses appearance in its first stage only (``track_high_thresh`` 0.25)."""
REF_CONF = 0.1
"""Detections fed to the reference trackers (as ``benchmark_trackers``)."""
BOXMOT_CONFS = (0.1, 0.3)
"""Detection thresholds of the BoxMOT runs; the first is the one reported as ``boxmot``."""
BOXMOT_WORKER = REPO / "scripts" / "boxmot_reference.py"
BOXMOT_SETUP = "python3 -m venv /work/boxmot-venv && /work/boxmot-venv/bin/pip install boxmot"


@dataclass(frozen=True)
class Variant:
    """One scene variant: a sequence at an image scale, frame step and jitter seed."""

    seq: str
    scale: float
    step: int
    seed: int

    @property
    def key(self) -> str:
        """Short printable name, e.g. ``PETS09-S2L1 x0.625 /2 s0``."""
        return f"{self.seq} x{self.scale:g} /{self.step} s{self.seed}"


@dataclass
class SourceSeq:
    """A decoded source sequence: frames (H×W×3 uint8 BGR), gt rows (N×10), frame rate (frames/s)."""

    name: str
    frames: list[np.ndarray]
    gt: np.ndarray
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.frames[0].shape[1], self.frames[0].shape[0]


def load_source(data: Path, name: str) -> SourceSeq:
    """Decode every frame with pixels of ``data/name`` and read its gt (frames beyond the pixels dropped)."""
    spec = discover_cameras([data / name])[0]
    frames = [f.image for f in iter_frames(spec) if f.image is not None]
    gt = read_mot_txt(data / name / "gt" / "gt.txt")
    assert spec.seqinfo is not None
    return SourceSeq(name, frames, gt[gt[:, 0] <= len(frames)], spec.seqinfo.frame_rate)


def view_crops(width: int, height: int) -> dict[str, make_multicam.Crop]:
    """The five views of a ``width`` × ``height`` frame (source pixels)."""
    crops = {c.name: c for c in make_multicam.crop_layout(width, height, "both")}
    crops["full"] = make_multicam.Crop("full", 0, 0, width // 2 * 2, height // 2 * 2)
    return crops


def _scaled_size(crop: make_multicam.Crop, scale: float) -> tuple[int, int]:
    return max(16, int(round(crop.width * scale / 2)) * 2), max(16, int(round(crop.height * scale / 2)) * 2)


def view_image(img: np.ndarray, crop: make_multicam.Crop, scale: float, jitter: tuple[np.ndarray, np.ndarray]
               ) -> np.ndarray:
    """One view of a source frame: crop, resize by ``scale`` (area interpolation), colour jitter."""
    part = img[crop.y0:crop.y1, crop.x0:crop.x1]
    if scale != 1.0:
        part = cv2.resize(part, _scaled_size(crop, scale), interpolation=cv2.INTER_AREA)
    return make_multicam._apply_jitter(part, *jitter)


def view_gt(src: SourceSeq, crop: make_multicam.Crop, scale: float, step: int) -> np.ndarray:
    """gt rows of one view: boxes moved into the crop and scaled; with ``step`` > 1 every step-th
    source frame kept (source frame ``1 + k·step`` becomes frame ``k + 1``)."""
    rows = make_multicam.crop_rows(src.gt, crop, src.size)
    sx, sy = (np.array(_scaled_size(crop, scale), float) / (crop.width, crop.height)) if scale != 1.0 else (1, 1)
    rows[:, [2, 4]] *= sx
    rows[:, [3, 5]] *= sy
    rows = rows[(rows[:, 0] - 1) % step == 0]
    rows[:, 0] = (rows[:, 0] - 1) // step + 1
    return rows


def file_key(path: Path) -> str:
    """Short key of a model file: size and a hash of its first MiB."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    return f"{path.stem}-{path.stat().st_size}-{hashlib.blake2b(head, digest_size=6).hexdigest()}"


class CachedReid(FeatureExtractor):
    """A ReID extractor whose features are cached by crop pixels (in memory and in one ``.npz``).

    Args:
        inner: the real extractor. path: cache file (``.npz``); loaded when it exists.
    """

    def __init__(self, inner: FeatureExtractor, path: Path) -> None:
        self.inner, self.path = inner, path
        self.name, self.dim, self.batch, self.input_hw = inner.name, inner.dim, inner.batch, inner.input_hw
        self.store: dict[bytes, np.ndarray] = {}
        self.misses = 0
        if path.is_file():
            z = np.load(path)
            store = {bytes(k): f for k, f in zip(z["keys"], z["feats"], strict=True)}  # keys: M×16 uint8
            self.store = {k: f for k, f in store.items() if len(k) == 16}

    def _forward(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - embed() is overridden
        return self.inner._forward(batch)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """As :meth:`FeatureExtractor.embed`, computing only crops not seen before."""
        keys = [hashlib.blake2b(np.ascontiguousarray(c).tobytes() + str(c.shape).encode(), digest_size=16).digest()
                for c in crops]
        todo = [i for i, k in enumerate(keys) if k not in self.store]
        if todo:
            feats = self.inner.embed([crops[i] for i in todo])
            for i, f in zip(todo, feats, strict=True):
                self.store[keys[i]] = f
            self.misses += len(todo)
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.store[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        """Write the cache file (atomically)."""
        if not self.store:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        keys = np.frombuffer(b"".join(self.store), np.uint8).reshape(-1, 16)  # not "S16": it strips trailing NULs
        np.savez(tmp, keys=keys, feats=np.stack(list(self.store.values())))
        tmp.replace(self.path)


@dataclass
class Bench:
    """Models, caches and decoded sources shared by every run of one benchmark process."""

    data: Path
    detector_path: Path
    reid_path: Path
    cache: Path
    sources: dict[str, SourceSeq] = field(default_factory=dict)
    _detector: Any = None
    reid: CachedReid | None = None
    tracked: dict[tuple[Variant, str], dict[str, CameraResult]] = field(default_factory=dict)
    alone: dict[tuple[Variant, str], dict[str, dict[str, float]]] = field(default_factory=dict)
    oracle: dict[tuple[Variant, str], dict[str, float]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=lambda: {"detect": 0.0, "track": 0.0, "eval": 0.0,
                                                                "boxmot": 0.0})

    def source(self, name: str) -> SourceSeq:
        """The decoded sequence ``name`` (decoded once)."""
        if name not in self.sources:
            self.sources[name] = load_source(self.data, name)
        return self.sources[name]

    def extractor(self) -> CachedReid:
        """The cached ReID extractor (built on first use)."""
        if self.reid is None:
            from reid.onnx_backend import OnnxReidExtractor

            inner = OnnxReidExtractor(self.reid_path, batch=32)
            self.reid = CachedReid(inner, self.cache / f"reid-{file_key(self.reid_path)}.npz")
        return self.reid

    def detections(self, v: Variant, view: str) -> list[Detections]:
        """Detections (score ≥ :data:`CACHE_CONF`) of every source frame of one view, cached on disk."""
        path = self.cache / f"det-{file_key(self.detector_path)}" / f"{v.seq}-x{v.scale:g}-s{v.seed}-{view}.npz"
        if path.is_file():
            z = np.load(path)
            xyxy, score, frame = z["xyxy"], z["score"], z["frame"]
            return [Detections(xyxy[frame == i], score[frame == i], np.zeros(int((frame == i).sum()), np.int64))
                    for i in range(int(z["n"]))]
        t = time.perf_counter()
        out = self._detect_view(v, view)
        self.timings["detect"] += time.perf_counter() - t
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = np.concatenate([np.full(len(d), i) for i, d in enumerate(out)]).astype(np.int32)
        np.savez(path.with_suffix(".tmp.npz"), n=len(out), frame=frame,
                 xyxy=np.concatenate([d.xyxy for d in out]), score=np.concatenate([d.score for d in out]))
        path.with_suffix(".tmp.npz").replace(path)
        return out

    def _detect_view(self, v: Variant, view: str) -> list[Detections]:
        if self._detector is None:
            from pipeline.config import DetectorConfig
            from pipeline.detectors.onnx_yolo import OnnxYoloDetector

            self._detector = OnnxYoloDetector(DetectorConfig(spec=f"yolox:{self.detector_path}", conf=CACHE_CONF))
        out = []
        for i, img in enumerate(self.view_frames(v, view, step=1)):
            out += self._detector.detect([Frame(view, i, 0.0, img, img.shape[1], img.shape[0])])
        return out

    def view_frames(self, v: Variant, view: str, step: int | None = None) -> Iterable[np.ndarray]:
        """The view's images, every ``step``-th source frame (default the variant's step)."""
        src = self.source(v.seq)
        crop = view_crops(*src.size)[view]
        jitter = make_multicam.camera_jitter(len(VIEWS), v.seed)[VIEWS.index(view)]
        for img in src.frames[:: step or v.step]:
            yield view_image(img, crop, v.scale, jitter)


def _spec(view: str, fps: float, length: int, width: int, height: int) -> CameraSpec:
    info = SeqInfo(view, fps, length, width, height)
    return CameraSpec(camera_id=view, path=Path(view), kind="images", seqinfo=info)


def track_views(bench: Bench, v: Variant, cfg: MtmcConfig) -> dict[str, CameraResult]:
    """Run every view of ``v`` through the pipeline's tracking and embedding stages with ``cfg``.

    Returns:
        view → :class:`CameraResult` with its tracklets (features from the cached ReID model).
    """
    src = bench.source(v.seq)
    fps = src.fps / v.step
    dets = {view: bench.detections(v, view)[:: v.step] for view in VIEWS}
    t = time.perf_counter()
    frames = {view: bench.view_frames(v, view) for view in VIEWS}
    n = len(dets["full"])
    states: dict[str, CameraState] = {}
    stages = dict.fromkeys(("track", "reid"), 0.0)
    conf = cfg.detector.conf
    for k in range(n):
        batch, batch_dets = [], []
        for view in VIEWS:
            img = next(frames[view])
            if view not in states:
                states[view] = CameraState.for_spec(_spec(view, fps, n, img.shape[1], img.shape[0]), cfg)
            batch.append(Frame(view, k, k / fps, img, img.shape[1], img.shape[0]))
            d = dets[view][k]
            batch_dets.append(d.select(d.score >= conf))
        track_and_embed(batch, batch_dets, states, bench.extractor(), stages)
    bench.timings["track"] += time.perf_counter() - t
    return {view: st.finish(None) for view, st in states.items()}


def link_layout(cams: dict[str, CameraResult], views: Sequence[str], cfg: MtmcConfig) -> RunResult:
    """Link the tracklets of ``views`` with ``cfg.linking`` (:func:`pipeline.runner.relink`)."""
    from pipeline.runner import relink

    sub = {view: copy.copy(cams[view]) for view in views}
    for c in sub.values():
        c.tracklets = [copy.copy(t) for t in c.tracklets]
    base = RunResult(cameras=sub, stages={}, wall_s=0.0, detector="", config=cfg.model_dump(by_alias=True),
                     reid="cached")
    return relink(base, cfg)


class Scorer:
    """TrackEval scoring of in-memory rows of one variant (gt written once to a temporary folder)."""

    def __init__(self, bench: Bench, v: Variant, tmp: Path) -> None:
        src = bench.source(v.seq)
        crops = view_crops(*src.size)
        self.tmp = tmp
        self.n = len(src.frames[:: v.step])
        self.gt = {}
        for view in VIEWS:
            self.gt[view] = tmp / "gt" / f"{view}.txt"
            self.gt[view].parent.mkdir(parents=True, exist_ok=True)
            np.savetxt(self.gt[view], view_gt(src, crops[view], v.scale, v.step), fmt="%.6g", delimiter=",")
        self.bench = bench

    def oracle(self, cams: dict[str, CameraResult], views: Sequence[str], tag: str) -> float:
        """Cross-camera IDF1 (%) of :func:`oracle_rows` over ``views``."""
        gt = {view: np.loadtxt(self.gt[view], delimiter=",", ndmin=2) for view in views}
        rows = oracle_rows({view: cams[view] for view in views}, gt)
        return self.score(rows, f"{tag}-oracle", cross=True).cross_camera.idf1

    def score(self, rows: dict[str, np.ndarray], tag: str, cross: bool) -> Any:
        """Score ``view → N×7 rows`` (frame, id, tlwh, score); returns :class:`pipeline.mot_eval.EvalResult`."""
        t = time.perf_counter()
        pred = {}
        for view, r in rows.items():
            pred[view] = self.tmp / tag / f"{view}.txt"
            write_mot_txt(pred[view], r)
        res = evaluate({v: self.gt[v] for v in rows}, pred, frames=dict.fromkeys(rows, self.n),
                       cross_camera=cross)
        self.bench.timings["eval"] += time.perf_counter() - t
        return res


@dataclass(frozen=True)
class BoxmotRef:
    """How to run the BoxMOT reference: its venv's interpreter, the detection thresholds, its version."""

    python: Path
    confs: tuple[float, ...] = BOXMOT_CONFS
    version: str = ""


class BoxmotError(RuntimeError):
    """BoxMOT's interpreter is missing, lacks BoxMOT, or its worker failed (a one-line message)."""


def score_variant(bench: Bench, v: Variant, cfg: MtmcConfig, reference: bool = False,
                  boxmot: BoxmotRef | None = None) -> dict[str, Any]:
    """All scores of one variant under ``cfg``: per view tracker-alone, per layout after linking.

    Returns:
        ``{"tracker": {view: {IDF1, HOTA, MOTA}}, "layouts": {layout: {"per_camera": {view: IDF1},
        "drop": worst linked − alone (points), "cross_idf1", "cross_hota", "same_camera_links",
        "identities"}}, "reference": {view: {IDF1, HOTA, MOTA}} (with ``reference``), "boxmot": the same
        at ``boxmot.confs[0]`` and "boxmot_by_conf": {conf: {view: ...}} (with ``boxmot``)}``; IDF1 etc. in %.
    """
    key = (v, json.dumps({k: val for k, val in cfg.model_dump(by_alias=True).items() if k != "linking"},
                         sort_keys=True))
    if key not in bench.tracked:  # linking-only changes re-use the tracks
        bench.tracked[key] = track_views(bench, v, cfg)
    cams = bench.tracked[key]
    out: dict[str, Any] = {"variant": v.key, "layouts": {}}
    with tempfile.TemporaryDirectory(prefix="bench_id_") as tmp:
        sc = Scorer(bench, v, Path(tmp))
        if key not in bench.alone:
            alone = sc.score({view: c.rows for view, c in cams.items()}, "alone", cross=False)
            bench.alone[key] = {view: _three(alone.per_camera[view]) for view in VIEWS}
        out["tracker"] = bench.alone[key]
        if key not in bench.oracle:  # depends on the tracks only, not on linking
            bench.oracle[key] = {name: sc.oracle(cams, views, name) for name, views in LAYOUTS.items()
                                 if len(views) > 1}
        for name, views in LAYOUTS.items():
            out["layouts"][name] = _layout_scores(sc, link_layout(cams, views, cfg), name, out["tracker"],
                                                   bench.oracle[key].get(name))
        if reference:
            out["reference"] = reference_scores(bench, v, sc)
        if boxmot is not None:
            by_conf = boxmot_scores(bench, v, sc, boxmot, Path(tmp))
            out["boxmot"], out["boxmot_by_conf"] = by_conf[f"{boxmot.confs[0]:g}"], by_conf
            out["boxmot_version"] = boxmot.version
    return out


def majority_gt_id(t: Tracklet, gt_by_frame: dict[int, np.ndarray], min_iou: float = 0.5) -> tuple[int, int]:
    """The gt identity a tracklet follows most: ``(gt id, boxes matched to it)``; ``(-1, 0)`` for none.

    Args:
        t: a tracklet (0-based ``frames``, ``xyxy`` boxes in pixels).
        gt_by_frame: 1-based frame → K×10 gt rows (``tlwh`` in columns 2–5) of that frame.
        min_iou: a box votes for the gt box it overlaps most, when that IoU is at least this.
    """
    votes: dict[int, int] = {}
    for f, box in zip(t.frames.tolist(), t.boxes, strict=True):
        g = gt_by_frame.get(f + 1)
        if g is None:
            continue
        iou = iou_matrix(box[None], np.column_stack([g[:, 2:4], g[:, 2:4] + g[:, 4:6]]))[0]
        k = int(np.argmax(iou))
        if iou[k] >= min_iou:
            votes[int(g[k, 1])] = votes.get(int(g[k, 1]), 0) + 1
    best = max(votes, key=lambda g: votes[g], default=-1)
    return best, votes.get(best, 0)


def oracle_rows(cams: dict[str, CameraResult], gt: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MOTChallenge rows of ``cams`` linked perfectly under ``same_camera: never``: per camera, the
    tracklet that follows a gt person longest gets that person's id, every other tracklet an id of
    its own. Its cross-camera IDF1 is the most linking can reach on these tracks.

    Args:
        cams: view → camera result (tracklets not changed). gt: view → N×10 gt rows (1-based frames).

    Returns:
        view → N×7 ``float64`` MOTChallenge rows (frame, id, ``tlwh`` pixels, score), ids: gt ids for
        the chosen tracklets, ids from 1 000 000 up for the others.
    """
    out, own = {}, 1_000_000
    for view, c in cams.items():
        by_frame = {int(f): gt[view][gt[view][:, 0] == f] for f in np.unique(gt[view][:, 0])}
        labels = [majority_gt_id(t, by_frame) for t in c.tracklets]
        best: dict[int, int] = {}
        for k, (g, n) in enumerate(labels):
            if g >= 0 and (g not in best or n > labels[best[g]][1]):
                best[g] = k
        oc = copy.copy(c)
        oc.tracklets = [copy.copy(t) for t in c.tracklets]
        for k, t in enumerate(oc.tracklets):
            t.global_id = labels[k][0] if best.get(labels[k][0]) == k else own + k
        own += len(c.tracklets)
        out[view] = oc.rows
    return out


def _layout_scores(sc: Scorer, linked: RunResult, name: str, alone: dict[str, dict[str, float]],
                   oracle: float | None) -> dict[str, Any]:
    """Scores of layout ``name`` after linking (see :func:`score_variant`); ``oracle``: the layout's
    cross-camera IDF1 under perfect linking (multi-camera layouts)."""
    views = LAYOUTS[name]
    res = sc.score({view: linked.cameras[view].rows for view in views}, name, cross=len(views) > 1)
    per = {view: res.per_camera[view].idf1 for view in views}
    lay = {"per_camera": per, "combined_idf1": res.combined.idf1,
           "drop": min(per[x] - alone[x]["IDF1"] for x in views),
           "identities": linked.linking.get("identities", 0),
           "same_camera_links": linked.linking.get("same_camera_links", 0),
           "no_feature": linked.linking.get("tracklets_without_feature", 0) / max(1, linked.linking.get(
               "tracklets", 0)),
           "threshold": linked.linking.get("threshold")}
    if res.cross_camera is not None:
        lay["cross_idf1"], lay["cross_hota"] = res.cross_camera.idf1, res.cross_camera.hota
        lay["oracle_idf1"] = oracle
    return lay


def _three(s: Any) -> dict[str, float]:
    return {"IDF1": s.idf1, "HOTA": s.hota, "MOTA": s.mota}


def reference_inputs(bench: Bench, v: Variant, view: str) -> Iterator[tuple[np.ndarray, Detections, np.ndarray]]:
    """What the reference trackers see of one view, frame by frame: the image (H×W×3 uint8 BGR), the
    detections ≥ :data:`REF_CONF` and their OSNet features (N×D float32; zero rows below
    :data:`REF_REID_MIN_SCORE` or where no crop could be cut)."""
    from reid.preprocess import crop_boxes

    for img, d in zip(bench.view_frames(v, view), bench.detections(v, view)[:: v.step], strict=True):
        d = d.select(d.score >= REF_CONF)
        feats = np.zeros((len(d), bench.extractor().dim), np.float32)
        want = np.flatnonzero(d.score >= REF_REID_MIN_SCORE)
        crops, ok = crop_boxes(img, d.xyxy[want])
        if ok.any():
            feats[want[ok]] = bench.extractor().embed([c for c, g in zip(crops, ok, strict=True) if g])
        yield img, d, feats


def reference_scores(bench: Bench, v: Variant, sc: Scorer) -> dict[str, dict[str, float]]:
    """ultralytics BoT-SORT + the same OSNet features (detections ≥ 0.1, as ``benchmark_trackers``), per view."""
    import benchmark_trackers as bt

    fps = bench.source(v.seq).fps / v.step
    rows = {}
    for view in VIEWS:
        step = bt._ul_factory("botsort", fps, with_reid=True, model="auto")
        out = []
        for k, (_img, d, feats) in enumerate(reference_inputs(bench, v, view)):
            for x1, y1, x2, y2, tid, s in step(bt.FrameInput(d.xyxy, d.score, feats), k):
                out.append((k + 1, tid, x1, y1, x2 - x1, y2 - y1, s))
        rows[view] = np.array(out, np.float64).reshape(-1, 7)
    res = sc.score(rows, "reference", cross=False)
    return {view: _three(res.per_camera[view]) for view in VIEWS}


def write_boxmot_inputs(bench: Bench, v: Variant, folder: Path) -> None:
    """Every view's worker input (``scripts/boxmot_reference.py``'s format) of ``v`` into ``folder``."""
    fps = bench.source(v.seq).fps / v.step
    for view in VIEWS:
        frames, dets, feats = [], [], []
        for img, d, f in reference_inputs(bench, v, view):
            frames.append(img)
            dets.append(d)
            feats.append(f)
        frame = np.concatenate([np.full(len(d), k, np.int32) for k, d in enumerate(dets)])
        boxmot_reference.write_view_input(folder, view, fps, frame, np.concatenate([d.xyxy for d in dets]),
                                          np.concatenate([d.score for d in dets]), np.concatenate(feats), frames)


def run_boxmot_worker(ref: BoxmotRef, in_dir: Path, out_dir: Path) -> dict[float, dict[str, np.ndarray]]:
    """Run the worker once over every view of ``in_dir``; returns conf → view → N×7 MOTChallenge rows.

    Raises:
        BoxmotError: the interpreter is missing or the worker failed (its last line of output quoted).
    """
    cmd = [str(ref.python), str(BOXMOT_WORKER), str(in_dir), str(out_dir), "--conf", *(f"{c:g}" for c in ref.confs)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise BoxmotError(_boxmot_hint(ref.python, str(e))) from e
    if res.returncode != 0:
        last = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        raise BoxmotError(f"BoxMOT worker failed with {ref.python} (exit {res.returncode}): {last}")
    views = boxmot_reference.views_in(in_dir)
    return {c: {view: boxmot_reference.read_rows(boxmot_reference.rows_path(out_dir, view, c)) for view in views}
            for c in ref.confs}


def boxmot_scores(bench: Bench, v: Variant, sc: Scorer, ref: BoxmotRef, tmp: Path
                  ) -> dict[str, dict[str, dict[str, float]]]:
    """BoxMOT BoT-SORT per view of ``v`` at every ``ref.confs``: ``{f"{conf:g}": {view: {IDF1, HOTA, MOTA}}}``."""
    write_boxmot_inputs(bench, v, tmp / "boxmot-in")
    t = time.perf_counter()
    rows = run_boxmot_worker(ref, tmp / "boxmot-in", tmp / "boxmot-out")
    bench.timings["boxmot"] += time.perf_counter() - t
    out = {}
    for conf, per_view in rows.items():
        res = sc.score(per_view, f"boxmot-c{conf:g}", cross=False)
        out[f"{conf:g}"] = {view: _three(res.per_camera[view]) for view in per_view}
    return out


def _boxmot_hint(python: Path, why: str) -> str:
    return (f"BoxMOT python {python}: {why}; create BoxMOT's own venv with `{BOXMOT_SETUP}` "
            f"and pass --boxmot /work/boxmot-venv/bin/python")


def probe_boxmot(python: Path, confs: Sequence[float] = BOXMOT_CONFS) -> BoxmotRef:
    """Check that ``python`` exists and has BoxMOT (the worker's ``--version``); returns the run settings.

    Raises:
        BoxmotError: with a one-line message naming ``python`` and how to set BoxMOT up.
    """
    if not python.is_file():
        raise BoxmotError(_boxmot_hint(python, "not found"))
    try:
        res = subprocess.run([str(python), str(BOXMOT_WORKER), "--version"], capture_output=True, text=True,
                             timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BoxmotError(_boxmot_hint(python, f"cannot run it ({e})")) from e
    if res.returncode != 0 or not res.stdout.strip():
        raise BoxmotError(_boxmot_hint(python, "boxmot is not installed there"))
    return BoxmotRef(python, tuple(confs), res.stdout.strip().splitlines()[-1])


def identity_score(r: dict[str, Any]) -> float:
    """Mean over layouts of cross-camera IDF1 (multi-camera) or per-camera IDF1 after linking (single)."""
    vals = [lay.get("cross_idf1", float(np.mean(list(lay["per_camera"].values())))) for lay in r["layouts"].values()]
    return float(np.mean(vals))


def variants(seqs: Sequence[str], scales: Sequence[float], steps: Sequence[int], seeds: Sequence[int],
             extra_scales: dict[str, list[float]] | None = None) -> list[Variant]:
    """Every combination, sequence-major; ``extra_scales`` adds scales for single sequences (``--extra-scale``)."""
    extra = extra_scales or {}
    return [Variant(*c) for seq in seqs
            for c in itertools.product([seq], [*scales, *extra.get(seq, [])], steps, seeds)]


def run_setting(bench: Bench, vs: Sequence[Variant], cfg: MtmcConfig, reference: bool = False,
                label: str = "", boxmot: BoxmotRef | None = None) -> list[dict[str, Any]]:
    """Score every variant with one config; prints a progress line per variant to stderr."""
    out = []
    for v in vs:
        t = time.perf_counter()
        out.append(score_variant(bench, v, cfg, reference, boxmot))
        print(f"  [{label}] {v.key}: identity {identity_score(out[-1]):.1f} ({time.perf_counter() - t:.1f} s)",
              file=sys.stderr, flush=True)
    if bench.reid is not None:
        bench.reid.save()
    return out


def variant_table(results: Sequence[dict[str, Any]]) -> str:
    """One line per variant and layout, then the mean and worst case per layout."""
    head = (f"{'variant':<28} {'layout':<9} {'trk IDF1':>8} {'HOTA':>5} {'MOTA':>5} {'linked':>7} {'drop':>6} "
            f"{'X-IDF1':>7} {'X-HOTA':>7} {'oracle':>6} {'ref IDF1':>8} {'bm IDF1':>7} {'thr':>5} {'nofeat':>6}")
    lines = [head, "-" * len(head)]
    per_layout: dict[str, list[tuple[float, ...] | tuple[Any, ...]]] = {n: [] for n in LAYOUTS}
    for r in results:
        for name, lay in r["layouts"].items():
            views = LAYOUTS[name]
            trk = {m: float(np.mean([r["tracker"][x][m] for x in views])) for m in ("IDF1", "HOTA", "MOTA")}
            linked = float(np.mean(list(lay["per_camera"].values())))
            ref, bm = (float(np.mean([r[k][x]["IDF1"] for x in views])) if k in r else float("nan")
                       for k in ("reference", "boxmot"))
            cross = lay.get("cross_idf1", float("nan"))
            lines.append(f"{r['variant']:<28} {name:<9} {trk['IDF1']:8.1f} {trk['HOTA']:5.1f} {trk['MOTA']:5.1f} "
                         f"{linked:7.1f} {lay['drop']:+6.1f} {cross:7.1f} {lay.get('cross_hota', float('nan')):7.1f} "
                         f"{lay.get('oracle_idf1', float('nan')):6.1f} {ref:8.1f} {bm:7.1f} "
                         f"{lay.get('threshold') or float('nan'):5.2f} "
                         f"{100 * lay.get('no_feature', 0):5.0f}%")
            per_layout[name].append((linked, lay["drop"], cross, lay.get("oracle_idf1", float("nan")),
                                     lay.get("combined_idf1", float("nan")), r["variant"]))
    lines.append("")
    lines.append(f"{'layout':<9} {'linked mean':>11} {'worst':>6} {'drop worst':>10} {'X-IDF1 mean':>11} "
                 f"{'X worst':>7} {'oracle':>6} {'X/per':>5} {'X/pool':>6} {'X/oracle':>8}  "
                 "worst variant (X-IDF1, else linked)")
    for name, vals in per_layout.items():
        if not vals:
            continue
        arr = np.array([x[:5] for x in vals], float)
        key = 2 if not np.isnan(arr[:, 2]).all() else 0
        worst = vals[int(np.nanargmin(arr[:, key]))][5]
        cross = np.nanmean(arr[:, 2]) if key == 2 else float("nan")
        oracle = np.nanmean(arr[:, 3]) if key == 2 else float("nan")
        lines.append(f"{name:<9} {arr[:, 0].mean():11.1f} {arr[:, 0].min():6.1f} {arr[:, 1].min():+10.1f} "
                     f"{cross:11.1f} {np.nanmin(arr[:, 2]) if key == 2 else float('nan'):7.1f} {oracle:6.1f} "
                     f"{cross / arr[:, 0].mean():5.2f} {cross / np.nanmean(arr[:, 4]):6.2f} {cross / oracle:8.2f}  "
                     f"{worst}")
    return "\n".join(lines)


def _trackers_alone(r: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Per-view scores of every tracker run alone in one result: ours, then the references present."""
    out = {"ours": r["tracker"]}
    if "reference" in r:
        out["ul-botsort"] = r["reference"]
    for conf, per_view in r.get("boxmot_by_conf", {}).items():
        out[f"boxmot@{conf}"] = per_view
    return out


def reference_table(results: Sequence[dict[str, Any]]) -> str:
    """Per-camera IDF1/HOTA/MOTA of the trackers alone, ours beside each reference: the mean over every
    camera (variant × view) of each sequence and of all; Δ = the tracker − ours (points), ratio = ours / it
    (IDF1). Empty without a reference."""
    if not any("reference" in r or "boxmot" in r for r in results):
        return ""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["variant"].split(" ")[0], []).append(r)
    groups["all"] = list(results)
    head = (f"{'sequence':<16} {'tracker':<12} {'cams':>4} {'IDF1':>5} {'HOTA':>5} {'MOTA':>6} "
            f"{'ΔIDF1':>6} {'ΔHOTA':>6} {'ΔMOTA':>6} {'IDF1 ours/it':>12}")
    lines = ["per-camera scores of the trackers alone (mean over cameras = variants × views)", head, "-" * len(head)]
    for seq, rs in groups.items():
        means = _mean_alone(rs)
        for name, m in means.items():
            d = {k: m[k] - means["ours"][k] for k in m}
            ratio = means["ours"]["IDF1"] / m["IDF1"] if m["IDF1"] else float("nan")
            diff = f" {d['IDF1']:+6.1f} {d['HOTA']:+6.1f} {d['MOTA']:+6.1f} {ratio:12.3f}" if name != "ours" else ""
            lines.append(f"{seq:<16} {name:<12} {m['n']:4.0f} {m['IDF1']:5.1f} {m['HOTA']:5.1f} {m['MOTA']:6.1f}{diff}")
    versions = sorted({r["boxmot_version"] for r in results if r.get("boxmot_version")})
    if versions:
        lines.append(f"(BoxMOT {', '.join(versions)}; boxmot@C: detections ≥ C)")
    return "\n".join(lines)


def _mean_alone(rs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """tracker → mean IDF1/HOTA/MOTA over the cameras of ``rs``, and ``n`` (cameras)."""
    acc: dict[str, list[dict[str, float]]] = {}
    for r in rs:
        for name, per_view in _trackers_alone(r).items():
            acc.setdefault(name, []).extend(per_view.values())
    return {name: {**{m: float(np.mean([x[m] for x in xs])) for m in ("IDF1", "HOTA", "MOTA")}, "n": len(xs)}
            for name, xs in acc.items()}


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def _override(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def loso(bench: Bench, vs: Sequence[Variant], base: dict[str, Any], config: Path | None,
         combos: list[dict[str, Any]], results: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """Leave-one-sequence-out over candidate settings (each a dict dotted key → value); returns the table.

    The default is the candidate equal to ``config`` + ``base`` on every key any candidate sets.
    ``results``, when given, receives every candidate's variant scores (label → list, as ``--json``).
    """
    scores: dict[int, dict[str, float]] = {}
    for ci, combo in enumerate(combos):
        cfg = load_config(config, _apply(base, combo))
        label = ", ".join(f"{k}={v}" for k, v in combo.items())
        res = run_setting(bench, vs, cfg, label=label)
        scores[ci] = {r["variant"]: identity_score(r) for r in res}
        if results is not None:
            results[label] = res
    seqs = sorted({v.seq for v in vs})
    default = load_config(config, base)
    keys = sorted({k for c in combos for k in c})
    dflt = {k: _get(default, k) for k in keys}
    lines = [f"{'held out':<16} {'chosen on the others':<40} {'held-out mean':>13} {'worst':>6} "
             f"{'default mean':>12} {'worst':>6}"]
    for held in seqs:
        train = [v.key for v in vs if v.seq != held]
        test = [v.key for v in vs if v.seq == held]
        best = max(scores, key=lambda ci: np.mean([scores[ci][k] for k in train]) if train else 0.0)
        d_ci = next((ci for ci, c in enumerate(combos) if all(_get(load_config(config, _apply(base, c)), k)
                                                              == dflt[k] for k in keys)), None)
        t_best = [scores[best][k] for k in test]
        t_def = [scores[d_ci][k] for k in test] if d_ci is not None else [float("nan")]
        chosen = ", ".join(f"{k}={v}" for k, v in combos[best].items())
        lines.append(f"{held:<16} {chosen:<40} {np.mean(t_best):13.1f} {min(t_best):6.1f} "
                     f"{np.mean(t_def):12.1f} {min(t_def):6.1f}")
    lines.append("")
    lines.append("identity score per candidate (mean over each sequence's variants):")
    for ci, combo in enumerate(combos):
        per = "  ".join(f"{s} {np.mean([scores[ci][v.key] for v in vs if v.seq == s]):.1f}" for s in seqs)
        lines.append(f"  {', '.join(f'{k}={v}' for k, v in combo.items()):<40} {per}")
    return "\n".join(lines)


def _apply(base: dict[str, Any], combo: dict[str, Any]) -> dict[str, Any]:
    over = base
    for k, val in combo.items():
        over = deep_merge(over, _override(k, val))
    return over


def _get(cfg: MtmcConfig, dotted: str) -> Any:
    node: Any = cfg
    for p in dotted.split("."):
        node = getattr(node, "lambda_" if p == "lambda" else p)
    return node


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmark_identity.py", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MOT15 folder (default ../shared/data/MOT15)")
    p.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder with yolox_nano.onnx and "
                   "osnet_x0_25_msmt17.onnx (default ../shared/models)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "mtmc" / "benchmark_identity")
    p.add_argument("--seqs", nargs="+", default=list(PIXEL_SEQS))
    p.add_argument("--scales", nargs="+", type=float, default=[1.0, 0.625, 0.5])
    p.add_argument("--extra-scale", action="append", default=[], metavar="SEQ=S1,S2",
                   help="more scales for one sequence (repeatable), e.g. TUD-Campus=0.3: people 41-89 px tall")
    p.add_argument("--steps", nargs="+", type=int, default=[1, 2], help="frame steps (2 = half the frame rate)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="jitter seeds")
    p.add_argument("--config", type=Path, help="YAML config under test (default: built-in defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config override")
    p.add_argument("--loso", action="append", default=[], metavar="KEY=V1,V2",
                   help="leave-one-sequence-out over these candidate values (repeatable: a grid)")
    p.add_argument("--candidate", action="append", default=[], metavar="K=V;K=V",
                   help="one more leave-one-sequence-out candidate setting (repeatable; added to the grid)")
    p.add_argument("--reference", action="store_true", help="also ultralytics BoT-SORT + the same OSNet features")
    p.add_argument("--boxmot", type=Path, metavar="PYTHON", help="also BoxMOT BoT-SORT, run by this interpreter "
                   f"of BoxMOT's own venv (set up: {BOXMOT_SETUP})")
    p.add_argument("--boxmot-conf", type=float, nargs="+", default=list(BOXMOT_CONFS), metavar="C",
                   help="detection thresholds of the BoxMOT runs (the first is reported as 'boxmot')")
    p.add_argument("--json", type=Path, help="also write every variant's scores to this JSON file (with --loso: "
                   "an object, candidate → that list)")
    return p


def _extra_scales(items: Sequence[str], seqs: Sequence[str]) -> dict[str, list[float]]:
    """``SEQ=S1,S2`` items of ``--extra-scale`` → sequence → scales; ValueError names a bad item."""
    out: dict[str, list[float]] = {}
    for item in items:
        seq, _, vals = item.partition("=")
        if seq not in seqs:
            raise ValueError(f"--extra-scale {item}: {seq} is not one of --seqs ({', '.join(seqs)})")
        try:
            out.setdefault(seq, []).extend(float(x) for x in vals.split(","))
        except ValueError:
            raise ValueError(f"--extra-scale {item}: scales must be numbers, e.g. {seq}=0.3") from None
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point: prints the variant table (and the LOSO table with ``--loso``); 2 on bad input."""
    args = _parser().parse_args(argv)
    try:
        extra = _extra_scales(args.extra_scale, args.seqs)
    except ValueError as e:
        print(f"benchmark_identity: error: {e}", file=sys.stderr)
        return 2
    try:
        boxmot = probe_boxmot(args.boxmot, args.boxmot_conf) if args.boxmot else None
    except BoxmotError as e:
        print(f"benchmark_identity: error: {e}", file=sys.stderr)
        return 2
    det, reid = args.models / "yolox_nano.onnx", args.models / "osnet_x0_25_msmt17.onnx"
    missing = [str(p) for p in (det, reid, *(args.data / s for s in args.seqs)) if not p.exists()]
    if missing:
        print(f"benchmark_identity: error: not found: {', '.join(missing)} (see ../shared/README.md)", file=sys.stderr)
        return 2
    base: dict[str, Any] = {"output": {"progress": False}}
    base = _apply(base, {k: _parse_value(v) for k, _, v in (item.partition("=") for item in args.set)})
    bench = Bench(args.data, det, reid, args.cache)
    vs = variants(args.seqs, args.scales, args.steps, args.seeds, extra)
    t0 = time.perf_counter()
    if args.loso or args.candidate:
        grid = {k: [_parse_value(x) for x in vals.split(",")] for k, _, vals in (s.partition("=") for s in args.loso)}
        combos = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())] if grid else []
        combos += [{k: _parse_value(v) for k, _, v in (kv.partition("=") for kv in c.split(";"))}
                   for c in args.candidate]
        per_candidate: dict[str, list[dict[str, Any]]] = {}
        print(loso(bench, vs, base, args.config, combos, per_candidate))
        if args.json:
            args.json.write_text(json.dumps(per_candidate, indent=1))
    else:
        try:
            results = run_setting(bench, vs, load_config(args.config, base), args.reference, "config", boxmot)
        except BoxmotError as e:
            print(f"benchmark_identity: error: {e}", file=sys.stderr)
            return 2
        print(variant_table(results))
        if table := reference_table(results):
            print("\n" + table)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    t = bench.timings
    print(f"\n{len(vs)} variants in {time.perf_counter() - t0:.0f} s (detect {t['detect']:.0f} s, tracking+ReID "
          f"{t['track']:.0f} s, eval {t['eval']:.0f} s, BoxMOT {t['boxmot']:.0f} s; ReID crops computed "
          f"{bench.reid.misses if bench.reid else 0})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
