"""ReID features from an ONNX model with onnxruntime (no torch needed at run time)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.errors import ModelError
from pipeline.onnx_session import error_text, open_session
from reid.extractor import FeatureExtractor
from reid.preprocess import REID_HW

log = logging.getLogger(__name__)



class OnnxReidExtractor(FeatureExtractor):
    """Person ReID embedding from an ONNX model run by onnxruntime.

    The model takes ``N×3×H×W`` ``float32`` RGB normalised with the ImageNet
    mean/std (see :func:`reid.preprocess.to_tensor_batch`) and returns ``N×D``
    features (e.g. ``../shared/models/osnet_x0_25_msmt17.onnx``: 256×128 → 512).
    A static ``H×W`` in the graph is used as the input size, a dynamic one means
    256×128. A fixed batch dimension ``B`` is fed ``B`` crops per run (the last
    run padded with zeros); a dynamic one takes up to ``batch`` crops per run.

    Args:
        path: the ``.onnx`` file.
        batch: crops per forward pass at most (dynamic-batch models).
        device: ``'cpu'``, ``'cuda'`` or ``'cuda:N'``; CUDA is used when
            onnxruntime has its ``CUDAExecutionProvider``, otherwise the model
            runs on the CPU with a warning.
        threads: onnxruntime intra-op threads; 0 = ``os.cpu_count()``.

    Raises:
        ModelError: the file is missing or not a loadable ONNX model, its input is
            not ``N×3×H×W`` or its output not ``N×D``.
    """

    def __init__(self, path: str | Path, *, batch: int = 32, device: str = "cpu", threads: int = 0) -> None:

        path = Path(path).expanduser()
        self.session = open_session(path, device, threads, "ReID ONNX")
        self.name = f"onnx:{path.name}"
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ModelError(f"{path}: expected an N×3×H×W image input, got shape {shape}")
        h, w = shape[2], shape[3]
        self.input_hw = (h, w) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else REID_HW
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        self.batch = max(1, int(batch))
        self.dim = self._output_dim(path)

    def _output_dim(self, path: Path) -> int:
        """Feature dimension D from the graph's static output shape, else from a dry run."""
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
            return int(shape[1])
        dummy = np.zeros((self.fixed_batch or 1, 3, *self.input_hw), np.float32)
        out = self._run(dummy)
        if out.ndim != 2:
            raise ModelError(f"{path}: expected an N×D feature output, got shape {out.shape}")
        return int(out.shape[1])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self.session.run(None, {self.input_name: batch})[0], dtype=np.float32)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{self.name}: inference failed: {error_text(exc)}") from None

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Raw N×D features of one preprocessed batch; see :meth:`FeatureExtractor._forward`."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.fixed_batch is None:
            return self._run(batch).reshape(len(batch), -1)
        outs = []
        fb = self.fixed_batch
        for start in range(0, len(batch), fb):
            chunk = batch[start : start + fb]
            n = len(chunk)
            if n < fb:  # pad the fixed batch dimension
                chunk = np.concatenate([chunk, np.zeros((fb - n, *chunk.shape[1:]), np.float32)])
            outs.append(self._run(chunk).reshape(fb, -1)[:n])
        return np.concatenate(outs)

    def close(self) -> None:
        """Drop the onnxruntime session."""
        self.session = None  # type: ignore[assignment]
