"""The ``mtmc`` command line: a thin layer over :mod:`pipeline.runner` and :mod:`pipeline.mot_eval`.

Exit codes (README "Exit codes"): 0 success; 1 the run finished but some cameras
failed (their partial tracks and the other cameras' tracks are written); 2 bad
input, config, model or output folder, no camera could be decoded at all, or an
output file could not be written (one-line error on stderr); 128 + signal when
stopped by a signal after writing partial results: 130 Ctrl-C (SIGINT), 143
SIGTERM, 129 SIGHUP. A second signal exits at once with the same code (files
are written atomically, so none is left half-written).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.atomic import remove_partial
from pipeline.cli_adapt import add_adapt_parser, cmd_adapt
from pipeline.cli_reid import add_reid_parser, run_reid
from pipeline.cli_report import add_report_options, add_report_parsers, cmd_report, cmd_search, write_report
from pipeline.errors import MtmcError
from pipeline.redact import mask_text, redact
from pipeline.results import RunResult
from pipeline.signals import GracefulStop, exit_code

EXIT_OK, EXIT_CAMERA_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
_EXIST_OK_HELP = "replace the outputs of an earlier run in OUT (without it such a folder is refused, exit 2)"


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
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bars (terminal) and no progress lines (otherwise, every 10 s on stderr)")
    run.add_argument("--exist-ok", action="store_true", help=_EXIST_OK_HELP)
    run.add_argument("--report", action="store_true", help="also write OUT/report.html (see mtmc report)")
    add_report_options(run)

    live = sub.add_parser(
        "live",
        help="track people live over RTSP/HTTP streams, writing events as they happen",
        description="Read every stream in its own thread (newest frame only, reconnecting with back-off), "
                    "track and link people live; write OUT/events.jsonl (one JSON event per line, flushed) and "
                    "OUT/trajectories.json (rewritten atomically every live.trajectories_every_s and at exit). "
                    "Ctrl-C, SIGTERM or SIGHUP: close open tracks, write the final files, exit 130/143/129; a "
                    "second signal exits at once.",
    )
    live.add_argument("sources", nargs="*", metavar="SOURCE",
                      help="rtsp://, http(s):// ... URL, a video file (played in real time) or name=URL "
                           "(camera id 'name'); default: live.sources of the config")
    live.add_argument("-o", "--out", required=True, type=Path, metavar="OUT", help="output folder")
    live.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: run until Ctrl-C)")
    live.add_argument("--loop", action="store_true", help="replay video files from the start when they end")
    live.add_argument("--exist-ok", action="store_true", help=_EXIST_OK_HELP)

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
    add_report_parsers(sub)
    add_adapt_parser(sub)

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
        p.add_argument("--device", help="cpu, cuda, cuda:N or mps (unavailable: a warning and the CPU)")
        p.add_argument("--conf", type=float, help="minimum detection score")
        p.add_argument("--batch", type=int, metavar="N", help="frames per detector call, across cameras")
        p.add_argument("--no-rerank", action="store_true", help="link on plain cosine distance, no re-ranking")
        p.add_argument("--executor", choices=("local", "ray"),
                       help="where the per-camera stages run: this process (local, default) or one Ray actor "
                            "per camera or stream (ray; needs pip install -e \".[ray]\")")
        p.add_argument("--ray-address", metavar="ADDR",
                       help="Ray cluster to join (HOST:PORT, ray://HOST:10001 or auto; implies --executor ray; "
                            "default: auto when RAY_ADDRESS is set, else a local Ray)")
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
    ex = {k: v for k, v in (("type", args.executor), ("ray_address", args.ray_address)) if v is not None}
    if args.ray_address is not None and args.executor is None:
        ex["type"] = "ray"  # an address means the cluster
    if ex:
        over["executor"] = ex
    return over


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.outdir import check_output_dir
    from pipeline.progress import RunProgress
    from pipeline.runner import run

    cfg = load_config(args.config, _run_overrides(args))
    check_output_dir(args.out, exist_ok=args.exist_ok)
    with GracefulStop(what="finishing the frames in flight, linking and writing partial results",
                      before_exit=[remove_partial]) as stop:  # held to the end: a late signal exits with 128+n
        result = run(args.inputs, cfg, out_dir=args.out, save_video=args.save_video, save_crops=args.save_crops,
                     stop=stop.event, progress=RunProgress(cfg.output.progress))
        print(result.format_table(), flush=True)
        print(f"wrote {_written(result.outputs)} in {args.out}", flush=True)
        code = _run_exit_code(result, stop.exit_code)
        if args.report and code in (EXIT_OK, EXIT_CAMERA_FAILED) and not stop.event.is_set():
            write_report(args.out, args)
        return code


def _written(outputs: list[str]) -> str:
    """``outputs`` with the per-camera track files as one item: ``tracks/<camera>.txt (N)``."""
    tracks = [o for o in outputs if o.startswith("tracks/")]
    rest = [o for o in outputs if not o.startswith("tracks/")]
    return ", ".join(([f"tracks/<camera>.txt ({len(tracks)})"] if tracks else []) + rest)


def _run_exit_code(result: RunResult, signal_code: int | None) -> int:
    for line in result.output_errors:
        _error(line)
    if result.interrupted:
        return signal_code or EXIT_INTERRUPTED
    if result.output_errors:
        return EXIT_ERROR
    if result.nothing_decoded:
        reasons = "; ".join(c.error or c.camera_id for c in result.cameras.values())
        _error(f"no camera could be decoded ({reasons})")
        return EXIT_ERROR
    for cam in result.failed:
        print(f"mtmc: camera failed: {mask_text(result.cameras[cam].error or cam)}", file=sys.stderr)
    return EXIT_CAMERA_FAILED if result.failed else EXIT_OK


def _cmd_live(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.live import run_live
    from pipeline.outdir import check_output_dir

    cfg = load_config(args.config, _run_overrides(args))
    check_output_dir(args.out, exist_ok=args.exist_ok)
    summary = run_live(args.sources, cfg, args.out, duration_s=args.duration)
    print(summary.format_table(), flush=True)
    print(f"wrote events.jsonl, trajectories.json in {args.out}", flush=True)
    cams = summary.cameras.values()
    if all(c["state"] == "ended" and c["frames_in"] == 0 for c in cams):
        names = ", ".join(c["source"] for c in cams)
        _error(f"no source could be decoded ({names}); pass video files or stream URLs (reasons in events.jsonl, "
               "stream_down)")
        return EXIT_ERROR
    if summary.signum is not None:
        return exit_code(summary.signum)
    return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.mot_eval import evaluate, match_gt_to_pred, processed_frames

    gt, pred = match_gt_to_pred(args.gt, args.pred)
    result = evaluate(gt, pred, frames=processed_frames(args.pred), cross_camera=args.cross_camera)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format_table())
    return EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    from pipeline.config import load_config

    dump = redact(load_config(args.config).model_dump(by_alias=True))
    print(yaml.safe_dump(dump, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


class _MaskingFormatter(logging.Formatter):
    """``mtmc: warning: <message>`` with secrets masked (:func:`pipeline.redact.mask_text`)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(f"mtmc: {record.levelname.lower()}: {record.getMessage()}")


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time (tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging() -> None:
    """Warnings of every module go to stderr through :class:`_MaskingFormatter` (installed once)."""
    root = logging.getLogger()
    if any(getattr(h, "_mtmc", False) for h in root.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(_MaskingFormatter())
    handler.setLevel(logging.WARNING)
    handler._mtmc = True  # type: ignore[attr-defined]
    root.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mtmc`` console script; returns the exit code."""
    args = _build_parser().parse_args(argv)
    _setup_logging()
    handlers = {"run": _cmd_run, "live": _cmd_live, "eval": _cmd_eval, "reid": run_reid, "config": _cmd_config,
                "report": cmd_report, "search": cmd_search, "adapt": cmd_adapt}
    handler = handlers[args.command]
    try:
        return handler(args)
    except MtmcError as exc:
        _error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mtmc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _error(message: str) -> None:
    """Print ``mtmc: error: <message>`` on stderr, on one line, secrets masked."""
    one_line = " ".join(message.split("\n"))
    print(f"mtmc: error: {mask_text(one_line)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
