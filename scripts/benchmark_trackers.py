#!/usr/bin/env python
"""Benchmark our per-camera trackers against the trackers shipped in ultralytics.

Three tables, everything in one process. Our rows: ``ours-sort``, ``ours-byte`` and
``ours-fused`` (``tracker.type`` sort / bytetrack / fused, default ``TrackerConfig``
otherwise); the references: ultralytics ``BYTETracker`` and ``BOTSORT`` with the
defaults of their ``bytetrack.yaml`` / ``botsort.yaml``. Every tracker gets exactly
the same detections of every frame (also frames without any); outputs are written
as MOTChallenge files to a temporary folder and scored with
:func:`pipeline.mot_eval.evaluate` (trackeval: HOTA, IDF1, MOTA, IDSW per sequence
and combined).

1. MOT15 train (``../shared/data/MOT15``, all 11 sequences) with their
   ``det/det.txt`` detections: motion and IoU only, no pixels (so no ReID and no
   camera motion compensation: ../shared holds no frames of the moving-camera ETH
   and KITTI sequences; CMC is verified by ``tests/test_trackers_full.py`` on a
   synthetic shifted frame pair). Also ``ours-fused[pub]``: the fused tracker with
   ``configs/mot_public_dets.yaml`` (score thresholds for DPM detections), and the
   references with the same score threshold and lost buffer (``ul-*[pub]``).
2. With pixels: PETS09-S2L1 (frames 1-300, those ../shared has), TUD-Campus and
   TUD-Stadtmitte; ``yolox_nano.onnx`` detections (conf 0.1) and an
   ``osnet_x0_25_msmt17.onnx`` feature of every detection, computed once and given
   to all trackers (``--cache DIR`` keeps them for re-runs). ``ours-fused+reid``
   gets the features of the detections its ``feature_mask`` asks for, as in the
   pipeline; ``ul-botsort+reid`` gets all of them as its ``auto`` ReID features;
   ``ul-botsort+gmc`` runs its sparse optical-flow GMC on the frames.
3. Speed: tracker-only updates per second on synthetic scenes of 10, 50 and 200
   people per frame (constant velocity + noise, scores in [0.3, 1], 10 % misses),
   and the ratio ``ours-fused`` / ultralytics ByteTrack, measured in the same run.

ultralytics keeps lost tracks ``track_buffer`` *frames* (30 in the yaml files),
our tracker ``max_age_s`` *seconds* (1.0). Older ultralytics releases took a
``frame_rate`` argument and kept ``int(frame_rate / 30 * track_buffer)`` frames;
when the installed release takes ``frame_rate`` it is passed the sequence's
``frameRate``, otherwise that scaling is applied here (rows ``ul-*``, a 1 s
buffer like ours). With ``--raw-buffer`` the yaml's 30 frames are also run
unscaled (rows ``ul-*@30f``), as the current ultralytics ``track`` mode does.

Example::

    python scripts/benchmark_trackers.py --cache /tmp/bench_cache   # all tables, ~10 min on 2 cores
    python scripts/benchmark_trackers.py --skip-speed --skip-pixels --set meas_std=0.1   # explore
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import TrackerConfig  # noqa: E402
from pipeline.mot_eval import evaluate  # noqa: E402
from pipeline.mot_format import read_mot_txt, read_seqinfo, write_mot_txt  # noqa: E402
from pipeline.types import Detections  # noqa: E402
from trackers.factory import build_tracker  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "MOT15"
DEFAULT_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
PIXEL_SEQS = ["PETS09-S2L1", "TUD-Campus", "TUD-Stadtmitte"]
PUBLIC_PROFILE = Path(__file__).resolve().parents[1] / "configs" / "mot_public_dets.yaml"

# Defaults of ultralytics/cfg/trackers/bytetrack.yaml and botsort.yaml (8.4.x), read there, not imported,
# so that a changed yaml does not silently change this benchmark.
UL_BYTETRACK_ARGS = {
    "tracker_type": "bytetrack",
    "track_high_thresh": 0.25,
    "track_low_thresh": 0.1,
    "new_track_thresh": 0.25,
    "track_buffer": 30,
    "match_thresh": 0.8,
    "fuse_score": True,
}
UL_BOTSORT_ARGS = {
    **UL_BYTETRACK_ARGS,
    "tracker_type": "botsort",
    "gmc_method": "none",  # yaml: sparseOptFlow; no pixels here
    "proximity_thresh": 0.5,
    "appearance_thresh": 0.8,
    "with_reid": False,
    "model": "auto",
}


class UlDets:
    """The part of ultralytics' ``Boxes`` its trackers read: conf, cls, xyxy, xywh, len, mask indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        self.conf = np.asarray(conf, np.float32).reshape(-1)
        self.cls = np.asarray(cls, np.float32).reshape(-1)
        wh = self.xyxy[:, 2:4] - self.xyxy[:, 0:2]
        self.xywh = np.concatenate([self.xyxy[:, 0:2] + wh / 2.0, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx: Any) -> UlDets:
        return UlDets(self.xyxy[idx], self.conf[idx], self.cls[idx])


@dataclass
class FrameInput:
    """One frame as every tracker of a table sees it."""

    xyxy: np.ndarray  # N×4 float32 pixels
    score: np.ndarray  # N float32
    feats: np.ndarray | None = None  # N×D float32 L2-normalised (pixel table), or None
    jpeg: bytes | None = None  # the frame, JPEG-encoded, decoded only for trackers that use pixels (GMC/CMC)

    def image(self) -> np.ndarray | None:
        """The frame as H×W×3 uint8 BGR, or None without pixels."""
        return None if self.jpeg is None else cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)


# A tracker runner: one frame in, rows [x1, y1, x2, y2, id, score] out.
Step = Callable[[FrameInput, int], np.ndarray]


@dataclass
class Runner:
    """How to build a tracker for one sequence (``make(fps) -> step``) and what it uses."""

    make: Callable[[float], Step]
    images: bool = False  # needs the frame's pixels


#: our trackers in the tables: row name -> tracker.type
OURS = {"ours-sort": "sort", "ours-byte": "bytetrack", "ours-fused": "fused"}
#: tracker config fields set with --set KEY=VALUE (for exploring; the tables use the defaults)
OVERRIDES: dict[str, Any] = {}
#: detections embedded for our appearance tracker / detections seen (pixel table)
EMBEDDED = [0, 0]


def _our_config(kind: str, **extra: Any) -> TrackerConfig:
    return TrackerConfig(**{**OVERRIDES, **extra, "type": kind})


def _ours_factory(fps: float, kind: str = "fused", reid: bool = False, **extra: Any) -> Step:
    trk = build_tracker(_our_config(kind, **extra))

    def step(f: FrameInput, frame_index: int) -> np.ndarray:
        dets = Detections(f.xyxy, f.score, np.zeros(len(f.score), np.int64))
        feats = None
        if reid and f.feats is not None:  # as the pipeline: only the detections the tracker asks for
            asked = trk.feature_mask(dets, frame_index / fps)
            EMBEDDED[0] += int(asked.sum())
            EMBEDDED[1] += len(asked)
            feats = np.where(asked[:, None], f.feats, 0.0).astype(np.float32)
        image = f.image() if trk.wants_image else None
        outs = trk.update(dets, frame_index / fps, frame_index, image=image, features=feats)
        if not outs:
            return np.zeros((0, 6))
        return np.array([[*o.xyxy, o.track_id, o.score] for o in outs], np.float64)

    return step


def _ul_factory(kind: str, fps: float, scale_buffer: bool = True, **extra: Any) -> Step:
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    cls_ = BYTETracker if kind == "bytetrack" else BOTSORT
    args = {**(UL_BYTETRACK_ARGS if kind == "bytetrack" else UL_BOTSORT_ARGS), **extra}
    takes_fps = "frame_rate" in inspect.signature(cls_.__init__).parameters
    if scale_buffer and not takes_fps:
        # the old ultralytics convention: track_buffer frames at 30 fps
        args["track_buffer"] = max(1, int(fps / 30.0 * args["track_buffer"]))
    ns = SimpleNamespace(**args)
    trk = cls_(ns, frame_rate=int(round(fps))) if (takes_fps and scale_buffer) else cls_(ns)
    gmc = args.get("gmc_method", "none") != "none"
    reid = bool(args.get("with_reid"))

    def step(f: FrameInput, frame_index: int) -> np.ndarray:
        img = f.image() if gmc else None
        feats = f.feats if reid else None
        out = trk.update(UlDets(f.xyxy, f.score, np.zeros(len(f.score))), img, feats)
        # rows [x1, y1, x2, y2, track_id, score, cls, det_idx] (9 columns for OBB, not used here)
        if len(out) == 0:
            return np.zeros((0, 6))
        return np.asarray(out, np.float64)[:, :6]

    return step


def _public_profile() -> dict[str, Any]:
    """The tracker fields of ``configs/mot_public_dets.yaml`` (score thresholds for DPM det.txt)."""
    return dict(yaml.safe_load(PUBLIC_PROFILE.read_text())["tracker"])


def _runners(raw_buffer: bool, pixels: bool) -> dict[str, Runner]:
    """The rows of an accuracy table."""
    r: dict[str, Runner] = {name: Runner(lambda fps, k=kind: _ours_factory(fps, k)) for name, kind in OURS.items()}
    if pixels:
        r["ours-fused+reid"] = Runner(lambda fps: _ours_factory(fps, "fused", reid=True, appearance=True))
    else:
        prof = _public_profile()
        r["ours-fused[pub]"] = Runner(lambda fps: _ours_factory(fps, "fused", **prof))
    r["ul-bytetrack"] = Runner(lambda fps: _ul_factory("bytetrack", fps))
    r["ul-botsort"] = Runner(lambda fps: _ul_factory("botsort", fps))
    if not pixels:
        # the references with the same score threshold and max age as ours-fused[pub]
        ul_pub = {"track_high_thresh": prof["high_thresh"], "track_buffer": round(30 * prof["max_age_s"])}
        r["ul-bytetrack[pub]"] = Runner(lambda fps: _ul_factory("bytetrack", fps, **ul_pub))
        r["ul-botsort[pub]"] = Runner(lambda fps: _ul_factory("botsort", fps, **ul_pub))
    if pixels:
        r["ul-botsort+gmc"] = Runner(lambda fps: _ul_factory("botsort", fps, gmc_method="sparseOptFlow"), images=True)
        r["ul-botsort+reid"] = Runner(lambda fps: _ul_factory("botsort", fps, with_reid=True, model="auto"))
    if raw_buffer:
        r["ul-bytetrack@30f"] = Runner(lambda fps: _ul_factory("bytetrack", fps, False))
        r["ul-botsort@30f"] = Runner(lambda fps: _ul_factory("botsort", fps, False))
    return r


def _load_dets(seq_dir: Path, length: int) -> list[FrameInput]:
    det = read_mot_txt(seq_dir / "det" / "det.txt")
    frames = det[:, 0].astype(int)
    out = []
    for f in range(1, length + 1):
        d = det[frames == f]
        xyxy = np.concatenate([d[:, 2:4], d[:, 2:4] + d[:, 4:6]], axis=1).astype(np.float32)
        out.append(FrameInput(xyxy, d[:, 6].astype(np.float32)))
    return out


def _detect_and_embed(seq_dir: Path, detector_spec: str, reid_path: Path, cache: Path | None) -> list[FrameInput]:
    """Detections of every frame with pixels (YOLOX, conf 0.1) and an OSNet feature per detection, once.

    With ``cache``, the detections, features and JPEG frames are stored in/loaded from ``cache/<seq>.npz``.
    """
    from pipeline.config import DetectorConfig
    from pipeline.detectors.onnx_yolo import OnnxYoloDetector
    from pipeline.sources import discover_cameras, iter_frames
    from reid.onnx_backend import OnnxReidExtractor
    from reid.preprocess import crop_boxes

    cached = cache / f"{seq_dir.name}.npz" if cache is not None else None
    if cached is not None and cached.is_file():
        z = np.load(cached, allow_pickle=True)
        return [FrameInput(*row) for row in z["frames"]]
    det = OnnxYoloDetector(DetectorConfig(spec=detector_spec, conf=0.1))
    ext = OnnxReidExtractor(str(reid_path), batch=64, device="cpu", threads=0)
    out: list[FrameInput] = []
    for frame in iter_frames(discover_cameras([seq_dir])[0]):
        assert frame.image is not None
        d = det.detect([frame])[0]
        crops, ok = crop_boxes(frame.image, d.xyxy)
        feats = np.zeros((len(d), ext.dim), np.float32)
        if ok.any():
            feats[ok] = ext.embed([c for c, v in zip(crops, ok, strict=True) if v])
        jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        out.append(FrameInput(d.xyxy, d.score, feats, jpeg))
    det.close()
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        rows = np.empty(len(out), dtype=object)
        rows[:] = [(f.xyxy, f.score, f.feats, f.jpeg) for f in out]
        np.savez(cached, frames=rows)
    return out


def score_table(title: str, note: str, seqs: list[Path], inputs: dict[str, list[FrameInput]],
                runners: dict[str, Runner]) -> dict[str, Any]:
    """Run every tracker on every sequence's frames, score with trackeval, print per-sequence and combined."""
    results = {}
    info = {s.name: read_seqinfo(s / "seqinfo.ini") for s in seqs}
    frames = {s.name: len(inputs[s.name]) for s in seqs}
    with tempfile.TemporaryDirectory(prefix="bench_trk_") as tmp:
        for name, runner in runners.items():
            t0 = time.perf_counter()
            pred = {}
            for s in seqs:
                step = runner.make(info[s.name].frame_rate)
                rows = []
                for i, f in enumerate(inputs[s.name]):
                    for x1, y1, x2, y2, tid, sc in step(f, i):
                        rows.append((i + 1, tid, x1, y1, x2 - x1, y2 - y1, sc))
                pred[s.name] = Path(tmp) / name / f"{s.name}.txt"
                write_mot_txt(pred[s.name], np.array(rows, np.float64).reshape(-1, 7))
            t_track = time.perf_counter() - t0
            results[name] = evaluate({s.name: s / "gt" / "gt.txt" for s in seqs}, pred, frames=frames,
                                     cross_camera=False)
            print(f"  {name}: tracked in {t_track:.1f} s, scored in {time.perf_counter() - t0 - t_track:.1f} s",
                  file=sys.stderr)

    names = list(runners)
    metrics = [("HOTA", "hota"), ("IDF1", "idf1"), ("MOTA", "mota"), ("IDSW", "idsw")]
    w = max(max(len(n) for n in names), 6)
    print(f"\n=== {title} ===")
    print(note)
    head = f"{'sequence':<16} " + " ".join(f"{n:>{w}}" for n in names)
    for label, attr in metrics:
        print(f"\n[{label}]")
        print(head)
        for cam in [s.name for s in seqs] + ["COMBINED"]:
            vals = []
            for n in names:
                sc = results[n].combined if cam == "COMBINED" else results[n].per_camera.get(cam)
                v = getattr(sc, attr) if sc is not None else float("nan")
                vals.append(f"{v:>{w}d}" if isinstance(v, int) else f"{v:>{w}.1f}")
            print(f"{cam:<16} " + " ".join(vals))
    print("\nBest (combined):")
    for label, attr in metrics:
        vals = {n: getattr(results[n].combined, attr) for n in names}
        order = sorted(vals, key=vals.get, reverse=attr != "idsw")
        fmt = "{}" if attr == "idsw" else "{:.1f}"
        print(f"  {label:<5} best: {order[0]}   (" + ", ".join(f"{n} {fmt.format(vals[n])}" for n in order) + ")")
    for n in names:
        for wmsg in results[n].warnings:
            print(f"  warning [{n}]: {wmsg}")
    return results


def accuracy(data: Path, raw_buffer: bool) -> None:
    """Table 1: the 11 MOT15 train sequences with their det.txt (no pixels)."""
    seqs = sorted(p for p in data.iterdir() if (p / "det" / "det.txt").is_file() and (p / "gt" / "gt.txt").is_file())
    if not seqs:
        print(f"no MOT15 sequences under {data}; skipping the accuracy table")
        return
    inputs = {s.name: _load_dets(s, read_seqinfo(s / "seqinfo.ini").length) for s in seqs}
    note = ("motion/IoU only (no pixels: CMC cannot run, ETH/KITTI included); max age: ours "
            f"{_our_config('fused').max_age_s} s; ul-* track_buffer = int(fps/30*30) frames (1 s)"
            + ("; ul-*@30f 30 frames" if raw_buffer else ""))
    score_table("Accuracy: MOT15 train, det.txt detections (frames 1..seqLength)", note, seqs, inputs,
                _runners(raw_buffer, pixels=False))


def pixel_accuracy(data: Path, models: Path, seq_names: list[str], cache: Path | None = None) -> None:
    """Table 2: sequences with pixels, YOLOX-nano detections and OSNet features computed once for all trackers."""
    yolox, osnet = models / "yolox_nano.onnx", models / "osnet_x0_25_msmt17.onnx"
    seqs = [data / n for n in seq_names if (data / n / "gt" / "gt.txt").is_file()]
    if not seqs or not yolox.is_file() or not osnet.is_file():
        print(f"\nno pixel sequences or models ({yolox}, {osnet}); skipping the pixel table")
        return
    t0 = time.perf_counter()
    inputs = {s.name: _detect_and_embed(s, f"yolox:{yolox}", osnet, cache) for s in seqs}
    n_frames = sum(len(v) for v in inputs.values())
    print(f"  detected and embedded {n_frames} frames in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    note = ("yolox_nano.onnx detections (conf 0.1, 416x416) and osnet_x0_25_msmt17.onnx features of every detection, "
            "computed once; frames with pixels only (PETS09-S2L1: 1..300). ours-fused+reid: features of the detections "
            "its feature_mask asks for, as in the pipeline; ul-botsort+reid: the same features of all detections as "
            "'auto' ReID; ul-botsort+gmc: sparse optical-flow GMC (fixed cameras here)")
    EMBEDDED[:] = [0, 0]
    score_table("Accuracy with pixels: YOLOX-nano + OSNet", note, seqs, inputs, _runners(False, pixels=True))
    print(f"ours-fused+reid used the features of {EMBEDDED[0]} of {EMBEDDED[1]} detections "
          f"({100.0 * EMBEDDED[0] / max(EMBEDDED[1], 1):.0f} %)")


def _synthetic(n: int, frames: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """N people in a 1920×1080 frame, constant velocity (reflected at the borders) + noise, 10 % misses."""
    rng = np.random.default_rng(seed)
    W, H = 1920.0, 1080.0
    wh = np.stack([rng.uniform(30, 80, n), rng.uniform(80, 200, n)], axis=1)
    pos = np.stack([rng.uniform(0, W, n), rng.uniform(0, H, n)], axis=1)
    vel = rng.normal(0, 4.0, (n, 2))
    out = []
    for _ in range(frames):
        pos += vel
        for k, lim in ((0, W), (1, H)):
            over = (pos[:, k] < 0) | (pos[:, k] > lim)
            vel[over, k] *= -1
            pos[:, k] = np.clip(pos[:, k], 0, lim)
        c = pos + rng.normal(0, 1.5, (n, 2))
        s = wh * rng.normal(1.0, 0.03, (n, 2))
        xyxy = np.concatenate([c - s / 2, c + s / 2], axis=1).astype(np.float32)
        score = rng.uniform(0.3, 1.0, n).astype(np.float32)
        keep = rng.random(n) > 0.1
        out.append((xyxy[keep], score[keep]))
    return out


def speed(sizes: list[int], frames: int, warmup: int, fps: float, repeats: int = 3) -> None:
    print(f"\n=== Speed: tracker-only updates/s, synthetic, {frames} timed frames after {warmup} warm-up, "
          f"best of {repeats} interleaved runs ===")
    trackers: dict[str, Callable[[], tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]]] = {}

    def ours(kind: str) -> Callable[[], tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]]:
        def make() -> tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]:
            t = build_tracker(_our_config(kind))
            return (lambda d, i: t.update(d, i / fps, i)), (lambda x, s: Detections(x, s, np.zeros(len(s), np.int64)))

        return make

    def ul(kind: str) -> Callable[[], tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]]:
        def make() -> tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]:
            from ultralytics.trackers.bot_sort import BOTSORT
            from ultralytics.trackers.byte_tracker import BYTETracker

            args = dict(UL_BYTETRACK_ARGS if kind == "bytetrack" else UL_BOTSORT_ARGS)
            args["track_buffer"] = max(1, int(fps / 30.0 * args["track_buffer"]))
            t = (BYTETracker if kind == "bytetrack" else BOTSORT)(SimpleNamespace(**args))
            return (lambda d, i: t.update(d, None)), (lambda x, s: UlDets(x, s, np.zeros(len(s))))

        return make

    for name, kind in OURS.items():
        trackers[name] = ours(kind)
    trackers["ul-bytetrack"] = ul("bytetrack")
    trackers["ul-botsort"] = ul("botsort")
    names = list(trackers)
    print(f"{'objects':>8} " + " ".join(f"{n:>13}" for n in names) + f" {'fused/ul-byte':>13}")
    for n in sizes:
        scene = _synthetic(n, warmup + frames, seed=n)
        ups = dict.fromkeys(trackers, 0.0)
        for _ in range(repeats):  # trackers interleaved, best of the repeats: robust to other load
            for name, make in trackers.items():
                update, wrap = make()
                inputs = [wrap(x, s) for x, s in scene]  # built outside the timed loop
                for i in range(warmup):
                    update(inputs[i], i)
                t0 = time.perf_counter()
                for i in range(warmup, warmup + frames):
                    update(inputs[i], i)
                ups[name] = max(ups[name], frames / (time.perf_counter() - t0))
        ratio = ups["ours-fused"] / ups["ul-bytetrack"]
        print(f"{n:>8} " + " ".join(f"{ups[k]:>13.0f}" for k in names) + f" {ratio:>13.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MOT15 folder (default ../shared/data/MOT15)")
    ap.add_argument("--raw-buffer", action="store_true",
                    help="also run ultralytics with the yaml's unscaled 30-frame track_buffer")
    ap.add_argument("--sizes", default="10,50,200", help="objects per frame for the speed table")
    ap.add_argument("--frames", type=int, default=300, help="timed frames per speed run")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up frames per speed run")
    ap.add_argument("--repeats", type=int, default=3, help="speed runs per tracker (best kept)")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-pixels", action="store_true")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the pixel table's detections/features/frames here (npz per sequence) for re-runs")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder with yolox_nano.onnx and osnet")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a tracker config field of our trackers (YAML value), for exploring")
    args = ap.parse_args(argv)
    for kv in args.set:
        key, _, value = kv.partition("=")
        OVERRIDES[key] = yaml.safe_load(value)
    if not args.skip_accuracy:
        if args.data.is_dir():
            accuracy(args.data, args.raw_buffer)
        else:
            print(f"{args.data} not found; skipping the accuracy table (it needs ../shared)")
    if not args.skip_pixels:
        pixel_accuracy(args.data, args.models, PIXEL_SEQS, args.cache)
    if not args.skip_speed:
        speed([int(s) for s in args.sizes.split(",")], args.frames, args.warmup, fps=30.0, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
