"""Train or fine-tune a person ReID network: BNNeck baseline, optional AlignedReID local branch and mutual learning.

Recipe ("BoT", Luo, Gu, Liao, Lai and Jiang, "Bag of Tricks and A Strong Baseline
for Deep Person Re-identification", CVPRW 2019):

* P×K batches (:class:`reid.sampler.PKSampler`), 256×128 input, random horizontal
  flip, 10-px zero padding + random crop, random erasing (Zhong, Zheng, Kang, Li
  and Yang, "Random Erasing Data Augmentation", AAAI 2020; erased pixels are 0
  after normalisation, i.e. the ImageNet mean), ImageNet normalisation;
* Adam, linear warm-up (10 epochs from 0.1·lr in the paper), then a step schedule
  (milestones 40/70, γ = 0.1) or cosine decay;
* BNNeck: the pooled global feature ``f_t`` feeds the batch-hard triplet loss
  (margin 0.3); ``f_i = BN(f_t)`` (BatchNorm1d whose bias is frozen at 0) feeds a
  bias-free linear classifier trained with label-smoothed cross-entropy (ε = 0.1);
  ``f_i`` is the inference feature.

Options:

* ``aligned`` — AlignedReID (Zhang et al., arXiv:1711.08184, 2017): the last
  feature map is average-pooled into H horizontal stripes, reduced by a 1×1 conv +
  BN + ReLU to ``local_dim`` channels and L2-normalised per stripe; the local
  triplet loss uses the hard pairs mined on the global distance
  (:func:`reid.losses.aligned_triplet_loss`). As in the paper, the local branch only
  regularises training: the exported model gives the global feature.
* ``mutual`` — deep mutual learning (Zhang, Xiang, Hospedales and Lu, CVPR 2018;
  AlignedReID §3.2): two networks of the same architecture (different random
  heads / init) trained together, each with its own losses plus the KL term
  (:func:`reid.losses.mutual_kl_loss`) and the metric mutual term
  (:func:`reid.losses.metric_mutual_loss`) towards the detached partner. The
  first network is exported.

Files written to ``out_dir``:

* ``metrics.csv`` and ``metrics.jsonl`` — one row per epoch: ``epoch`` (1-based,
  epochs completed), ``step`` (optimizer steps so far), mean losses, learning rate,
  and ``rank1``/``mAP`` (fractions in [0, 1]) on the epochs that were evaluated;
* ``last.pth`` — checkpoint after every epoch: ``model`` (the training wrapper's
  state dict), ``peer`` (mutual learning only), ``optimizer``, ``scheduler``,
  ``scaler`` (AMP only), ``epoch``, ``step``, ``best_map``, ``config`` (plain
  dict), ``pids`` (original person id of each class index); only tensors and plain
  types, readable with ``torch.load(..., weights_only=True)``;
* ``best.pth`` — the same, from the epoch with the highest evaluated mAP;
* ``model.pth`` — the final network's plain state dict in the :mod:`reid.weights`
  layout, so ``--reid ARCH:out_dir/model.pth`` loads it
  (:func:`reid.weights.build_torch_model`):

  - ``resnet50``: :class:`~reid.models.resnet_bnneck.ResNet50BNNeck` keys
    including ``bottleneck.*`` (the BNNeck) and ``classifier.*`` (dropped by the
    loader); inference uses the BN feature, exactly as evaluated here;
  - ``osnet_*``: the :class:`~reid.models.osnet.OSNet` keys (``conv1`` … ``fc``)
    only. OSNet in :mod:`reid.models` has no BNNeck, so the BNNeck layer
    (``bottleneck.*`` of the wrapper, kept in ``last.pth``/``best.pth``) is not
    used at inference and the embedding is the pre-BN ``fc`` output ``f_t``. For
    the same reason evaluation during training embeds with the exported network
    (:meth:`ReidTrainNet.inference_module`), so the logged rank-1/mAP are those of
    ``model.pth``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from pipeline.errors import InputError
from reid.camera_aware import CameraBatch, batch_negatives, class_cameras, known_pairs
from reid.checkpoint import load_checkpoint, make_checkpoint, restore, save
from reid.datasets import ReidDataset
from reid.metric_losses import METRIC_LOSSES
from reid.sampler import PKSampler
from reid.train_config import TrainConfig, default_config
from reid.train_data import TrainImageDataset, build_transform
from reid.train_net import ReidTrainNet, build_train_net, train_step

__all__ = [
    "METRIC_COLUMNS",
    "ReidTrainNet",
    "TrainConfig",
    "TrainImageDataset",
    "build_train_net",
    "build_transform",
    "default_config",
    "lr_factor",
    "train",
    "train_step",
]

log = logging.getLogger(__name__)

METRIC_COLUMNS = (
    "epoch", "step", "loss", "loss_id", *(f"loss_{name}" for name in METRIC_LOSSES), "loss_local", "loss_kl",
    "loss_metric", "lr", "rank1", "mAP", "seconds",
)
"""Columns of ``metrics.csv`` (empty cells where a value does not apply)."""


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Learning-rate multiplier of (0-based) ``epoch``: linear warm-up, then step or cosine decay."""
    if epoch < cfg.warmup_epochs:
        alpha = epoch / cfg.warmup_epochs
        return cfg.warmup_factor * (1 - alpha) + alpha
    if cfg.schedule == "step":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    span = max(1, cfg.epochs - 1 - cfg.warmup_epochs)
    t = min(1.0, (epoch - cfg.warmup_epochs) / span)
    return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))


def _make_optimizer(cfg: TrainConfig, params: list[tuple[str, nn.Parameter]]) -> torch.optim.Optimizer:
    decay = [p for n, p in params if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in params if p.requires_grad and p.ndim <= 1]  # BN weights, biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _evaluate(cfg: TrainConfig, net: ReidTrainNet, dataset: ReidDataset, device: torch.device) -> dict[str, Any]:
    from reid.evaluate import evaluate_reid
    from reid.torch_backend import TorchReidExtractor

    module = net.inference_module()
    extractor = TorchReidExtractor(
        module, name=f"train-{cfg.arch}", batch=cfg.eval_batch, device=str(device),
        threads=torch.get_num_threads(), input_hw=cfg.input_hw,
    )
    try:
        return evaluate_reid(dataset, extractor, progress=cfg.progress)
    finally:
        net.train()


def _append_metrics(out_dir: Path, row: dict[str, Any]) -> None:
    csv_path = out_dir / "metrics.csv"
    new = not csv_path.is_file()
    with csv_path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
    with (out_dir / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")


@dataclass
class _Run:
    """The state of one training run: data, networks, optimisation, counters."""

    cfg: TrainConfig
    dataset: ReidDataset
    device: torch.device
    out_dir: Path
    data: TrainImageDataset
    sampler: PKSampler
    loader: DataLoader
    nets: list[ReidTrainNet]
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    epoch: int = 0
    step: int = 0
    best_map: float = -1.0
    best_epoch: int = 0
    cameras: Any = None  # C×M bool class-camera table (cfg.camera_aware)
    known: Any = None  # C×C bool classes known to be two people (cfg.camera_aware, from hard_negatives)

    def checkpoint(self, epochs_done: int) -> dict[str, Any]:
        return make_checkpoint(self.nets, self.opt, self.sched, self.scaler, epochs_done, self.step, self.best_map,
                               self.cfg, self.data.pids)


def _setup(cfg: TrainConfig, dataset: ReidDataset, hard_negatives: Mapping[int, Sequence[int]] | None = None) -> _Run:
    from reid.torch_backend import resolve_device

    _seed_all(cfg.seed)
    device = resolve_device(cfg.device, "ReID training")
    out_dir = Path(cfg.out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = TrainImageDataset(dataset.train, build_transform(cfg.input_hw, train=True))
    if data.num_classes < cfg.p:
        raise InputError(f"the train split has {data.num_classes} identities; P={cfg.p} needs at least that many")
    cls = {pid: i for i, pid in enumerate(data.pids)}
    neighbours = None if hard_negatives is None else {
        cls[a]: [cls[b] for b in bs if b in cls] for a, bs in hard_negatives.items() if a in cls}
    sampler = PKSampler(data.labels, cfg.p, cfg.k, seed=cfg.seed, neighbours=neighbours)
    loader = DataLoader(
        data, batch_size=cfg.p * cfg.k, sampler=sampler, drop_last=True, num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda", persistent_workers=False,
    )
    nets = [build_train_net(cfg, data.num_classes)]
    if cfg.mutual:
        torch.manual_seed(cfg.seed + 1)  # a differently initialised head (and backbone when random)
        nets.append(build_train_net(cfg, data.num_classes))
    nets = [n.to(device) for n in nets]
    params = [(f"{i}.{n}", p) for i, net in enumerate(nets) for n, p in net.named_parameters()]
    opt = _make_optimizer(cfg, params)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(cfg, e))
    scaler = torch.amp.GradScaler("cuda") if cfg.amp and device.type == "cuda" else None
    run = _Run(cfg, dataset, device, out_dir, data, sampler, loader, nets, opt, sched, scaler)
    if cfg.camera_aware:
        run.cameras = class_cameras(data.labels, [e[2] for e in data.entries], data.num_classes).to(device)
        run.known = known_pairs(neighbours or {}, data.num_classes, device)
    if cfg.resume:
        ck = load_checkpoint(cfg.resume)
        run.epoch, run.step, run.best_map = restore(ck, nets, opt, sched, scaler, cfg, data.num_classes)
        log.info("resumed %s at epoch %d (step %d)", cfg.resume, run.epoch, run.step)
    return run


def _run_epoch(run: _Run, stop: threading.Event) -> tuple[dict[str, float], int, float]:
    """One pass over the loader (ends early when ``stop`` is set); returns loss sums, batches and the lr."""
    from tqdm import tqdm

    cfg, device = run.cfg, run.device
    run.sampler.set_epoch(run.epoch)
    for net in run.nets:
        net.train()
    sums: dict[str, float] = {}
    batches = 0
    lr = run.opt.param_groups[0]["lr"]
    bar = tqdm(run.loader, desc=f"epoch {run.epoch + 1}/{cfg.epochs}", unit="batch", disable=not cfg.progress,
               leave=False)
    for images, labels, camids in bar:
        if stop.is_set():
            break
        run.opt.zero_grad(set_to_none=True)
        labels = labels.to(device, non_blocking=True).long()
        camera = _camera_batch(run, labels, camids.to(device).long())
        with torch.autocast(device.type, dtype=torch.float16, enabled=run.scaler is not None):
            total, parts = train_step(cfg, run.nets, images.to(device, non_blocking=True), labels, camera)
        if run.scaler is not None:
            run.scaler.scale(total).backward()
            run.scaler.step(run.opt)
            run.scaler.update()
        else:
            total.backward()
            run.opt.step()
        run.step += 1
        batches += 1
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + value
        bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{lr:.2e}")
    bar.close()
    return sums, batches, lr


def _camera_batch(run: _Run, labels: torch.Tensor, camids: torch.Tensor) -> CameraBatch | None:
    """The batch's :class:`~reid.camera_aware.CameraBatch` with ``cfg.camera_aware``, else ``None``."""
    if run.cameras is None:
        return None
    return CameraBatch(camids, run.cameras, batch_negatives(labels, camids, run.known))


def _finish_epoch(run: _Run, sums: dict[str, float], batches: int, lr: float, t0: float) -> dict[str, Any]:
    """Schedule step, evaluation when due, checkpoints and the metrics row of the epoch just done."""
    cfg, epoch, ds = run.cfg, run.epoch, run.dataset
    run.sched.step()
    row: dict[str, Any] = {"epoch": epoch + 1, "step": run.step, "lr": lr}
    row.update({k: v / max(batches, 1) for k, v in sums.items()})
    improved = False
    due = cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs)
    if due and ds.query and ds.gallery:
        res = _evaluate(cfg, run.nets[0], ds, run.device)
        row["rank1"], row["mAP"] = float(res["rank1"]), float(res["mAP"])
        if row["mAP"] > run.best_map:
            run.best_map, run.best_epoch, improved = row["mAP"], epoch + 1, True
    row["seconds"] = round(time.perf_counter() - t0, 3)
    ck = run.checkpoint(epoch + 1)
    save(ck, run.out_dir / "last.pth")
    if improved:
        save(ck, run.out_dir / "best.pth")
    _append_metrics(run.out_dir, row)
    log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))
    return row


def train(cfg: TrainConfig, dataset: ReidDataset, stop: threading.Event | None = None,
          hard_negatives: Mapping[int, Sequence[int]] | None = None) -> dict[str, Any]:
    """Train ``cfg.arch`` on ``dataset.train`` and evaluate on its query/gallery (module docstring).

    Args:
        cfg: the settings (:class:`~reid.train_config.TrainConfig`).
        dataset: a :class:`~reid.datasets.ReidDataset` with a non-empty train split (query
            and gallery needed only when ``cfg.eval_every > 0``).
        stop: when set (SIGTERM, Ctrl-C: :class:`pipeline.signals.GracefulStop`), training
            ends after the batch in flight: ``last.pth`` (resumable; the epoch restarts) and
            ``model.pth`` are written and the result says ``interrupted``.
        hard_negatives: person id → person ids to put in its batches (see :class:`~reid.sampler.PKSampler`);
            with ``cfg.camera_aware`` these pairs are metric-loss negatives whatever their cameras.

    Returns:
        ``{"out_dir", "model_path", "epochs", "step", "num_classes", "best_map", "best_epoch",
        "history", "interrupted"}``; ``epochs`` counts the epochs completed, ``history`` holds this
        run's metric rows (see :data:`METRIC_COLUMNS`), ``best_map`` is ``-1.0`` when nothing was evaluated.

    Raises:
        InputError: empty train split, fewer than P identities, unreadable images.
        ModelError: init/resume weights missing or not fitting; a resume checkpoint of
            another architecture or class count.
    """
    run = _setup(cfg, dataset, hard_negatives)
    stop = stop or threading.Event()
    history: list[dict[str, Any]] = []
    while run.epoch < cfg.epochs and not stop.is_set():
        t0 = time.perf_counter()
        sums, batches, lr = _run_epoch(run, stop)
        if stop.is_set():  # mid-epoch: a resumable checkpoint of the epochs done; this epoch restarts
            save(run.checkpoint(run.epoch), run.out_dir / "last.pth")
            log.warning("training interrupted in epoch %d (step %d); resume with --resume %s", run.epoch + 1,
                        run.step, run.out_dir / "last.pth")
            break
        history.append(_finish_epoch(run, sums, batches, lr, t0))
        run.epoch += 1
    model_path = run.out_dir / "model.pth"
    save({k: v.detach().cpu() for k, v in run.nets[0].inference_module().state_dict().items()}, model_path)
    return {
        "out_dir": str(run.out_dir), "model_path": str(model_path), "epochs": run.epoch, "step": run.step,
        "num_classes": run.data.num_classes, "best_map": run.best_map, "best_epoch": run.best_epoch,
        "history": history, "interrupted": stop.is_set(),
    }
