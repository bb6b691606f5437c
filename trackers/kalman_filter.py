"""Constant-velocity Kalman filter over one bounding box, with a variable time step.

State (BoT-SORT's choice, Aharon et al., "BoT-SORT: Robust Associations
Multi-Pedestrian Tracking", 2022): ``[cx, cy, w, h, vx, vy, vw, vh]`` — box
centre, width and height in pixels and their rates in pixels per **second**.
Measurement: ``[cx, cy, w, h]`` in pixels.

Why width/height instead of DeepSORT's ``[cx, cy, a, h]`` (Wojke et al., "Simple
Online and Realtime Tracking with a Deep Association Metric", ICIP 2017): the
tracker associates by IoU, and estimating the width directly fits the box width
better than going through an aspect ratio whose noise is not in pixels. As in
BoT-SORT, every noise standard deviation is a fraction of the box size (``w`` for
``cx``/``w``, ``h`` for ``cy``/``h``), so a far, small person and a near, large one
are treated alike.

Time: the transition uses ``dt`` in seconds taken from frame timestamps, and the
process noise is specified per second, so 7 fps and 30 fps video behave alike.
The process noise is the exact discretisation of a continuous model in which
each coordinate ``p`` follows ``dp = v dt + s·σ_rw dW₁`` and ``dv = s·σ_acc dW₂``
(``s`` the box size, ``W`` Wiener processes): for one coordinate and its rate,

    Q(dt) = (s σ_acc)² [[dt³/3, dt²/2], [dt²/2, dt]] + (s σ_rw)² [[dt, 0], [0, 0]]

Because the discretisation is exact, ten predictions of 0.1 s give the same
mean and covariance as one of 1 s (while the box size does not change). The
default standard deviations are DeepSORT's per-frame weights (position 1/20,
velocity 1/160 of the height, at 30 fps) converted to per-second values.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

#: 0.95 quantile of the chi-square distribution with N degrees of freedom
#: (N = 2: centre only; N = 4: full box), for gating Mahalanobis distances.
CHI2INV95: dict[int, float] = {1: 3.8415, 2: 5.9915, 3: 7.8147, 4: 9.4877}


def xyxy_to_cxcywh(xyxy: np.ndarray) -> np.ndarray:
    """Convert ``(..., 4)`` boxes ``(x1, y1, x2, y2)`` to ``(cx, cy, w, h)`` (float64, pixels)."""
    b = np.asarray(xyxy, dtype=np.float64)
    out = np.empty_like(b)
    out[..., 0] = (b[..., 0] + b[..., 2]) / 2.0
    out[..., 1] = (b[..., 1] + b[..., 3]) / 2.0
    out[..., 2] = b[..., 2] - b[..., 0]
    out[..., 3] = b[..., 3] - b[..., 1]
    return out


def cxcywh_to_xyxy(cxcywh: np.ndarray) -> np.ndarray:
    """Convert ``(..., 4)`` boxes ``(cx, cy, w, h)`` to ``(x1, y1, x2, y2)`` (float64, pixels)."""
    b = np.asarray(cxcywh, dtype=np.float64)
    out = np.empty_like(b)
    out[..., 0] = b[..., 0] - b[..., 2] / 2.0
    out[..., 1] = b[..., 1] - b[..., 3] / 2.0
    out[..., 2] = b[..., 0] + b[..., 2] / 2.0
    out[..., 3] = b[..., 1] + b[..., 3] / 2.0
    return out


class BoxNoise:
    """Noise levels of the box Kalman filters, each a fraction of the box width (x, w) or height (y, h).

    Args:
        std_meas: measurement standard deviation (dimensionless); the initial
            position uncertainty is twice this.
        std_rw: random-walk standard deviation of positions and sizes, per √second.
        std_acc: white-noise acceleration standard deviation, per second^1.5.
        std_vel_init: initial velocity standard deviation, per second.

    Raises:
        ValueError: a standard deviation is negative or not finite, or ``std_meas`` is zero.
    """

    def __init__(
        self,
        std_meas: float = 0.05,
        std_rw: float = 0.27,
        std_acc: float = 1.0,
        std_vel_init: float = 1.0,
    ) -> None:
        for name, v in (
            ("std_meas", std_meas),
            ("std_rw", std_rw),
            ("std_acc", std_acc),
            ("std_vel_init", std_vel_init),
        ):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {v}")
        if std_meas == 0:
            raise ValueError("std_meas must be positive (a zero measurement noise makes S singular)")
        self.std_meas = float(std_meas)
        self.std_rw = float(std_rw)
        self.std_acc = float(std_acc)
        self.std_vel_init = float(std_vel_init)


class BoxKalmanFilter(BoxNoise):
    """Kalman filter of one box, state ``[cx, cy, w, h, vx, vy, vw, vh]`` (px, px/s).

    Wraps :class:`filterpy.kalman.KalmanFilter` (``dim_x=8, dim_z=4``); the
    transition ``F`` and process noise ``Q`` are rebuilt at every :meth:`predict`
    from the elapsed time, the measurement noise ``R`` at every :meth:`update` from
    the predicted box size (see the module docstring for the model).

    Args:
        std_meas: measurement standard deviation as a fraction of the box size
            (dimensionless); the initial position uncertainty is twice this.
        std_rw: random-walk standard deviation of positions and sizes, as a
            fraction of the box size per √second.
        std_acc: white-noise acceleration standard deviation, as a fraction of the
            box size per second^1.5.
        std_vel_init: initial velocity standard deviation, as a fraction of the
            box size per second.

    Raises:
        ValueError: a standard deviation is negative or not finite, or
            ``std_meas`` is zero.
    """

    _kf: KalmanFilter | None = None  # created by initiate()

    # ------------------------------------------------------------------ matrices
    @staticmethod
    def transition_matrix(dt: float) -> np.ndarray:
        """8×8 ``float64`` constant-velocity transition for ``dt`` seconds."""
        f = np.eye(8)
        f[:4, 4:] = dt * np.eye(4)
        return f

    def _scales(self, cxcywh: np.ndarray) -> np.ndarray:
        w, h = float(cxcywh[2]), float(cxcywh[3])
        return np.array([w, h, w, h], dtype=np.float64)

    def process_noise(self, dt: float, cxcywh: np.ndarray) -> np.ndarray:
        """8×8 ``float64`` process noise ``Q(dt)`` for a box ``(cx, cy, w, h)`` (px) and ``dt`` (s)."""
        s2 = self._scales(cxcywh) ** 2
        qa = (self.std_acc**2) * s2
        qr = (self.std_rw**2) * s2
        q = np.zeros((8, 8))
        idx = np.arange(4)
        q[idx, idx] = qa * dt**3 / 3.0 + qr * dt
        q[idx, idx + 4] = qa * dt**2 / 2.0
        q[idx + 4, idx] = qa * dt**2 / 2.0
        q[idx + 4, idx + 4] = qa * dt
        return q

    def measurement_noise(self, cxcywh: np.ndarray) -> np.ndarray:
        """4×4 ``float64`` measurement noise ``R`` for a box ``(cx, cy, w, h)`` (px)."""
        return np.diag((self.std_meas * self._scales(cxcywh)) ** 2)

    # ------------------------------------------------------------------ filter
    def initiate(self, measurement: np.ndarray) -> None:
        """Start the filter at a box with zero velocity.

        Args:
            measurement: 4 box ``(x1, y1, x2, y2)`` in pixels with positive size.

        Raises:
            ValueError: the box is not 4 finite numbers with ``x2 > x1`` and ``y2 > y1``.
        """
        z = self._check_box(measurement)
        s = self._scales(z)
        self._kf = KalmanFilter(dim_x=8, dim_z=4)
        self._kf.H = np.hstack([np.eye(4), np.zeros((4, 4))])
        self._kf.x = np.concatenate([z, np.zeros(4)]).reshape(8, 1)
        std = np.concatenate([2.0 * self.std_meas * s, self.std_vel_init * s])
        self._kf.P = np.diag(std**2)

    def predict(self, dt: float) -> None:
        """Advance the state by ``dt`` seconds (``dt = 0`` leaves it unchanged).

        Width and height are kept at least 1 px: if the size rate would shrink a
        side below that, the side is clamped and its rate set to zero.

        Raises:
            ValueError: ``dt`` is negative or not finite.
            RuntimeError: :meth:`initiate` has not been called.
        """
        kf = self._filter()
        if not np.isfinite(dt) or dt < 0:
            raise ValueError(f"dt must be a finite number of seconds >= 0, got {dt}")
        if dt == 0:
            return
        kf.predict(F=self.transition_matrix(dt), Q=self.process_noise(dt, kf.x[:4, 0]))
        for i in (2, 3):
            if kf.x[i, 0] < 1.0:
                kf.x[i, 0] = 1.0
                kf.x[i + 4, 0] = 0.0

    def update(self, measurement: np.ndarray) -> None:
        """Correct the state with a measured box.

        Args:
            measurement: 4 box ``(x1, y1, x2, y2)`` in pixels with positive size.

        Raises:
            ValueError: the box is not 4 finite numbers with ``x2 > x1`` and ``y2 > y1``.
            RuntimeError: :meth:`initiate` has not been called.
        """
        kf = self._filter()
        z = self._check_box(measurement)
        kf.update(z.reshape(4, 1), R=self.measurement_noise(kf.x[:4, 0]))

    def gating_distance(self, measurements: np.ndarray, only_position: bool = False) -> np.ndarray:
        """Squared Mahalanobis distance between the state and measured boxes.

        Compare with :data:`CHI2INV95` (4 degrees of freedom, or 2 with
        ``only_position``) to gate unlikely associations.

        Args:
            measurements: M×4 boxes ``(x1, y1, x2, y2)`` in pixels.
            only_position: use the centre ``(cx, cy)`` only.

        Returns:
            M ``float64`` squared distances (dimensionless).

        Raises:
            RuntimeError: :meth:`initiate` has not been called.
        """
        kf = self._filter()
        z = xyxy_to_cxcywh(np.asarray(measurements, dtype=np.float64).reshape(-1, 4))
        mean = (kf.H @ kf.x)[:, 0]
        cov = kf.H @ kf.P @ kf.H.T + self.measurement_noise(mean)
        if only_position:
            mean, cov, z = mean[:2], cov[:2, :2], z[:, :2]
        d = z - mean
        chol = np.linalg.cholesky(cov)
        y = np.linalg.solve(chol, d.T)
        return np.sum(y * y, axis=0)

    # ------------------------------------------------------------------ accessors
    @property
    def mean(self) -> np.ndarray:
        """8 ``float64`` state ``[cx, cy, w, h, vx, vy, vw, vh]`` (px, px/s), a copy."""
        return self._filter().x[:, 0].copy()

    @property
    def covariance(self) -> np.ndarray:
        """8×8 ``float64`` state covariance, a copy."""
        return self._filter().P.copy()

    @property
    def xyxy(self) -> np.ndarray:
        """4 ``float32`` current box ``(x1, y1, x2, y2)`` in pixels."""
        return cxcywh_to_xyxy(self._filter().x[:4, 0]).astype(np.float32)

    # ------------------------------------------------------------------ helpers
    def _filter(self) -> KalmanFilter:
        if self._kf is None:
            raise RuntimeError("BoxKalmanFilter used before initiate(measurement)")
        return self._kf

    @staticmethod
    def _check_box(measurement: np.ndarray) -> np.ndarray:
        b = np.asarray(measurement, dtype=np.float64).reshape(-1)
        if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] <= b[0] or b[3] <= b[1]:
            raise ValueError(f"expected a finite (x1, y1, x2, y2) box with x2 > x1 and y2 > y1, got {b}")
        return xyxy_to_cxcywh(b)
