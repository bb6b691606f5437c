"""The ``mtmc`` command line: a thin layer over :mod:`pipeline.runner` and :mod:`pipeline.evaluate`.

Exit codes: 0 success; 1 the run finished but some cameras failed (their partial
tracks and the other cameras' tracks are written); 2 bad input, config or model
(one-line error on stderr); 130 interrupted (partial results written). ``mtmc
live`` exits 0 after Ctrl-C/SIGTERM (its final files written) and 130 on a second
Ctrl-C (exit at once; the files written so far stay valid).
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
    run.add_argument("--max-frames", type=int, metavar="N", help="process at most N frames per camera")
    run.add_argument("--save-video", action="store_true",
                     help="also write OUT/videos/<camera>.mp4 with boxes and global ids")
    run.add_argument("--save-crops", action="store_true",
                     help="also write OUT/crops/<global_id>/<camera>/*.jpg (the crops behind each tracklet's "
                          "feature; a ReID dataset for mtmc reid eval/train)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    live = sub.add_parser(
        "live",
        help="track people live over RTSP/HTTP streams, writing events as they happen",
        description="Read every stream in its own thread (newest frame only, reconnecting with back-off), "
                    "track and link people live; write OUT/events.jsonl (one JSON event per line, flushed) and "
                    "OUT/trajectories.json (rewritten atomically every live.trajectories_every_s and at exit). "
                    "Ctrl-C or SIGTERM: close open tracks, write the final files, exit 0; a second Ctrl-C exits "
                    "at once.",
    )
    live.add_argument("sources", nargs="*", metavar="SOURCE",
                      help="rtsp://, http(s):// ... URL, a video file (played in real time) or name=URL "
                           "(camera id 'name'); default: live.sources of the config")
    live.add_argument("-o", "--out", required=True, type=Path, metavar="OUT", help="output folder")
    live.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run until Ctrl-C)")
    live.add_argument("--loop", action="store_true", help="replay video files from the start when they end")

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
    for p in (run, live):
        p.add_argument("--config", type=Path, metavar="FILE", help="YAML config (see configs/default.yaml)")
        p.add_argument("--detector", metavar="SPEC",
                       help="yolo11n.pt (default), a local *.pt, [yolox:|yolov5:|yolov8:]model.onnx, "
                            "'mot' (each sequence's det/det.txt) or 'mot:DIR' (DIR/<camera>.txt; not live)")
        p.add_argument("--reid", metavar="SPEC",
                       help="ReID model: F.onnx, osnet_x0_25:F.pth (widths x0_25/x0_5/x0_75/x1_0), resnet50:F.pth, "
                            "a known name such as osnet_x0_25_msmt17 (downloaded when online), or 'none'")
        p.add_argument("--device", help="cpu, cuda or cuda:N")
        p.add_argument("--conf", type=float, help="minimum detection score")
        p.add_argument("--batch", type=int, metavar="N", help="frames per detector call, across cameras")
        p.add_argument("--no-rerank", action="store_true", help="link on plain cosine distance, no re-ranking")
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
    if getattr(args, "max_frames", None) is not None:
        over["decode"] = {"max_frames": args.max_frames}
    if getattr(args, "no_progress", False):
        over["output"] = {"progress": False}
    if getattr(args, "loop", False):
        over["live"] = {"loop_files": True}
    return over


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.runner import run

    cfg = load_config(args.config, _run_overrides(args))
    result = run(args.inputs, cfg, out_dir=args.out, save_video=args.save_video, save_crops=args.save_crops)
    print(result.format_table())
    written = ["tracks/<camera>.txt", "trajectories.json", "summary.json"]
    written += (["videos/"] if args.save_video else []) + (["crops/"] if args.save_crops else [])
    written += ["topology.yaml"] if (Path(args.out) / "topology.yaml").is_file() else []
    print(f"wrote {', '.join(written)} in {args.out}")
    if result.interrupted:
        return EXIT_INTERRUPTED
    if result.failed:
        for cam in result.failed:
            print(f"mtmc: camera failed: {result.cameras[cam].error}", file=sys.stderr)
        return EXIT_CAMERA_FAILED
    return EXIT_OK


def _cmd_live(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.live import run_live

    cfg = load_config(args.config, _run_overrides(args))
    summary = run_live(args.sources, cfg, args.out, duration_s=args.duration)
    print(summary.format_table())
    print(f"wrote events.jsonl, trajectories.json in {args.out}")
    cams = summary.cameras.values()
    if all(c["state"] == "ended" and c["frames_in"] == 0 for c in cams):
        names = ", ".join(c["source"] for c in cams)
        print(f"mtmc: error: no source could be decoded ({names}); pass video files or stream URLs "
              "(reasons in events.jsonl, stream_down)", file=sys.stderr)
        return EXIT_ERROR
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
    handlers = {"run": _cmd_run, "live": _cmd_live, "eval": _cmd_eval, "reid": run_reid, "config": _cmd_config}
    handler = handlers[args.command]
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
