"""Cut person crops from a MOTChallenge sequence's ground truth: query photos for ``mtmc search``.

    python scripts/query_crops.py scenes/tud/ov_left -o queries --per-person 2

writes ``queries/<camera>_gt<id>_<frame>.jpg`` (frame 0-based): up to ``--per-person``
evenly spaced boxes of each ground-truth person at least ``--min-height`` px high.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from benchmark_search import camera_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sequence", type=Path, help="a sequence folder with gt/gt.txt and a video or img1/")
    ap.add_argument("-o", "--out", type=Path, required=True, help="folder for the crops")
    ap.add_argument("--per-person", type=int, default=2)
    ap.add_argument("--min-height", type=float, default=40.0, help="smallest box height kept (pixels)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    queries = camera_queries(args.sequence, None, args.per_person, args.min_height)
    for q in queries:
        cv2.imwrite(str(args.out / f"{q.camera}_gt{q.gt_id}_{q.frame:06d}.jpg"), q.crop)
    print(f"wrote {len(queries)} crops of {len({q.gt_id for q in queries})} people to {args.out}")


if __name__ == "__main__":
    main()
