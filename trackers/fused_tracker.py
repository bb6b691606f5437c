"""The full per-camera tracker (``tracker.type: fused``): ByteTrack's stages with
Mahalanobis gating, BoT-SORT's IoU/appearance fusion, camera motion compensation,
re-activation of lost tracks, and one Kalman filter vectorised over all tracks.

Papers: ByteTrack (Zhang et al., ECCV 2022) for the two score stages; DeepSORT
(Wojke et al., ICIP 2017) for the Mahalanobis gate and the track life cycle;
BoT-SORT (Aharon et al., arXiv 2206.14651, 2022) for the state
``[cx, cy, w, h, vx, vy, vw, vh]``, the appearance EMA, the fused cost and CMC.

Per frame (time ``t`` in seconds from the frame's timestamp):

0. every track is predicted to ``t`` (one batched call, :class:`~trackers.batch_kalman.BatchBoxKalman`);
   tracks without a detection for more than ``max_age_s`` seconds are removed;
   with ``cmc`` on and an image given, the camera's motion since the previous
   frame is applied to all states (:mod:`trackers.cmc`);
1. detections with ``score >= high_thresh`` vs confirmed **and lost** tracks
   (a lost track matched here is re-activated under its id). Cost: the IoU
   distance ``d_iou = 1 - IoU``; when both sides have a ReID feature, BoT-SORT's
   fusion ``min(d_iou, d_app)`` with ``d_app = (1 - cos)/2`` set to 1 when above
   ``appearance_thresh``, when ``IoU < proximity_iou`` (IoU gate) or, with
   ``gating: appearance`` (default), when the squared Mahalanobis distance of
   the box to the Kalman prediction exceeds the χ²₄ 95 % quantile (9.49;
   Mahalanobis gate). With ``gating: all`` pairs outside the Mahalanobis gate are
   never matched. Pairs with no overlap are never matched; pairs need
   ``cost <= 1 - match_iou``;
2. detections with ``low_thresh <= score < high_thresh`` vs confirmed tracks left
   (IoU ``>= second_match_iou``); confirmed tracks still unmatched become Lost;
3. tentative tracks vs high detections left (IoU ``>= tentative_match_iou``);
   a tentative track is confirmed with ``min_hits`` hits and gets the
   next id; unmatched tentative tracks are removed;
4. high detections left with ``score >= new_track_thresh`` start tentative tracks.

Why the Mahalanobis gate guards the appearance term only: on MOT15 det.txt
(no appearance) gating every pair cost 4.7 HOTA (33.0 vs 37.7 with
``std_meas`` 0.05; detector boxes jump more than a constant-velocity filter
expects), while on PETS09/TUD with OSNet features the appearance term without
the gate lost 2 HOTA (50.8 vs 52.8) by pulling tracks onto look-alikes the
motion model rules out.

Matched tracks are corrected in one batched Kalman update (measurement noise
``meas_std`` × box width/height: 0.05 for YOLO-family boxes; the noisier DPM
boxes of MOT15's det.txt do better with 0.15, HOTA 38.4 vs 37.7, see
``configs/mot_public_dets.yaml``). A track's appearance feature is the
exponential moving average ``f ← α f + (1-α) f_det`` (``α = feature_alpha``,
re-normalised) of the features of its matched detections. Without features
(``appearance`` off, no ReID model, or MOT det.txt without pixels) the tracker
runs on motion alone; :meth:`FusedTracker.feature_mask` tells the runner which
detections are worth embedding.

Output: as :class:`~trackers.byte_tracker.ByteTracker` — the Kalman-updated box
of each confirmed track updated in this frame, with ``det_index`` naming the
detection it was matched to. No box is output for a track without a detection.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import TrackerConfig
from pipeline.types import Detections, TrackOutput
from pipeline.vectors import l2_normalize
from trackers.base import TrackerClock, valid_detections
from trackers.batch_kalman import BatchBoxKalman
from trackers.cmc import CameraMotion, apply_affine
from trackers.kalman_filter import CHI2INV95, cxcywh_to_xyxy, xyxy_to_cxcywh
from trackers.matching import FORBIDDEN_COST, iou_matrix, linear_assignment

_TENTATIVE, _CONFIRMED, _LOST = 0, 1, 2


class FusedTracker(TrackerClock):
    """Full single-camera tracker with a batched Kalman filter (see the module docstring).

    Args:
        cfg: thresholds, times (seconds), fusion and CMC settings (``TrackerConfig()`` by default).
        kalman: the batched filter (default ``BatchBoxKalman(std_meas=cfg.meas_std)``, the
            other noise levels as in :class:`~trackers.kalman_filter.BoxKalmanFilter`).

    Attributes:
        wants_image: True when ``cfg.cmc`` is not ``"none"`` (pass ``image`` to :meth:`update`).
        wants_features: ``cfg.appearance``: the runner passes ReID features of the detections
            :meth:`feature_mask` asks for. :meth:`update` uses features whenever they are given.
    """

    def __init__(self, cfg: TrackerConfig | None = None, *, kalman: BatchBoxKalman | None = None) -> None:
        self.cfg = cfg if cfg is not None else TrackerConfig()
        self.kf = kalman if kalman is not None else BatchBoxKalman(std_meas=self.cfg.meas_std)
        self.wants_image = self.cfg.cmc != "none"
        self.wants_features = self.cfg.appearance
        self.reset()

    def reset(self) -> None:
        """Forget every track and the previous frame; ids restart at 1."""
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._id = np.zeros(0, np.int64)  # 0 while tentative
        self._state = np.zeros(0, np.int8)
        self._hits = np.zeros(0, np.int64)
        self._last = np.zeros(0)  # time (s) of the last associated detection
        self._score = np.zeros(0)
        self._feat: np.ndarray | None = None  # N×D, rows of zeros = no feature yet
        self._feat_time = np.zeros(0)  # time (s) of the last feature folded into the EMA, -inf: none
        self._reset_clock()
        self._cmc = CameraMotion(self.cfg.cmc, self.cfg.cmc_downscale) if self.wants_image else None

    # ------------------------------------------------------------------ introspection
    @property
    def num_tracks(self) -> int:
        """Live tracks (tentative, confirmed and lost)."""
        return len(self._id)

    def lost_ids(self) -> list[int]:
        """Ids of the tracks currently Lost (kept for re-activation), increasing."""
        return sorted(int(i) for i in self._id[self._state == _LOST])

    # ------------------------------------------------------------------ main step
    def feature_mask(self, dets: Detections, timestamp: float) -> np.ndarray:
        """Which detections' ReID features :meth:`update` would use at ``timestamp``, so only those are embedded.

        A valid detection with ``score >= high_thresh`` is wanted when it overlaps
        no track (a new person needs a first feature),
        when it is ambiguous (IoU ``>= proximity_iou`` with some track, so appearance
        can count, and it overlaps two or more predicted tracks, or a track it
        overlaps overlaps two or more such detections: where appearance decides),
        or when a track it overlaps has not had a feature for ``feature_interval_s``
        seconds (to keep the moving average current). The prediction here moves the
        boxes by their velocity only (no covariance, no CMC). The tracks overlapped by
        wanted detections are marked as refreshed at ``timestamp`` (the only state this
        changes), so masks asked for several frames before their updates (a batch) stay sparse.

        Args:
            dets: the frame's N detections.
            timestamp: the frame's time (s), as it will be given to :meth:`update`.

        Returns:
            N ``bool``.
        """
        cfg = self.cfg
        boxes, scores, valid = valid_detections(dets)
        want = valid & (scores >= cfg.high_thresh)
        idx = np.flatnonzero(want)
        pool = np.arange(len(self._id))  # tentative tracks too: their detections are not new
        if len(idx) == 0 or len(pool) == 0:
            return want
        dt = max(0.0, float(timestamp) - self._last_time) if self._last_time is not None else 0.0
        pred = self._mean[pool, :4] + dt * self._mean[pool, 4:]
        iou = iou_matrix(cxcywh_to_xyxy(pred), boxes[idx])  # T×D
        over = iou > 0.0
        close = iou >= cfg.proximity_iou  # where appearance can count at all
        crowded_trk = over.sum(1) >= 2
        ambiguous = close.any(0) & ((over.sum(0) >= 2) | (over & crowded_trk[:, None]).any(0))
        stale = (float(timestamp) - self._feat_time[pool]) >= cfg.feature_interval_s
        need = ~over.any(0) | ambiguous | (over & stale[:, None]).any(0)
        want[idx] = need
        # the tracks these features will most likely refresh count as refreshed now, so that the
        # masks of the next frames of a batch (asked before any update) do not ask again
        touched = over[:, need].any(1)
        self._feat_time[pool[touched]] = np.maximum(self._feat_time[pool[touched]], float(timestamp))
        return want

    def update(
        self,
        dets: Detections,
        timestamp: float,
        frame_index: int,
        image: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> list[TrackOutput]:
        """Track one frame.

        Args:
            dets: this frame's N detections (``cls`` ignored; boxes that are not
                finite or have no area are skipped).
            timestamp: frame time in seconds, not decreasing between calls.
            frame_index: 0-based frame index, copied into the outputs.
            image: H×W×3 ``uint8`` BGR frame, used for CMC only (ignored when ``cmc`` is ``"none"``).
            features: N×D ``float32`` L2-normalised ReID features aligned with
                ``dets``; a row of zeros means "no feature" (e.g. low-score
                detections that were not embedded). ``None``: motion only.

        Returns:
            One :class:`TrackOutput` per confirmed track updated in this frame
            (Kalman-updated box, float32 px; the detection's score and index),
            sorted by ``track_id``.

        Raises:
            ValueError: ``timestamp`` is not finite or earlier than the previous one,
                or ``features`` has a different number of rows than ``dets``.
        """
        cfg = self.cfg
        t, dt, early = self._begin_frame(timestamp, cfg.min_hits)

        boxes, scores, valid = valid_detections(dets)
        det_feat = None
        if features is not None:
            det_feat = np.asarray(features, np.float32)
            if det_feat.ndim != 2 or len(det_feat) != len(boxes):
                raise ValueError(f"features must be N×D with N = {len(boxes)} detections, got {det_feat.shape}")
        high_idx = np.flatnonzero(valid & (scores >= cfg.high_thresh))
        low_idx = np.flatnonzero(valid & (scores >= cfg.low_thresh) & (scores < cfg.high_thresh))
        z_all = xyxy_to_cxcywh(boxes)

        # 0. predict, age out, compensate camera motion
        self.kf.predict(self._mean, self._cov, dt)
        alive = (t - self._last) <= cfg.max_age_s
        if not alive.all():
            self._keep(alive)
        if self._cmc is not None and image is not None:
            apply_affine(self._mean, self._cov, self._cmc.estimate(image, boxes[valid]))
        pred_xyxy = cxcywh_to_xyxy(self._mean[:, :4])
        state = self._state

        # 1. high detections vs confirmed + lost tracks (re-activation), appearance fused
        pool = np.flatnonzero(state != _TENTATIVE)
        m1, um_pool, um_high = self._associate(pool, high_idx, pred_xyxy, boxes, z_all, cfg.match_iou, det_feat)
        # 2. low detections vs confirmed tracks left
        left = pool[um_pool]
        left = left[state[left] == _CONFIRMED]
        m2, um_left, _ = self._associate(left, low_idx, pred_xyxy, boxes, z_all, cfg.second_match_iou, None)
        state[left[um_left]] = _LOST
        # 3. tentative tracks vs high detections left
        tent = np.flatnonzero(state == _TENTATIVE)
        high_left = high_idx[um_high]
        m3, um_tent, um_new = self._associate(tent, high_left, pred_xyxy, boxes, z_all, cfg.tentative_match_iou, None)

        trk = np.concatenate([pool[m1[:, 0]], left[m2[:, 0]], tent[m3[:, 0]]])
        det = np.concatenate([high_idx[m1[:, 1]], low_idx[m2[:, 1]], high_left[m3[:, 1]]])
        self._apply_updates(trk, det, z_all, scores, det_feat, t)
        confirm = tent[m3[:, 0]]
        confirm = confirm[(self._hits[confirm] >= cfg.min_hits) | early]
        state[confirm] = _CONFIRMED
        self._id[confirm] = self._take_ids(len(confirm))
        det_of = np.full(len(state), -1, np.int64)
        det_of[trk] = det

        keep = np.ones(len(state), bool)
        keep[tent[um_tent]] = False
        # 4. new tentative tracks (confirmed at once on the first min_hits frames or with min_hits 1)
        new = high_left[um_new]
        new = new[scores[new] >= cfg.new_track_thresh]
        self._keep(keep)
        out_idx = np.flatnonzero(det_of[keep] >= 0)
        det_of = det_of[keep]
        if len(new):
            first = len(self._id)
            self._add(new, z_all, scores, det_feat, t, confirm_now=cfg.min_hits <= 1 or early)
            out_idx = np.concatenate([out_idx, np.arange(first, len(self._id))])
            det_of = np.concatenate([det_of, new])
        return self._outputs(out_idx, det_of, frame_index)

    # ------------------------------------------------------------------ helpers
    def _associate(
        self,
        trk: np.ndarray,
        det: np.ndarray,
        pred_xyxy: np.ndarray,
        boxes: np.ndarray,
        z_all: np.ndarray,
        min_iou: float,
        det_feat: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match tracks ``trk`` to detections ``det`` (index arrays); returns positions into them."""
        if len(trk) == 0 or len(det) == 0:
            return np.zeros((0, 2), np.int64), np.arange(len(trk)), np.arange(len(det))
        cfg = self.cfg
        iou = iou_matrix(pred_xyxy[trk], boxes[det])
        cost = 1.0 - iou
        forbid = iou <= 0.0
        use_app = det_feat is not None and self._feat is not None
        if cfg.gating == "all" or (cfg.gating == "appearance" and use_app):
            outside = self.kf.gating_distance(self._mean[trk], self._cov[trk], z_all[det]) > CHI2INV95[4]
        if cfg.gating == "all":
            forbid |= outside
        if use_app:
            app = self._appearance_cost(trk, det, det_feat, iou)  # type: ignore[arg-type]
            if cfg.gating == "appearance":
                app[outside] = 1.0
            cost = np.minimum(cost, app)
        cost[forbid] = FORBIDDEN_COST
        return linear_assignment(cost, max(1.0 - min_iou, 1e-9))

    def _appearance_cost(self, trk: np.ndarray, det: np.ndarray, det_feat: np.ndarray, iou: np.ndarray) -> np.ndarray:
        """BoT-SORT's gated appearance distance ``(1 - cos)/2`` (1 where not usable), T×D'."""
        assert self._feat is not None
        tf = self._feat[trk]
        df = det_feat[det]
        if tf.shape[1] != df.shape[1]:
            raise ValueError(f"feature size changed from {tf.shape[1]} to {df.shape[1]}")
        app = 0.5 * (1.0 - tf.astype(np.float64) @ df.T.astype(np.float64))
        usable = (np.abs(tf).sum(1) > 0)[:, None] & (np.abs(df).sum(1) > 0)[None, :]
        usable &= (app <= self.cfg.appearance_thresh) & (iou >= self.cfg.proximity_iou)
        return np.where(usable, app, 1.0)

    def _apply_updates(self, trk: np.ndarray, det: np.ndarray, z_all: np.ndarray, scores: np.ndarray,
                       det_feat: np.ndarray | None, t: float) -> None:
        if len(trk) == 0:
            return
        self._mean[trk], self._cov[trk] = self.kf.update(self._mean[trk], self._cov[trk], z_all[det], scores[det])
        self._hits[trk] += 1
        self._last[trk] = t
        self._score[trk] = scores[det]
        lost = trk[self._state[trk] == _LOST]
        self._state[lost] = _CONFIRMED
        if det_feat is not None:
            self._update_features(trk, det_feat[det])

    def _update_features(self, trk: np.ndarray, f: np.ndarray) -> None:
        if self._feat is None:
            self._feat = np.zeros((len(self._id), f.shape[1]), np.float32)
        has_det = np.abs(f).sum(1) > 0
        trk, f = trk[has_det], f[has_det]
        self._feat_time[trk] = self._last[trk]
        old = self._feat[trk]
        has_old = (np.abs(old).sum(1) > 0)[:, None]
        a = self.cfg.feature_alpha
        new = np.where(has_old, a * old + (1.0 - a) * f, f)
        self._feat[trk] = l2_normalize(new)

    def _add(self, det: np.ndarray, z_all: np.ndarray, scores: np.ndarray, det_feat: np.ndarray | None,
             t: float, confirm_now: bool) -> None:
        k = len(det)
        mean, cov = self.kf.initiate(z_all[det])
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        ids = self._take_ids(k) if confirm_now else np.zeros(k, np.int64)
        self._id = np.concatenate([self._id, ids])
        self._state = np.concatenate([self._state, np.full(k, _CONFIRMED if confirm_now else _TENTATIVE, np.int8)])
        self._hits = np.concatenate([self._hits, np.ones(k, np.int64)])
        self._last = np.concatenate([self._last, np.full(k, t)])
        self._score = np.concatenate([self._score, scores[det]])
        got = np.zeros(k, bool) if det_feat is None else np.abs(det_feat[det]).sum(1) > 0
        self._feat_time = np.concatenate([self._feat_time, np.where(got, t, -np.inf)])
        if det_feat is not None or self._feat is not None:
            d = det_feat.shape[1] if det_feat is not None else self._feat.shape[1]  # type: ignore[union-attr]
            if self._feat is None:
                self._feat = np.zeros((len(self._id) - k, d), np.float32)
            rows = det_feat[det] if det_feat is not None else np.zeros((k, d), np.float32)
            self._feat = np.concatenate([self._feat, rows.astype(np.float32)])

    def _keep(self, mask: np.ndarray) -> None:
        self._mean, self._cov = self._mean[mask], self._cov[mask]
        self._id, self._state, self._hits = self._id[mask], self._state[mask], self._hits[mask]
        self._last, self._score, self._feat_time = self._last[mask], self._score[mask], self._feat_time[mask]
        if self._feat is not None:
            self._feat = self._feat[mask]

    def _outputs(self, idx: np.ndarray, det_of: np.ndarray, frame_index: int) -> list[TrackOutput]:
        idx = idx[self._state[idx] == _CONFIRMED]
        if len(idx) == 0:
            return []
        xyxy = cxcywh_to_xyxy(self._mean[idx, :4]).astype(np.float32)
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
        ok = area >= self.cfg.min_box_area
        idx, xyxy = idx[ok], xyxy[ok]
        order = np.argsort(self._id[idx], kind="stable")
        ids = self._id[idx].tolist()
        sc = self._score[idx].tolist()
        dd = det_of[idx].tolist()
        f = int(frame_index)
        return [TrackOutput(f, ids[i], xyxy[i], sc[i], dd[i]) for i in order.tolist()]
