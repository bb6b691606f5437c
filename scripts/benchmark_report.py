"""Size and build time of ``report.html`` against the number of identities.

A real run (its ``summary.json``, ``trajectories.json`` and ``features.npz``) is grown to N
identities by repeating its identities under new global ids (same boxes, same crops), and
the report is built for each N: the page size and build time grow with N as they would
on a site with that many people, while the decoding of the cameras stays that of the run.

    python scripts/benchmark_report.py runs/pets --identities 21 100 300 1000

prints N, MB, seconds, crops and kB per identity.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from pipeline.feature_store import FEATURES_FILE, FeatureStore
from pipeline.report import build_report


def grow_run(run: Path, n: int, out: Path) -> None:
    """Write to ``out`` a copy of ``run`` with its identities repeated up to ``n`` identities."""
    traj = json.loads((run / "trajectories.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    base = traj["identities"]
    step = max(i["global_id"] for i in base)
    grown = []
    for k in range(int(np.ceil(n / len(base)))):
        for ident in base:
            new = copy.deepcopy(ident)
            new["global_id"] += k * step
            grown.append(new)
    traj["identities"] = grown[:n]
    summary["identities"] = n
    out.mkdir(parents=True, exist_ok=True)
    (out / "trajectories.json").write_text(json.dumps(traj))
    (out / "summary.json").write_text(json.dumps(summary))
    if (run / FEATURES_FILE).is_file():
        _grow_features(FeatureStore.load(run / FEATURES_FILE), step, len(grown) // len(base)).save(out / FEATURES_FILE)


def _grow_features(store: FeatureStore, step: int, times: int) -> FeatureStore:
    """``store`` repeated ``times`` with global ids shifted by ``step`` each time.

    The report looks features up by ``(camera, local id)``, so repeats share them: the crops
    of every repeated identity come from the same frames.
    """
    grown = copy.copy(store)
    grown.global_id = np.concatenate([store.global_id + k * step for k in range(times)])
    for name in ("features", "camera_id", "local_id", "start_time", "end_time", "num_features", "nearest_distance"):
        setattr(grown, name, np.concatenate([getattr(store, name)] * times))
    grown.feature_frames = list(store.feature_frames) * times
    return grown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="an mtmc run output folder")
    ap.add_argument("--identities", type=int, nargs="+", default=[21, 100, 300, 1000])
    ap.add_argument("--max-crops", type=int, default=6)
    args = ap.parse_args()
    print(f"{'identities':>10} {'MB':>7} {'build s':>8} {'crops':>7} {'kB/identity':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.identities:
            out = Path(tmp) / str(n)
            grow_run(args.run, n, out)
            info = build_report(out, max_crops=args.max_crops)
            print(f"{n:>10} {info.bytes / 1e6:>7.2f} {info.seconds:>8.1f} {info.crops:>7} "
                  f"{info.bytes / 1e3 / n:>12.1f}", flush=True)
            shutil.rmtree(out)


if __name__ == "__main__":
    main()
