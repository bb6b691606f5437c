"""One place that opens onnxruntime sessions for the detector and the ReID model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

from pipeline.devices import resolve
from pipeline.errors import ModelError

log = logging.getLogger(__name__)
_global_pool: int | None = None  # intra-op size of onnxruntime's process-wide thread pool, once made


def error_text(exc: BaseException) -> str:
    """An onnxruntime error's whole message on one line (its lines joined with ``'; '``).

    onnxruntime puts the useful part (which index, what it got, what it expected)
    on the lines after the first, so it is kept rather than cut.
    """
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    return "; ".join(line for line in lines if line) or type(exc).__name__


def open_session(path: Path, device: str, threads: int, what: str) -> ort.InferenceSession:
    """Open an ONNX model with onnxruntime.

    CPU sessions share onnxruntime's process-wide thread pool (``threads`` or
    all cores, fixed by the first session opened): with a pool per session, the
    detector's and the ReID model's threads spin-wait against each other, and
    the detector ran about 30 % slower whenever ReID was on. ``device``
    ``cuda``/``cuda:N`` uses the CUDA provider when this onnxruntime build has
    it; otherwise, and for ``mps``, a warning and the CPU
    (:func:`pipeline.devices.resolve`).

    Args:
        path: the ``.onnx`` file.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        threads: intra-op threads, 0 = ``os.cpu_count()``.
        what: what the model is, for error messages (e.g. ``"ONNX detector"``).

    Raises:
        ModelError: the file is missing, ``device`` is invalid or names a GPU
            that does not exist, or onnxruntime cannot load the file (one line).
    """
    if not path.is_file():
        raise ModelError(f"{what} model not found: {path}")
    device = resolve(device, f"{what} {path.name}", "onnxruntime")
    global _global_pool
    opts = ort.SessionOptions()
    n_threads = threads or os.cpu_count() or 1
    if not device.startswith("cuda"):
        if _global_pool is None:
            ort.set_global_thread_pool_sizes(n_threads, 1)
            _global_pool = n_threads
        elif _global_pool != n_threads:
            log.warning("onnxruntime's shared thread pool has %d threads; %d asked for %s", _global_pool, n_threads,
                        path.name)
        opts.use_per_session_threads = False
    else:
        opts.intra_op_num_threads = n_threads
    providers: list = ["CPUExecutionProvider"]
    if device.startswith("cuda"):  # resolve() kept it: this onnxruntime has the CUDA provider
        dev_id = int(device.partition(":")[2] or 0)
        providers = [("CUDAExecutionProvider", {"device_id": dev_id}), "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load {what} model {path}: {error_text(exc)}") from None
