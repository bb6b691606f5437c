"""Export a torch ReID model to ONNX, verified against onnxruntime.

The exported graph has one input ``images`` (``N×3×H×W`` ``float32``, RGB with
the ImageNet mean/std, see :mod:`reid.preprocess`) and one output ``features``
(``N×D`` ``float32``), with a dynamic batch axis ``N``; it runs with
:class:`reid.onnx_backend.OnnxReidExtractor`. The export uses torch's
TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``), which needs
the ``onnx`` package but not ``onnxscript``.

Every export ends with a parity check: the torch model (eval mode) and the ONNX
model under onnxruntime (CPU) are run on the same inputs, random ``N(0, 1)``
batches of 1 and 16 and, when given, a real-looking batch; the cosine
similarity of each pair of feature rows must be at least :data:`MIN_COSINE`.
The file is written under a temporary name and renamed only when it passes.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.errors import ModelError, first_line
from pipeline.onnx_session import open_session
from reid.preprocess import REID_HW

log = logging.getLogger(__name__)

MIN_COSINE = 0.9999
"""Smallest accepted per-row cosine similarity of torch and onnxruntime features."""

PARITY_BATCHES = (1, 16)
"""Batch sizes of the random parity inputs."""

INPUT_NAME = "images"
OUTPUT_NAME = "features"



def row_cosines(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b``.

    Two (near-)zero rows count as identical (cosine 1); one zero row against a
    non-zero one gives 0.

    Args:
        a: N×D features.
        b: N×D features.

    Returns:
        N ``float64`` cosines in ``[-1, 1]``.

    Raises:
        ValueError: the shapes differ.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"feature shapes differ: {a.shape} vs {b.shape}")
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    cos = (a * b).sum(1) / np.maximum(na * nb, eps)
    both_zero = (na < 1e-6) & (nb < 1e-6)
    return np.where(both_zero, 1.0, cos)


def _onnx_features(session: Any, x: np.ndarray) -> np.ndarray:
    """Run the exported model: ``N×3×H×W`` → ``N×D`` ``float32`` (a seam for tests)."""
    return np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], dtype=np.float32)


def _torch_features(model: nn.Module, x: np.ndarray, device: torch.device) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x).to(device)).float().cpu().numpy()


def parity_check(
    model: nn.Module,
    onnx_path: str | Path,
    input_hw: tuple[int, int] = REID_HW,
    sample: np.ndarray | None = None,
    min_cosine: float = MIN_COSINE,
    seed: int = 0,
) -> dict[str, float]:
    """Compare ``model`` (eval mode) with the ONNX file under onnxruntime (CPU).

    Args:
        model: the torch model, already in eval mode.
        onnx_path: the exported file.
        input_hw: network input ``(height, width)`` in pixels.
        sample: optional ``N×3×H×W`` real-looking input (e.g. from
            :func:`reid.preprocess.to_tensor_batch`).
        min_cosine: threshold on every row's cosine.
        seed: seed of the random ``N(0, 1)`` inputs.

    Returns:
        ``{'min_cosine_b1', 'min_cosine_b16'[, 'min_cosine_sample'], 'max_abs_diff'}``
        (cosines, and the largest absolute feature difference over all inputs).

    Raises:
        ModelError: onnxruntime cannot load or run the file, an output shape
            differs, or a cosine is below ``min_cosine`` (the message gives the
            measured minimum and the input it was measured on).
    """
    try:
        session = open_session(Path(onnx_path), "cpu", 0, "exported ONNX")
    except ModelError as exc:
        raise ModelError(f"exported ONNX model {onnx_path} does not load in onnxruntime: {exc}") from None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {
        f"b{n}": rng.standard_normal((n, 3, *input_hw)).astype(np.float32) for n in PARITY_BATCHES
    }
    if sample is not None:
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if sample.ndim != 4 or sample.shape[1:] != (3, *input_hw):
            raise ModelError(f"parity sample must be N×3×{input_hw[0]}×{input_hw[1]}, got shape {sample.shape}")
        inputs["sample"] = sample
    figures: dict[str, float] = {}
    max_abs = 0.0
    for key, x in inputs.items():
        ref = _torch_features(model, x, device)
        try:
            got = _onnx_features(session, x)
        except Exception as exc:
            raise ModelError(f"exported ONNX model {onnx_path} fails at batch {len(x)}: {first_line(exc)}") from None
        if got.shape != ref.shape:
            raise ModelError(
                f"exported ONNX model {onnx_path}: output shape {got.shape} ≠ torch {ref.shape} (input {key})"
            )
        cos = float(row_cosines(ref, got).min())
        figures[f"min_cosine_{key}"] = cos
        max_abs = max(max_abs, float(np.abs(ref - got).max()) if ref.size else 0.0)
        if not cos >= min_cosine:  # also catches NaN
            raise ModelError(
                f"ONNX export parity check failed for {onnx_path}: minimum per-row cosine {cos:.6f} < {min_cosine} "
                f"on input {key} ({len(x)}×3×{input_hw[0]}×{input_hw[1]})"
            )
    figures["max_abs_diff"] = max_abs
    return figures


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_hw: tuple[int, int] = REID_HW,
    opset: int = 17,
    *,
    sample: np.ndarray | None = None,
    min_cosine: float = MIN_COSINE,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``model`` to ONNX with a dynamic batch axis, then check parity with onnxruntime.

    The model is exported in eval mode (its training flag is restored after) on
    its own device; the graph's input is ``images`` (``N×3×H×W`` ``float32``), its
    output ``features`` (``N×D`` ``float32``). See :func:`parity_check` for the check.

    Args:
        model: ``N×3×H×W`` → ``N×D`` in eval mode (e.g. :class:`reid.models.osnet.OSNet`).
        path: the ``.onnx`` file to write (parent folders are created).
        input_hw: network input ``(height, width)`` in pixels (256×128).
        opset: ONNX opset version.
        sample: optional real-looking ``N×3×H×W`` input for the parity check.
        min_cosine: parity threshold on every row's cosine.
        seed: seed of the random parity inputs.

    Returns:
        ``{'path', 'opset', 'input_hw', 'feature_dim', 'min_cosine_b1',
        'min_cosine_b16'[, 'min_cosine_sample'], 'max_abs_diff'}``.

    Raises:
        ModelError: the export fails (e.g. the ``onnx`` package is missing), the
            model's output is not N×D, or the parity check fails; nothing is left at ``path``.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        dummy = torch.zeros((1, 3, *input_hw), dtype=torch.float32, device=device)
        with torch.inference_mode():
            out = model(dummy)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            what = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError(f"ONNX export needs a model returning N×D features in eval mode, got {what}")
        feature_dim = int(out.shape[1])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
                torch.onnx.export(
                    model,
                    (dummy,),
                    str(tmp),
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )
        except Exception as exc:  # the exporter raises many types
            hint = " (pip install onnx)" if "onnx" in str(exc).lower() and "not installed" in str(exc).lower() else ""
            raise ModelError(f"ONNX export to {path} failed: {first_line(exc)}{hint}") from None
        figures = parity_check(model, tmp, input_hw, sample=sample, min_cosine=min_cosine, seed=seed)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        model.train(was_training)
    log.info("exported %s (opset %d, %d-dim): parity %s", path, opset, feature_dim, figures)
    return {"path": str(path), "opset": opset, "input_hw": tuple(input_hw), "feature_dim": feature_dim, **figures}


def export_from_spec(
    spec: str,
    out_path: str | Path,
    input_hw: tuple[int, int] = REID_HW,
    opset: int = 17,
    *,
    sample: np.ndarray | None = None,
    min_cosine: float = MIN_COSINE,
) -> dict[str, Any]:
    """Build the torch model of a ``'ARCH:weights.pth'`` SPEC and export it with :func:`export_onnx`.

    Args:
        spec: ``'osnet_x0_25:F.pth'``, ``'resnet50:F.pth'``, … (ARCH a key of
            ``reid.weights.ARCHS``; the state dict is loaded strictly, see
            ``reid.weights.build_torch_model``).
        out_path: the ``.onnx`` file to write.
        input_hw: network input ``(height, width)`` in pixels.
        opset: ONNX opset version.
        sample: optional real-looking input for the parity check.
        min_cosine: parity threshold.

    Returns:
        :func:`export_onnx`'s figures, plus ``'spec'``.

    Raises:
        ModelError: not an ``ARCH:weights`` SPEC, unknown ARCH, missing or
            unfitting weights, or a failed export / parity check.
    """
    from reid.weights import ARCHS, build_torch_model, load_state_dict_file

    head, sep, tail = spec.strip().partition(":")
    arch = head.strip().lower()
    if not sep or arch not in ARCHS or not tail.strip():
        raise ModelError(
            f"cannot export ReID SPEC {spec!r}: use ARCH:weights.pth with ARCH one of {', '.join(ARCHS)}"
        )
    weights = Path(tail.strip()).expanduser()
    model = build_torch_model(arch, load_state_dict_file(weights), str(weights))
    figures = export_onnx(model, out_path, input_hw, opset, sample=sample, min_cosine=min_cosine)
    return {"spec": spec, **figures}
