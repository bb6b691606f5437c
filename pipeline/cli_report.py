"""``mtmc report`` and ``mtmc search``: look at a finished run, find a person in it from a photo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import InputError


def add_report_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``report`` and ``search`` to the ``mtmc`` parser."""
    rep = sub.add_parser(
        "report", help="write OUT/report.html: a self-contained page about a finished run",
        description="One HTML file (no external URL, opens offline): run summary, cameras with annotated "
                    "thumbnails, timeline of identities across cameras, histogram of linking distances, "
                    "identities with the crops behind their features; with --gt the mtmc eval table and "
                    "each identity's purity.")
    rep.add_argument("out", type=Path, metavar="OUT", help="an mtmc run output folder")
    add_report_options(rep)
    rep.add_argument("-o", "--output", type=Path, metavar="FILE", help="where to write (default OUT/report.html)")

    se = sub.add_parser(
        "search", help="find a person of a finished run from photos (query crops)",
        description="Embed the query crops with the run's ReID model (several photos of one person are "
                    "averaged) and rank the run's identities by cosine distance; 'no match' when none is within "
                    "--threshold.")
    se.add_argument("out", type=Path, metavar="OUT", help="an mtmc run output folder (with features.npz)")
    se.add_argument("--query", nargs="+", required=True, type=Path, metavar="IMG", help="photos of one person")
    se.add_argument("--top", type=int, default=5, metavar="K", help="identities to list at most (default 5)")
    se.add_argument("--threshold", type=float, metavar="D",
                    help="largest cosine distance that is a match (default 0.24, see README 'Search')")
    se.add_argument("--reid", metavar="SPEC", help="the run's ReID model (default: reid.spec of its summary.json)")
    se.add_argument("--json", action="store_true", help="print a JSON list of matches, best first")


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """``--gt``, ``--cross-camera`` and ``--max-crops`` (shared by ``mtmc report`` and ``mtmc run --report``)."""
    parser.add_argument("--gt", nargs="+", type=Path, metavar="GT",
                        help="ground truth as for mtmc eval --gt: adds the eval table and per-identity purity")
    parser.add_argument("--cross-camera", action="store_true",
                        help="ground-truth ids are global across cameras (as mtmc eval --cross-camera)")
    parser.add_argument("--max-crops", type=int, default=6, metavar="N", help="crops per identity (default 6)")


def write_report(out: Path, args: argparse.Namespace, path: Path | None = None) -> None:
    """Build the report of the run in ``out`` and print where it went, its size and build time."""
    from pipeline.report import build_report

    if args.max_crops < 0:
        raise InputError(f"--max-crops must be >= 0, got {args.max_crops}")
    info = build_report(out, gt=args.gt, cross_camera=args.cross_camera, max_crops=args.max_crops, path=path)
    missing = "".join(f"; no pictures of {c} ({why})" for c, why in info.missing.items())
    print(f"wrote {info.path} ({info.bytes / 1e6:.1f} MB, {info.identities} identities, {info.crops} crops, "
          f"{info.seconds:.1f} s){missing}", flush=True)


def cmd_report(args: argparse.Namespace) -> int:
    """``mtmc report OUT``; returns the exit code (errors are raised as :class:`~pipeline.errors.MtmcError`)."""
    write_report(args.out, args, args.output)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """``mtmc search OUT --query IMG…``; prints the matches (exit 0, also for 'no match')."""
    from pipeline.search import DEFAULT_THRESHOLD, format_result, search

    if args.top < 1:
        raise InputError(f"--top must be >= 1, got {args.top}")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 2.0:
        raise InputError(f"--threshold is a cosine distance in [0, 2], got {threshold}")
    res = search(args.out, args.query, top=args.top, threshold=threshold, reid_spec=args.reid)
    if args.json:
        print(json.dumps([m.to_dict() for m in res.matches], indent=1))
        if not res.matches:
            print(format_result(res), file=sys.stderr)
    else:
        print(format_result(res))
    return 0
