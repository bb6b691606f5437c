"""Camera motion compensation (CMC) for moving cameras, as in BoT-SORT (Aharon et al., 2022).

The global motion between two consecutive frames is estimated on a downscaled
grey image with OpenCV and returned as a 2×3 affine matrix ``A`` (full-resolution
pixels) that maps a point of the previous frame to the current one:
``p_now = A[:, :2] @ p_prev + A[:, 2]``.

Methods:

* ``sparse_flow``: Shi–Tomasi corners (``cv2.goodFeaturesToTrack``, outside the
  detection boxes when they are given, since people move on their own) tracked
  with pyramidal Lucas–Kanade (``cv2.calcOpticalFlowPyrLK``), then a
  rotation + uniform scale + translation model fitted with RANSAC
  (``cv2.estimateAffinePartial2D``).
* ``ecc``: enhanced correlation coefficient maximisation (Evangelidis & Psarakis,
  PAMI 2008; ``cv2.findTransformECC``) with a Euclidean model.

:func:`apply_affine` applies ``A`` to Kalman states ``[cx, cy, w, h, vx, vy, vw, vh]``.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

CmcMethod = Literal["none", "sparse_flow", "ecc"]


class CameraMotion:
    """Frame-to-frame global motion estimator for one camera stream.

    Args:
        method: ``"sparse_flow"`` or ``"ecc"`` (``"none"`` always returns the identity).
        downscale: the frame is shrunk by this integer factor before estimation (≥ 1).

    Raises:
        ValueError: unknown method or ``downscale < 1``.
    """

    def __init__(self, method: CmcMethod = "sparse_flow", downscale: int = 2) -> None:
        if method not in ("none", "sparse_flow", "ecc"):
            raise ValueError(f"unknown CMC method {method!r} (expected 'none', 'sparse_flow' or 'ecc')")
        if downscale < 1:
            raise ValueError(f"downscale must be >= 1, got {downscale}")
        self.method = method
        self.downscale = int(downscale)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (the next :meth:`estimate` returns the identity)."""
        self._prev: np.ndarray | None = None
        self._prev_pts: np.ndarray | None = None

    def _gray(self, image: np.ndarray) -> np.ndarray:
        g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if self.downscale > 1:
            h, w = g.shape[:2]
            g = cv2.resize(g, (max(1, w // self.downscale), max(1, h // self.downscale)),
                           interpolation=cv2.INTER_AREA)
        return g

    def estimate(self, image: np.ndarray, boxes_xyxy: np.ndarray | None = None) -> np.ndarray:
        """Motion from the previous frame given to this object to ``image``.

        Args:
            image: H×W×3 ``uint8`` BGR (or H×W grey) frame.
            boxes_xyxy: optional M×4 detection boxes (pixels) whose inside is not
                used for features (``sparse_flow`` only).

        Returns:
            2×3 ``float64`` affine matrix in full-resolution pixels; the identity for
            the first frame, ``"none"``, or when the estimation fails (too few
            points, no convergence, a frame of another size).
        """
        eye = np.eye(2, 3)
        if self.method == "none":
            return eye
        gray = self._gray(image)
        prev, self._prev = self._prev, gray
        if prev is None or prev.shape != gray.shape:
            return eye
        a = self._sparse_flow(prev, gray, boxes_xyxy) if self.method == "sparse_flow" else self._ecc(prev, gray)
        if a is None or not np.all(np.isfinite(a)):
            return eye
        a = a.astype(np.float64)
        a[:, 2] *= self.downscale
        return a

    def _sparse_flow(self, prev: np.ndarray, gray: np.ndarray, boxes: np.ndarray | None) -> np.ndarray | None:
        mask = np.full(prev.shape, 255, np.uint8)
        h, w = prev.shape
        mask[: h // 50 + 1, :] = 0  # image borders: often overlays/black bars
        mask[-(h // 50 + 1):, :] = 0
        if boxes is not None and len(boxes):
            b = np.round(np.asarray(boxes, np.float64).reshape(-1, 4) / self.downscale).astype(int)
            b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w)
            b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h)
            for x1, y1, x2, y2 in b:
                mask[y1:y2, x1:x2] = 0
        pts = cv2.goodFeaturesToTrack(prev, maxCorners=500, qualityLevel=0.01, minDistance=3, blockSize=3, mask=mask)
        if pts is None or len(pts) < 8:
            return None
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, gray, pts, None)
        ok = status.reshape(-1) == 1
        if ok.sum() < 8:
            return None
        a, _ = cv2.estimateAffinePartial2D(pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0)
        return a

    @staticmethod
    def _ecc(prev: np.ndarray, gray: np.ndarray) -> np.ndarray | None:
        warp = np.eye(2, 3, dtype=np.float32)
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
        try:
            # findTransformECC(template, input, ...) finds W with template(x) ≈ input(W x): the
            # template is the current frame, so W maps current → previous; invert it.
            _, warp = cv2.findTransformECC(gray, prev, warp, cv2.MOTION_EUCLIDEAN, crit, None, 1)
        except cv2.error:
            return None
        return cv2.invertAffineTransform(warp)


def apply_affine(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> None:
    """Move Kalman states ``[cx, cy, w, h, vx, vy, vw, vh]`` by a camera motion, in place.

    Centres get ``R p + t``; centre velocities are rotated/scaled by ``R``; widths,
    heights and their rates are scaled by ``sqrt(det R)``; the covariance becomes
    ``M P Mᵀ`` with ``M`` the corresponding 8×8 linear map.

    Args:
        mean: N×8 ``float64`` states (px, px/s), modified.
        cov: N×8×8 ``float64`` covariances, modified.
        affine: 2×3 matrix ``[R | t]`` from :meth:`CameraMotion.estimate`.
    """
    a = np.asarray(affine, np.float64)
    if len(mean) == 0 or np.allclose(a, np.eye(2, 3)):
        return
    r, t = a[:, :2], a[:, 2]
    s = float(np.sqrt(abs(np.linalg.det(r))))
    m = np.zeros((8, 8))
    m[0:2, 0:2] = r
    m[2:4, 2:4] = s * np.eye(2)
    m[4:6, 4:6] = r
    m[6:8, 6:8] = s * np.eye(2)
    mean[:] = mean @ m.T
    mean[:, :2] += t
    cov[:] = m @ cov @ m.T
