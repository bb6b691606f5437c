"""ONNX YOLO person detector (onnxruntime) for YOLOX, YOLOv5 and YOLOv8/11 exports.

Each family has a pure decoder from the raw output tensor to boxes in input
pixels and person scores, so it can be tested on hand-built tensors:

* YOLOX raw head (Ge et al., "YOLOX: Exceeding YOLO Series in 2021",
  arXiv:2107.08430; the official ``export_onnx.py`` without
  ``--decode_in_inference``): ``B×A×(5+nc)`` over the anchor-free grid of
  strides 8/16/32, objectness and class scores already sigmoid-ed in the graph.
* YOLOv5 export (ultralytics): ``B×(3·cells)×(5+nc)``, decoded centre ``xywh``.
* YOLOv8/YOLO11 export (ultralytics): ``B×(4+nc)×cells``, decoded centre
  ``xywh``, class scores without objectness.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pipeline.config import DetectorConfig
from pipeline.detectors.base import PERSON_CLASS, Detector
from pipeline.detectors.preprocess import LetterboxInfo, letterbox, nms, unletterbox_boxes
from pipeline.errors import ModelError
from pipeline.onnx_session import error_text, open_session
from pipeline.types import Detections, Frame

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)
FAMILIES = ("yolox", "yolov5", "yolov8")
DEFAULT_IMGSZ = 640


def grid_cells(height: int, width: int, strides: tuple[int, ...] = STRIDES) -> int:
    """Number of grid cells over all strides: ``Σ (height/s)·(width/s)`` (3549 for 416×416)."""
    return sum((height // s) * (width // s) for s in strides)


def _xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """Centre ``xywh`` (…×4) to corner ``xyxy`` (…×4), ``float32``."""
    xy, wh = xywh[..., :2], xywh[..., 2:4]
    return np.concatenate([xy - wh / 2, xy + wh / 2], axis=-1).astype(np.float32)


def decode_yolox(raw: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Decode a YOLOX raw head output (Ge et al. 2021) into person boxes and scores.

    For the cell at grid position ``(gx, gy)`` of stride ``s``:
    ``cx = (px + gx)·s``, ``cy = (py + gy)·s``, ``w = exp(pw)·s``, ``h = exp(ph)·s``,
    ``score = objectness × p(person)``. Cells are ordered stride 8, 16, 32, each
    row-major (y outer, x inner), as YOLOX's ``decode_outputs`` builds its grids.

    Args:
        raw: ``B×A×(5+nc)`` ``float32``: ``px, py, pw, ph`` (raw regression),
            objectness and ``nc`` class probabilities (already in [0, 1]).
        input_hw: ``(height, width)`` of the network input in pixels.

    Returns:
        ``(xyxy, score)``: ``B×A×4`` ``float32`` boxes in input pixels and
        ``B×A`` ``float32`` person scores.

    Raises:
        ModelError: ``A`` differs from :func:`grid_cells` of ``input_hw`` or the
            last axis has fewer than 6 channels.
    """
    raw = np.asarray(raw, dtype=np.float32)
    h, w = input_hw
    if raw.ndim != 3 or raw.shape[2] < 6 or raw.shape[1] != grid_cells(h, w):
        raise ModelError(
            f"YOLOX output shape {raw.shape} does not match a {h}x{w} input "
            f"(expected B×{grid_cells(h, w)}×(5+classes))"
        )
    grids, strides = [], []
    for s in STRIDES:
        gy, gx = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
        grids.append(np.stack([gx, gy], axis=-1).reshape(-1, 2))
        strides.append(np.full((gx.size, 1), s, np.float32))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(strides)
    xy = (raw[..., 0:2] + grid) * stride
    wh = np.exp(raw[..., 2:4]) * stride
    score = raw[..., 4] * raw[..., 5 + PERSON_CLASS]
    return _xywh_to_xyxy(np.concatenate([xy, wh], axis=-1)), score.astype(np.float32)


def decode_yolov5(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode an ultralytics YOLOv5 export (already grid-decoded) into person boxes and scores.

    Args:
        raw: ``B×N×(5+nc)`` ``float32`` rows ``cx, cy, w, h`` (input pixels),
            objectness, ``nc`` class probabilities.

    Returns:
        ``(xyxy, score)``: ``B×N×4`` ``float32`` input pixels, ``B×N`` ``float32``
        person scores ``objectness × p(person)``.

    Raises:
        ModelError: the tensor is not 3-D with at least 6 channels.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 3 or raw.shape[2] < 6:
        raise ModelError(f"YOLOv5 output shape {raw.shape} is not B×N×(5+classes)")
    return _xywh_to_xyxy(raw[..., :4]), (raw[..., 4] * raw[..., 5 + PERSON_CLASS]).astype(np.float32)


def decode_yolov8(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode an ultralytics YOLOv8/YOLO11 export (channels first) into person boxes and scores.

    Args:
        raw: ``B×(4+nc)×N`` ``float32``: rows ``cx, cy, w, h`` (input pixels) then
            ``nc`` class probabilities (no objectness).

    Returns:
        ``(xyxy, score)``: ``B×N×4`` ``float32`` input pixels, ``B×N`` ``float32``
        person scores.

    Raises:
        ModelError: the tensor is not 3-D with at least 5 rows.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 3 or raw.shape[1] < 5:
        raise ModelError(f"YOLOv8 output shape {raw.shape} is not B×(4+classes)×N")
    t = raw.transpose(0, 2, 1)
    return _xywh_to_xyxy(t[..., :4]), t[..., 4 + PERSON_CLASS].astype(np.float32)


def detect_family(output_shape: tuple[int, ...], input_hw: tuple[int, int]) -> str:
    """Guess the YOLO family from the output shape ``(B, R, C)`` of a ``H×W`` input.

    Rules: ``C`` equals the grid cells of strides 8/16/32 (and ``R ≥ 5``) →
    ``"yolov8"``; ``R`` equals the cells → ``"yolox"``; ``R`` equals 3× the
    cells → ``"yolov5"``.

    Returns:
        One of :data:`FAMILIES`.

    Raises:
        ModelError: no rule matches; the message asks for a family prefix.
    """
    cells = grid_cells(*input_hw)
    if len(output_shape) == 3:
        _, rows, cols = output_shape
        if cols == cells and isinstance(rows, int) and rows >= 5:
            return "yolov8"
        if rows == cells:
            return "yolox"
        if rows == 3 * cells:
            return "yolov5"
    raise ModelError(
        f"cannot tell the YOLO family of an ONNX model with output shape {tuple(output_shape)} "
        f"for a {input_hw[0]}x{input_hw[1]} input: give the family prefix, e.g. "
        "--detector yolox:model.onnx, yolov5:model.onnx or yolov8:model.onnx"
    )


def postprocess(
    xyxy: np.ndarray, score: np.ndarray, info: LetterboxInfo, frame: Frame, conf: float, iou: float
) -> Detections:
    """Threshold, NMS and un-letterbox one image's decoded person boxes.

    Args:
        xyxy: N×4 boxes in input pixels. score: N person scores.
        info: letterbox placement of ``frame``. frame: the original frame (its size clips boxes).
        conf: minimum score kept. iou: NMS IoU threshold.

    Returns:
        :class:`Detections` in original-frame pixels, class 0, scores in [0, 1].
    """
    mask = score >= conf
    boxes = unletterbox_boxes(xyxy[mask], info, frame.width, frame.height)
    s = np.clip(score[mask], 0.0, 1.0)
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, s = boxes[ok], s[ok]
    keep = nms(boxes, s, iou)
    return Detections(boxes[keep], s[keep], np.full(len(keep), PERSON_CLASS, np.int64))


def _dims(shape: list) -> str:
    """``[1, 3, 'h', None]`` → ``'1×3×h×?'``."""
    return "×".join("?" if d is None else str(d) for d in shape)


def check_image_input(shape: list, path: Path) -> None:
    """Check a detector's ONNX input is one image batch: rank 4, 3 channels, positive (or dynamic) H and W.

    Dynamic dimensions (names or ``None``) pass; fixed ones must fit.

    Raises:
        ModelError: one line naming ``path``, the shape found and what a person
            detector needs.
    """
    if len(shape) != 4:
        raise ModelError(
            f"{path}: detector input is {_dims(shape)} (rank {len(shape)}); a person detector needs one "
            "N×3×H×W image input: re-export the model with an image input"
        )
    channels, h, w = shape[1:]
    if isinstance(channels, int) and channels != 3:
        raise ModelError(
            f"{path}: detector input is {_dims(shape)} (N×C×H×W); a person detector needs 3 channels (BGR/RGB): "
            "re-export the model with an N×3×H×W input"
        )
    if any(isinstance(d, int) and d <= 0 for d in (h, w)):
        raise ModelError(f"{path}: detector input is {_dims(shape)} (N×C×H×W); H and W must be positive or dynamic")


def _split_spec(spec: str) -> tuple[str | None, str]:
    """``'yolox:path.onnx'`` → ``('yolox', 'path.onnx')``; a plain path → ``(None, path)``."""
    head, sep, tail = spec.partition(":")
    if sep and head.lower() in FAMILIES:
        return head.lower(), tail
    return None, spec


class OnnxYoloDetector(Detector):
    """Person detector running a YOLOX / YOLOv5 / YOLOv8 ONNX model with onnxruntime.

    Input preparation: YOLOX gets BGR 0–255 top-left letterboxed (pad 114);
    YOLOv5/v8 get RGB / 255 centred letterboxed (pad 114). The input size is the
    model's fixed size, else ``cfg.imgsz`` or 640. A fixed batch dimension of 1
    means one forward pass per frame (``max_batch = 1``); a dynamic one batches
    up to ``cfg.batch`` frames.

    Args:
        cfg: ``spec`` is ``'[yolox:|yolov5:|yolov8:]path.onnx'``; also uses
            ``conf``, ``nms_iou``, ``imgsz``, ``batch``, ``device`` and ``threads``.

    Raises:
        ModelError: the file is missing or not a loadable ONNX model, its input
            is not ``N×3×H×W``, the family cannot be detected, or ``cfg.imgsz``
            contradicts a fixed input size.
    """

    def __init__(self, cfg: DetectorConfig) -> None:

        family, path_str = _split_spec(cfg.spec)
        path = Path(path_str).expanduser()
        self.cfg = cfg
        self.session = open_session(path, cfg.device, cfg.threads, "ONNX detector")
        inp = self.session.get_inputs()[0]
        check_image_input(list(inp.shape), path)
        self.input_name = inp.name
        self.input_hw = self._input_size(inp.shape, cfg.imgsz, path)
        self._fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
        self.max_batch = self._fixed_batch or cfg.batch
        if family is None:
            family = detect_family(self._probe_output_shape(path), self.input_hw)
        self.family = family
        self.name = f"onnx-{family}:{path.name}"

    @staticmethod
    def _input_size(shape: list, imgsz: int | None, path: Path) -> tuple[int, int]:
        """Network input ``(height, width)`` from the model's checked NCHW shape and ``imgsz``."""
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int):
            if imgsz is not None and (h, w) != (imgsz, imgsz):
                raise ModelError(
                    f"{path}: the model's input is fixed at {h}x{w}; "
                    f"remove detector.imgsz ({imgsz}) or set it to {h}"
                )
            return h, w
        size = imgsz or DEFAULT_IMGSZ
        return size, size

    def _probe_output_shape(self, path: Path) -> tuple[int, ...]:
        """Output shape, from the graph when static, else from a dry run on one grey image."""
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 3 and all(isinstance(d, int) for d in shape[1:]):
            return tuple(shape)
        dummy = np.zeros((self._fixed_batch or 1, 3, *self.input_hw), np.float32)
        try:
            return tuple(self.session.run(None, {self.input_name: dummy})[0].shape)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(
                f"{path}: a test run to read the output shape failed ({error_text(exc)}); "
                "check the model is a YOLO detector export"
            ) from None

    def _prepare(self, frame: Frame) -> tuple[np.ndarray, LetterboxInfo]:
        """One frame → ``3×H×W`` ``float32`` input and its letterbox placement."""
        if frame.image is None:
            raise ModelError(
                f"camera {frame.camera_id} frame {frame.index} has no pixels; "
                "an image detector needs decoded frames (use --detector mot for det.txt)"
            )
        yolox = self.family == "yolox"
        canvas, info = letterbox(frame.image, self.input_hw, center=not yolox)
        # YOLOX: BGR 0–255; ultralytics exports: RGB / 255
        x = canvas.astype(np.float32) if yolox else canvas[..., ::-1].astype(np.float32) / 255.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)), info

    def _decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.family == "yolox":
            return decode_yolox(raw, self.input_hw)
        if self.family == "yolov5":
            return decode_yolov5(raw)
        return decode_yolov8(raw)

    def detect(self, frames: list[Frame]) -> list[Detections]:
        """Detect people in each frame; see :meth:`Detector.detect`.

        Raises:
            ModelError: a frame has no pixels or onnxruntime fails on the input.
        """
        out: list[Detections] = []
        for start in range(0, len(frames), self.max_batch):
            chunk = frames[start : start + self.max_batch]
            prepared = [self._prepare(f) for f in chunk]
            batch = np.stack([p[0] for p in prepared])
            if self._fixed_batch and len(batch) < self._fixed_batch:  # pad a fixed batch dimension
                filler = np.zeros((self._fixed_batch - len(batch), *batch.shape[1:]), np.float32)
                batch = np.concatenate([batch, filler])
            try:
                raw = self.session.run(None, {self.input_name: batch})[0]
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(f"{self.name}: inference failed: {error_text(exc)}") from None
            boxes, scores = self._decode(raw)
            for i, (frame, (_, info)) in enumerate(zip(chunk, prepared, strict=True)):
                out.append(postprocess(boxes[i], scores[i], info, frame, self.cfg.conf, self.cfg.nms_iou))
        return out

    def close(self) -> None:
        """Drop the onnxruntime session."""
        self.session = None  # type: ignore[assignment]
