"""ResNet-50 with last stride 1 and a BNNeck: the strong ReID baseline.

Implements the network of Luo, Gu, Liao, Lai and Jiang, "Bag of Tricks and A
Strong Baseline for Deep Person Re-identification", CVPR Workshops 2019
(arXiv:1903.07071):

* backbone: torchvision's ResNet-50 (He et al., CVPR 2016) built with
  ``weights=None`` (nothing is downloaded), classification head removed, and the
  stride of ``layer4`` set to 1 ("last stride"), so a 256×128 input gives a
  16×8 feature map instead of 8×4;
* global average pooling → 2048-d feature ``f_t`` (used by the triplet loss);
* BNNeck: ``BatchNorm1d(2048)`` whose bias is frozen at zero → ``f_i``;
* ``classifier``: Linear(2048 → classes, no bias), trained with the ID loss.

At inference the BN feature ``f_i`` is the embedding (compared with cosine).
Parameter names are ``base.*`` (torchvision's ResNet names: ``base.conv1``,
``base.bn1``, ``base.layer1`` … ``base.layer4``), ``bottleneck.*`` and
``classifier.weight``, the layout of the paper's reference code.
"""

from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 2048
"""Dimension of the embedding (ResNet-50's last stage)."""


def _resnet50_trunk(last_stride: int) -> nn.Module:
    """torchvision ResNet-50 (random weights) without ``fc``, with ``layer4``'s stride set to ``last_stride``."""
    from torchvision.models import resnet50

    net = resnet50(weights=None)
    del net.fc
    first = net.layer4[0]
    # torchvision's Bottleneck strides its 3×3 conv (ResNet v1.5) and its projection shortcut
    first.conv2.stride = (last_stride, last_stride)
    if first.downsample is not None:
        first.downsample[0].stride = (last_stride, last_stride)
    return net


class ResNet50BNNeck(nn.Module):
    """ResNet-50 + BNNeck ReID network (Luo et al., CVPRW 2019).

    Args:
        num_classes: training identities; 0 builds no ``classifier``.
        last_stride: stride of ``layer4`` (1 in the paper, 2 in plain ResNet).

    ``forward(x)`` takes ``N×3×H×W`` ``float32`` (256×128, RGB, ImageNet
    mean/std). In eval mode it returns the ``N×2048`` ``float32`` BN feature (not
    L2-normalised). In training mode it returns ``(logits, f_t)`` — the
    ``N×num_classes`` ID logits (``None`` without a classifier) and the ``N×2048``
    pooled feature before the BNNeck, for the ID and triplet losses.

    Attributes:
        feature_dim: 2048.
    """

    def __init__(self, num_classes: int = 0, last_stride: int = 1) -> None:
        super().__init__()
        self.feature_dim = FEATURE_DIM
        self.base = _resnet50_trunk(last_stride)
        self.bottleneck = nn.BatchNorm1d(FEATURE_DIM)
        self.bottleneck.bias.requires_grad_(False)  # BNNeck: no shift, as in the paper
        nn.init.ones_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        self.classifier = nn.Linear(FEATURE_DIM, num_classes, bias=False) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone output: ``N×3×256×128`` → ``N×2048×16×8`` with last stride 1."""
        b = self.base
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor | None, torch.Tensor]:
        """Eval: ``N×2048`` BN feature. Training: ``(N×num_classes logits or None, N×2048 pooled feature)``."""
        global_feat = torch.flatten(nn.functional.adaptive_avg_pool2d(self.featuremaps(x), 1), 1)
        feat = self.bottleneck(global_feat)
        if not self.training:
            return feat
        logits = self.classifier(feat) if self.classifier is not None else None
        return logits, global_feat


def resnet50_bnneck(num_classes: int = 0, last_stride: int = 1) -> ResNet50BNNeck:
    """Build :class:`ResNet50BNNeck` with random weights (no download).

    Returns:
        The model in training mode; its embedding has 2048 dimensions.
    """
    return ResNet50BNNeck(num_classes=num_classes, last_stride=last_stride)
