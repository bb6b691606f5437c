"""The network the ReID trainer optimises and its losses: backbone + BNNeck + classifier (+ AlignedReID
local branch), ID / triplet / local / mutual-learning terms (see :mod:`reid.train` for the recipe)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.errors import ModelError
from reid.camera_aware import CameraBatch, per_camera_cross_entropy
from reid.losses import (
    aligned_triplet_loss,
    label_smoothing_cross_entropy,
    metric_mutual_loss,
    mutual_kl_loss,
    pairwise_euclidean,
)
from reid.metric_losses import METRIC_LOSSES, metric_loss
from reid.train_config import TrainConfig
from reid.weights import ARCHS, build_torch_model, load_state_dict_file

log = logging.getLogger(__name__)


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


def _net_losses(cfg: TrainConfig, out: dict[str, torch.Tensor], labels: torch.Tensor,
                camera: CameraBatch | None = None) -> dict[str, torch.Tensor]:
    """ID (label-smoothed CE), the metric loss (``loss_<cfg.metric_loss>``) and, with the local branch,
    the AlignedReID local loss (float32); with ``cfg.camera_aware``, the per-camera ID loss and the metric
    loss on ``camera.negatives`` only (:mod:`reid.camera_aware`)."""
    logits, feat = out["logits"].float(), out["feat"].float()
    if cfg.camera_aware:
        if camera is None:
            raise ValueError("camera_aware training needs the batch's cameras (reid.camera_aware.CameraBatch)")
        return {"loss_id": per_camera_cross_entropy(logits, labels, camera.camids, camera.cameras,
                                                    cfg.label_smoothing),
                f"loss_{cfg.metric_loss}": metric_loss(cfg.metric_loss, feat, labels, cfg.triplet_margin,
                                                       cfg.soft_margin, negatives=camera.negatives)}
    losses = {"loss_id": label_smoothing_cross_entropy(logits, labels, cfg.label_smoothing)}
    if "local" in out:
        g, loc = aligned_triplet_loss(feat, out["local"].float(), labels, cfg.triplet_margin, cfg.soft_margin)
        losses["loss_triplet"], losses["loss_local"] = g, loc
    else:
        losses[f"loss_{cfg.metric_loss}"] = metric_loss(cfg.metric_loss, feat, labels, cfg.triplet_margin,
                                                        cfg.soft_margin)
    return losses


def _weighted(cfg: TrainConfig, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    weights = {
        "loss_id": cfg.id_weight, "loss_local": cfg.local_weight, "loss_kl": cfg.kl_weight,
        "loss_metric": cfg.metric_weight, **{f"loss_{name}": cfg.triplet_weight for name in METRIC_LOSSES},
    }
    return sum(weights[k] * v for k, v in losses.items())  # type: ignore[return-value]


def train_step(
    cfg: TrainConfig, nets: Sequence[ReidTrainNet], images: torch.Tensor, labels: torch.Tensor,
    camera: CameraBatch | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward one batch through one net (or two with mutual learning) and return the total loss.

    Args:
        cfg: loss settings. nets: one network, or two for mutual learning.
        images: ``N×3×H×W`` ``float32`` on the nets' device. labels: N ``int64`` class indices.
        camera: with ``cfg.camera_aware``: the batch's :class:`reid.camera_aware.CameraBatch`.

    Returns:
        ``(total, parts)``: the 0-dim loss to back-propagate (sum over the nets) and the
        per-term values averaged over the nets, as Python floats.
    """
    outs = [net(images) for net in nets]
    per_net = [_net_losses(cfg, o, labels, camera) for o in outs]
    if len(nets) == 2:
        dists = [pairwise_euclidean(o["feat"].float(), o["feat"].float()) for o in outs]
        for i, j in ((0, 1), (1, 0)):
            per_net[i]["loss_kl"] = mutual_kl_loss(outs[i]["logits"].float(), outs[j]["logits"].float())
            per_net[i]["loss_metric"] = metric_mutual_loss(dists[i], dists[j])
    total = sum(_weighted(cfg, losses) for losses in per_net)
    parts = {k: float(sum(float(d[k].detach()) for d in per_net) / len(per_net)) for k in per_net[0]}
    parts["loss"] = float(total.detach()) / len(per_net)
    return total, parts  # type: ignore[return-value]
