"""Constant-velocity Kalman filter of many boxes at once, vectorised with numpy.

Same model as :class:`trackers.kalman_filter.BoxKalmanFilter` (state
``[cx, cy, w, h, vx, vy, vw, vh]`` in px and px/s, BoT-SORT's choice; process
noise per second, exact discretisation for a step of ``dt`` seconds; every
standard deviation a fraction of the box width or height), but the states of N
tracks are held in one ``N×8`` mean array and one ``N×8×8`` covariance array,
and :meth:`BatchBoxKalman.predict`, :meth:`BatchBoxKalman.update` and
:meth:`BatchBoxKalman.gating_distance` handle all of them with a fixed number of
numpy calls. This is what makes :class:`trackers.fused_tracker.FusedTracker`
faster than a tracker with one small filter object per track (ultralytics'
``multi_predict`` batches the prediction only; here the update and the gating
are batched too).

Optionally the measurement noise is scaled by the detection score as in NSA
Kalman (Du et al., "GIAOTracker", ICCVW 2021): ``R_k = (1 - score_k) R_k``, so
confident detections pull the state harder.
"""

from __future__ import annotations

import numpy as np

from trackers.kalman_filter import BoxNoise

_IDX = np.arange(4)


class BatchBoxKalman(BoxNoise):
    """Batched box Kalman filter; the state lives in arrays owned by the caller.

    Args:
        std_meas, std_rw, std_acc, std_vel_init: noise levels, see
            :class:`~trackers.kalman_filter.BoxNoise`.

    Attributes:
        nsa: scale the measurement noise by ``1 - score`` (NSA Kalman), with the
            factor kept at least ``0.05``; off by default (it did not help on MOT15).

    Raises:
        ValueError: a standard deviation is negative or not finite, or ``std_meas`` is zero.
    """

    #: scale the measurement noise by ``1 - score`` (NSA Kalman, factor at least 0.05); set after construction
    nsa: bool = False

    @staticmethod
    def _scales(cxcywh: np.ndarray) -> np.ndarray:
        """N×4 ``(w, h, w, h)`` of N×4 ``(cx, cy, w, h)`` boxes."""
        return cxcywh[:, [2, 3, 2, 3]]

    def initiate(self, cxcywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New states at measured boxes with zero velocity.

        Args:
            cxcywh: K×4 boxes ``(cx, cy, w, h)``, pixels, positive sizes (not checked).

        Returns:
            ``(mean, cov)``: K×8 and K×8×8 ``float64``.
        """
        z = np.asarray(cxcywh, dtype=np.float64).reshape(-1, 4)
        k = len(z)
        mean = np.zeros((k, 8))
        mean[:, :4] = z
        s = self._scales(z)
        cov = np.zeros((k, 8, 8))
        cov[:, _IDX, _IDX] = (2.0 * self.std_meas * s) ** 2
        cov[:, _IDX + 4, _IDX + 4] = (self.std_vel_init * s) ** 2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray, dt: float) -> None:
        """Advance every state by ``dt`` seconds, **in place**.

        Sizes are kept at least 1 px (a side clamped at 1 gets a zero rate).

        Args:
            mean: N×8 ``float64`` states, modified.
            cov: N×8×8 ``float64`` covariances, modified.
            dt: seconds, ``>= 0`` (0 leaves everything unchanged).

        Raises:
            ValueError: ``dt`` is negative or not finite.
        """
        if not np.isfinite(dt) or dt < 0:
            raise ValueError(f"dt must be a finite number of seconds >= 0, got {dt}")
        if dt == 0 or len(mean) == 0:
            return
        s2 = self._scales(mean[:, :4]) ** 2
        mean[:, :4] += dt * mean[:, 4:]
        # P' = F P F^T with F = [[I, dt I], [0, I]], written with the 4×4 blocks of P.
        a = cov[:, :4, :4]
        b = cov[:, :4, 4:]
        c = cov[:, 4:, 4:]
        b_new = b + dt * c
        a_new = a + dt * (b + np.swapaxes(b, 1, 2)) + (dt * dt) * c
        cov[:, :4, :4] = a_new
        cov[:, :4, 4:] = b_new
        cov[:, 4:, :4] = np.swapaxes(b_new, 1, 2)
        qa = (self.std_acc**2) * s2
        qr = (self.std_rw**2) * s2
        cov[:, _IDX, _IDX] += qa * (dt**3 / 3.0) + qr * dt
        cov[:, _IDX, _IDX + 4] += qa * (dt**2 / 2.0)
        cov[:, _IDX + 4, _IDX] += qa * (dt**2 / 2.0)
        cov[:, _IDX + 4, _IDX + 4] += qa * dt
        small = mean[:, 2:4] < 1.0
        if small.any():
            mean[:, 2:4][small] = 1.0
            mean[:, 6:8][small] = 0.0

    def project(
        self, mean: np.ndarray, cov: np.ndarray, score: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted measurements and innovation covariances.

        Args:
            mean: N×8 states; cov: N×8×8 covariances.
            score: N detection scores for NSA noise (used only with ``nsa=True``).

        Returns:
            ``(z, S)``: N×4 boxes ``(cx, cy, w, h)`` (px) and N×4×4 ``S = H P Hᵀ + R`` (px²).
        """
        z = mean[:, :4]
        r = (self.std_meas * self._scales(z)) ** 2
        if self.nsa and score is not None:
            r = r * np.maximum(1.0 - np.asarray(score, np.float64), 0.05)[:, None]
        s = cov[:, :4, :4].copy()
        s[:, _IDX, _IDX] += r
        return z, s

    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray,
               score: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Correct K states with their measured boxes.

        Args:
            mean: K×8 states; cov: K×8×8 covariances (not modified).
            z: K×4 measured boxes ``(cx, cy, w, h)``, pixels.
            score: K detection scores in [0, 1] (NSA noise only).

        Returns:
            ``(mean, cov)``: the K×8 and K×8×8 posteriors (new arrays).
        """
        zp, s = self.project(mean, cov, score)
        pht = cov[:, :, :4]  # P Hᵀ, K×8×4
        gain = pht @ np.linalg.inv(s)  # P Hᵀ S⁻¹, K×8×4 (4×4 inverses: cheaper than solve here)
        innov = np.asarray(z, np.float64) - zp
        new_mean = mean + (gain @ innov[:, :, None])[:, :, 0]
        new_cov = cov - gain @ cov[:, :4, :]
        return new_mean, new_cov

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray,
                        only_position: bool = False) -> np.ndarray:
        """Squared Mahalanobis distance of every measured box to every predicted one.

        Compare with ``CHI2INV95[4]`` (9.4877), or ``CHI2INV95[2]`` (5.9915) with
        ``only_position``, to gate unlikely pairs.

        Args:
            mean: N×8 states; cov: N×8×8 covariances.
            z: M×4 boxes ``(cx, cy, w, h)``, pixels.
            only_position: use the centres ``(cx, cy)`` only.

        Returns:
            N×M ``float64`` squared distances (dimensionless).
        """
        zp, s = self.project(mean, cov)
        zz = np.asarray(z, np.float64).reshape(-1, 4)
        if len(zp) == 0 or len(zz) == 0:
            return np.zeros((len(zp), len(zz)))
        if only_position:
            zp, s, zz = zp[:, :2], s[:, :2, :2], zz[:, :2]
        d = zz[None, :, :] - zp[:, None, :]  # N×M×k
        y = d @ np.linalg.inv(s)  # N×M×k: dᵀ S⁻¹ per pair
        return np.sum(y * d, axis=2)
