"""Person crops and the ReID network input built from them.

Every ReID backend of :mod:`reid` takes the same input, the one torchreid's
models (and the OSNet ONNX export in ``../shared/models``) were trained with: a
crop resized to 256×128 (height × width), RGB, scaled to [0, 1], then normalised
with the ImageNet mean and standard deviation, as an ``N×3×256×128`` ``float32``
tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

REID_HW: tuple[int, int] = (256, 128)
"""Default network input ``(height, width)`` in pixels."""

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
"""Per-channel mean of RGB values in [0, 1] (ImageNet)."""

IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
"""Per-channel standard deviation of RGB values in [0, 1] (ImageNet)."""

MIN_CROP_SIZE = 4
"""Crops narrower or lower than this (pixels, after clipping) are invalid."""


def crop_boxes(
    image: np.ndarray, xyxy: np.ndarray, min_size: int = MIN_CROP_SIZE
) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Cut each box out of ``image``, clipped to the image.

    A box's corners are rounded outwards (``floor`` of ``x1, y1``, ``ceil`` of
    ``x2, y2``) and clipped to ``[0, W] × [0, H]``. A box that is empty after
    clipping (fully outside, zero or negative size), narrower or lower than
    ``min_size`` pixels, or has a non-finite coordinate is invalid: its crop is
    ``None`` and no error is raised.

    Args:
        image: H×W×3 ``uint8`` BGR frame.
        xyxy: N×4 boxes ``(x1, y1, x2, y2)`` in pixels of ``image`` (any float or
            int dtype; anything reshapeable to N×4).
        min_size: smallest valid crop width and height in pixels (≥ 1).

    Returns:
        ``(crops, valid)``: ``crops`` is a list of N items, each an ``h×w×3``
        ``uint8`` BGR view into ``image`` (not a copy) or ``None`` for an invalid
        box; ``valid`` is an N ``bool`` array, ``True`` where the crop exists.

    Raises:
        ValueError: ``image`` is not an H×W×3 array.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 BGR image, got shape {image.shape}")
    h, w = image.shape[:2]
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    min_size = max(1, int(min_size))
    crops: list[np.ndarray | None] = []
    valid = np.zeros(len(boxes), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if not np.all(np.isfinite((x1, y1, x2, y2))):
            crops.append(None)
            continue
        left = int(min(max(np.floor(x1), 0), w))
        top = int(min(max(np.floor(y1), 0), h))
        right = int(min(max(np.ceil(x2), 0), w))
        bottom = int(min(max(np.ceil(y2), 0), h))
        if right - left < min_size or bottom - top < min_size:
            crops.append(None)
            continue
        crops.append(image[top:bottom, left:right])
        valid[i] = True
    return crops, valid


def to_tensor_batch(crops: Sequence[np.ndarray], size: tuple[int, int] = REID_HW) -> np.ndarray:
    """Turn BGR crops into the normalised ReID network input.

    Each crop is resized to ``size`` with ``cv2.INTER_LINEAR`` (aspect ratio not
    kept, as in torchreid), converted BGR → RGB, divided by 255 and normalised
    per channel: ``(x / 255 - IMAGENET_MEAN) / IMAGENET_STD``.

    Args:
        crops: N crops, each ``h×w×3`` ``uint8`` BGR with ``h, w ≥ 1``.
        size: network input ``(height, width)`` in pixels.

    Returns:
        ``N×3×height×width`` ``float32`` C-contiguous array (``0×3×height×width``
        for no crops).

    Raises:
        ValueError: a crop is empty, not 3-channel, or not ``uint8``.
    """
    height, width = size
    out = np.empty((len(crops), 3, height, width), np.float32)
    if not len(crops):
        return out
    scale = (1.0 / (255.0 * IMAGENET_STD)).reshape(1, 1, 3)
    shift = (IMAGENET_MEAN / IMAGENET_STD).reshape(1, 1, 3)
    for i, crop in enumerate(crops):
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
            raise ValueError(f"crop {i}: expected an h×w×3 BGR image, got shape {crop.shape}")
        if crop.dtype != np.uint8:
            raise ValueError(f"crop {i}: expected uint8 pixels, got {crop.dtype}")
        resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
        rgb = resized[:, :, ::-1].astype(np.float32)
        out[i] = (rgb * scale - shift).transpose(2, 0, 1)
    return out
