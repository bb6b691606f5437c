"""Device strings (``cpu``, ``cuda``, ``cuda:N``, ``mps``) and the one rule for an unavailable device.

Every backend (onnxruntime, torch ReID, ultralytics) asks :func:`resolve` where
to run: a device this machine lacks means a one-line warning and the CPU; only a
``cuda:N`` beyond the GPUs that exist is an error.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from pipeline.errors import ModelError

log = logging.getLogger(__name__)

DEVICE_HELP = "use cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"(cpu|cuda|cuda:\d+|mps)")
Backend = Literal["torch", "onnxruntime"]


def check_device(device: str) -> str:
    """Validate and normalise a device string (case and surrounding blanks ignored).

    Accepted: ``cpu``, ``cuda``, ``cuda:N`` (N a non-negative integer) and ``mps``.

    Returns:
        The lower-case device, e.g. ``'cuda:1'``.

    Raises:
        ValueError: anything else (e.g. ``'gpu'``); the message ends with
            ``use cpu, cuda, cuda:N or mps``.
    """
    text = str(device).strip().lower()
    if not _DEVICE.fullmatch(text):
        raise ValueError(f"unknown device {device!r}; {DEVICE_HELP}")
    return text


def _capabilities(backend: Backend) -> tuple[int, int | None, bool]:
    """``(usable CUDA devices or 0, device count or None if unknown, MPS usable)`` for ``backend``."""
    if backend == "onnxruntime":
        import onnxruntime as ort

        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        return int(has_cuda), None, False  # onnxruntime neither counts GPUs nor runs on MPS
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None)
    return count, count, bool(mps is not None and mps.is_available())


def resolve(device: str, what: str, backend: Backend = "torch") -> str:
    """Where ``what`` runs: ``device`` when this machine has it, else ``'cpu'``.

    The rule for every backend: CUDA (or MPS) unavailable → one warning line
    ``"<what>: CUDA is not available here; running on CPU"`` and the CPU.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        what: the model, for messages (e.g. ``"ONNX detector yolox_nano.onnx"``).
        backend: whose view of the hardware counts (``torch`` or ``onnxruntime``).

    Returns:
        The normalised device string to run on.

    Raises:
        ModelError: ``device`` is not one of the accepted strings, or ``cuda:N``
            names a GPU beyond the ones this machine has (the message gives the count).
    """
    try:
        dev = check_device(device)
    except ValueError as exc:
        raise ModelError(f"{what}: {exc}") from None
    if dev == "cpu":
        return dev
    usable, count, mps = _capabilities(backend)
    if (dev == "mps" and not mps) or (dev.startswith("cuda") and not usable):
        name = "MPS" if dev == "mps" else "CUDA"
        where = " (this onnxruntime build has no CUDA provider)" if backend == "onnxruntime" and name == "CUDA" else ""
        log.warning("%s: %s is not available here%s; running on CPU", what, name, where)
        return "cpu"
    index = int(dev.partition(":")[2] or 0)
    if count is not None and dev.startswith("cuda") and index >= count:
        raise ModelError(
            f"{what}: {dev} does not exist: this machine has {count} CUDA device(s); use cuda:0 to cuda:{count - 1}"
        )
    return dev
