"""Image letterboxing for fixed-size detector inputs, box un-mapping, and NMS.

Letterboxing resizes an image keeping its aspect ratio and pads the rest with
grey (114). YOLOX's ``preproc`` (Ge et al., "YOLOX: Exceeding YOLO Series in
2021", arXiv:2107.08430) puts the image in the top-left corner; ultralytics
YOLOv5/YOLOv8 centre it. :class:`LetterboxInfo` keeps the scale and padding so
that boxes predicted in input pixels map back to pixels of the original frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class LetterboxInfo:
    """How an original frame was placed into the detector input.

    Attributes:
        scale: input pixels per original pixel (same on both axes).
        pad_x: left padding in input pixels (0 for top-left placement).
        pad_y: top padding in input pixels (0 for top-left placement).
    """

    scale: float
    pad_x: float
    pad_y: float


def letterbox(
    image: np.ndarray, size: tuple[int, int], center: bool, pad_value: int = PAD_VALUE
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize ``image`` into an ``size`` canvas keeping its aspect ratio.

    Args:
        image: H×W×C ``uint8`` image (any channel order; it is not changed).
        size: ``(height, width)`` of the output canvas in pixels.
        center: ``True`` centres the image (ultralytics YOLOv5/v8); ``False``
            places it top-left, padding only bottom/right (YOLOX ``preproc``).
        pad_value: grey level of the padding.

    Returns:
        ``(canvas, info)``: the ``size[0]×size[1]×C`` ``uint8`` canvas and the
        :class:`LetterboxInfo` to map boxes back with :func:`unletterbox_boxes`.

    Raises:
        ValueError: ``image`` is empty or not H×W×C.
    """
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"letterbox needs an H×W×C image, got shape {image.shape}")
    out_h, out_w = size
    h, w = image.shape[:2]
    scale = min(out_h / h, out_w / w)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    new_w, new_h = min(new_w, out_w), min(new_h, out_h)
    resized = image
    if (new_w, new_h) != (w, h):
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x = (out_w - new_w) // 2 if center else 0
    pad_y = (out_h - new_h) // 2 if center else 0
    canvas = np.full((out_h, out_w, image.shape[2]), pad_value, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, LetterboxInfo(scale=float(scale), pad_x=float(pad_x), pad_y=float(pad_y))


def unletterbox_boxes(xyxy: np.ndarray, info: LetterboxInfo, width: int, height: int) -> np.ndarray:
    """Map boxes from detector-input pixels back to the original frame and clip them.

    Args:
        xyxy: N×4 boxes ``(x1, y1, x2, y2)`` in input pixels.
        info: the placement returned by :func:`letterbox`.
        width: original frame width in pixels (boxes are clipped to ``[0, width]``).
        height: original frame height in pixels (clipped to ``[0, height]``).

    Returns:
        N×4 ``float32`` boxes in original-frame pixels.
    """
    b = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] = (b[:, [0, 2]] - info.pad_x) / info.scale
    b[:, [1, 3]] = (b[:, [1, 3]] - info.pad_y) / info.scale
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0.0, float(width))
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0.0, float(height))
    return b


def nms(xyxy: np.ndarray, score: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (class-agnostic) via OpenCV's ``cv2.dnn.NMSBoxes``.

    OpenCV rather than ``torchvision.ops.nms``: the ONNX detector then never
    imports torch (seconds at start-up, hundreds of MiB).

    Args:
        xyxy: N×4 boxes in pixels.
        score: N scores.
        iou_threshold: boxes overlapping a higher-scored kept box with IoU above
            this are removed.

    Returns:
        Indices (``int64``) of the kept boxes, by decreasing score.
    """
    if len(score) == 0:
        return np.zeros((0,), np.int64)
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    tlwh = np.column_stack([b[:, :2], b[:, 2:] - b[:, :2]])
    keep = cv2.dnn.NMSBoxes(tlwh.tolist(), np.asarray(score, np.float64).tolist(), 0.0, float(iou_threshold))
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep[np.argsort(-np.asarray(score)[keep], kind="stable")]
