"""The ``mtmc`` command line: a thin layer over :mod:`pipeline.runner` and :mod:`pipeline.evaluate`.

Exit codes: 0 success; 1 the run finished but some cameras failed (their partial
tracks and the other cameras' tracks are written); 2 bad input, config or model
(one-line error on stderr); 130 interrupted (partial results written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.cli_reid import add_reid_parser, run_reid
from pipeline.errors import MtmcError

EXIT_OK, EXIT_CAMERA_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtmc", description="Multi-camera person tracking.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="detect, track and link people across cameras",
        description="Decode, detect and track every camera, link tracklets across cameras with ReID; write "
                    "OUT/tracks/<camera>.txt (global ids), OUT/trajectories.json and OUT/summary.json.",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUT",
                     help="video files, a folder of videos, or MOTChallenge sequence folders (img1/ + seqinfo.ini)")
    run.add_argument("-o", "--out", required=True, type=Path, metavar="OUT", help="output folder")
    run.add_argument("--config", type=Path, metavar="FILE", help="YAML config (see configs/default.yaml)")
    run.add_argument("--detector", metavar="SPEC",
                     help="yolo11n.pt (default), a local *.pt, [yolox:|yolov5:|yolov8:]model.onnx, "
                          "'mot' (each sequence's det/det.txt) or 'mot:DIR' (DIR/<camera>.txt)")
    run.add_argument("--reid", metavar="SPEC",
                     help="ReID model: F.onnx, osnet_x0_25:F.pth (widths x0_25/x0_5/x0_75/x1_0), resnet50:F.pth, "
                          "a known name such as osnet_x0_25_msmt17 (downloaded when online), or 'none'")
    run.add_argument("--device", help="cpu, cuda or cuda:N")
    run.add_argument("--conf", type=float, help="minimum detection score")
    run.add_argument("--max-frames", type=int, metavar="N", help="process at most N frames per camera")
    run.add_argument("--batch", type=int, metavar="N", help="frames per detector call, across cameras")
    run.add_argument("--no-rerank", action="store_true", help="link on plain cosine distance, no re-ranking")
    run.add_argument("--save-video", action="store_true",
                     help="also write OUT/videos/<camera>.mp4 with boxes and global ids")
    run.add_argument("--save-crops", action="store_true",
                     help="also write OUT/crops/<global_id>/<camera>/*.jpg (the crops behind each tracklet's "
                          "feature; a ReID dataset for mtmc reid eval/train)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    ev = sub.add_parser(
        "eval",
        help="score tracks against MOTChallenge ground truth (HOTA, MOTA, IDF1)",
        description="Score OUT/tracks/<camera>.txt against gt.txt files with trackeval.",
    )
    ev.add_argument("--gt", nargs="+", required=True, type=Path, metavar="GT",
                    help="MOTChallenge sequence folders (gt/gt.txt) or gt.txt files; matched to cameras by name")
    ev.add_argument("--pred", required=True, type=Path, metavar="OUT",
                    help="an mtmc run output folder (tracks/<camera>.txt) or a folder of <camera>.txt")
    ev.add_argument("--cross-camera", action="store_true",
                    help="also score all cameras as one sequence (cross-camera IDF1); needs gt ids that are "
                         "global across cameras, as in scripts/make_multicam.py scenes")
    ev.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")

    add_reid_parser(sub)

    cfg = sub.add_parser("config", help="print the effective config as YAML")
    cfg.add_argument("--config", type=Path, metavar="FILE", help="YAML config to merge over the defaults")
    return parser


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    det: dict[str, Any] = {}
    for key, val in (("spec", args.detector), ("device", args.device), ("conf", args.conf), ("batch", args.batch)):
        if val is not None:
            det[key] = val
    over: dict[str, Any] = {}
    if det:
        over["detector"] = det
    if args.reid is not None:
        over["reid"] = {"spec": args.reid}
    if args.no_rerank:
        over["linking"] = {"rerank": False}
    if args.max_frames is not None:
        over["decode"] = {"max_frames": args.max_frames}
    if args.no_progress:
        over["output"] = {"progress": False}
    return over


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.runner import run

    cfg = load_config(args.config, _run_overrides(args))
    result = run(args.inputs, cfg, out_dir=args.out, save_video=args.save_video, save_crops=args.save_crops)
    print(result.format_table())
    written = ["tracks/<camera>.txt", "trajectories.json", "summary.json"]
    written += (["videos/"] if args.save_video else []) + (["crops/"] if args.save_crops else [])
    print(f"wrote {', '.join(written)} in {args.out}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.failed:
        for cam in result.failed:
            print(f"mtmc: camera failed: {result.cameras[cam].error}", file=sys.stderr)
        return EXIT_CAMERA_FAILED
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.evaluate import evaluate, match_gt_to_pred, processed_frames

    gt, pred = match_gt_to_pred(args.gt, args.pred)
    result = evaluate(gt, pred, frames=processed_frames(args.pred), cross_camera=args.cross_camera)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format_table())
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    print(yaml.safe_dump(load_config(args.config).model_dump(by_alias=True), sort_keys=False), end="")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mtmc`` console script; returns the exit code."""
    args = _build_parser().parse_args(argv)
    handler = {"run": _cmd_run, "eval": _cmd_eval, "reid": run_reid, "config": _cmd_config}[args.command]
    try:
        return handler(args)
    except MtmcError as exc:
        print(f"mtmc: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mtmc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
