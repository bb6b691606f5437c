#!/usr/bin/env python
"""Cut a person re-identification dataset out of MOTChallenge footage with ground truth.

Every gt box (flag 1, tall enough, mostly inside the frame) of every k-th frame
becomes a crop, filed as ``OUT/<split>/<id>/<camera>/<frame>.jpg`` — the
``generic`` layout of :mod:`reid.datasets`. Identities are split, not images:
a held-out fraction of the ids (those seen by at least two cameras) goes to
``query/`` (their first camera) and ``gallery/`` (their other cameras); every
other id goes to ``train/``. So ``mtmc reid eval OUT`` scores cross-camera
retrieval of people the model never trained on, and ``mtmc reid train OUT``
fine-tunes on the rest.

Inputs are camera folders in MOTChallenge layout (``seqinfo.ini``, ``gt/gt.txt``,
``img1/`` or one video), or folders of them — e.g. the multi-camera scenes of
``scripts/make_multicam.py``, whose gt ids are global across cameras. Ids are
prefixed with the scene (parent folder) name so that scenes do not collide.

Example::

    python scripts/make_multicam.py ../shared/data/MOT15/TUD-Stadtmitte -o scenes/tud --jitter
    python scripts/make_multicam.py ../shared/data/MOT15/PETS09-S2L1 -o scenes/pets --jitter
    python scripts/make_reid_crops.py scenes/tud scenes/pets -o reid_crops --stride 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.errors import MtmcError  # noqa: E402
from pipeline.mot_format import read_mot_txt  # noqa: E402
from pipeline.sources import CameraSpec, discover_cameras, iter_frames  # noqa: E402


def _cameras(inputs: list[Path]) -> list[tuple[str, CameraSpec]]:
    """(scene name, camera) for every camera folder with ``gt/gt.txt``."""
    out = []
    for spec in discover_cameras(inputs):
        if spec.kind == "detonly" or not (spec.path / "gt" / "gt.txt").is_file():
            continue
        out.append((spec.path.parent.name, spec))
    if not out:
        raise MtmcError(f"no camera with pixels and gt/gt.txt in {', '.join(map(str, inputs))}")
    return out


def make_reid_crops(inputs: list[Path], out: Path, stride: int = 5, min_height: float = 64.0,
                    test_fraction: float = 0.3, seed: int = 0) -> dict[str, int]:
    """Write the crops; return counts per split (images and ids).

    Args:
        inputs: camera folders or folders of them (see the module docstring).
        out: output root (``train/``, ``query/``, ``gallery/`` are written below it).
        stride: keep every ``stride``-th frame (frames of one track are near-duplicates).
        min_height: boxes lower than this (pixels) are skipped.
        test_fraction: fraction of the multi-camera ids held out for query/gallery.
        seed: seed of the id split.

    Raises:
        MtmcError: no usable camera, or no identity seen by two cameras to hold out.
    """
    cams = _cameras(inputs)
    boxes: dict[str, dict[str, list[tuple[int, np.ndarray]]]] = {}  # id -> camera -> [(frame, tlwh)]
    for scene, spec in cams:
        gt = read_mot_txt(spec.path / "gt" / "gt.txt")
        gt = gt[(gt[:, 6] != 0) & ((gt[:, 0] - 1) % stride == 0) & (gt[:, 5] >= min_height)]
        for row in gt:
            pid = f"{scene}_{int(row[1]):04d}"
            boxes.setdefault(pid, {}).setdefault(spec.camera_id, []).append((int(row[0]) - 1, row[2:6]))
    multi = sorted(p for p, c in boxes.items() if len(c) >= 2)
    if not multi:
        raise MtmcError("no identity is seen by two cameras: nothing to hold out for query/gallery")
    rng = np.random.default_rng(seed)
    held = set(rng.choice(multi, size=max(1, round(test_fraction * len(multi))), replace=False).tolist())
    counts = {"train_images": 0, "query_images": 0, "gallery_images": 0}
    for _, spec in cams:
        wanted: dict[int, list[tuple[str, np.ndarray]]] = {}
        for pid, per_cam in boxes.items():
            for f, tlwh in per_cam.get(spec.camera_id, []):
                wanted.setdefault(f, []).append((pid, tlwh))
        first_cam = {pid: sorted(boxes[pid])[0] for pid in held}
        for frame in iter_frames(spec):
            for pid, (x, y, w, h) in wanted.get(frame.index, []):
                img = frame.image
                assert img is not None
                x1, y1 = max(0, int(x)), max(0, int(y))
                x2, y2 = min(img.shape[1], int(x + w)), min(img.shape[0], int(y + h))
                if x2 - x1 < 8 or y2 - y1 < min_height * 0.8:
                    continue
                split = "train" if pid not in held else ("query" if first_cam[pid] == spec.camera_id else "gallery")
                path = out / split / pid / spec.camera_id / f"{frame.index:06d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), img[y1:y2, x1:x2])
                counts[f"{split}_images"] += 1
    counts["train_ids"] = len(set(boxes) - held)
    counts["test_ids"] = len(held)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", type=Path, help="camera folders with gt, or folders of them")
    ap.add_argument("-o", "--out", required=True, type=Path, help="output dataset root")
    ap.add_argument("--stride", type=int, default=5, help="keep every N-th frame (default 5)")
    ap.add_argument("--min-height", type=float, default=64.0, help="skip boxes lower than this, px (default 64)")
    ap.add_argument("--test-fraction", type=float, default=0.3, help="held-out share of multi-camera ids")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        counts = make_reid_crops(args.inputs, args.out, args.stride, args.min_height, args.test_fraction, args.seed)
    except MtmcError as exc:
        print(f"make_reid_crops: error: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{k} {v}" for k, v in counts.items()) + f"; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
