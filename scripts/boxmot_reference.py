#!/usr/bin/env python
"""BoxMOT BoT-SORT as an external reference: a worker run by ``benchmark_identity.py --boxmot PYTHON``.

It runs inside BoxMOT's own virtual environment, never the project's: BoxMOT is no dependency of
mtmc. It imports only numpy, the standard library and (inside :func:`track_view`) BoxMOT and the
torch that BoxMOT brings; the file helpers below need numpy alone, so the benchmark and the tests
share them. Set up once::

    python3 -m venv /work/boxmot-venv && /work/boxmot-venv/bin/pip install boxmot

Input folder, one camera (view) per pair of files:

* ``<view>.npz``: ``n`` (frames), ``fps`` (frames/s), ``frame`` (M int32, 0-based frame index of
  each detection), ``xyxy`` (M×4 float32 pixels), ``score`` (M float32), ``emb`` (M×D float32
  appearance features; all-zero rows where a detection has none);
* ``<view>.frames.npy``: the n frames, n×H×W×3 uint8 BGR (read memory-mapped; BoxMOT's camera
  motion compensation looks at them).

Output folder: ``<view>-c<conf>.txt`` per view and ``--conf`` value, MOTChallenge rows
``frame,id,x,y,w,h,score`` (1-based frame and id, pixels, ``tlwh``), and ``meta.json`` (BoxMOT
version, the tracker options, seconds per view).

BoT-SORT runs with BoxMOT's defaults (its ``botsort.yaml``: sparse optical flow CMC, appearance in
the first association) except ``track_buffer`` = round(fps), so lost tracks are kept about 1 s
(``frame_rate`` stays BoxMOT's 30, which makes the buffer exactly that many frames), and with the
given features instead of its own ReID model.

Usage::

    python scripts/boxmot_reference.py IN_DIR OUT_DIR [--conf 0.1 0.3]
    python scripts/boxmot_reference.py --version     # prints BoxMOT's version, exits 1 without BoxMOT
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROW_FMT = ("%d", "%d", "%.2f", "%.2f", "%.2f", "%.2f", "%.4f")


def write_view_input(folder: Path, view: str, fps: float, frame: np.ndarray, xyxy: np.ndarray, score: np.ndarray,
                     emb: np.ndarray, frames: Sequence[np.ndarray] | None = None, n: int | None = None) -> None:
    """Write one view's worker input (see the module docstring for shapes and units).

    ``frames`` (each H×W×3 uint8 BGR) is written to ``<view>.frames.npy``; without it ``n`` gives
    the frame count (a tracker run without pixels, as in the tests).
    """
    folder.mkdir(parents=True, exist_ok=True)
    count = len(frames) if frames is not None else int(n or 0)
    np.savez(folder / f"{view}.npz", n=count, fps=float(fps), frame=frame.astype(np.int32),
             xyxy=xyxy.astype(np.float32).reshape(-1, 4), score=score.astype(np.float32),
             emb=emb.astype(np.float32))
    if frames is not None and count:
        out = np.lib.format.open_memmap(folder / f"{view}.frames.npy", mode="w+", dtype=np.uint8,
                                        shape=(count, *frames[0].shape))
        for i, img in enumerate(frames):
            out[i] = img
        out.flush()
        del out


def read_view_input(folder: Path, view: str) -> dict[str, Any]:
    """One view's input: the arrays of ``<view>.npz`` and ``frames`` (n×H×W×3 memmap, or None)."""
    z = np.load(folder / f"{view}.npz")
    out: dict[str, Any] = {k: z[k] for k in ("frame", "xyxy", "score", "emb")}
    out["n"], out["fps"] = int(z["n"]), float(z["fps"])
    img = folder / f"{view}.frames.npy"
    out["frames"] = np.load(img, mmap_mode="r") if img.is_file() else None
    return out


def views_in(folder: Path) -> list[str]:
    """The views of an input folder, sorted."""
    return sorted(p.stem for p in folder.glob("*.npz"))


def rows_path(folder: Path, view: str, conf: float) -> Path:
    """The output file of one view tracked with detections ≥ ``conf``."""
    return folder / f"{view}-c{conf:g}.txt"


def write_rows(path: Path, rows: np.ndarray) -> None:
    """Write N×7 rows ``frame, id, x, y, w, h, score`` as MOTChallenge text (comma separated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.asarray(rows, np.float64).reshape(-1, 7), fmt=ROW_FMT, delimiter=",")


def read_rows(path: Path) -> np.ndarray:
    """Read :func:`write_rows`' file back as N×7 float64 (an empty file gives 0×7)."""
    if not path.stat().st_size:
        return np.zeros((0, 7))
    return np.loadtxt(path, delimiter=",", ndmin=2).reshape(-1, 7)


def tracker_options(fps: float) -> dict[str, Any]:
    """BoxMOT option overrides of BoT-SORT's defaults: a lost buffer of round(fps) frames (~1 s)."""
    return {"track_buffer": max(1, int(round(fps)))}


def _detections(boxmot_structures: Any, torch: Any, xyxy: np.ndarray, score: np.ndarray, emb: np.ndarray,
                k: int) -> Any:
    return boxmot_structures.Detections(
        geometry=boxmot_structures.Boxes(torch.from_numpy(np.ascontiguousarray(xyxy, np.float32))),
        scores=torch.from_numpy(np.ascontiguousarray(np.clip(score, 0.0, 1.0), np.float32)),
        class_ids=torch.zeros(len(score), dtype=torch.int64), sample_id=f"frame{k}",
        embeddings=torch.from_numpy(np.ascontiguousarray(emb, np.float32)))


def track_view(inp: dict[str, Any], conf: float) -> np.ndarray:
    """Run BoxMOT BoT-SORT over one view's input with detections ≥ ``conf``; N×7 MOTChallenge rows."""
    import boxmot.structures as bs
    import torch
    from boxmot import create_tracker
    from boxmot.trackers.specs import TrackerSpec

    opts = tuple(sorted(tracker_options(inp["fps"]).items()))
    trk = create_tracker(TrackerSpec(name="botsort", options=opts))
    xyxy, score = inp["xyxy"], inp["score"]
    keep = (score >= conf) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    rows = []
    for k in range(inp["n"]):
        sel = keep & (inp["frame"] == k)
        img = None if inp["frames"] is None else np.asarray(inp["frames"][k])
        out = trk.update(_detections(bs, torch, xyxy[sel], score[sel], inp["emb"][sel], k), img)
        box = out.geometry.values.numpy().astype(np.float64)
        for (x1, y1, x2, y2), tid, s in zip(box, out.track_ids.numpy(), out.scores.numpy(), strict=True):
            rows.append((k + 1, int(tid) + 1, x1, y1, x2 - x1, y2 - y1, float(s)))
    return np.array(rows, np.float64).reshape(-1, 7)


def boxmot_version() -> str:
    """The installed BoxMOT's version; raises ``PackageNotFoundError`` without BoxMOT."""
    return metadata.version("boxmot")


def run(in_dir: Path, out_dir: Path, confs: Sequence[float]) -> dict[str, Any]:
    """Track every view of ``in_dir`` at every ``conf``; writes the rows and ``meta.json``; returns the meta."""
    import cv2
    import torch

    torch.set_num_threads(1)  # the tracker's work is small; leave the other cores to the benchmark
    cv2.setNumThreads(1)
    meta: dict[str, Any] = {"boxmot": boxmot_version(), "tracker": "botsort", "seconds": {}, "options": {}}
    for view in views_in(in_dir):
        inp = read_view_input(in_dir, view)
        meta["options"][view] = tracker_options(inp["fps"])
        for conf in confs:
            t = time.perf_counter()
            write_rows(rows_path(out_dir, view, conf), track_view(inp, conf))
            meta["seconds"][f"{view}-c{conf:g}"] = round(time.perf_counter() - t, 2)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 on success, 1 without BoxMOT (``--version``), 2 on bad input."""
    p = argparse.ArgumentParser(prog="boxmot_reference.py", description=__doc__.split("\n")[0])
    p.add_argument("in_dir", type=Path, nargs="?")
    p.add_argument("out_dir", type=Path, nargs="?")
    p.add_argument("--conf", type=float, nargs="+", default=[0.1], help="detection score thresholds")
    p.add_argument("--version", action="store_true", help="print BoxMOT's version and exit")
    args = p.parse_args(argv)
    if args.version:
        try:
            print(boxmot_version())
        except metadata.PackageNotFoundError:
            print(f"boxmot_reference: boxmot is not installed for {sys.executable}", file=sys.stderr)
            return 1
        return 0
    if args.in_dir is None or args.out_dir is None or not args.in_dir.is_dir():
        p.error("IN_DIR (an existing folder) and OUT_DIR are required")
    run(args.in_dir, args.out_dir, args.conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
