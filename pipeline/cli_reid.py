"""``mtmc reid eval | train | export``: the ReID toolkit's command line (a thin layer over :mod:`reid`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.atomic import remove_partial
from pipeline.cli_adapt import METRIC_LOSSES
from pipeline.errors import MtmcError
from pipeline.signals import GracefulStop

LAYOUTS = ["market1501", "dukemtmcreid", "msmt17", "cuhk03", "mars", "generic"]


def add_reid_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``reid`` command group (``eval``, ``train``, ``export``) to the ``mtmc`` parser."""
    reid = sub.add_parser("reid", help="person re-identification tools (eval, train, export)",
                          description="Person re-identification tools.")
    reid_sub = reid.add_subparsers(dest="reid_command", required=True)

    ev = reid_sub.add_parser(
        "eval",
        help="score a ReID model on a query/gallery dataset (CMC rank-1/5/10, mAP, mINP)",
        description="Embed a ReID dataset's query and gallery images and score the ranking (standard protocol: "
                    "same-id same-camera gallery entries excluded). Layouts: " + ", ".join(LAYOUTS)
                    + " (ROOT/<id>/<camera>/*.jpg).",
    )
    ev.add_argument("dataset", type=Path, metavar="DATASET", help="the dataset folder")
    ev.add_argument("--reid", required=True, metavar="SPEC",
                    help="ReID model: F.onnx, osnet_x0_25:F.pth, resnet50:F.pth or a known name")
    ev.add_argument("--layout", choices=LAYOUTS, help="dataset layout (default: detected)")
    ev.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking over query + gallery")
    ev.add_argument("--k1", type=int, default=20, help="re-ranking k1 (default 20)")
    ev.add_argument("--k2", type=int, default=6, help="re-ranking k2 (default 6)")
    ev.add_argument("--lambda", dest="lambda_", type=float, default=0.3,
                    help="re-ranking weight of the original distance (default 0.3)")
    ev.add_argument("--local", action="store_true",
                    help="add the AlignedReID local distance (torch OSNet/ResNet models only)")
    ev.add_argument("--batch", type=int, metavar="N", help="images per forward pass (default 32)")
    ev.add_argument("--device", help="cpu, cuda or cuda:N")
    ev.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")

    tr = reid_sub.add_parser(
        "train",
        help="train or fine-tune a ReID model (softmax + batch-hard triplet, BNNeck; AlignedReID, mutual learning)",
        description="Train on the dataset's train split with P×K batches; evaluate on its query/gallery every "
                    "--eval-every epochs; write OUT/model.pth (use it as --reid ARCH:OUT/model.pth), "
                    "OUT/last.pth, OUT/best.pth and OUT/metrics.csv / metrics.jsonl.",
    )
    tr.add_argument("dataset", type=Path, metavar="DATASET", help="the dataset folder (needs a train split)")
    tr.add_argument("-o", "--out", required=True, type=Path, metavar="OUT", help="output folder")
    tr.add_argument("--layout", choices=LAYOUTS, help="dataset layout (default: detected)")
    tr.add_argument("--arch", default="osnet_x0_25",
                    help="osnet_x0_25, osnet_x0_5, osnet_x0_75, osnet_x1_0 or resnet50 (default osnet_x0_25)")
    tr.add_argument("--init", metavar="F.pth", help="weights to start from (ReID or ImageNet); default random")
    tr.add_argument("--epochs", type=int, help="epochs (default 120)")
    tr.add_argument("--p", type=int, help="identities per batch (default 16)")
    tr.add_argument("--k", type=int, help="images per identity (default 4)")
    tr.add_argument("--lr", type=float, help="base learning rate (default 3.5e-4)")
    tr.add_argument("--schedule", choices=["step", "cosine"], help="learning-rate schedule (default step)")
    tr.add_argument("--warmup-epochs", type=int, help="linear warm-up epochs (default 10)")
    tr.add_argument("--milestones", type=int, nargs="+", help="step schedule epochs (default 40 70)")
    tr.add_argument("--metric-loss", choices=list(METRIC_LOSSES),
                    help="metric loss beside the ID loss (default triplet): triplet = batch-hard (Hermans et al. "
                         "2017), contrastive (Hadsell et al. 2006), improved_triplet (Cheng et al. 2016), "
                         "quadruplet (Chen et al. 2017), msml = margin sample mining (Xiao et al. 2017)")
    tr.add_argument("--soft-margin", action="store_true", help="soft-margin triplet loss (--metric-loss triplet)")
    tr.add_argument("--aligned", action="store_true", help="add the AlignedReID local branch")
    tr.add_argument("--mutual", action="store_true", help="mutual learning of two models")
    tr.add_argument("--eval-every", type=int, help="evaluate every N epochs (default 10; 0 = never)")
    tr.add_argument("--resume", metavar="last.pth", help="continue from a checkpoint")
    tr.add_argument("--device", help="cpu, cuda or cuda:N")
    tr.add_argument("--seed", type=int, help="random seed (default 0)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")

    ex = reid_sub.add_parser(
        "export",
        help="export a torch ReID model to ONNX (dynamic batch) with a parity check",
        description="Export ARCH:F.pth to ONNX (input 'images' N×3×H×W, output 'features' N×D); the export "
                    "is kept only if torch and onnxruntime agree (cosine >= 0.9999 at batch 1 and 16).",
    )
    ex.add_argument("spec", metavar="SPEC", help="osnet_x0_25:F.pth, ..., resnet50:F.pth")
    ex.add_argument("-o", "--out", required=True, type=Path, metavar="OUT.onnx", help="the ONNX file to write")
    ex.add_argument("--input-hw", type=int, nargs=2, default=[256, 128], metavar=("H", "W"),
                    help="input size in pixels (default 256 128)")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ex.add_argument("--json", action="store_true", help="print the parity figures as JSON")


def _format_eval_table(res: dict[str, Any]) -> str:
    head = (f"{'rank-1':>7} {'rank-5':>7} {'rank-10':>7} {'mAP':>7} {'mINP':>7} "
            f"{'#query':>7} {'#gallery':>8} {'skipped':>7}")
    row = (f"{100 * res['rank1']:6.2f}% {100 * res['rank5']:6.2f}% {100 * res['rank10']:6.2f}% "
           f"{100 * res['mAP']:6.2f}% {100 * res['mINP']:6.2f}% {res['num_query']:>7} {res['num_gallery']:>8} "
           f"{res['num_skipped']:>7}")
    flags = (("re-ranked", res["rerank"]), ("local", res["local"]), ("tracklets", res["tracklet"]))
    opts = [o for o, on in flags if on]
    title = f"{res['layout']} {res['dataset']} | {res['model']}" + (f" ({', '.join(opts)})" if opts else "")
    return "\n".join([title, head, row])


def _eval(args: argparse.Namespace) -> int:
    from pipeline.config import ReidConfig
    from reid.evaluate import evaluate_reid
    from reid.factory import build_reid

    if args.reid.strip().lower() == "none":
        raise MtmcError("mtmc reid eval needs a ReID model: --reid F.onnx, osnet_x0_25:F.pth, ...")
    if args.batch is not None and args.batch < 1:
        raise MtmcError(f"--batch must be >= 1, got {args.batch}")
    extractor = build_reid(ReidConfig(spec=args.reid, batch=args.batch or 32, device=args.device))
    if extractor is None:
        raise MtmcError("no ReID model built")
    try:
        res = evaluate_reid(
            args.dataset, extractor, rerank=args.rerank, k1=args.k1, k2=args.k2, lambda_=args.lambda_,
            local=args.local, layout=args.layout, progress=not args.no_progress and sys.stderr.isatty(),
        )
    except ValueError as exc:  # re-ranking parameters out of range
        raise MtmcError(str(exc)) from None
    finally:
        extractor.close()
    print(json.dumps(res, indent=2) if args.json else _format_eval_table(res))
    return 0


def _train(args: argparse.Namespace) -> int:
    from reid.datasets import load_dataset
    from reid.train import default_config, train

    over: dict[str, Any] = {"arch": args.arch, "out_dir": str(args.out),
                            "progress": not args.no_progress and sys.stderr.isatty()}
    for key, val in (("init_weights", args.init), ("epochs", args.epochs), ("p", args.p), ("k", args.k),
                     ("lr", args.lr), ("schedule", args.schedule), ("warmup_epochs", args.warmup_epochs),
                     ("eval_every", args.eval_every), ("resume", args.resume), ("device", args.device),
                     ("seed", args.seed), ("metric_loss", args.metric_loss)):
        if val is not None:
            over[key] = val
    if args.milestones:
        over["milestones"] = tuple(args.milestones)
    for flag in ("soft_margin", "aligned", "mutual"):
        if getattr(args, flag):
            over[flag] = True
    cfg = default_config(**over)
    dataset = load_dataset(args.dataset, args.layout)
    with GracefulStop(what="finishing the batch in flight and writing last.pth and model.pth",
                      before_exit=[remove_partial]) as stop:
        res = train(cfg, dataset, stop=stop.event)
    best = f"best mAP {100 * res['best_map']:.2f}% at epoch {res['best_epoch']}" if res["best_map"] >= 0 else ""
    done = "interrupted after" if res["interrupted"] else "trained"
    print(f"{done} {res['epochs']} epochs ({res['step']} steps, {res['num_classes']} identities); {best}")
    print(f"wrote {res['model_path']} (use --reid {args.arch}:{res['model_path']})")
    if res["interrupted"]:
        print(f"resume with --resume {Path(res['out_dir']) / 'last.pth'}")
        return stop.exit_code or 130
    return 0


def _export(args: argparse.Namespace) -> int:
    from reid.onnx_export import export_from_spec

    res = export_from_spec(args.spec, args.out, input_hw=tuple(args.input_hw), opset=args.opset)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print(f"wrote {res['path']} (opset {res['opset']}, {res['feature_dim']}-d features); parity torch vs "
              f"onnxruntime: min cosine {res['min_cosine_b1']:.6f} at batch 1, {res['min_cosine_b16']:.6f} at "
              f"batch 16, max abs diff {res['max_abs_diff']:.2e}")
    return 0


def run_reid(args: argparse.Namespace) -> int:
    """Run ``mtmc reid <eval|train|export>``; returns the exit code.

    Raises:
        MtmcError: bad arguments, datasets or models (the CLI prints one line, exit 2).
    """
    return {"eval": _eval, "train": _train, "export": _export}[args.reid_command](args)
