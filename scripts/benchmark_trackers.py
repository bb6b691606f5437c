#!/usr/bin/env python
"""Benchmark our ByteTracker against the trackers shipped in ultralytics.

Two tables, everything in one process:

1. Accuracy on the MOT15 train sequences (``../shared/data/MOT15``) with their
   ``det/det.txt`` detections only (motion + IoU, no pixels): our
   :class:`trackers.byte_tracker.ByteTracker` with the default ``TrackerConfig``,
   ultralytics ``BYTETracker`` and ``BOTSORT`` (ReID off, GMC off) with the
   defaults of their ``bytetrack.yaml`` / ``botsort.yaml``. Every tracker sees
   frames 1..seqLength (also frames without detections); the outputs are written
   as MOTChallenge files to a temporary folder and scored with
   :func:`pipeline.evaluate.evaluate` (HOTA, IDF1, MOTA, IDSW per sequence and
   combined).
2. Speed: tracker-only updates per second on synthetic scenes of 10, 50 and 200
   people per frame (constant velocity + noise, scores in [0.3, 1], some misses),
   and the ratio ours / ultralytics ByteTrack.

ultralytics keeps lost tracks ``track_buffer`` *frames* (30 in the yaml files),
our tracker ``max_age_s`` *seconds* (1.0). Older ultralytics releases took a
``frame_rate`` argument and kept ``int(frame_rate / 30 * track_buffer)`` frames;
when the installed release takes ``frame_rate`` it is passed the sequence's
``frameRate``, otherwise that scaling is applied here (rows ``ul-*``, a 1 s
buffer like ours). With ``--raw-buffer`` the yaml's 30 frames are also run
unscaled (rows ``ul-*@30f``), as the current ultralytics ``track`` mode does.

Example::

    python scripts/benchmark_trackers.py            # both tables, a few minutes on 2 cores
    python scripts/benchmark_trackers.py --skip-speed --raw-buffer
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import TrackerConfig  # noqa: E402
from pipeline.evaluate import evaluate  # noqa: E402
from pipeline.mot_format import read_mot_txt, read_seqinfo, write_mot_txt  # noqa: E402
from pipeline.types import Detections  # noqa: E402
from trackers.byte_tracker import ByteTracker  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "MOT15"

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


# A tracker runner: frame detections (xyxy, score) in, rows [x1, y1, x2, y2, id, score] out.
Step = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def _ours_factory(fps: float) -> Step:
    trk = ByteTracker(TrackerConfig())

    def step(xyxy: np.ndarray, score: np.ndarray, frame_index: int) -> np.ndarray:
        outs = trk.update(Detections(xyxy, score, np.zeros(len(score), np.int64)), frame_index / fps, frame_index)
        if not outs:
            return np.zeros((0, 6))
        return np.array([[*o.xyxy, o.track_id, o.score] for o in outs], np.float64)

    return step


def _ul_factory(kind: str, fps: float, scale_buffer: bool) -> Step:
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    cls_ = BYTETracker if kind == "bytetrack" else BOTSORT
    args = dict(UL_BYTETRACK_ARGS if kind == "bytetrack" else UL_BOTSORT_ARGS)
    takes_fps = "frame_rate" in inspect.signature(cls_.__init__).parameters
    if scale_buffer and not takes_fps:
        # the old ultralytics convention: track_buffer frames at 30 fps
        args["track_buffer"] = max(1, int(fps / 30.0 * args["track_buffer"]))
    ns = SimpleNamespace(**args)
    trk = cls_(ns, frame_rate=int(round(fps))) if (takes_fps and scale_buffer) else cls_(ns)

    def step(xyxy: np.ndarray, score: np.ndarray, frame_index: int) -> np.ndarray:
        out = trk.update(UlDets(xyxy, score, np.zeros(len(score))), None)
        # rows [x1, y1, x2, y2, track_id, score, cls, det_idx] (9 columns for OBB, not used here)
        if len(out) == 0:
            return np.zeros((0, 6))
        return np.asarray(out, np.float64)[:, :6]

    return step


def _factories(raw_buffer: bool) -> dict[str, Callable[[float], Step]]:
    f: dict[str, Callable[[float], Step]] = {
        "ours": _ours_factory,
        "ul-bytetrack": lambda fps: _ul_factory("bytetrack", fps, True),
        "ul-botsort": lambda fps: _ul_factory("botsort", fps, True),
    }
    if raw_buffer:
        f["ul-bytetrack@30f"] = lambda fps: _ul_factory("bytetrack", fps, False)
        f["ul-botsort@30f"] = lambda fps: _ul_factory("botsort", fps, False)
    return f


def _load_dets(seq_dir: Path, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    det = read_mot_txt(seq_dir / "det" / "det.txt")
    frames = det[:, 0].astype(int)
    out = []
    for f in range(1, length + 1):
        d = det[frames == f]
        xyxy = np.concatenate([d[:, 2:4], d[:, 2:4] + d[:, 4:6]], axis=1).astype(np.float32)
        out.append((xyxy, d[:, 6].astype(np.float32)))
    return out


def accuracy(data: Path, raw_buffer: bool) -> None:
    seqs = sorted(p for p in data.iterdir() if (p / "det" / "det.txt").is_file() and (p / "gt" / "gt.txt").is_file())
    if not seqs:
        print(f"no MOT15 sequences under {data}; skipping the accuracy table")
        return
    facts = _factories(raw_buffer)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_trk_") as tmp:
        info = {s.name: read_seqinfo(s / "seqinfo.ini") for s in seqs}
        dets = {s.name: _load_dets(s, info[s.name].length) for s in seqs}
        for name, fact in facts.items():
            t0 = time.perf_counter()
            pred = {}
            for s in seqs:
                si = info[s.name]
                step = fact(si.frame_rate)
                rows = []
                for i, (xyxy, score) in enumerate(dets[s.name]):
                    r = step(xyxy, score, i)
                    for x1, y1, x2, y2, tid, sc in r:
                        rows.append((i + 1, tid, x1, y1, x2 - x1, y2 - y1, sc))
                pred[s.name] = Path(tmp) / name / f"{s.name}.txt"
                write_mot_txt(pred[s.name], np.array(rows, np.float64).reshape(-1, 7))
            t_track = time.perf_counter() - t0
            res = evaluate(
                {s.name: s / "gt" / "gt.txt" for s in seqs},
                pred,
                frames={s.name: info[s.name].length for s in seqs},
                cross_camera=False,
            )
            results[name] = res
            print(f"  {name}: tracked in {t_track:.1f} s, scored in {time.perf_counter() - t0 - t_track:.1f} s",
                  file=sys.stderr)

    names = list(facts)
    metrics = [("HOTA", "hota"), ("IDF1", "idf1"), ("MOTA", "mota"), ("IDSW", "idsw")]
    w = max(len(n) for n in names)
    print("\n=== Accuracy: MOT15 train, det.txt detections (frames 1..seqLength) ===")
    print("max age: ours 1.0 s; ul-* track_buffer = int(fps/30*30) frames (1 s)"
          + ("; ul-*@30f 30 frames" if raw_buffer else ""))
    head = f"{'sequence':<16} " + " ".join(f"{n:>{w}}" for n in names)
    for label, attr in metrics:
        print(f"\n[{label}]")
        print(head)
        cams = [s.name for s in seqs] + ["COMBINED"]
        for cam in cams:
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
        ranking = ", ".join(f"{n} {fmt.format(vals[n])}" for n in order)
        print(f"  {label:<5} best: {order[0]}   ({ranking})")
    for n in names:
        for wmsg in results[n].warnings:
            print(f"  warning [{n}]: {wmsg}")


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


def speed(sizes: list[int], frames: int, warmup: int, fps: float) -> None:
    print(f"\n=== Speed: tracker-only updates/s, synthetic, {frames} timed frames after {warmup} warm-up ===")
    trackers: dict[str, Callable[[], tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]]] = {}

    def ours() -> tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]:
        t = ByteTracker(TrackerConfig())
        return (lambda d, i: t.update(d, i / fps, i)), (lambda x, s: Detections(x, s, np.zeros(len(s), np.int64)))

    def ul(kind: str) -> Callable[[], tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]]:
        def make() -> tuple[Callable[[Any, int], Any], Callable[[np.ndarray, np.ndarray], Any]]:
            from ultralytics.trackers.bot_sort import BOTSORT
            from ultralytics.trackers.byte_tracker import BYTETracker

            args = dict(UL_BYTETRACK_ARGS if kind == "bytetrack" else UL_BOTSORT_ARGS)
            args["track_buffer"] = max(1, int(fps / 30.0 * args["track_buffer"]))
            t = (BYTETracker if kind == "bytetrack" else BOTSORT)(SimpleNamespace(**args))
            return (lambda d, i: t.update(d, None)), (lambda x, s: UlDets(x, s, np.zeros(len(s))))

        return make

    trackers["ours"] = ours
    trackers["ul-bytetrack"] = ul("bytetrack")
    trackers["ul-botsort"] = ul("botsort")
    names = list(trackers)
    print(f"{'objects':>8} " + " ".join(f"{n:>13}" for n in names) + f" {'ours/ul-byte':>13}")
    for n in sizes:
        scene = _synthetic(n, warmup + frames, seed=n)
        ups = {}
        for name, make in trackers.items():
            update, wrap = make()
            inputs = [wrap(x, s) for x, s in scene]  # built outside the timed loop
            for i in range(warmup):
                update(inputs[i], i)
            t0 = time.perf_counter()
            for i in range(warmup, warmup + frames):
                update(inputs[i], i)
            ups[name] = frames / (time.perf_counter() - t0)
        ratio = ups["ours"] / ups["ul-bytetrack"]
        print(f"{n:>8} " + " ".join(f"{ups[k]:>13.0f}" for k in names) + f" {ratio:>13.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MOT15 folder (default ../shared/data/MOT15)")
    ap.add_argument("--raw-buffer", action="store_true",
                    help="also run ultralytics with the yaml's unscaled 30-frame track_buffer")
    ap.add_argument("--sizes", default="10,50,200", help="objects per frame for the speed table")
    ap.add_argument("--frames", type=int, default=300, help="timed frames per speed run")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up frames per speed run")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)
    if not args.skip_accuracy:
        if args.data.is_dir():
            accuracy(args.data, args.raw_buffer)
        else:
            print(f"{args.data} not found; skipping the accuracy table (it needs ../shared)")
    if not args.skip_speed:
        speed([int(s) for s in args.sizes.split(",")], args.frames, args.warmup, fps=30.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
