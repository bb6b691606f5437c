"""OSNet, the Omni-Scale Network for person re-identification.

Implements Zhou, Yang, Cavallaro and Xiang, "Omni-Scale Feature Learning for
Person Re-Identification", ICCV 2019 (arXiv:1905.00953). Parameter names follow
the layout of torchreid's ``osnet_x*`` models (``conv1.conv.weight`` …
``fc.1.running_var``, ``classifier.*``), so the state dicts of torchreid's model
zoo load into :class:`OSNet` unchanged.

Architecture (input ``N×3×256×128``; channel widths ``c0…c3`` from :data:`WIDTHS`):

* ``conv1``: 7×7 conv, stride 2 + BN + ReLU → ``c0``; then 3×3 max-pool, stride 2;
* ``conv2``: two OS blocks ``c0 → c1 → c1``, then a transition (1×1 conv-BN-ReLU
  + 2×2 average pool, stride 2);
* ``conv3``: two OS blocks ``c1 → c2``, then a transition;
* ``conv4``: two OS blocks ``c2 → c3`` (no pooling);
* ``conv5``: 1×1 conv-BN-ReLU;
* global average pooling, ``fc`` = Linear(``c3`` → 512) + BatchNorm1d + ReLU;
* ``classifier`` = Linear(512 → classes), used in training only.

An OS block (bottleneck ratio 4, ``m = out / 4``): 1×1 conv-BN-ReLU to ``m``;
four streams of 1, 2, 3 and 4 *lite 3×3* layers (1×1 conv, depth-wise 3×3 conv,
BN, ReLU), i.e. receptive fields 3, 5, 7, 9; one *unified aggregation gate*
shared by the four streams (global average pool → 1×1 conv ``m → m/16`` + ReLU →
1×1 conv ``→ m`` → sigmoid, multiplying its stream channel-wise); the gated
streams are summed, projected by a 1×1 conv-BN to ``out``, added to the
(1×1 conv-BN projected when the width changes) input, and passed through ReLU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

WIDTHS: dict[str, tuple[int, int, int, int]] = {
    "x1_0": (64, 256, 384, 512),
    "x0_75": (48, 192, 288, 384),
    "x0_5": (32, 128, 192, 256),
    "x0_25": (16, 64, 96, 128),
}
"""Width multiplier → channels of ``conv1``, ``conv2``, ``conv3``, ``conv4`` (paper, Table 1 scaled)."""

FEATURE_DIM = 512
"""Dimension of the embedding (output of ``fc``)."""


class _ConvBN(nn.Module):
    """``k×k`` convolution (no bias) + BatchNorm2d, optionally followed by ReLU.

    Keys: ``conv.weight``, ``bn.*``.
    """

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.use_relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.use_relu else x


class _LiteConv3x3(nn.Module):
    """Lite 3×3 layer: 1×1 conv → depth-wise 3×3 conv → BN → ReLU (keys ``conv1``, ``conv2``, ``bn``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv2(self.conv1(x))), inplace=True)


class _AggregationGate(nn.Module):
    """Unified aggregation gate: channel weights in (0, 1) from the stream's global context.

    Keys ``fc1.*`` (1×1 conv ``c → c/reduction`` with bias) and ``fc2.*``
    (1×1 conv back to ``c`` with bias).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w), inplace=True)))
        return x * w


class OSBlock(nn.Module):
    """Omni-scale residual block (paper, Fig. 4): four lite-3×3 streams of depth 1–4 fused by one shared gate.

    Args:
        cin: input channels.
        cout: output channels (the bottleneck has ``cout // 4``).

    Input ``N×cin×H×W`` → output ``N×cout×H×W`` (``float32``).
    """

    def __init__(self, cin: int, cout: int, bottleneck_reduction: int = 4) -> None:
        super().__init__()
        mid = cout // bottleneck_reduction
        self.conv1 = _ConvBN(cin, mid)
        self.conv2a = _LiteConv3x3(mid, mid)
        self.conv2b = nn.Sequential(*(_LiteConv3x3(mid, mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(_LiteConv3x3(mid, mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(_LiteConv3x3(mid, mid) for _ in range(4)))
        self.gate = _AggregationGate(mid)
        self.conv3 = _ConvBN(mid, cout, relu=False)
        self.downsample = _ConvBN(cin, cout, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×cin×H×W`` → ``N×cout×H×W``: ``relu(conv3(Σ_s gate(stream_s(conv1(x)))) + shortcut(x))``."""
        t = self.conv1(x)
        fused = sum(self.gate(stream(t)) for stream in (self.conv2a, self.conv2b, self.conv2c, self.conv2d))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(fused) + shortcut)


def _stage(cin: int, cout: int, blocks: int, pool: bool) -> nn.Sequential:
    """``blocks`` OS blocks ``cin → cout`` (then ``cout → cout``), plus a transition when ``pool``.

    The transition (index ``blocks``) is ``Sequential(1×1 conv-BN-ReLU, AvgPool2d(2, 2))``.
    """
    layers: list[nn.Module] = [OSBlock(cin if i == 0 else cout, cout) for i in range(blocks)]
    if pool:
        layers.append(nn.Sequential(_ConvBN(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """Omni-Scale Network (Zhou et al., ICCV 2019) with torchreid's parameter names.

    Args:
        channels: widths of ``conv1``…``conv4`` (see :data:`WIDTHS`).
        num_classes: identities of the training set; 0 builds no ``classifier``
            (inference only, as :func:`reid.factory.build_reid` does).
        feature_dim: embedding size of the ``fc`` layer (512 in torchreid).
        blocks: OS blocks per stage (2, 2, 2 in the paper).

    ``forward(x)`` takes ``N×3×H×W`` ``float32`` (256×128 in training; RGB,
    ImageNet mean/std). In eval mode it returns the ``N×feature_dim`` ``float32``
    embedding after ``fc`` (Linear + BN + ReLU, not L2-normalised), as torchreid's
    OSNet does; in training mode it returns the ``N×num_classes`` logits when a
    classifier exists, else the embedding.

    Attributes:
        feature_dim: size of the embedding.
    """

    def __init__(
        self,
        channels: tuple[int, int, int, int],
        num_classes: int = 0,
        feature_dim: int = FEATURE_DIM,
        blocks: tuple[int, int, int] = (2, 2, 2),
    ) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        self.feature_dim = feature_dim
        self.conv1 = _ConvBN(3, c0, kernel=7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(c0, c1, blocks[0], pool=True)
        self.conv3 = _stage(c1, c2, blocks[1], pool=True)
        self.conv4 = _stage(c2, c3, blocks[2], pool=False)
        self.conv5 = _ConvBN(c3, c3)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(feature_dim, num_classes) if num_classes > 0 else None
        self._init_weights()

    def _init_weights(self) -> None:
        """He-normal convs (fan-out), unit/zero norms, N(0, 0.01) linear layers, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone output: ``N×3×256×128`` → ``N×c3×16×8`` (stride 16)."""
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×3×H×W`` → ``N×feature_dim`` embedding (eval, or no classifier) or ``N×num_classes`` logits (training)."""
        v = self.fc(torch.flatten(F.adaptive_avg_pool2d(self.featuremaps(x), 1), 1))
        if self.training and self.classifier is not None:
            return self.classifier(v)
        return v


def osnet(width: str = "x1_0", num_classes: int = 0) -> OSNet:
    """Build an OSNet of the given width with random (He) weights.

    Args:
        width: one of ``'x1_0'``, ``'x0_75'``, ``'x0_5'``, ``'x0_25'`` (an
            ``'osnet_'`` prefix is accepted).
        num_classes: training identities (0 = no classifier).

    Returns:
        The model in training mode; its embedding has 512 dimensions.

    Raises:
        ValueError: unknown width.
    """
    key = width.removeprefix("osnet_")
    if key not in WIDTHS:
        raise ValueError(f"unknown OSNet width {width!r}; use one of {', '.join(WIDTHS)}")
    return OSNet(WIDTHS[key], num_classes=num_classes)
