"""Torch ReID models from checkpoints: architectures, state-dict cleaning and strict loading.

Checkpoints are read with ``torch.load(..., weights_only=True)`` (plain tensors
only, no pickled code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ModelError, first_line

if TYPE_CHECKING:
    import torch
    from torch import nn


def _build_osnet(width: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from reid.models.osnet import osnet

        return osnet(width)

    return build


def _build_resnet50() -> nn.Module:
    from reid.models.resnet_bnneck import resnet50_bnneck

    return resnet50_bnneck()


ARCHS: dict[str, Callable[[], nn.Module]] = {
    "osnet_x1_0": _build_osnet("x1_0"),
    "osnet_x0_75": _build_osnet("x0_75"),
    "osnet_x0_5": _build_osnet("x0_5"),
    "osnet_x0_25": _build_osnet("x0_25"),
    "resnet50": _build_resnet50,
}
"""Architecture prefix of ``'ARCH:weights.pth'`` → builder of the model with random weights and no classifier."""


def clean_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Extract a model's parameters from a loaded checkpoint.

    Checkpoints that wrap the parameters in a ``'state_dict'`` or ``'model'``
    entry (torchreid's ``save_checkpoint``, many training scripts) are unwrapped;
    a ``'module.'`` prefix (``nn.DataParallel``) is stripped; ``classifier.*``
    entries (the training-set identity classifier, unused for embedding) and
    non-tensor entries are dropped.

    Args:
        obj: what ``torch.load`` returned.
        source: the file, for error messages.

    Returns:
        Parameter name → tensor.

    Raises:
        ModelError: ``obj`` holds no tensors.
    """
    import torch

    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(
            f"{source}: not a state dict (no tensors found); save the weights with torch.save(model.state_dict())"
        )
    out: dict[str, torch.Tensor] = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = str(name).removeprefix("module.")
        if name.startswith("classifier."):
            continue
        out[name] = value
    return out


def _torch_reason(exc: BaseException) -> str:
    """What went wrong in a failed ``torch.load``, on one line, without torch's advice.

    torch's weights-only message suggests ``weights_only=False`` or allow-listing
    globals (both load code from a file of unknown origin); only its
    ``WeightsUnpickler error`` part is kept, else the first line.
    """
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = " ".join(text.split(marker, 1)[1].split())
        for advice in (" Please use ", " Check the documentation"):
            reason = reason.split(advice, 1)[0]
        return reason.rstrip(" .") or type(exc).__name__
    line = first_line(exc).rstrip(" .")
    if "weights_only" in line or line == type(exc).__name__:
        return type(exc).__name__
    return f"{type(exc).__name__}: {line}"


def torch_load_tensors(path: Path, what: str, hint: str) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)``, failures as one plain line.

    Never falls back to ``weights_only=False``: a pickle is code, and only
    tensors and plain containers are read.

    Args:
        path: an existing file.
        what: what the file should be, for the message (e.g. ``"ReID weights"``).
        hint: what to do instead, appended to the message (e.g. how to save the file).

    Returns:
        What ``torch.load`` returned.

    Raises:
        ModelError: ``"cannot read <what> <path>: not a plain state dict (only
            tensors are loaded, for safety): <torch's reason>; <hint>"``.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip, EOF and weights_only errors have many types
        raise ModelError(
            f"cannot read {what} {path}: not a plain state dict (only tensors are loaded, for safety): "
            f"{_torch_reason(exc)}; {hint}"
        ) from None


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` / ``.pt`` checkpoint with ``torch.load(..., map_location='cpu', weights_only=True)``.

    Returns:
        The cleaned state dict (see :func:`clean_state_dict`).

    Raises:
        ModelError: the file is missing, unreadable, not a plain-tensor pickle
            (see :func:`torch_load_tensors`), or holds no tensors.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"ReID weights not found: {path}")
    obj = torch_load_tensors(path, "ReID weights", "give weights saved with torch.save(model.state_dict())")
    return clean_state_dict(obj, str(path))


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (", …" if len(items) > n else "")


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, arch: str = "") -> None:
    """Load ``state`` into ``model``, strictly.

    Every parameter and buffer of the model must be present with the same shape
    and nothing else may be left over; only BatchNorm ``num_batches_tracked``
    counters (absent from very old checkpoints, unused in eval mode) may be
    missing. Drop ``classifier.*`` first (:func:`clean_state_dict` does).

    Args:
        model: the network (e.g. from :data:`ARCHS`).
        state: parameter name → tensor.
        source: the weights' file or name, for error messages.
        arch: the architecture name, for error messages.

    Raises:
        ModelError: missing, unexpected or differently shaped entries; the one-line
            message counts each kind and names the first few.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        f"{k} {tuple(state[k].shape)}≠{tuple(expected[k].shape)}"
        for k in state
        if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or reshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
        if reshaped:
            parts.append(f"{len(reshaped)} of another shape ({_few(reshaped)})")
        what = f" {arch}" if arch else " the model"
        raise ModelError(
            f"{source}: the weights do not fit{what}: " + "; ".join(parts) + " (is the architecture prefix right?)"
        )
    model.load_state_dict(state, strict=False)


def build_torch_model(arch: str, state: Mapping[str, torch.Tensor] | None, source: str = "") -> nn.Module:
    """Build architecture ``arch`` (key of :data:`ARCHS`) and load ``state`` strictly (``None`` = random weights).

    Raises:
        ModelError: unknown ``arch`` or weights that do not fit (see :func:`load_weights`).
    """
    if arch not in ARCHS:
        raise ModelError(f"unknown ReID architecture {arch!r}; use one of {', '.join(ARCHS)}")
    model = ARCHS[arch]()
    if state is not None:
        load_weights(model, state, source or arch, arch)
    return model.eval()
