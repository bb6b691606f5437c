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
import dataclasses
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from pipeline.atomic import atomic_path
from pipeline.errors import ConfigError, InputError, ModelError
from reid.datasets import ReidDataset, ReidItem
from reid.losses import (
    TRIPLET_MARGIN,
    aligned_triplet_loss,
    label_smoothing_cross_entropy,
    metric_mutual_loss,
    mutual_kl_loss,
    pairwise_euclidean,
    triplet_hard_loss,
)
from reid.preprocess import IMAGENET_MEAN, IMAGENET_STD, REID_HW
from reid.sampler import PKSampler
from reid.weights import ARCHS, build_torch_model, load_state_dict_file, torch_load_tensors

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
    "epoch", "step", "loss", "loss_id", "loss_triplet", "loss_local", "loss_kl", "loss_metric", "lr",
    "rank1", "mAP", "seconds",
)
"""Columns of ``metrics.csv`` (empty cells where a value does not apply)."""


@dataclass
class TrainConfig:
    """Every training knob, with the BoT / AlignedReID defaults.

    Attributes:
        arch: architecture, a key of :data:`reid.weights.ARCHS` (``'osnet_x0_25'`` … ``'resnet50'``).
        init_weights: checkpoint to start from (torchreid ReID or ImageNet weights, or a
            ``model.pth`` from here); loaded strictly except ``classifier.*``; a checkpoint
            without any neck entries (``fc.*`` for OSNet, ``bottleneck.*`` for ResNet-50,
            as ImageNet backbones) leaves those layers at random init (warned). ``None``:
            random init (warned).
        input_hw: network input ``(height, width)`` in pixels.
        p: identities per batch. k: images per identity (batch = P·K).
        epochs: total epochs (the schedule's length).
        optimizer: ``'adam'`` or ``'sgd'`` (momentum 0.9, Nesterov).
        lr: base learning rate. weight_decay: L2 penalty (not applied to BN/bias parameters).
        warmup_epochs: linear warm-up from ``warmup_factor·lr`` to ``lr`` over these epochs.
        warmup_factor: starting fraction of the warm-up.
        schedule: ``'step'`` (×``gamma`` at each of ``milestones``, epochs) or ``'cosine'``
            (from ``lr`` after warm-up to ``min_lr_factor·lr`` at the last epoch).
        label_smoothing: ε of the label-smoothed cross-entropy.
        triplet_margin: hinge margin (feature units). soft_margin: use ``log(1+exp(·))`` instead.
        id_weight / triplet_weight / local_weight / kl_weight / metric_weight: loss weights.
        aligned: add the AlignedReID local branch. local_stripes: H. local_dim: channels after the 1×1 conv.
        mutual: train two networks with mutual learning.
        amp: float16 autocast + gradient scaling; used only on CUDA devices.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` (CUDA unavailable → CPU, warned).
        seed: seed of torch, numpy, random and the sampler.
        eval_every: evaluate on query/gallery every N epochs and after the last (0 = never).
        eval_batch: images per forward pass when evaluating.
        out_dir: folder for metrics and checkpoints (created).
        resume: a ``last.pth``/``best.pth`` to continue from (model, optimizer, scheduler, epoch).
        num_workers: DataLoader worker processes (0 = load in the main process; default min(4, cores)).
        progress: tqdm bars.
    """

    arch: str = "osnet_x0_25"
    init_weights: str | None = None
    input_hw: tuple[int, int] = REID_HW
    p: int = 16
    k: int = 4
    epochs: int = 120
    optimizer: str = "adam"
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_epochs: int = 10
    warmup_factor: float = 0.1
    schedule: str = "step"
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = 0.1
    min_lr_factor: float = 0.01
    label_smoothing: float = 0.1
    triplet_margin: float = TRIPLET_MARGIN
    soft_margin: bool = False
    id_weight: float = 1.0
    triplet_weight: float = 1.0
    aligned: bool = False
    local_stripes: int = 8
    local_dim: int = 128
    local_weight: float = 1.0
    mutual: bool = False
    kl_weight: float = 1.0
    metric_weight: float = 1.0
    amp: bool = True
    device: str = "cpu"
    seed: int = 0
    eval_every: int = 10
    eval_batch: int = 64
    out_dir: str = "runs/reid"
    resume: str | None = None
    num_workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    progress: bool = True

    def __post_init__(self) -> None:
        self.input_hw = (int(self.input_hw[0]), int(self.input_hw[1]))
        self.milestones = tuple(int(m) for m in self.milestones)
        problems = []
        if self.arch not in ARCHS:
            problems.append(f"arch {self.arch!r} is not one of {', '.join(ARCHS)}")
        if self.optimizer not in ("adam", "sgd"):
            problems.append(f"optimizer {self.optimizer!r} is not 'adam' or 'sgd'")
        if self.schedule not in ("step", "cosine"):
            problems.append(f"schedule {self.schedule!r} is not 'step' or 'cosine'")
        if self.p < 2 or self.k < 1:
            problems.append(f"need P ≥ 2 identities and K ≥ 1 images per batch, got P={self.p}, K={self.k}")
        if self.epochs < 1 or self.warmup_epochs < 0 or self.eval_every < 0:
            problems.append("epochs must be ≥ 1, warmup_epochs and eval_every ≥ 0")
        if self.lr <= 0 or self.weight_decay < 0 or not 0 < self.warmup_factor <= 1:
            problems.append("lr must be > 0, weight_decay ≥ 0, warmup_factor in (0, 1]")
        if not 0 <= self.label_smoothing <= 1:
            problems.append(f"label_smoothing must be in [0, 1], got {self.label_smoothing}")
        if min(self.input_hw) < 16 or self.local_stripes < 1 or self.local_dim < 1:
            problems.append("input_hw sides must be ≥ 16 px, local_stripes and local_dim ≥ 1")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (tuples → lists), for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------- data


def build_transform(input_hw: tuple[int, int] = REID_HW, train: bool = True, pad: int = 10) -> Any:
    """torchvision (v2) transform of a PIL RGB image to a normalised ``3×H×W`` ``float32`` tensor.

    Training: resize to ``input_hw``, horizontal flip (p = 0.5), ``pad`` px zero
    padding + random crop back to ``input_hw``, ImageNet normalisation, random
    erasing (p = 0.5, area 2–40 %, aspect 0.3–3.3, value 0 = the mean colour).
    Evaluation: resize + normalise only.
    """
    from torchvision.transforms import v2

    steps: list[Any] = [v2.ToImage(), v2.Resize(input_hw, antialias=True)]
    if train:
        steps += [v2.RandomHorizontalFlip(0.5), v2.Pad(pad), v2.RandomCrop(input_hw)]
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist()),
    ]
    if train:
        steps.append(v2.RandomErasing(p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=0))
    return v2.Compose(steps)


class TrainImageDataset(Dataset):
    """Training images of (path, pid, camid) items, person ids relabelled ``0..C-1``.

    Tracklet items (MARS) contribute every frame as an image of their identity.

    Args:
        items: the dataset's train split (:class:`reid.datasets.ReidItem` or ``(path, pid, camid)`` tuples).
        transform: image → tensor (default :func:`build_transform` for training).

    ``ds[i]`` is ``(image, label, camid)``: ``3×H×W`` ``float32``, ``int`` class index, ``int`` camera.

    Attributes:
        pids: original person id of each class index (sorted).
        labels: class index of every image (what :class:`~reid.sampler.PKSampler` needs).

    Raises:
        InputError: no items; an image cannot be read (on access).
    """

    def __init__(self, items: Sequence[ReidItem | tuple[Any, int, int]], transform: Any = None) -> None:
        entries: list[tuple[Path, int, int]] = []
        for it in items:
            if isinstance(it, ReidItem):
                entries += [(Path(p), int(it.pid), int(it.camid)) for p in it.images]
            else:
                path, pid, camid = it
                entries.append((Path(path), int(pid), int(camid)))
        if not entries:
            raise InputError("the dataset has no training images (empty train split)")
        self.pids = sorted({pid for _, pid, _ in entries})
        relabel = {pid: i for i, pid in enumerate(self.pids)}
        self.entries = entries
        self.labels = [relabel[pid] for _, pid, _ in entries]
        self.transform = transform if transform is not None else build_transform()

    @property
    def num_classes(self) -> int:
        """Number of training identities C."""
        return len(self.pids)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        from PIL import Image

        path, _, camid = self.entries[index]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except OSError as exc:
            raise InputError(f"cannot read training image {path}: {exc}") from None
        return self.transform(img), self.labels[index], camid


# --------------------------------------------------------------------------- model


class ReidTrainNet(nn.Module):
    """Training wrapper: backbone + BNNeck + classifier (+ AlignedReID local branch).

    Args:
        arch: key of :data:`reid.weights.ARCHS`.
        num_classes: training identities C.
        backbone: the network from :func:`reid.weights.build_torch_model` (OSNet without
            classifier, or ResNet50BNNeck); ``None`` = random weights.
        aligned: build the local branch (1×1 conv + BN + ReLU on H stripe-pooled features).
        local_stripes: H. local_dim: local feature channels.

    ``forward(x)`` takes ``N×3×H×W`` ``float32``. Training mode returns a dict:
    ``'logits'`` N×C, ``'feat'`` N×D global feature before the BNNeck (for the
    triplet loss), and with ``aligned`` ``'local'`` N×H×local_dim (unit-norm
    stripes). Eval mode returns the N×D BN feature ``f_i``.

    Layout: OSNet → ``backbone.*`` (OSNet keys), ``bottleneck.*`` (BNNeck),
    ``classifier.*``; ResNet-50 → ``backbone.*`` (its own ``bottleneck``/``classifier``);
    ``local_reduce.*`` with ``aligned``.
    """

    def __init__(
        self,
        arch: str,
        num_classes: int,
        backbone: nn.Module | None = None,
        aligned: bool = False,
        local_stripes: int = 8,
        local_dim: int = 128,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ModelError(f"training needs at least 2 identities, got {num_classes}")
        self.arch = arch
        self.is_resnet = arch == "resnet50"
        self.backbone = backbone if backbone is not None else build_torch_model(arch, None)
        self.feature_dim = int(self.backbone.feature_dim)
        self.local_stripes = int(local_stripes)
        if self.is_resnet:
            self.bottleneck = None
            clf = nn.Linear(self.feature_dim, num_classes, bias=False)
            nn.init.normal_(clf.weight, std=0.001)
            self.backbone.classifier = clf
            self.classifier = None
        else:
            self.bottleneck = nn.BatchNorm1d(self.feature_dim)
            nn.init.ones_(self.bottleneck.weight)
            nn.init.zeros_(self.bottleneck.bias)
            self.bottleneck.bias.requires_grad_(False)
            self.classifier = nn.Linear(self.feature_dim, num_classes, bias=False)
            nn.init.normal_(self.classifier.weight, std=0.001)
        self.local_reduce: nn.Module | None = None
        if aligned:
            channels = self._map_channels()
            self.local_reduce = nn.Sequential(
                nn.Conv2d(channels, local_dim, 1, bias=False), nn.BatchNorm2d(local_dim), nn.ReLU(inplace=True)
            )
        self.train()

    def _map_channels(self) -> int:
        if self.is_resnet:
            return 2048
        return int(self.backbone.conv5.conv.out_channels)

    def inference_module(self) -> nn.Module:
        """The network saved as ``model.pth`` (and used for evaluation): the backbone alone."""
        return self.backbone

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """Last backbone feature map ``N×C×h×w`` (stride 16)."""
        return self.backbone.featuremaps(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """See the class docstring."""
        fmap = self.featuremaps(x)
        pooled = torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)
        b = self.backbone
        if self.is_resnet:
            feat = pooled
            bn_feat = b.bottleneck(feat)
            classifier = b.classifier
        else:
            feat = b.fc(pooled)
            bn_feat = self.bottleneck(feat)
            classifier = self.classifier
        if not self.training:
            return bn_feat
        out = {"logits": classifier(bn_feat), "feat": feat}
        if self.local_reduce is not None:
            stripes = F.adaptive_avg_pool2d(fmap, (self.local_stripes, 1))  # N×C×H×1
            local = self.local_reduce(stripes).squeeze(-1).transpose(1, 2)  # N×H×local_dim
            out["local"] = F.normalize(local, dim=-1)
        return out


_NECK_PREFIX = {"resnet50": "bottleneck."}


def _load_init_weights(arch: str, path: str) -> nn.Module:
    """Backbone of ``arch`` with the weights of ``path`` (strict except classifier / an absent neck)."""
    state = load_state_dict_file(path)
    if arch == "resnet50" and not any(k.startswith("base.") for k in state):  # torchvision ImageNet layout
        state = {f"base.{k}": v for k, v in state.items() if not k.startswith("fc.")}
    neck = _NECK_PREFIX.get(arch, "fc.")
    reference = ARCHS[arch]()
    if not any(k.startswith(neck) for k in state):
        log.warning("%s: no %s* entries (ImageNet backbone?); that layer starts from random weights", path, neck)
        state = dict(state)
        state.update({k: v for k, v in reference.state_dict().items() if k.startswith(neck)})
    return build_torch_model(arch, state, str(path))


def build_train_net(cfg: TrainConfig, num_classes: int) -> ReidTrainNet:
    """The training wrapper of ``cfg.arch`` initialised from ``cfg.init_weights`` (random init warned).

    Raises:
        ModelError: the weights file is missing, unreadable or does not fit the architecture.
    """
    if cfg.init_weights:
        backbone = _load_init_weights(cfg.arch, cfg.init_weights)
    else:
        log.warning("no init_weights: training %s from random weights (needs long training to be useful)", cfg.arch)
        backbone = build_torch_model(cfg.arch, None)
    backbone.train()
    return ReidTrainNet(cfg.arch, num_classes, backbone, cfg.aligned, cfg.local_stripes, cfg.local_dim)


# --------------------------------------------------------------------------- optimisation


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


def _net_losses(cfg: TrainConfig, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """ID (label-smoothed CE), triplet and, with the local branch, the AlignedReID local loss (float32)."""
    logits, feat = out["logits"].float(), out["feat"].float()
    losses = {"loss_id": label_smoothing_cross_entropy(logits, labels, cfg.label_smoothing)}
    if "local" in out:
        g, loc = aligned_triplet_loss(feat, out["local"].float(), labels, cfg.triplet_margin, cfg.soft_margin)
        losses["loss_triplet"], losses["loss_local"] = g, loc
    else:
        dist = pairwise_euclidean(feat, feat)
        losses["loss_triplet"] = triplet_hard_loss(dist, labels, cfg.triplet_margin, cfg.soft_margin)
    return losses


def _weighted(cfg: TrainConfig, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    weights = {
        "loss_id": cfg.id_weight, "loss_triplet": cfg.triplet_weight, "loss_local": cfg.local_weight,
        "loss_kl": cfg.kl_weight, "loss_metric": cfg.metric_weight,
    }
    return sum(weights[k] * v for k, v in losses.items())  # type: ignore[return-value]


def train_step(
    cfg: TrainConfig, nets: Sequence[ReidTrainNet], images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward one batch through one net (or two with mutual learning) and return the total loss.

    Args:
        cfg: loss settings. nets: one network, or two for mutual learning.
        images: ``N×3×H×W`` ``float32`` on the nets' device. labels: N ``int64`` class indices.

    Returns:
        ``(total, parts)``: the 0-dim loss to back-propagate (sum over the nets) and the
        per-term values averaged over the nets, as Python floats.
    """
    outs = [net(images) for net in nets]
    per_net = [_net_losses(cfg, o, labels) for o in outs]
    if len(nets) == 2:
        dists = [pairwise_euclidean(o["feat"].float(), o["feat"].float()) for o in outs]
        for i, j in ((0, 1), (1, 0)):
            per_net[i]["loss_kl"] = mutual_kl_loss(outs[i]["logits"].float(), outs[j]["logits"].float())
            per_net[i]["loss_metric"] = metric_mutual_loss(dists[i], dists[j])
    total = sum(_weighted(cfg, losses) for losses in per_net)
    parts = {k: float(sum(float(d[k].detach()) for d in per_net) / len(per_net)) for k in per_net[0]}
    parts["loss"] = float(total.detach()) / len(per_net)
    return total, parts  # type: ignore[return-value]


# --------------------------------------------------------------------------- loop


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _checkpoint(
    nets: Sequence[ReidTrainNet], opt: torch.optim.Optimizer, sched: Any, scaler: Any,
    epoch: int, step: int, best_map: float, cfg: TrainConfig, pids: list[int],
) -> dict[str, Any]:
    ck: dict[str, Any] = {
        "model": nets[0].state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "epoch": epoch, "step": step, "best_map": best_map, "config": cfg.to_dict(), "pids": list(pids),
        "torch_rng": torch.get_rng_state(),
    }
    if len(nets) == 2:
        ck["peer"] = nets[1].state_dict()
    if scaler is not None:
        ck["scaler"] = scaler.state_dict()
    return ck


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


def train(cfg: TrainConfig, dataset: ReidDataset, stop: threading.Event | None = None) -> dict[str, Any]:
    """Train ``cfg.arch`` on ``dataset.train`` and evaluate on its query/gallery (module docstring).

    Args:
        cfg: the settings (:class:`TrainConfig`).
        dataset: a :class:`~reid.datasets.ReidDataset` with a non-empty train split (query
            and gallery needed only when ``cfg.eval_every > 0``).
        stop: when set (SIGTERM, Ctrl-C: :class:`pipeline.signals.GracefulStop`), training
            ends after the batch in flight: ``last.pth`` (resumable; the epoch restarts) and
            ``model.pth`` are written and the result says ``interrupted``.

    Returns:
        ``{"out_dir", "model_path", "epochs", "step", "num_classes", "best_map", "best_epoch",
        "history", "interrupted"}``; ``history`` holds this run's metric rows (see :data:`METRIC_COLUMNS`),
        ``best_map`` is ``-1.0`` when nothing was evaluated.

    Raises:
        InputError: empty train split, fewer than P identities, unreadable images.
        ModelError: init/resume weights missing or not fitting; a resume checkpoint of
            another architecture or class count.
    """
    from tqdm import tqdm

    from reid.torch_backend import resolve_device

    _seed_all(cfg.seed)
    device = resolve_device(cfg.device, "ReID training")
    out_dir = Path(cfg.out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    data = TrainImageDataset(dataset.train, build_transform(cfg.input_hw, train=True))
    if data.num_classes < cfg.p:
        raise InputError(f"the train split has {data.num_classes} identities; P={cfg.p} needs at least that many")
    sampler = PKSampler(data.labels, cfg.p, cfg.k, seed=cfg.seed)
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
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    start_epoch, step, best_map, best_epoch = 0, 0, -1.0, 0
    if cfg.resume:
        ck = _load_checkpoint(cfg.resume)
        saved = ck.get("config", {})
        if saved.get("arch") != cfg.arch or len(ck.get("pids", [])) != data.num_classes:
            raise ModelError(
                f"{cfg.resume}: checkpoint of {saved.get('arch')!r} with {len(ck.get('pids', []))} classes; "
                f"this run is {cfg.arch!r} with {data.num_classes}"
            )
        nets[0].load_state_dict(ck["model"])
        if len(nets) == 2:
            if "peer" not in ck:
                raise ModelError(f"{cfg.resume}: no peer network in the checkpoint (trained without mutual)")
            nets[1].load_state_dict(ck["peer"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if scaler is not None and "scaler" in ck:
            scaler.load_state_dict(ck["scaler"])
        if isinstance(ck.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(ck["torch_rng"])
        start_epoch, step = int(ck["epoch"]), int(ck["step"])
        best_map = float(ck.get("best_map", -1.0))
        log.info("resumed %s at epoch %d (step %d)", cfg.resume, start_epoch, step)

    history: list[dict[str, Any]] = []
    stop = stop or threading.Event()
    epochs_done = cfg.epochs
    for epoch in range(start_epoch, cfg.epochs):
        if stop.is_set():
            epochs_done = epoch
            break
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        for net in nets:
            net.train()
        sums: dict[str, float] = {}
        batches = 0
        lr = opt.param_groups[0]["lr"]
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not cfg.progress, leave=False)
        for images, labels, _ in bar:
            if stop.is_set():
                break
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True).long()
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                total, parts = train_step(cfg, nets, images, labels)
            if scaler is not None:
                scaler.scale(total).backward()
                scaler.step(opt)
                scaler.update()
            else:
                total.backward()
                opt.step()
            step += 1
            batches += 1
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{lr:.2e}")
        bar.close()
        if stop.is_set():  # mid-epoch: a resumable checkpoint of the epochs done; this epoch restarts
            epochs_done = epoch
            _save(_checkpoint(nets, opt, sched, scaler, epoch, step, best_map, cfg, data.pids), out_dir / "last.pth")
            log.warning("training interrupted in epoch %d (step %d); resume with --resume %s", epoch + 1, step,
                        out_dir / "last.pth")
            break
        sched.step()
        row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "lr": lr}
        row.update({k: v / max(batches, 1) for k, v in sums.items()})
        last = epoch + 1 == cfg.epochs
        improved = False
        if cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or last) and dataset.query and dataset.gallery:
            res = _evaluate(cfg, nets[0], dataset, device)
            row["rank1"], row["mAP"] = float(res["rank1"]), float(res["mAP"])
            if row["mAP"] > best_map:
                best_map, best_epoch, improved = row["mAP"], epoch + 1, True
        row["seconds"] = round(time.perf_counter() - t0, 3)
        ck = _checkpoint(nets, opt, sched, scaler, epoch + 1, step, best_map, cfg, data.pids)
        _save(ck, out_dir / "last.pth")
        if improved:
            _save(ck, out_dir / "best.pth")
        _append_metrics(out_dir, row)
        history.append(row)
        log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"))

    model_path = out_dir / "model.pth"
    state = {k: v.detach().cpu() for k, v in nets[0].inference_module().state_dict().items()}
    _save(state, model_path)
    return {
        "out_dir": str(out_dir), "model_path": str(model_path), "epochs": epochs_done, "step": step,
        "num_classes": data.num_classes, "best_map": best_map, "best_epoch": best_epoch, "history": history,
        "interrupted": stop.is_set(),
    }


def _save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename (:func:`pipeline.atomic.atomic_path`)."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a ``last.pth``/``best.pth`` with ``weights_only=True``.

    Raises:
        ModelError: missing, unreadable, or not a training checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"resume checkpoint not found: {path}")
    ck = torch_load_tensors(path, "resume checkpoint", "resume from a last.pth or best.pth that training wrote")
    needed = ("model", "optimizer", "scheduler", "epoch", "step")
    if not isinstance(ck, dict) or any(k not in ck for k in needed):
        raise ModelError(f"{path}: not a training checkpoint (needs {', '.join(needed)}); use init_weights for weights")
    return ck


def default_config(**overrides: Any) -> TrainConfig:
    """:class:`TrainConfig` with ``overrides`` (unknown names raise ``ConfigError``)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
    return TrainConfig(**overrides)

