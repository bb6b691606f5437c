"""The one interface every ReID backend implements: crops in, unit-length features out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from pipeline.errors import ModelError
from pipeline.vectors import l2_normalize
from reid.preprocess import MIN_CROP_SIZE, REID_HW, crop_boxes, to_tensor_batch


class FeatureExtractor(ABC):
    """Person appearance embedding: BGR crops → L2-normalised D-dim features.

    Subclasses implement :meth:`_forward` on a preprocessed batch (see
    :func:`reid.preprocess.to_tensor_batch`); this class does the cropping,
    preprocessing, batching and normalisation, so cosine similarity of two
    features is their dot product.

    Attributes:
        name: short human-readable description (backend and weights file name).
        dim: feature dimension D.
        batch: crops per forward pass at most (≥ 1).
        input_hw: network input ``(height, width)`` in pixels (256×128 by default).
    """

    name: str = "reid"
    dim: int = 0
    batch: int = 32
    input_hw: tuple[int, int] = REID_HW

    @abstractmethod
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on one preprocessed batch.

        Args:
            batch: ``N×3×H×W`` ``float32`` (``H×W`` = :attr:`input_hw`), ``1 ≤ N ≤``
                :attr:`batch`, RGB normalised with the ImageNet mean and std.

        Returns:
            N×D ``float32`` raw (unnormalised) features.

        Raises:
            ModelError: the backend fails on the input.
        """

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embed person crops, :attr:`batch` crops per forward pass.

        Args:
            crops: N ``h×w×3`` ``uint8`` BGR images of any size (``h, w ≥ 1``).

        Returns:
            N×D ``float32`` features of unit L2 norm (a row stays zero only if the
            network outputs all zeros); ``0×D`` for no crops.

        Raises:
            ModelError: the backend fails or returns a wrongly shaped output.
            ValueError: a crop is empty, not 3-channel or not ``uint8``.
        """
        out = np.zeros((len(crops), self.dim), np.float32)
        step = max(1, int(self.batch))
        for start in range(0, len(crops), step):
            chunk = crops[start : start + step]
            feats = np.asarray(self._forward(to_tensor_batch(chunk, self.input_hw)), dtype=np.float32)
            if feats.shape != (len(chunk), self.dim):
                raise ModelError(
                    f"{self.name}: expected a {len(chunk)}×{self.dim} feature output, got shape {feats.shape}"
                )
            out[start : start + len(chunk)] = feats
        return l2_normalize(out, dtype=np.float32)

    def extract(
        self, image: np.ndarray, xyxy: np.ndarray, min_size: int = MIN_CROP_SIZE
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed the boxes of one frame.

        Args:
            image: H×W×3 ``uint8`` BGR frame.
            xyxy: N×4 boxes ``(x1, y1, x2, y2)`` in pixels of ``image``; clipped to it.
            min_size: boxes narrower or lower than this after clipping (px) are invalid.

        Returns:
            ``(features, valid)``: N×D ``float32`` features (unit norm; zero rows
            where invalid) and an N ``bool`` array, ``False`` for boxes outside the
            image, empty or smaller than ``min_size`` (see :func:`crop_boxes`).

        Raises:
            ModelError: the backend fails.
            ValueError: ``image`` is not H×W×3 ``uint8``.
        """
        crops, valid = crop_boxes(image, xyxy, min_size)
        feats = np.zeros((len(crops), self.dim), np.float32)
        if valid.any():
            feats[valid] = self.embed([c for c in crops if c is not None])
        return feats, valid

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (sessions, models). Default: nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, batch={self.batch})"
