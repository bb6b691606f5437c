#!/usr/bin/env python
"""What ``mtmc adapt`` does to cross-camera IDF1, adapting on one scene and scoring on every scene.

For every scene (a ``make_multicam.py`` folder with ground truth): ``mtmc run`` with the start model
(``--init``, e.g. the torchreid MSMT17 OSNet x0.25 ``.pth``), then for every metric loss and seed
``mtmc adapt`` on that run (``--rounds`` rounds, ``--join-confident``, per-camera losses unless
``--no-camera-aware``), then ``mtmc run`` on every scene with each round's model. No label is used to
adapt; the ground truth only scores (``mtmc eval --cross-camera``). Prints one row per (adapted on,
loss, seed, round) with the cross-camera IDF1 of every scene, the gain on the scene adapted on and on
the others, and the CPU seconds of ``mtmc adapt``; then the mean gain per loss and round over scenes
and seeds. ``--json`` writes every figure.

    python scripts/benchmark_adapt.py scenes/tud scenes/pets -o /tmp/bench_adapt \\
        --init osnet_x0_25:../shared/models/osnet_x0_25_msmt17_torchreid.pth \\
        --detector yolox:../shared/models/yolox_nano.onnx --seeds 0 1 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.cli import main as mtmc  # noqa: E402
from pipeline.mot_eval import evaluate, match_gt_to_pred, processed_frames  # noqa: E402
from reid.metric_losses import METRIC_LOSSES  # noqa: E402


def cross_idf1(scene: Path, run: Path) -> float:
    """Cross-camera IDF1 (%) of the run ``run`` against the ground truth of ``scene``."""
    gt, pred = match_gt_to_pred([scene], run)
    res = evaluate(gt, pred, frames=processed_frames(run))
    if res.cross_camera is None:
        raise SystemExit(f"{scene}: needs two or more cameras with ground truth")
    return float(res.cross_camera.idf1)


def _run(scene: Path, out: Path, detector: str, reid: str) -> float:
    code = mtmc(["run", str(scene), "-o", str(out), "--detector", detector, "--reid", reid, "--no-progress",
                 "--exist-ok"])
    if code != 0:
        raise SystemExit(f"mtmc run {scene} exited {code}")
    return cross_idf1(scene, out)


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the data loader's workers)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def _adapt(run: Path, dest: Path, args: argparse.Namespace, loss: str, seed: int) -> float:
    """``mtmc adapt`` on ``run``; returns its CPU seconds (this process)."""
    t = _cpu_s()
    argv = ["adapt", str(run), "-o", str(dest), "--init", args.init, "--epochs", str(args.epochs), "--rounds",
            str(args.rounds), "--join-confident", "--metric-loss", loss, "--seed", str(seed), "--no-progress",
            "--camera-aware" if args.camera_aware else "--no-camera-aware"]
    if mtmc(argv) != 0:
        raise SystemExit(f"mtmc adapt {run} failed")
    return _cpu_s() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenes", nargs="+", type=Path, help="make_multicam.py scenes with gt (2+ cameras each)")
    ap.add_argument("-o", "--work", type=Path, required=True, help="folder for the runs and adapted models")
    ap.add_argument("--init", required=True, help="start model ARCH:PTH")
    ap.add_argument("--detector", required=True, help="detector SPEC")
    ap.add_argument("--losses", nargs="+", default=["improved_triplet"], choices=METRIC_LOSSES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--camera-aware", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)
    names = [s.name for s in args.scenes]
    start = {s.name: _run(s, args.work / f"start-{s.name}", args.detector, args.init) for s in args.scenes}
    rows: list[dict[str, Any]] = []
    print(f"{'adapted on':<10} {'loss':<16} {'seed':>4} {'round':>5} " + " ".join(f"{n[:7]:>7}" for n in names)
          + f" {'own':>6} {'others':>7} {'CPU s':>7}")
    print("start" + " " * 34 + " ".join(f"{start[n]:>7.1f}" for n in names))
    for on in args.scenes:
        for loss in args.losses:
            for seed in args.seeds:
                dest = args.work / f"adapt-{on.name}-{loss}-s{seed}"
                cpu = _adapt(args.work / f"start-{on.name}", dest, args, loss, seed)
                for r in range(1, args.rounds + 1):
                    reid = f"{args.init.partition(':')[0]}:{dest / f'round{r}' / 'model.pth'}"
                    idf1 = {s.name: _run(s, dest / f"run-{s.name}-r{r}", args.detector, reid) for s in args.scenes}
                    rows.append({"adapted_on": on.name, "loss": loss, "seed": seed, "round": r, "idf1": idf1,
                                 "cpu_s": round(cpu, 1)})
                    print(_row(rows[-1], start, names), flush=True)
    _summary(rows, start, names, args)
    if args.json:
        args.json.write_text(json.dumps({"start": start, "rows": rows, "camera_aware": args.camera_aware}, indent=1))
    return 0


def _row(row: dict[str, Any], start: dict[str, float], names: list[str]) -> str:
    own = row["idf1"][row["adapted_on"]] - start[row["adapted_on"]]
    others = [row["idf1"][n] - start[n] for n in names if n != row["adapted_on"]]
    cells = " ".join(f"{row['idf1'][n]:>7.1f}" for n in names)
    other = f"{statistics.mean(others):+.1f}" if others else "-"
    return (f"{row['adapted_on']:<10} {row['loss']:<16} {row['seed']:>4} {row['round']:>5} {cells} {own:>+6.1f} "
            f"{other:>7} {row['cpu_s']:>7.0f}")


def _summary(rows: list[dict[str, Any]], start: dict[str, float], names: list[str], args: argparse.Namespace) -> None:
    print("start: " + ", ".join(f"{n} {start[n]:.1f}" for n in names))
    print(f"mean gain on the scene adapted on, over scenes and seeds (camera-aware {args.camera_aware}):")
    for loss in args.losses:
        for r in range(1, args.rounds + 1):
            sel = [x for x in rows if x["loss"] == loss and x["round"] == r]
            own = [x["idf1"][x["adapted_on"]] - start[x["adapted_on"]] for x in sel]
            worst = min(own) if own else float("nan")
            print(f"  {loss:<16} round {r}: {statistics.mean(own):+.1f} (worst {worst:+.1f}, {len(own)} runs)")


if __name__ == "__main__":
    sys.exit(main())
