"""``mtmc adapt``: fine-tune the ReID model on a run's own tracklets (a thin layer over :mod:`pipeline.adapt`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.atomic import remove_partial
from pipeline.errors import InputError
from pipeline.signals import GracefulStop

METRIC_LOSSES = ("triplet", "contrastive", "improved_triplet", "quadruplet", "msml")  # reid.metric_losses (no torch)


def add_adapt_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``adapt`` to the ``mtmc`` parser."""
    ad = sub.add_parser(
        "adapt", help="fine-tune a ReID model on a run's own tracklets (no labels)",
        description="One pseudo-identity per tracklet (crops that pass the quality filter, spaced in time), "
                    "same-camera same-time tracklets and camera pairs the topology forbids as hard negatives, "
                    "losses per camera (TAUDL), optionally confident cross-camera links as positives; "
                    "trains --rounds rounds (each re-labels with the new model). Writes "
                    "DIR/model.pth (use it as --reid ARCH:DIR/model.pth), DIR/metrics.csv and DIR/adapt.json.")
    ad.add_argument("out", type=Path, metavar="OUT", help="an mtmc run output folder (its sources still in place, or "
                    "its OUT/crops from --save-crops)")
    ad.add_argument("-o", "--dest", required=True, type=Path, metavar="DIR", help="output folder")
    ad.add_argument("--init", required=True, metavar="ARCH:PTH",
                    help="start model, e.g. osnet_x0_25:osnet_x0_25_msmt17_torchreid.pth")
    ad.add_argument("--epochs", type=int, default=10, help="epochs per round (default 10)")
    ad.add_argument("--rounds", type=int, default=1, help="rounds of re-labelling and training (default 1)")
    ad.add_argument("--join-confident", action="store_true",
                    help="cross-camera mutual nearest neighbours under half the linking threshold become one "
                         "pseudo-identity")
    ad.add_argument("--max-crops", type=int, default=16, help="crops per tracklet at most (default 16)")
    ad.add_argument("--metric-loss", choices=METRIC_LOSSES, default="improved_triplet",
                    help="metric loss (default improved_triplet: the best adapting on either sequence, 3 seeds)")
    ad.add_argument("--camera-aware", action=argparse.BooleanOptionalAction, default=True,
                    help="per-camera tracklet discrimination (TAUDL; default on): the ID softmax over the tracklets "
                         "of a crop's camera only, metric-loss negatives from its camera only; --no-camera-aware: "
                         "one softmax over all tracklets")
    ad.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_adapt(args: argparse.Namespace) -> int:
    """``mtmc adapt``; returns the exit code (errors raised as :class:`~pipeline.errors.MtmcError`)."""
    from pipeline.adapt import AdaptOptions, adapt

    for name in ("epochs", "rounds", "max_crops"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    opts = AdaptOptions(init=args.init, epochs=args.epochs, rounds=args.rounds, join_confident=args.join_confident,
                        max_crops=args.max_crops, metric_loss=args.metric_loss, camera_aware=args.camera_aware,
                        device=args.device, seed=args.seed,
                        progress=not args.no_progress and sys.stderr.isatty())
    with GracefulStop(what="finishing the batch in flight and writing the last model",
                      before_exit=[remove_partial]) as stop:
        info = adapt(args.out, args.dest, opts, stop=stop.event)
    rounds = ", ".join(f"round {r['round']}: {r['pseudo_ids']} pseudo-ids, {r['joined_pairs']} joined pairs"
                       for r in info["rounds"])
    print(f"adapted on {info['tracklets']} tracklets ({info['crops']} crops; {rounds}) in {info['seconds']:.0f} s")
    print(f"wrote {info['model']} (use --reid {args.init.partition(':')[0]}:{info['model']})")
    if any(r["interrupted"] for r in info["rounds"]):
        return stop.exit_code or 130
    return 0
