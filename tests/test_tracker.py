"""Per-camera tracker: Kalman filter, IoU matching, ByteTrack two-stage association, life cycle."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MOT15, requires_shared

from pipeline.config import TrackerConfig
from pipeline.mot_format import read_mot_txt, read_seqinfo
from pipeline.types import Detections, tlwh_to_xyxy
from trackers.byte_tracker import ByteTracker
from trackers.kalman_filter import BoxKalmanFilter, cxcywh_to_xyxy, xyxy_to_cxcywh
from trackers.matching import iou_matrix, linear_assignment
from trackers.track import Track, TrackState

# ---------------------------------------------------------------------------- Kalman filter


def test_kalman_predict_update_hand_computed() -> None:
    kf = BoxKalmanFilter(std_meas=0.05, std_rw=0.3, std_acc=1.0, std_vel_init=1.0)
    kf.initiate(np.array([10.0, 20.0, 30.0, 60.0]))  # cx=20, cy=40, w=20, h=40
    np.testing.assert_allclose(kf.mean, [20, 40, 20, 40, 0, 0, 0, 0])
    # P0 = diag((2*0.05*s)^2 for positions, (1.0*s)^2 for velocities), s = (w, h, w, h)
    p0 = np.diag([4.0, 16.0, 4.0, 16.0, 400.0, 1600.0, 400.0, 1600.0])
    np.testing.assert_allclose(kf.covariance, p0)

    kf.predict(1.0)
    f = np.eye(8)
    f[:4, 4:] = np.eye(4)
    s2 = np.array([400.0, 1600.0, 400.0, 1600.0])
    qa, qr = 1.0**2 * s2, 0.3**2 * s2
    q = np.block([[np.diag(qa / 3 + qr), np.diag(qa / 2)], [np.diag(qa / 2), np.diag(qa)]])
    p1 = f @ p0 @ f.T + q
    np.testing.assert_allclose(kf.mean, [20, 40, 20, 40, 0, 0, 0, 0])
    np.testing.assert_allclose(kf.covariance, p1)
    # the cx coordinate by hand: var = 4 + 400 + 400/3 + 0.09*400, cov(cx, vx) = 400 + 200, var(vx) = 800
    assert kf.covariance[0, 0] == pytest.approx(4 + 400 + 400 / 3 + 36)
    assert kf.covariance[0, 4] == pytest.approx(600)
    assert kf.covariance[4, 4] == pytest.approx(800)

    z = np.array([22.0, 42.0, 20.0, 40.0])  # cx, cy, w, h of the measured box
    kf.update(cxcywh_to_xyxy(z))
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    r = np.diag((0.05 * np.array([20.0, 40.0, 20.0, 40.0])) ** 2)
    s = h @ p1 @ h.T + r
    k = p1 @ h.T @ np.linalg.inv(s)
    x_pred = np.array([20, 40, 20, 40, 0, 0, 0, 0], float)
    x2 = x_pred + k @ (z - h @ x_pred)
    p2 = (np.eye(8) - k @ h) @ p1
    np.testing.assert_allclose(kf.mean, x2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(kf.covariance, p2, rtol=1e-7, atol=1e-7)
    # cx by hand: gain = P_cx / (P_cx + 1), innovation 2 px
    pcx = 4 + 400 + 400 / 3 + 36
    assert kf.mean[0] == pytest.approx(20 + 2 * pcx / (pcx + 1))
    assert kf.mean[4] == pytest.approx(2 * 600 / (pcx + 1))
    np.testing.assert_allclose(kf.xyxy, cxcywh_to_xyxy(x2[:4]).astype(np.float32), rtol=1e-6)


def test_kalman_variable_dt_is_frame_rate_independent() -> None:
    a, b = BoxKalmanFilter(), BoxKalmanFilter()
    box = np.array([100.0, 50.0, 140.0, 150.0])
    a.initiate(box)
    b.initiate(box)
    for _ in range(10):
        a.predict(0.1)
    b.predict(1.0)
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.covariance, b.covariance, rtol=1e-9)


def test_kalman_velocity_moves_box_by_dt() -> None:
    kf = BoxKalmanFilter()
    kf.initiate(np.array([0.0, 0.0, 10.0, 20.0]))
    for t in range(1, 6):  # moves 10 px/s right, observed every 0.5 s
        kf.predict(0.5)
        kf.update(np.array([5.0 * t, 0.0, 5.0 * t + 10.0, 20.0]))
    assert kf.mean[4] == pytest.approx(10.0, abs=1.5)
    before = kf.mean[0]
    kf.predict(2.0)
    assert kf.mean[0] - before == pytest.approx(2.0 * kf.mean[4])


def test_kalman_gating_distance_matches_formula() -> None:
    kf = BoxKalmanFilter()
    kf.initiate(np.array([10.0, 20.0, 30.0, 60.0]))
    kf.predict(0.2)
    meas = np.array([[10.0, 20.0, 30.0, 60.0], [14.0, 18.0, 36.0, 64.0], [200.0, 200.0, 220.0, 240.0]])
    d = kf.gating_distance(meas)
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    mean = h @ kf.mean
    cov = h @ kf.covariance @ h.T + kf.measurement_noise(mean)
    diff = xyxy_to_cxcywh(meas) - mean
    expected = np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff)
    np.testing.assert_allclose(d, expected, rtol=1e-9, atol=1e-12)
    assert d[0] == pytest.approx(0.0, abs=1e-12) and d[2] > d[1] > 0
    assert kf.gating_distance(meas, only_position=True).shape == (3,)


def test_kalman_rejects_bad_input() -> None:
    kf = BoxKalmanFilter()
    with pytest.raises(RuntimeError):
        kf.predict(0.1)
    with pytest.raises(ValueError):
        kf.initiate(np.array([10.0, 10.0, 5.0, 20.0]))
    kf.initiate(np.array([0.0, 0.0, 10.0, 20.0]))
    with pytest.raises(ValueError):
        kf.predict(-0.1)
    with pytest.raises(ValueError):
        BoxKalmanFilter(std_meas=0.0)


# ---------------------------------------------------------------------------- matching


def test_iou_matrix_hand_computed() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 10]], np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 10]], np.float32)
    expected = np.array(
        [
            [25 / 175, 1.0, 0.0, 0.5],
            [50 / 250, 100 / 200, 0.0, 50 / 200],
        ]
    )
    got = iou_matrix(a, b)
    assert got.shape == (2, 4) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)
    assert iou_matrix([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0  # zero area: no division by zero


def test_linear_assignment_threshold_leaves_pair_unmatched() -> None:
    cost = np.array([[0.1, 0.9, 0.95], [0.85, 0.95, 0.3]])
    matches, ur, uc = linear_assignment(cost, 0.8)
    assert matches.tolist() == [[0, 0], [1, 2]]
    assert ur.tolist() == [] and uc.tolist() == [1]
    # the cheapest full assignment would use a pair over the limit: that pair is left unmatched
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    matches, ur, uc = linear_assignment(cost, 0.5)
    assert matches.tolist() == [[0, 0]] or matches.tolist() == [[0, 1], [1, 0]]
    assert all(cost[r, c] <= 0.5 for r, c in matches)
    matches, ur, uc = linear_assignment(np.array([[0.9]]), 0.5)
    assert matches.shape == (0, 2) and ur.tolist() == [0] and uc.tolist() == [0]


def test_linear_assignment_empty_and_invalid() -> None:
    matches, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert matches.shape == (0, 2) and matches.dtype == np.int64
    assert ur.tolist() == [] and uc.tolist() == [0, 1, 2]
    matches, ur, uc = linear_assignment(np.zeros((2, 0)), 0.5)
    assert ur.tolist() == [0, 1] and uc.tolist() == []
    with pytest.raises(ValueError):
        linear_assignment(np.zeros(3), 0.5)
    with pytest.raises(ValueError):
        linear_assignment(np.array([[np.nan]]), 0.5)


# ---------------------------------------------------------------------------- tracker helpers


def _dets(boxes: list[list[float]], scores: list[float]) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores), np.zeros(len(scores)))


def _person(frame: int, fps: float, x0: float = 100.0, speed: float = 0.0) -> list[float]:
    """A 40×100 px box whose left edge moves ``speed`` px/s."""
    x = x0 + speed * frame / fps
    return [x, 200.0, x + 40.0, 300.0]


def _feed(tracker: ByteTracker, frame: int, fps: float, boxes: list[list[float]], scores: list[float]):
    return tracker.update(_dets(boxes, scores), frame / fps, frame)


# ---------------------------------------------------------------------------- ByteTrack


def test_two_stage_low_score_keeps_id_and_does_not_start_tracks() -> None:
    cfg = TrackerConfig()  # high 0.5, low 0.1
    trk = ByteTracker(cfg)
    fps = 10.0
    for f in range(6):
        out = _feed(trk, f, fps, [_person(f, fps, speed=50), _person(f, fps, x0=400)], [0.9, 0.9])
    assert sorted(o.track_id for o in out) == [1, 2]
    walker = next(o.track_id for o in out if o.xyxy[0] < 300)
    # occluded: the walker's detection drops to 0.3; a 0.3 detection far from anyone appears
    far = [700.0, 50.0, 740.0, 150.0]
    out = _feed(trk, 6, fps, [_person(6, fps, speed=50), _person(6, fps, x0=400), far], [0.3, 0.9, 0.3])
    ids = {o.track_id: o for o in out}
    assert walker in ids and ids[walker].score == pytest.approx(0.3)
    # the output box is the Kalman-updated box: close to the detection, equal to the track's state
    np.testing.assert_allclose(ids[walker].xyxy, _person(6, fps, speed=50), atol=3.0)
    track = next(t for t in trk.tracks if t.track_id == walker)
    np.testing.assert_array_equal(ids[walker].xyxy, track.xyxy)
    np.testing.assert_array_equal(track.det_xyxy, np.float32(_person(6, fps, speed=50)))
    assert len(out) == 2
    assert len(trk.tracks) == 2 and trk.num_confirmed == 2  # the far low-score box started nothing
    # and with only stage 1 (low detections ignored) the walker would not be matched
    trk1 = ByteTracker(TrackerConfig(low_thresh=0.5))
    for f in range(6):
        _feed(trk1, f, fps, [_person(f, fps, speed=50)], [0.9])
    assert _feed(trk1, 6, fps, [_person(6, fps, speed=50)], [0.3]) == []


def test_low_score_detection_does_not_revive_lost_track() -> None:
    trk = ByteTracker(TrackerConfig())
    fps = 10.0
    for f in range(4):
        _feed(trk, f, fps, [_person(f, fps)], [0.9])
    _feed(trk, 4, fps, [], [])  # missed: the track becomes lost
    assert trk.tracks[0].state is TrackState.LOST
    assert _feed(trk, 5, fps, [_person(5, fps)], [0.3]) == []  # stage 2 is for tracked, not lost
    out = _feed(trk, 6, fps, [_person(6, fps)], [0.8])  # a high-score detection re-finds it
    assert [o.track_id for o in out] == [1]


def test_tentative_confirmed_after_min_hits() -> None:
    cfg = TrackerConfig(min_hits=3)
    trk = ByteTracker(cfg)
    fps = 10.0
    for f in range(3):  # past the first min_hits frames of the stream
        assert _feed(trk, f, fps, [], []) == []
    assert _feed(trk, 3, fps, [_person(3, fps)], [0.9]) == []
    assert _feed(trk, 4, fps, [_person(4, fps)], [0.9]) == []
    assert trk.tracks[0].state is TrackState.TENTATIVE and trk.tracks[0].track_id is None
    out = _feed(trk, 5, fps, [_person(5, fps)], [0.9])
    assert [o.track_id for o in out] == [1] and trk.num_confirmed == 1
    # a tentative track that misses one frame is removed
    _feed(trk, 6, fps, [_person(6, fps), _person(6, fps, x0=500)], [0.9, 0.9])
    _feed(trk, 7, fps, [_person(7, fps)], [0.9])
    assert len(trk.tracks) == 1
    # a detection below new_track_thresh starts nothing
    _feed(trk, 8, fps, [_person(8, fps), _person(8, fps, x0=500)], [0.9, cfg.new_track_thresh - 0.05])
    assert len(trk.tracks) == 1


def test_first_frames_confirm_immediately() -> None:
    trk = ByteTracker(TrackerConfig(min_hits=3))
    out = _feed(trk, 0, 25.0, [_person(0, 25.0), _person(0, 25.0, x0=400)], [0.9, 0.8])
    assert [o.track_id for o in out] == [1, 2]
    _feed(trk, 1, 25.0, [_person(1, 25.0), _person(1, 25.0, x0=400)], [0.9, 0.8])
    out = _feed(trk, 2, 25.0, [_person(2, 25.0), _person(2, 25.0, x0=400), [600, 10, 640, 110]], [0.9] * 3)
    assert [o.track_id for o in out] == [1, 2, 3]
    boxes = [_person(3, 25.0), _person(3, 25.0, x0=400), [600, 10, 640, 110], [700, 10, 740, 110]]
    out = _feed(trk, 3, 25.0, boxes, [0.9] * 4)
    assert [o.track_id for o in out] == [1, 2, 3]  # the box at 700 is tentative from frame 3 on
    assert [t.state for t in trk.tracks][-1] is TrackState.TENTATIVE


@pytest.mark.parametrize("fps", [10.0, 30.0])
@pytest.mark.parametrize(("gap_s", "survives"), [(0.9, True), (1.1, False)])
def test_lost_track_deleted_after_max_age_seconds(fps: float, gap_s: float, survives: bool) -> None:
    trk = ByteTracker(TrackerConfig(max_age_s=1.0))
    n = int(round(0.5 * fps))
    for f in range(n):
        out = _feed(trk, f, fps, [_person(f, fps)], [0.9])
    assert [o.track_id for o in out] == [1]
    last = n - 1
    back = last + int(round(gap_s * fps))
    for f in range(last + 1, back):
        assert _feed(trk, f, fps, [], []) == []
    if survives:
        assert [(t.track_id, t.state) for t in trk.tracks] == [(1, TrackState.LOST)]
    out = _feed(trk, back, fps, [_person(back, fps)], [0.9])
    if survives:
        assert [o.track_id for o in out] == [1]
    else:
        assert out == [] and trk.tracks[0].state is TrackState.TENTATIVE


def test_tracker_instances_count_ids_independently_and_reset() -> None:
    a, b = ByteTracker(TrackerConfig()), ByteTracker(TrackerConfig())
    out_a = _feed(a, 0, 10.0, [_person(0, 10.0), _person(0, 10.0, x0=400)], [0.9, 0.9])
    out_b = _feed(b, 0, 10.0, [_person(0, 10.0, x0=300)], [0.9])
    assert [o.track_id for o in out_a] == [1, 2]
    assert [o.track_id for o in out_b] == [1]
    a.reset()
    assert a.tracks == [] and a.num_confirmed == 0
    assert [o.track_id for o in _feed(a, 0, 10.0, [_person(0, 10.0)], [0.9])] == [1]


def test_tracker_rejects_time_going_backwards_and_filters_small_boxes() -> None:
    trk = ByteTracker(TrackerConfig(min_box_area=1000.0))
    out = _feed(trk, 1, 10.0, [[0, 0, 20, 20], _person(1, 10.0), [5, 5, 5, 9]], [0.9, 0.9, 0.9])
    assert [o.track_id for o in out] == [2]  # 20×20 = 400 px² < 1000 is not output; degenerate box skipped
    assert out[0].frame == 1 and out[0].xyxy.dtype == np.float32
    with pytest.raises(ValueError):
        trk.update(Detections(), 0.05, 0)


def test_track_ids_come_from_the_tracker() -> None:
    t = Track(np.array([0.0, 0.0, 10.0, 20.0]), 0.9, 0.0, 0)
    assert t.track_id is None and t.state is TrackState.TENTATIVE
    t.confirm(7)
    assert t.track_id == 7 and t.is_confirmed
    with pytest.raises(RuntimeError):
        t.confirm(8)


# ---------------------------------------------------------------------------- MOT15 end to end


def _run_mot15(seq: str) -> tuple[set[int], int, int, int]:
    info = read_seqinfo(MOT15 / seq / "seqinfo.ini")
    det = read_mot_txt(MOT15 / seq / "det" / "det.txt")
    gt = read_mot_txt(MOT15 / seq / "gt" / "gt.txt")
    gt_ids = len(np.unique(gt[gt[:, 6] != 0, 1]))
    trk = ByteTracker(TrackerConfig())
    frames = det[:, 0].astype(int)
    ids: set[int] = set()
    n_boxes = 0
    for f in range(1, info.length + 1):
        d = det[frames == f]
        dets = Detections(tlwh_to_xyxy(d[:, 2:6]), d[:, 6], np.zeros(len(d), np.int64))
        out = trk.update(dets, (f - 1) / info.frame_rate, f - 1)
        assert all(o.frame == f - 1 for o in out)
        assert len({o.track_id for o in out}) == len(out)
        ids.update(o.track_id for o in out)
        n_boxes += len(out)
    assert trk.num_confirmed == len(ids) == max(ids)  # ids 1..N without gaps
    return ids, n_boxes, gt_ids, len(det)


@requires_shared
@pytest.mark.parametrize("seq", ["PETS09-S2L1", "TUD-Stadtmitte"])
def test_mot15_end_to_end_plausible_track_count(seq: str) -> None:
    ids, n_boxes, gt_ids, n_dets = _run_mot15(seq)
    # plausible: at least as many tracks as half the people, at most a few fragments each
    assert gt_ids // 2 <= len(ids) <= 4 * gt_ids, (len(ids), gt_ids)
    # most detections end up in tracks
    assert 0.6 * n_dets <= n_boxes <= n_dets
