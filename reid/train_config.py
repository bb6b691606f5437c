"""The typed settings of ``mtmc reid train``: every knob with the BoT / AlignedReID defaults, in one place.

Validated by pydantic like the pipeline's config (:mod:`pipeline.config`): an
unknown key or a value out of range is a :class:`~pipeline.errors.ConfigError`
with the key and a plain sentence.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.config import format_validation_error
from pipeline.devices import check_device
from pipeline.errors import ConfigError
from reid.losses import TRIPLET_MARGIN
from reid.preprocess import REID_HW
from reid.weights import ARCHS


class TrainConfig(BaseModel):
    """Every training knob, with the BoT / AlignedReID defaults.

    Attributes:
        arch: architecture, a key of :data:`reid.weights.ARCHS` (``'osnet_x0_25'`` … ``'resnet50'``).
        init_weights: checkpoint to start from (torchreid ReID or ImageNet weights, or a
            ``model.pth`` from here); loaded strictly except ``classifier.*``; a checkpoint
            without any neck entries (``fc.*`` for OSNet, ``bottleneck.*`` for ResNet-50,
            as ImageNet backbones) leaves those layers at random init (warned). ``None``:
            random init (warned).
        input_hw: network input ``(height, width)`` in pixels (each side ≥ 16).
        p: identities per batch (≥ 2). k: images per identity (≥ 1; batch = P·K).
        epochs: total epochs (the schedule's length).
        optimizer: ``'adam'`` or ``'sgd'`` (momentum 0.9, Nesterov).
        lr: base learning rate. weight_decay: L2 penalty (not applied to BN/bias parameters).
        warmup_epochs: linear warm-up from ``warmup_factor·lr`` to ``lr`` over these epochs.
        warmup_factor: starting fraction of the warm-up, in (0, 1].
        schedule: ``'step'`` (×``gamma`` at each of ``milestones``, epochs) or ``'cosine'``
            (from ``lr`` after warm-up to ``min_lr_factor·lr`` at the last epoch).
        label_smoothing: ε of the label-smoothed cross-entropy, in [0, 1].
        metric_loss: the metric loss beside the ID loss, one of :data:`reid.metric_losses.METRIC_LOSSES`
            (``triplet``, ``contrastive``, ``improved_triplet``, ``quadruplet``, ``msml``; see that module).
        triplet_margin: hinge margin of ``triplet``, ``quadruplet`` (α1) and ``msml`` (feature units).
        soft_margin: use ``log(1+exp(·))`` instead of the hinge (``triplet`` only).
        id_weight / triplet_weight / local_weight / kl_weight / metric_weight: loss weights (triplet_weight
            weighs the metric loss, whichever it is).
        aligned: add the AlignedReID local branch. local_stripes: H. local_dim: channels after the 1×1 conv.
        camera_aware: TAUDL's per-camera tracklet discrimination (:mod:`reid.camera_aware`): the ID loss is a
            softmax over the classes of the sample's camera and the triplet's negatives come from the anchor's
            camera only, whichever the metric loss (pseudo-identities from tracklets: ``mtmc adapt``; not with
            ``aligned`` or ``mutual``).
        mutual: train two networks with mutual learning.
        amp: float16 autocast + gradient scaling; used only on CUDA devices.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'mps'`` (unavailable → CPU, warned).
        seed: seed of torch, numpy, random and the sampler.
        eval_every: evaluate on query/gallery every N epochs and after the last (0 = never).
        eval_batch: images per forward pass when evaluating.
        out_dir: folder for metrics and checkpoints (created).
        resume: a ``last.pth``/``best.pth`` to continue from (model, optimizer, scheduler, epoch).
        num_workers: DataLoader worker processes (0 = load in the main process; default min(4, cores)).
        progress: tqdm bars.

    Raises:
        ConfigError: on construction, an unknown key or a value out of range (one line).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    arch: str = "osnet_x0_25"
    init_weights: str | None = None
    input_hw: tuple[int, int] = REID_HW
    p: int = Field(16, ge=2)
    k: int = Field(4, ge=1)
    epochs: int = Field(120, ge=1)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(3.5e-4, gt=0.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    warmup_epochs: int = Field(10, ge=0)
    warmup_factor: float = Field(0.1, gt=0.0, le=1.0)
    schedule: Literal["step", "cosine"] = "step"
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = Field(0.1, gt=0.0)
    min_lr_factor: float = Field(0.01, ge=0.0, le=1.0)
    label_smoothing: float = Field(0.1, ge=0.0, le=1.0)
    metric_loss: Literal["triplet", "contrastive", "improved_triplet", "quadruplet", "msml"] = "triplet"
    triplet_margin: float = Field(TRIPLET_MARGIN, ge=0.0)
    soft_margin: bool = False
    id_weight: float = Field(1.0, ge=0.0)
    triplet_weight: float = Field(1.0, ge=0.0)
    aligned: bool = False
    local_stripes: int = Field(8, ge=1)
    local_dim: int = Field(128, ge=1)
    local_weight: float = Field(1.0, ge=0.0)
    camera_aware: bool = False
    mutual: bool = False
    kl_weight: float = Field(1.0, ge=0.0)
    metric_weight: float = Field(1.0, ge=0.0)
    amp: bool = True
    device: str = "cpu"
    seed: int = Field(0, ge=0)
    eval_every: int = Field(10, ge=0)
    eval_batch: int = Field(64, ge=1)
    out_dir: str = "runs/reid"
    resume: str | None = None
    num_workers: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=0)
    progress: bool = True

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "training config", root=TrainConfig,
                                                      hint="(see mtmc reid train --help)")) from None

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        if value not in ARCHS:
            raise ValueError(f"arch {value!r} is not one of {', '.join(ARCHS)}")
        return value

    @model_validator(mode="after")
    def _metric_loss_options(self) -> TrainConfig:
        if self.metric_loss != "triplet" and (self.soft_margin or self.aligned):
            opt = "soft_margin" if self.soft_margin else "aligned"
            raise ValueError(f"{opt} needs metric_loss 'triplet', not {self.metric_loss!r}")
        if self.camera_aware and (self.aligned or self.mutual):
            raise ValueError("camera_aware does not combine with aligned or mutual")
        return self

    @field_validator("input_hw")
    @classmethod
    def _input_hw(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 16:
            raise ValueError(f"input_hw sides must be at least 16 px, got {value}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device(value)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (tuples → lists), for checkpoints and JSON."""
        return self.model_dump(mode="json")


def default_config(**overrides: Any) -> TrainConfig:
    """:class:`TrainConfig` with ``overrides``.

    Raises:
        ConfigError: an unknown name or a bad value (one line naming the key).
    """
    return TrainConfig(**overrides)
