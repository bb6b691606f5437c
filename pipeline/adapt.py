"""``mtmc adapt OUT -o DIR --init ARCH:PTH``: fine-tune the ReID model on a run's own tracklets, no labels.

Each round trains :func:`reid.train.train` (P×K batches, BNNeck, label-smoothed CE +
the metric loss) on the crops of :func:`pipeline.adapt_data.build_adapt_set`, one
pseudo-identity per tracklet, same-camera same-time tracklets in one batch as hard
negatives. By default both losses are per camera (TAUDL's per-camera tracklet
discrimination, :mod:`reid.camera_aware`): a crop's class competes only with its own
camera's tracklets and metric-loss negatives come from its own camera, so two
cameras' tracklets of one person are never pushed apart. With ``join_confident``,
cross-camera tracklet pairs that are mutual nearest neighbours at a cosine distance
under ``JOIN_FRACTION`` × the run's linking threshold (:data:`DEFAULT_THRESHOLD` when the
run removed camera bias, whose threshold is on another scale) become one pseudo-identity — from
the run's own features (``features.npz``) in round 1, from the previous round's model
afterwards (each round re-labels with the new model).
Round r starts from round r − 1's model.

Writes ``DIR/crops/`` (the training crops), ``DIR/round<r>/`` (the trainer's
checkpoints and metrics), ``DIR/model.pth`` (the last round's; load it with
``--reid ARCH:DIR/model.pth``), ``DIR/metrics.csv`` (every round's epochs, with a
``round`` column) and ``DIR/adapt.json``.
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.adapt_data import AdaptSet, build_adapt_set, pseudo_ids
from pipeline.config import ReidConfig, TrackletConfig
from pipeline.errors import InputError, ModelError
from pipeline.report.run_view import RunView, load_run
from pipeline.vectors import l2_normalize

JOIN_FRACTION = 0.5  # of the linking threshold: only links far below it become positives
DEFAULT_THRESHOLD = 0.4  # cosine, when the run's threshold is not on the cosine scale of features.npz (or absent)


def _cosine_threshold(linking: dict[str, Any]) -> float:
    """The run's linking threshold when it is a plain cosine distance, else :data:`DEFAULT_THRESHOLD`
    (with camera bias removed the run's threshold is on another scale than ``features.npz``)."""
    if linking.get("camera_bias") or not linking.get("threshold"):
        return DEFAULT_THRESHOLD
    return float(linking["threshold"])


@dataclass
class AdaptOptions:
    """Settings of ``mtmc adapt``: the start model ``init`` (``ARCH:PTH``), epochs per round, rounds,
    whether confident cross-camera links become positives, crops per tracklet, P×K, learning rate,
    the metric loss (:data:`reid.metric_losses.METRIC_LOSSES`), whether the losses are per camera
    (``camera_aware``: :mod:`reid.camera_aware`), device and seed."""

    init: str
    epochs: int = 10
    rounds: int = 1
    join_confident: bool = False
    max_crops: int = 16
    p: int = 4
    k: int = 4
    lr: float = 5e-5
    metric_loss: str = "improved_triplet"  # chosen on README's scenes: best on both, 3 seeds
    camera_aware: bool = True
    device: str = "cpu"
    seed: int = 0
    progress: bool = False


def _split_init(init: str) -> tuple[str, Path]:
    from reid.weights import ARCHS

    arch, sep, path = init.partition(":")
    if not sep or arch not in ARCHS:
        raise ModelError(f"--init {init!r}: give ARCH:F.pth with ARCH one of {', '.join(ARCHS)}")
    weights = Path(path).expanduser()
    if not weights.is_file():
        raise ModelError(f"--init weights not found: {weights}")
    return arch, weights


def tracklet_features(data: AdaptSet, spec: str) -> dict[tuple[str, int], np.ndarray]:
    """Per tracklet, the L2-normalised mean feature of its crops under the ReID model ``spec`` (D ``float32``)."""
    import cv2

    from reid.factory import build_reid

    ex = build_reid(ReidConfig(spec=spec))
    assert ex is not None
    try:
        return {k: l2_normalize(ex.embed([cv2.imread(str(p)) for p in paths]).mean(axis=0), dtype=np.float32)
                for k, paths in data.crops.items()}
    finally:
        ex.close()


def confident_joins(feats: dict[tuple[str, int], np.ndarray], max_distance: float
                    ) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """Cross-camera tracklet pairs that are each other's nearest other-camera tracklet at cosine
    distance ≤ ``max_distance``, per camera pair."""
    keys = sorted(feats)
    if len(keys) < 2:
        return []
    f = np.stack([feats[k] for k in keys])
    d = 1.0 - f @ f.T
    cams = np.array([k[0] for k in keys])
    out = []
    for i, j in zip(*np.triu_indices(len(keys), 1), strict=True):
        if cams[i] == cams[j] or d[i, j] > max_distance:
            continue
        row_i, row_j = np.where(cams == cams[j])[0], np.where(cams == cams[i])[0]
        if row_i[np.argmin(d[i, row_i])] == j and row_j[np.argmin(d[j, row_j])] == i:
            out.append((keys[i], keys[j]))
    return out


def _store_features(view: RunView) -> dict[tuple[str, int], np.ndarray]:
    if view.store is None:
        raise InputError(f"{view.out}: --join-confident needs the run's features.npz (rerun mtmc run with --reid)")
    s = view.store
    return {(str(c), int(t)): l2_normalize(f, dtype=np.float32)
            for c, t, f in zip(s.camera_id, s.local_id, s.features, strict=True)}


def _round(opts: AdaptOptions, data: AdaptSet, pseudo: dict[tuple[str, int], int], init: Path, arch: str,
           out: Path, stop: threading.Event) -> dict[str, Any]:
    from reid.datasets import ReidDataset
    from reid.train import default_config, train

    ids = len(set(pseudo.values()))
    if ids < 2 * opts.p:
        raise InputError(f"the run has {ids} usable tracklets (pseudo-identities); mtmc adapt needs at least "
                         f"{2 * opts.p} (two P×K batches, P={opts.p}): run on longer or more footage")
    cfg = default_config(arch=arch, init_weights=str(init), epochs=opts.epochs, p=opts.p, k=opts.k, lr=opts.lr,
                         warmup_epochs=0, milestones=(max(1, opts.epochs * 2 // 3),), eval_every=0,
                         metric_loss=opts.metric_loss, camera_aware=opts.camera_aware, device=opts.device,
                         seed=opts.seed, out_dir=str(out),
                         progress=opts.progress)
    dataset = ReidDataset(out, "generic", train=data.items(pseudo))
    res = train(cfg, dataset, stop=stop, hard_negatives=data.hard_negatives(pseudo))
    res["pseudo_ids"] = ids
    return res


def adapt(out: str | Path, dest: str | Path, opts: AdaptOptions, stop: threading.Event | None = None,
          tracklets_cfg: TrackletConfig | None = None) -> dict[str, Any]:
    """Fine-tune ``opts.init`` on the tracklets of the run in ``out``; write the results to ``dest``.

    Returns:
        The content of ``adapt.json``: run, init, tracklets and crops used, per round the pseudo
        ids, joined pairs, hard-negative pairs, epochs and seconds; total seconds; the model path.

    Raises:
        InputError: not a run folder, sources gone, too few tracklets, or (join_confident) no features.npz.
        ModelError: ``opts.init`` is not ``ARCH:PTH`` or does not fit ``ARCH``.
    """
    t0 = time.perf_counter()
    arch, weights = _split_init(opts.init)
    view = load_run(out)
    dest = Path(dest)
    shutil.rmtree(dest / "crops", ignore_errors=True)  # an earlier adapt's crops into this folder
    data = build_adapt_set(view, dest / "crops", tracklets_cfg or TrackletConfig(), opts.max_crops)
    threshold = _cosine_threshold(view.linking)
    index = {k: i for i, k in enumerate(data.keys)}
    feats = {k: f for k, f in _store_features(view).items() if k in index} if opts.join_confident else {}
    stop = stop or threading.Event()
    rounds: list[dict[str, Any]] = []
    init = weights
    for r in range(1, opts.rounds + 1):
        joins = confident_joins(feats, JOIN_FRACTION * threshold) if opts.join_confident else []
        pseudo = pseudo_ids(data.keys, [(index[a], index[b]) for a, b in joins])
        res = _round(opts, data, pseudo, init, arch, dest / f"round{r}", stop)
        rounds.append({"round": r, "pseudo_ids": res["pseudo_ids"], "joined_pairs": len(joins),
                       "hard_negative_pairs": sum(len(v) for v in data.negatives.values()) // 2,
                       "epochs": res["epochs"], "interrupted": res["interrupted"]})
        init = Path(res["model_path"])
        if res["interrupted"]:
            break
        if opts.join_confident and r < opts.rounds:
            feats = tracklet_features(data, f"{arch}:{init}")
    return _finish(view, dest, opts, data, rounds, init, time.perf_counter() - t0)


def _finish(view: RunView, dest: Path, opts: AdaptOptions, data: AdaptSet, rounds: list[dict[str, Any]],
            model: Path, seconds: float) -> dict[str, Any]:
    shutil.copyfile(model, dest / "model.pth")
    rows = []
    for r in rounds:
        path = dest / f"round{r['round']}" / "metrics.csv"
        if path.is_file():
            with path.open(newline="") as fh:
                rows += [{"round": r["round"], **row} for row in csv.DictReader(fh)]
    if rows:
        with open(dest / "metrics.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    info = {"run": str(view.out), "init": opts.init, "tracklets": len(data.crops),
            "crops": sum(len(v) for v in data.crops.values()), "crops_from": data.source, "rounds": rounds,
            "seconds": round(seconds, 1),
            "model": str(dest / "model.pth"), "options": {k: v for k, v in vars(opts).items() if k != "progress"}}
    (dest / "adapt.json").write_text(json.dumps(info, indent=1))
    return info
