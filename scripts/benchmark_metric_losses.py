"""Held-out ReID accuracy of fine-tuning with each metric loss (``mtmc reid train --metric-loss``).

Starting from one checkpoint (the torchreid MSMT17 OSNet x0.25 by default), the same
fine-tuning as the README's (label-smoothed CE + the metric loss, P×K = 4×4, 15 epochs,
lr 5e-5, step at epoch 10) is run once per loss and seed on the train identities of a
``scripts/make_reid_crops.py`` dataset; the query/gallery identities are never trained on.
Prints rank-1 and mAP of the start model and of each run's final ``model.pth``, and the
CPU time per run (training only).

    python scripts/benchmark_metric_losses.py reid_crops --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pipeline.config import ReidConfig
from reid.datasets import load_dataset
from reid.evaluate import evaluate_reid
from reid.factory import build_reid
from reid.metric_losses import METRIC_LOSSES
from reid.train import default_config, train

FINE_TUNE = dict(arch="osnet_x0_25", epochs=15, p=4, k=4, lr=5e-5, warmup_epochs=0, milestones=(10,), eval_every=0,
                 progress=False)


def _score(dataset: Path, spec: str) -> dict:
    ex = build_reid(ReidConfig(spec=spec))
    try:
        return evaluate_reid(dataset, ex, progress=False)
    finally:
        ex.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--init", default="../shared/models/osnet_x0_25_msmt17_torchreid.pth")
    ap.add_argument("--losses", nargs="+", default=list(METRIC_LOSSES), choices=METRIC_LOSSES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    start = _score(args.dataset, f"osnet_x0_25:{args.init}")
    rows = [{"loss": "start", "seed": "-", "rank1": start["rank1"], "mAP": start["mAP"], "cpu_s": 0.0}]
    print(f"{'loss':<17} {'seed':>4} {'rank-1':>7} {'mAP':>7} {'CPU s':>7}", flush=True)
    print(f"{'start':<17} {'-':>4} {100 * start['rank1']:>6.1f}% {100 * start['mAP']:>6.1f}% {0:>7.0f}", flush=True)
    data = load_dataset(args.dataset)
    for loss in args.losses:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = default_config(**FINE_TUNE, init_weights=args.init, metric_loss=loss, seed=seed, out_dir=tmp)
                t = time.process_time()
                res = train(cfg, data)
                cpu = time.process_time() - t
                scores = _score(args.dataset, f"osnet_x0_25:{res['model_path']}")
            rows.append({"loss": loss, "seed": seed, "rank1": scores["rank1"], "mAP": scores["mAP"], "cpu_s": cpu})
            print(f"{loss:<17} {seed:>4} {100 * scores['rank1']:>6.1f}% {100 * scores['mAP']:>6.1f}% {cpu:>7.0f}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
