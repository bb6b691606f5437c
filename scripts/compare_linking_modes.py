#!/usr/bin/env python
"""Offline vs incremental linking on multi-camera scenes: cross-camera IDF1 per decision delay.

For each MOT15 sequence and jitter seed, builds the 4-camera scene of
``scripts/make_multicam.py`` (2 overlapping + 2 disjoint crops, colour jitter),
runs the pipeline on it once with offline linking (``--config``, default
config), links the same tracklets again with ``linking.mode: incremental`` at
each ``linking.decision_delay_s`` (:func:`pipeline.runner.relink`: the same
detections, tracks and tracklet features), and scores cross-camera IDF1 (%)
with trackeval (``mtmc eval --cross-camera``). Prints one row per scene and,
per delay, the mean of ``incremental − offline`` and of its absolute value
over the scenes: the scenes hold 38–52 tracklets, so one link moves a scene by
several points and single rows are noisy; compare the means.

Example (about 1 min per scene on 2 cores)::

    python scripts/compare_linking_modes.py --seeds 0,1,2,3,4 --delays 0,5,10,15,20,25,30,40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_multicam import make_multicam  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.export import write_summary, write_tracks, write_trajectories  # noqa: E402
from pipeline.mot_eval import evaluate, match_gt_to_pred, processed_frames  # noqa: E402
from pipeline.results import RunResult  # noqa: E402
from pipeline.runner import relink, run  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def cross_camera_idf1(scene: Path, result: RunResult, out: Path) -> float:
    """Write ``result`` to ``out`` as ``mtmc run`` does and return its cross-camera IDF1 (%) on ``scene``.

    Raises:
        pipeline.errors.InputError: the scene's ground truth or the written tracks cannot be read.
        RuntimeError: no cross-camera score (the scene has one camera).
    """
    out.mkdir(parents=True, exist_ok=True)
    write_tracks(result, out)
    write_summary(result, out)
    write_trajectories(result, out)
    gt, pred = match_gt_to_pred([scene], out)
    res = evaluate(gt, pred, frames=processed_frames(out))
    if res.cross_camera is None:
        raise RuntimeError(f"{scene}: no cross-camera score (one camera only?)")
    return float(res.cross_camera.idf1)


def compare_scene(seq_dir: Path, seed: int, delays: list[float], work: Path, overrides: dict,
                  config: Path | None = None) -> dict[str, float]:
    """One scene: ``{"offline": idf1, "<delay>": idf1, ...}`` (cross-camera IDF1, %).

    Args:
        seq_dir: MOT15 sequence with pixels and ``gt/gt.txt``.
        seed: jitter seed of :func:`make_multicam`.
        delays: ``linking.decision_delay_s`` values (s) for the incremental runs.
        work: folder for the scene and the outputs (written).
        overrides: config overrides (detector and ReID specs).
        config: YAML config, or ``None`` for the defaults.

    Raises:
        pipeline.errors.InputError: ``seq_dir`` is not a sequence with pixels and gt.
        pipeline.errors.ConfigError: ``config`` or ``overrides`` is invalid.
        pipeline.errors.ModelError: the detector or ReID model cannot be loaded.
    """
    scene = work / f"{seq_dir.name}_seed{seed}"
    make_multicam(seq_dir, scene, "both", jitter=True, seed=seed, overwrite=True)
    cfg = load_config(config, overrides)
    offline = run([scene], cfg, out_dir=work / f"{scene.name}_offline")
    row = {"offline": cross_camera_idf1(scene, offline, work / f"{scene.name}_offline")}
    for d in delays:
        inc_cfg = load_config(config, {**overrides, "linking": {"mode": "incremental", "decision_delay_s": d}})
        res = relink(offline, inc_cfg)
        row[f"{d:g}"] = cross_camera_idf1(scene, res, work / f"{scene.name}_inc{d:g}")
    return row


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "MOT15",
                    help="MOT15 folder (default ../shared/data/MOT15)")
    ap.add_argument("--models", type=Path, default=SHARED / "models",
                    help="folder with yolox_nano.onnx and osnet_x0_25_msmt17.onnx (default ../shared/models)")
    ap.add_argument("--seqs", default="TUD-Stadtmitte,PETS09-S2L1", help="comma-separated sequences")
    ap.add_argument("--seeds", default="0", help="comma-separated jitter seeds (default 0)")
    ap.add_argument("--delays", default="0,10,20,30", help="comma-separated decision delays in seconds")
    ap.add_argument("--config", type=Path, default=None, help="YAML config (default: the defaults)")
    ap.add_argument("--work", type=Path, default=None, help="keep scenes and outputs here (default: a temp folder)")
    args = ap.parse_args(argv)
    try:
        delays = [float(x) for x in args.delays.split(",")]
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError as e:
        ap.error(f"--delays/--seeds: {e}")
    seqs = [args.data / s for s in args.seqs.split(",")]
    for p in [*seqs, args.models / "yolox_nano.onnx", args.models / "osnet_x0_25_msmt17.onnx"]:
        if not p.exists():
            print(f"error: {p} not found (see --data / --models)", file=sys.stderr)
            return 2
    overrides = {"detector": {"spec": f"yolox:{args.models / 'yolox_nano.onnx'}"},
                 "reid": {"spec": str(args.models / "osnet_x0_25_msmt17.onnx")}, "output": {"progress": False}}
    cols = [f"{d:g}" for d in delays]
    head = f"{'scene':<24} {'offline':>8} " + " ".join(f"{'inc ' + c + ' s':>9}" for c in cols)
    print(head)
    print("-" * len(head))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for seq in seqs:
            for seed in seeds:
                row = compare_scene(seq, seed, delays, work, overrides, args.config)
                rows.append(row)
                print(f"{seq.name + ' seed ' + str(seed):<24} {row['offline']:>8.1f} "
                      + " ".join(f"{row[c]:>9.1f}" for c in cols), flush=True)
    print("-" * len(head))
    n = len(rows)
    print(f"{'mean inc - offline':<24} {'':>8} " + " ".join(
        f"{sum(r[c] - r['offline'] for r in rows) / n:>+9.2f}" for c in cols))
    print(f"{'mean |inc - offline|':<24} {'':>8} " + " ".join(
        f"{sum(abs(r[c] - r['offline']) for r in rows) / n:>9.2f}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
