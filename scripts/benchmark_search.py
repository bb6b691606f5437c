"""Accuracy of ``mtmc search`` on ``scripts/make_multicam.py`` scenes, and the choice of its threshold.

Queries are person crops cut from the ground truth of each camera (up to ``--per-person``
evenly spaced boxes per person, at least ``--min-height`` px high). A query's answer is
right when the top identity is the one the run drew on that person in that frame (the
predicted box matched to the gt box, IoU >= 0.5). Negative queries are crops of people
of another scene, who are in none of the run's cameras: their right answer is "no match".

The threshold is chosen leave-one-sequence-out: for each source sequence, the cosine
distance that maximises the balanced accuracy (mean of: positives answered with the
right identity within the threshold; negatives rejected) pooled over the scenes of the
other sequences, then reported on each scene of this one.

    python scripts/benchmark_search.py --scene TUD scenes/tud runs/tud --scene PETS scenes/pets runs/pets

prints one table row per scene (needs the runs' features.npz).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import ReidConfig
from pipeline.mot_format import read_mot_txt
from pipeline.report.run_view import load_run
from pipeline.search import rank_identities
from pipeline.sources import discover_cameras, frames_at
from pipeline.types import tlwh_to_xyxy
from pipeline.vectors import l2_normalize
from reid.factory import build_reid
from reid.preprocess import crop_boxes
from trackers.matching import iou_matrix, linear_assignment

THRESHOLDS = np.round(np.arange(0.10, 0.61, 0.01), 2)


@dataclass
class Query:
    """A crop (H×W×3 uint8 BGR) of gt person ``gt_id`` in 0-based ``frame`` of ``camera``, and the run's
    identity on it (0: none)."""

    crop: np.ndarray
    camera: str
    frame: int
    gt_id: int
    expected: int


def _matched(gt: np.ndarray, pred: np.ndarray) -> dict[tuple[int, int], int]:
    """(0-based frame, gt id) → predicted id matched to it (Hungarian on IoU ≥ 0.5)."""
    out: dict[tuple[int, int], int] = {}
    for f in np.unique(gt[:, 0]).astype(int):
        g, p = gt[gt[:, 0] == f], pred[pred[:, 0] == f]
        if not len(p):
            continue
        matches, _, _ = linear_assignment(1 - iou_matrix(tlwh_to_xyxy(g[:, 2:6]), tlwh_to_xyxy(p[:, 2:6])), 0.5)
        out.update({(f - 1, int(g[r, 1])): int(p[c, 1]) for r, c in matches})
    return out


def _pick(gt: np.ndarray, per_person: int, min_height: float) -> dict[int, list[tuple[int, np.ndarray]]]:
    """0-based frame → [(gt id, xyxy)] for up to ``per_person`` evenly spaced tall boxes per person."""
    by_frame: dict[int, list[tuple[int, np.ndarray]]] = {}
    tall = gt[(gt[:, 5] >= min_height) & (gt[:, 6] != 0)]
    for pid in np.unique(tall[:, 1]).astype(int):
        rows = tall[tall[:, 1] == pid]
        for k in np.linspace(0, len(rows) - 1, min(per_person, len(rows))).round().astype(int):
            by_frame.setdefault(int(rows[k, 0]) - 1, []).append((pid, tlwh_to_xyxy(rows[k, 2:6])[0]))
    return by_frame


def camera_queries(cam_dir: Path, run: Path | None, per_person: int, min_height: float) -> list[Query]:
    """Queries from one camera folder of a scene; ``expected`` from the run's tracks (0 without ``run``)."""
    spec = discover_cameras([cam_dir])[0]
    gt = read_mot_txt(cam_dir / "gt" / "gt.txt")
    matched = _matched(gt, read_mot_txt(run / "tracks" / f"{spec.camera_id}.txt")) if run else {}
    wanted = _pick(gt, per_person, min_height)
    out: list[Query] = []
    for frame in frames_at(spec, wanted):
        here = wanted[frame.index]
        if frame.image is None:
            continue
        crops, _ = crop_boxes(frame.image, np.stack([b for _, b in here]))
        for (pid, _), crop in zip(here, crops, strict=True):
            expected = matched.get((frame.index, pid), 0)
            if crop is not None and (run is None or expected):  # the run drew an identity on it
                out.append(Query(crop.copy(), spec.camera_id, frame.index, pid, expected))
    return out


def scene_queries(scene: Path, run: Path | None, per_person: int, min_height: float) -> list[Query]:
    """Queries from every camera of a scene."""
    return [q for cam in sorted(p for p in scene.iterdir() if (p / "gt" / "gt.txt").is_file())
            for q in camera_queries(cam, run, per_person, min_height)]


def distances(run: Path, queries: list[Query], extractor) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the best identity's cosine distance and whether it is the expected one."""
    view = load_run(run, need_features=True)
    feats = l2_normalize(extractor.embed([q.crop for q in queries]), dtype=np.float32)
    best_d, right = [], []
    for q, f in zip(queries, feats, strict=True):
        _, best = rank_identities(view, f, 1, 2.0)
        best_d.append(best.distance if best else 2.0)
        right.append(best is not None and best.global_id == q.expected)
    return np.array(best_d), np.array(right)


def rates(pos: tuple[np.ndarray, np.ndarray], neg_d: np.ndarray, thr: float) -> dict[str, float]:
    """Top-1 accuracy (no threshold), positives right within ``thr``, negatives rejected, balanced mean."""
    d, right = pos
    hit = float(np.mean(right & (d <= thr)))
    rej = float(np.mean(neg_d > thr))
    return {"top1": float(np.mean(right)), "hit": hit, "rejected": rej, "balanced": (hit + rej) / 2}


def _held_out_row(seq: str, scene: Path, scenes: list, stats: dict, n: int) -> dict:
    """The threshold chosen on the scenes of the other sequences, reported on ``scene``."""
    train = [stats[o] for o_seq, o, _ in scenes if o_seq != seq]
    pos = (np.concatenate([t[0][0] for t in train]), np.concatenate([t[0][1] for t in train]))
    neg = np.concatenate([t[1] for t in train])
    best = float(max(THRESHOLDS, key=lambda t: rates(pos, neg, float(t))["balanced"]))
    return {"sequence": seq, "reported_on": scene.name, "threshold": best, "queries": n,
            **rates(stats[scene][0], stats[scene][1], best)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scene", nargs=3, action="append", required=True, metavar=("SEQUENCE", "SCENE", "RUN"),
                    help="source sequence name, a make_multicam scene of it and its mtmc run folder (two "
                         "sequences or more)")
    ap.add_argument("--reid", default="../shared/models/osnet_x0_25_msmt17.onnx")
    ap.add_argument("--per-person", type=int, default=3)
    ap.add_argument("--min-height", type=float, default=40.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    extractor = build_reid(ReidConfig(spec=args.reid))
    scenes = [(seq, Path(s), Path(r)) for seq, s, r in args.scene]
    queries = {s: scene_queries(s, r, args.per_person, args.min_height) for _, s, r in scenes}
    stats = {}
    for seq, s, r in scenes:  # negatives: people of the other sequences
        others = [q for o_seq, o, _ in scenes if o_seq != seq for q in queries[o]]
        stats[s] = (distances(r, queries[s], extractor), distances(r, others, extractor)[0])
    rows = [_held_out_row(seq, s, scenes, stats, len(queries[s])) for seq, s, _ in scenes]
    print(f"{'reported on':<16} {'thr':>5} {'queries':>7} {'top-1':>6} {'hit':>6} {'reject':>6}")
    for r in rows:
        print(f"{r['reported_on']:<16} {r['threshold']:>5.2f} {r['queries']:>7} "
              f"{100 * r['top1']:>5.1f}% {100 * r['hit']:>5.1f}% {100 * r['rejected']:>5.1f}%")
    for k in ("top1", "hit", "rejected"):
        vals = [r[k] for r in rows]
        print(f"{k}: mean {100 * np.mean(vals):.1f}%, worst {100 * min(vals):.1f}%")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
