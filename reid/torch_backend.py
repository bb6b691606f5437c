"""ReID features from a torch model (OSNet, ResNet-50 BNNeck, or any ``nn.Module`` alike)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from pipeline.devices import resolve
from pipeline.errors import ModelError, first_line
from reid.extractor import FeatureExtractor
from reid.preprocess import REID_HW


def resolve_device(device: str, what: str = "ReID model") -> torch.device:
    """The torch device for ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'mps'`` (rule: :func:`pipeline.devices.resolve`).

    A device this machine lacks means a one-line warning and the CPU.

    Raises:
        ModelError: not one of those strings, or ``cuda:N`` names a GPU that does not exist.
    """
    return torch.device(resolve(device, what))


class TorchReidExtractor(FeatureExtractor):
    """Person ReID embedding from a torch model run in eval mode without gradients.

    Args:
        model: maps ``N×3×H×W`` ``float32`` (RGB, ImageNet mean/std) to ``N×D``
            features in eval mode (e.g. :class:`reid.models.osnet.OSNet`,
            :class:`reid.models.resnet_bnneck.ResNet50BNNeck`). It is moved to
            ``device`` and switched to eval mode.
        name: description shown in logs (e.g. ``'torch-osnet_x0_25:weights.pth'``).
        batch: crops per forward pass at most.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'mps'`` (unavailable → CPU, warned).
        threads: torch intra-op threads, 0 = ``os.cpu_count()``. torch's thread
            count is process-wide; it is set again before every forward pass
            because other libraries (ultralytics) change it.
        input_hw: network input ``(height, width)`` in pixels.
        dim: feature dimension; ``None`` = the model's ``feature_dim`` attribute,
            else measured with one dummy forward pass.

    Raises:
        ModelError: invalid device, or the model fails or its output is not ``N×D``
            (also raised later by :meth:`embed`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str = "torch",
        batch: int = 32,
        device: str = "cpu",
        threads: int = 0,
        input_hw: tuple[int, int] = REID_HW,
        dim: int | None = None,
    ) -> None:
        self.device = resolve_device(device, name)
        self.threads = threads or os.cpu_count() or 1
        self.model = model.to(self.device).eval()
        self.name = name
        self.batch = max(1, int(batch))
        self.input_hw = input_hw
        feature_dim = dim if dim is not None else getattr(model, "feature_dim", None)
        if isinstance(feature_dim, int) and feature_dim > 0:
            self.dim = feature_dim
        else:
            self.dim = int(self._run(np.zeros((1, 3, *input_hw), np.float32)).shape[1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        try:
            with torch.inference_mode():
                out = self.model(x)
        except RuntimeError as exc:  # shape mismatches, out of memory …
            raise ModelError(f"{self.name}: inference failed: {first_line(exc)}") from None
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != len(batch):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"{self.name}: expected an N×D feature tensor in eval mode, got {shape}")
        return out.float().cpu().numpy()

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Raw N×D features of one preprocessed batch; see :meth:`FeatureExtractor._forward`."""
        return self._run(batch)

    def close(self) -> None:
        """Drop the model (frees GPU memory once no other reference holds it)."""
        self.model = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
