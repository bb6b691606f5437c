"""One place that opens onnxruntime sessions for the detector and the ReID model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

from pipeline.errors import ModelError, first_line

log = logging.getLogger(__name__)
_global_pool: int | None = None  # intra-op size of onnxruntime's process-wide thread pool, once made


def open_session(path: Path, device: str, threads: int, what: str) -> ort.InferenceSession:
    """Open an ONNX model with onnxruntime.

    CPU sessions share onnxruntime's process-wide thread pool (``threads`` or
    all cores, fixed by the first session opened): with a pool per session, the
    detector's and the ReID model's threads spin-wait against each other, and
    the detector ran about 30 % slower whenever ReID was on. ``device``
    ``cuda``/``cuda:N`` uses the CUDA provider when this onnxruntime build has
    it (else a warning and the CPU).

    Args:
        path: the ``.onnx`` file.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        threads: intra-op threads, 0 = ``os.cpu_count()``.
        what: what the model is, for error messages (e.g. ``"ONNX detector"``).

    Raises:
        ModelError: the file is missing or onnxruntime cannot load it (one line).
    """
    if not path.is_file():
        raise ModelError(f"{what} model not found: {path}")
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
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            dev_id = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": dev_id}), "CPUExecutionProvider"]
        else:
            log.warning("onnxruntime has no CUDAExecutionProvider here; running %s on CPU", path.name)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load {what} model {path}: {first_line(exc)}") from None
