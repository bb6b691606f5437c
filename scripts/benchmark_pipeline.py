#!/usr/bin/env python
"""Benchmark the pipeline on the same frames, stage by stage.

Prints decode fps, detector-only fps, tracker ms/frame, end-to-end fps without
ReID and its ratio to detector-only; with ``--reid``, the whole pipeline with
ReID once per embedding policy (fps, ReID ms/frame, ReID share of the time,
ratio to detector-only, and cross-camera IDF1 when the cameras have gt); and
peak memory (RSS). Everything runs in one process on the same frames, so the
ratios are meaningful on a noisy machine.

Example (4 cameras cut from TUD-Stadtmitte by scripts/make_multicam.py):

    python scripts/make_multicam.py ../shared/data/MOT15/TUD-Stadtmitte -o scenes/tud --jitter
    python scripts/benchmark_pipeline.py scenes/tud --max-frames 179 \\
        --detector yolox:../shared/models/yolox_nano.onnx --reid ../shared/models/osnet_x0_25_msmt17.onnx

Targets: end-to-end ≥ 0.9 × detector-only on 2–4 cameras; the whole pipeline
with ReID ≥ 0.6 × detector-only.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import load_config  # noqa: E402
from pipeline.detectors.factory import build_detector  # noqa: E402
from pipeline.export import write_tracks  # noqa: E402
from pipeline.mot_eval import evaluate  # noqa: E402
from pipeline.runner import run  # noqa: E402
from pipeline.sources import discover_cameras, iter_frames  # noqa: E402
from reid.factory import build_reid  # noqa: E402
from trackers.factory import build_tracker  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="cameras: video files, folders, MOTChallenge sequences")
    ap.add_argument("--detector", default=None, help="detector SPEC (default: the config's)")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--max-frames", type=int, default=150, help="frames per camera (default 150)")
    ap.add_argument("--batch", type=int, default=None, help="frames per detector call")
    ap.add_argument("--reid", default=None,
                    help="ReID SPEC: also run the full pipeline with ReID, once per embedding policy "
                         "(--policies), and score cross-camera IDF1 when every camera has gt/gt.txt")
    ap.add_argument("--policies", default="quality,every", help="embedding policies to compare (with --reid)")
    args = ap.parse_args(argv)

    over: dict = {"decode": {"max_frames": args.max_frames}, "output": {"progress": False}}
    det_over = {k: v for k, v in (("spec", args.detector), ("batch", args.batch)) if v is not None}
    if det_over:
        over["detector"] = det_over
    cfg = load_config(args.config, over)
    specs = discover_cameras(args.inputs)
    detector = build_detector(cfg.detector, {s.camera_id: s.path for s in specs})

    # 1. decode only (all frames kept in memory for the detector-only pass)
    t = time.perf_counter()
    frames = []
    for s in specs:
        for i, f in enumerate(iter_frames(s)):
            if i >= args.max_frames:
                break
            frames.append(f)
    decode_s = time.perf_counter() - t
    n = len(frames)
    rss_decode = _peak_rss_mib()

    # 2. detector only, batches of frames interleaved across cameras as the runner does
    by_cam = [[f for f in frames if f.camera_id == s.camera_id] for s in specs]
    order = [fs[i] for i in range(max(map(len, by_cam))) for fs in by_cam if i < len(fs)]
    bsz = max(1, min(cfg.detector.batch, detector.max_batch))
    detector.detect(order[:bsz])  # warm-up
    t = time.perf_counter()
    dets = []
    for i in range(0, len(order), bsz):
        dets.extend(detector.detect(order[i:i + bsz]))
    detect_s = time.perf_counter() - t

    # 3. tracker only, on those detections
    trackers = {s.camera_id: build_tracker(cfg.tracker) for s in specs}
    t = time.perf_counter()
    for f, d in zip(order, dets, strict=True):
        trackers[f.camera_id].update(d, f.timestamp, f.index)
    track_s = time.perf_counter() - t

    # 4. end to end without ReID (decode threads + detect + track), same detector object
    t = time.perf_counter()
    result = run(args.inputs, cfg, detector=detector, extractor=None)
    e2e_s = time.perf_counter() - t
    e2e_frames = result.frames

    det_fps = n / detect_s
    e2e_fps = e2e_frames / e2e_s
    rows = [
        ("cameras", f"{len(specs)}"),
        ("frames", f"{n}"),
        ("detector", detector.name),
        ("decode fps", f"{n / decode_s:.1f}"),
        ("detector-only fps", f"{det_fps:.1f}"),
        ("detector ms/frame", f"{1000 * detect_s / n:.1f}"),
        ("tracker ms/frame", f"{1000 * track_s / n:.2f}"),
        ("end-to-end fps (no ReID)", f"{e2e_fps:.1f}"),
        ("end-to-end / detector-only", f"{e2e_fps / det_fps:.2f}"),
    ]

    # 5. the whole pipeline with ReID, once per embedding policy
    if args.reid:
        extractor = build_reid(cfg.reid.model_copy(update={"spec": args.reid}), cfg.detector.device)
        assert extractor is not None, "--reid none: nothing to compare"
        extractor.embed([order[0].image[:64, :32]] if order and order[0].image is not None else [])  # warm-up
        gt = {s.camera_id: s.path / "gt" / "gt.txt" for s in specs if (s.path / "gt" / "gt.txt").is_file()}
        rows.append(("reid model", extractor.name))
        for policy in args.policies.split(","):
            pcfg = cfg.model_copy(deep=True)
            pcfg.tracklets.embed_policy = policy
            t = time.perf_counter()
            res = run(args.inputs, pcfg, detector=detector, extractor=extractor)
            wall = time.perf_counter() - t
            fps = res.frames / wall
            rows += [
                (f"[{policy}] full pipeline fps", f"{fps:.1f}"),
                (f"[{policy}] ReID ms/frame", f"{1000 * res.stages['reid'] / res.frames:.1f}"),
                (f"[{policy}] ReID share of time", f"{100 * res.stages['reid'] / wall:.0f}%"),
                (f"[{policy}] full / detector-only", f"{fps / det_fps:.2f}"),
                (f"[{policy}] tracklets -> identities",
                 f"{res.linking['tracklets']} -> {res.linking['identities']}"),
            ]
            if len(gt) == len(specs) and len(specs) > 1:
                with tempfile.TemporaryDirectory() as d:
                    write_tracks(res, d)
                    pred = {c: Path(d) / "tracks" / f"{c}.txt" for c in gt}
                    ev = evaluate(gt, pred, frames={c.camera_id: c.frames for c in res.cameras.values()})
                assert ev.cross_camera is not None
                rows.append((f"[{policy}] cross-camera IDF1", f"{ev.cross_camera.idf1:.1f}"))
    del frames, order, by_cam
    rows.append(("peak RSS after decode (MiB)", f"{rss_decode:.0f}"))
    rows.append(("peak RSS overall (MiB)", f"{_peak_rss_mib():.0f}"))
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    print("-" * (width + 20))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
