"""The tracker interface, SORT baseline and the full 'fused' tracker: batched Kalman filter,
Mahalanobis gating, IoU/appearance fusion, camera motion compensation, re-activation,
time-based ageing, and the runner's feature reuse."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import load_script

from pipeline.config import MtmcConfig, TrackerConfig
from pipeline.sources import CameraSpec
from pipeline.stages import CameraState, track_and_embed
from pipeline.types import Detections, Frame
from reid.extractor import FeatureExtractor
from trackers.base import Tracker
from trackers.batch_kalman import BatchBoxKalman
from trackers.byte_tracker import ByteTracker
from trackers.cmc import CameraMotion, apply_affine
from trackers.factory import build_tracker
from trackers.fused_tracker import FusedTracker
from trackers.kalman_filter import CHI2INV95, BoxKalmanFilter, xyxy_to_cxcywh
from trackers.sort_tracker import SortTracker


def _dets(boxes: list[list[float]], score: float = 0.9) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full(len(b), score, np.float32), np.zeros(len(b), np.int64))


def _box(cx: float, cy: float, w: float = 40.0, h: float = 100.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


# ---------------------------------------------------------------------------- batched Kalman filter


def test_batch_kalman_equals_the_per_track_filter() -> None:
    rng = np.random.default_rng(0)
    boxes = np.array([[10.0, 20.0, 30.0, 60.0], [100.0, 50.0, 140.0, 150.0], [300.0, 10.0, 320.0, 90.0]])
    singles = [BoxKalmanFilter(std_meas=0.1) for _ in boxes]
    for kf, b in zip(singles, boxes, strict=True):
        kf.initiate(b)
    bk = BatchBoxKalman(std_meas=0.1)
    mean, cov = bk.initiate(xyxy_to_cxcywh(boxes))
    for step in range(6):
        dt = 0.1 if step % 2 else 0.25  # variable time steps
        for kf in singles:
            kf.predict(dt)
        bk.predict(mean, cov, dt)
        z = boxes + rng.normal(0, 2.0, boxes.shape) + 3.0 * step
        for kf, b in zip(singles, z, strict=True):
            kf.update(b)
        mean, cov = bk.update(mean, cov, xyxy_to_cxcywh(z))
    np.testing.assert_allclose(mean, np.stack([kf.mean for kf in singles]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cov, np.stack([kf.covariance for kf in singles]), rtol=1e-7, atol=1e-7)
    query = boxes + np.array([5.0, -3.0, 9.0, 2.0])
    np.testing.assert_allclose(
        bk.gating_distance(mean, cov, xyxy_to_cxcywh(query)),
        np.stack([kf.gating_distance(query) for kf in singles]),
        rtol=1e-8,
    )
    with pytest.raises(ValueError):
        bk.predict(mean, cov, -0.1)


def test_mahalanobis_gate_separates_near_and_far_boxes() -> None:
    bk = BatchBoxKalman()
    mean, cov = bk.initiate(np.array([[100.0, 100.0, 40.0, 100.0]]))
    for _ in range(10):  # a person standing still, observed at 10 fps
        bk.predict(mean, cov, 0.1)
        mean, cov = bk.update(mean, cov, np.array([[100.0, 100.0, 40.0, 100.0]]))
    bk.predict(mean, cov, 0.1)
    d = bk.gating_distance(mean, cov, np.array([[101.0, 99.0, 41.0, 101.0], [100.0, 100.0, 40.0, 200.0]]))
    assert d[0, 0] < CHI2INV95[4] < d[0, 1]


# ---------------------------------------------------------------------------- gating and fusion


def _still_person(trk: Tracker, frames: int, fps: float = 10.0) -> int:
    """Feed a person standing at (100, 100) for ``frames`` frames; return its id."""
    ids = set()
    for i in range(frames):
        ids.update(o.track_id for o in trk.update(_dets([_box(100, 100)]), i / fps, i))
    assert len(ids) == 1
    return ids.pop()


@pytest.mark.parametrize("gating, same_id", [("all", False), ("none", True)])
def test_mahalanobis_gating_rejects_a_far_detection(gating: str, same_id: bool) -> None:
    trk = FusedTracker(TrackerConfig(gating=gating))
    tid = _still_person(trk, 10)
    # same centre, twice the height: IoU 0.5 passes the IoU test, but the size is far outside the gate
    out = trk.update(_dets([_box(100, 100, 40, 200)]), 1.0, 10)
    assert ([o.track_id for o in out] == [tid]) is same_id
    if not same_id:
        assert trk.lost_ids() == [tid]


def _crossing(trk: FusedTracker, use_features: bool) -> tuple[int, int, dict[int, int]]:
    """Two people side by side (A at x=100, B at x=112), then dets at x=110 (looks like A) and x=102 (like B).

    Returns A's id, B's id, and detection index -> track id of the ambiguous frame.
    """
    fa, fb = np.eye(2, 8, dtype=np.float32)
    boxes = [_box(100, 100, 50, 120), _box(112, 100, 50, 120)]
    feats = np.stack([fa, fb])
    ida = idb = -1
    for i in range(6):
        out = trk.update(_dets(boxes), i / 10, i, features=feats if use_features else None)
        by_det = {o.det_index: o.track_id for o in out}
        ida, idb = by_det[0], by_det[1]
    out = trk.update(_dets([_box(110, 100, 50, 120), _box(102, 100, 50, 120)]), 0.6, 6,
                     features=feats if use_features else None)
    return ida, idb, {o.det_index: o.track_id for o in out}


def test_fusion_follows_appearance_when_iou_is_ambiguous() -> None:
    # motion only: each detection goes to the nearest prediction, so A's look-alike goes to B
    ida, idb, got = _crossing(FusedTracker(TrackerConfig()), use_features=False)
    assert got == {0: idb, 1: ida}
    # with appearance: the detection that looks like A stays with A
    ida, idb, got = _crossing(FusedTracker(TrackerConfig()), use_features=True)
    assert got == {0: ida, 1: idb}


@pytest.mark.parametrize("proximity, taken", [(0.5, 1), (0.3, 0)])
def test_appearance_only_counts_with_enough_overlap(proximity: float, taken: int) -> None:
    """A look-alike with IoU 0.45 beats a better-overlapping stranger only if IoU >= proximity_iou."""
    trk = FusedTracker(TrackerConfig(proximity_iou=proximity))
    fa, fb = np.eye(2, 8, dtype=np.float32)
    for i in range(5):
        trk.update(_dets([_box(100, 100)]), i / 10, i, features=fa[None])
    # det 0 looks like the track, IoU 25/55; det 1 is a stranger, IoU 36/44
    out = trk.update(_dets([_box(115, 100), _box(104, 100)]), 0.5, 5, features=np.stack([fa, fb]))
    assert [(o.track_id, o.det_index) for o in out] == [(1, taken)]


def test_feature_mask_asks_for_new_ambiguous_and_stale_detections_only() -> None:
    trk = FusedTracker(TrackerConfig(feature_interval_s=0.5))
    f = np.eye(1, 8, dtype=np.float32)
    one = _dets([_box(100, 100)])
    assert trk.feature_mask(one, 0.0).tolist() == [True]  # nobody yet: a first feature is needed
    trk.update(one, 0.0, 0, features=f)
    assert trk.feature_mask(one, 0.1).tolist() == [False]  # one person, one track, fresh feature
    trk.update(one, 0.1, 1)
    two = _dets([_box(100, 100), _box(110, 100), _box(400, 100)])
    two = Detections(two.xyxy, np.array([0.9, 0.9, 0.3], np.float32), two.cls)
    # two detections on one track: ambiguous, both asked; the low-score one never
    assert trk.feature_mask(two, 0.25).tolist() == [True, True, False]
    assert trk.feature_mask(one, 0.5).tolist() == [False]  # 0.25 s since the last ask (0.25 s)
    assert trk.feature_mask(one, 0.75).tolist() == [True]  # 0.5 s: refresh
    assert trk.feature_mask(one, 0.875).tolist() == [False]  # asked at 0.75 s: the next frame of a batch does not


# ---------------------------------------------------------------------------- camera motion compensation


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def _shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """Two 240×320 views of one texture; the second camera moved so content moves by (dx, dy) px."""
    big = _texture(340, 420)
    y0, x0 = 50, 50
    a = big[y0:y0 + 240, x0:x0 + 320]
    b = big[y0 - dy:y0 - dy + 240, x0 - dx:x0 - dx + 320]
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


@pytest.mark.parametrize("method", ["sparse_flow", "ecc"])
def test_cmc_recovers_a_synthetic_shift(method: str) -> None:
    a, b = _shifted_pair(12, -7)
    cmc = CameraMotion(method, downscale=2)
    np.testing.assert_allclose(cmc.estimate(a), np.eye(2, 3))  # first frame: identity
    m = cmc.estimate(b)
    np.testing.assert_allclose(m[:, :2], np.eye(2), atol=0.02)
    np.testing.assert_allclose(m[:, 2], [12.0, -7.0], atol=1.0)


def test_cmc_moves_states_and_none_is_identity() -> None:
    mean = np.array([[100.0, 50.0, 20.0, 40.0, 1.0, 2.0, 0.0, 0.0]])
    cov = np.eye(8)[None].copy()
    apply_affine(mean, cov, np.array([[1.0, 0.0, 12.0], [0.0, 1.0, -7.0]]))
    np.testing.assert_allclose(mean[0], [112.0, 43.0, 20.0, 40.0, 1.0, 2.0, 0.0, 0.0])
    np.testing.assert_allclose(cov[0], np.eye(8))
    assert np.array_equal(CameraMotion("none").estimate(_texture(60, 80)), np.eye(2, 3))
    with pytest.raises(ValueError):
        CameraMotion("orb")  # type: ignore[arg-type]


@pytest.mark.parametrize("cmc, same_id", [("sparse_flow", True), ("none", False)])
def test_cmc_keeps_the_id_when_the_whole_image_shifts(cmc: str, same_id: bool) -> None:
    a, b = _shifted_pair(40, 0)
    trk = FusedTracker(TrackerConfig(cmc=cmc))
    assert trk.wants_image is (cmc != "none")
    box = _box(150, 120, 30, 60)
    ids = set()
    for i in range(5):
        ids.update(o.track_id for o in trk.update(_dets([box]), i / 10, i, image=a))
    (tid,) = ids
    moved = [box[0] + 40, box[1], box[2] + 40, box[3]]  # the person stands still; the camera pans
    out = trk.update(_dets([moved]), 0.5, 5, image=b)
    out += trk.update(_dets([moved]), 0.6, 6, image=b)
    assert (tid in {o.track_id for o in out}) is same_id
    if not same_id:
        assert trk.lost_ids() == [tid]


# ---------------------------------------------------------------------------- life cycle in seconds


@pytest.mark.parametrize("kind", ["fused", "bytetrack"])
def test_lost_track_is_reactivated_within_the_buffer_and_not_after(kind: str) -> None:
    cfg = TrackerConfig(type=kind, max_age_s=1.0)
    fps = 10.0
    trk = build_tracker(cfg)
    tid = _still_person(trk, 5, fps)
    # gap of 0.8 s (< 1 s): same id again
    for i in range(5, 13):
        assert trk.update(_dets([]), i / fps, i) == []
    if isinstance(trk, FusedTracker):
        assert trk.lost_ids() == [tid]
    out = trk.update(_dets([_box(100, 100)]), 13 / fps, 13)
    assert [o.track_id for o in out] == [tid]
    # gap of 1.5 s (> 1 s): the track is gone, a new id follows confirmation
    for i in range(14, 29):
        trk.update(_dets([]), i / fps, i)
    ids = set()
    for i in range(29, 34):
        ids.update(o.track_id for o in trk.update(_dets([_box(100, 100)]), i / fps, i))
    assert ids == {tid + 1}


@pytest.mark.parametrize("fps", [7.0, 30.0])
def test_ageing_is_the_same_number_of_seconds_at_any_frame_rate(fps: float) -> None:
    trk = FusedTracker(TrackerConfig(max_age_s=1.0))
    n = int(fps)  # one second of a person
    for i in range(n):
        trk.update(_dets([_box(100, 100)]), i / fps, i)
    last = (n - 1) / fps
    alive_at = []
    i = n
    while i / fps <= last + 2.0:
        trk.update(_dets([]), i / fps, i)
        alive_at.append((i / fps - last, trk.num_tracks))
        i += 1
    kept = [gap for gap, k in alive_at if k == 1]
    gone = [gap for gap, k in alive_at if k == 0]
    assert kept and gone
    # kept up to (at most) 1.0 s after the last detection, removed as soon as a frame comes later
    assert max(kept) <= 1.0 + 1e-9 and min(gone) > 1.0
    assert min(gone) - 1.0 <= 1.0 / fps + 1e-9


# ---------------------------------------------------------------------------- factory and SORT


def test_factory_selects_each_type() -> None:
    assert isinstance(build_tracker(TrackerConfig(type="sort")), SortTracker)
    assert isinstance(build_tracker(TrackerConfig(type="bytetrack")), ByteTracker)
    full = build_tracker(TrackerConfig(type="fused"))
    assert isinstance(full, FusedTracker) and not full.wants_features and not full.wants_image
    assert build_tracker(TrackerConfig(type="fused", appearance=True, cmc="ecc")).wants_features
    for t in (SortTracker(), ByteTracker(), full):
        assert isinstance(t, Tracker)
    with pytest.raises(ValueError, match="unknown tracker.type"):
        build_tracker(TrackerConfig.model_construct(type="deepsort"))


def test_sort_tracks_two_people_and_drops_a_lost_one() -> None:
    trk = SortTracker(TrackerConfig(type="sort", max_age_s=0.5))
    ids: dict[int, set[int]] = {0: set(), 1: set()}
    for i in range(20):  # two people walking apart at 10 fps, 5 px per frame
        out = trk.update(_dets([_box(200 - 5 * i, 100), _box(300 + 5 * i, 100)]), i / 10, i)
        assert len(out) == 2
        for o in out:
            ids[o.det_index].add(o.track_id)
    assert ids == {0: {1}, 1: {2}}
    for i in range(20, 30):  # one second without anyone
        trk.update(_dets([]), i / 10, i)
    out = []
    for i in range(30, 34):
        out += trk.update(_dets([_box(100, 100)]), i / 10, i)
    assert {o.track_id for o in out} == {3}


# ---------------------------------------------------------------------------- runner integration


class _ColourReid(FeatureExtractor):
    """Feature = normalised mean BGR colour; counts calls and crops."""

    dim = 3

    def __init__(self) -> None:
        self.calls: list[int] = []

    def _forward(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - embed is overridden
        raise NotImplementedError

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        self.calls.append(len(crops))
        f = np.array([c.reshape(-1, 3).mean(0) + 1.0 for c in crops], np.float32).reshape(-1, 3)
        return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_runner_embeds_detections_once_and_reuses_them_for_tracklets() -> None:
    cfg = MtmcConfig()
    cfg.tracker.appearance = True
    cfg.tracklets.embed_policy = "every"
    cfg.tracklets.min_score = 0.0
    spec = CameraSpec("cam", Path("cam"), "images")
    st = CameraState.for_spec(spec, cfg)
    assert isinstance(st.tracker, FusedTracker)
    reid = _ColourReid()
    stages = {"track": 0.0, "reid": 0.0}
    img = np.full((240, 320, 3), 50, np.uint8)
    img[60:160, 80:120] = (0, 0, 255)
    frames = [Frame("cam", i, i / 10, img, 320, 240) for i in range(4)]
    dets = [_dets([[80, 60, 120, 160], [200, 60, 240, 160]], 0.9) for _ in frames]
    dets = [Detections(d.xyxy, np.array([0.9, 0.3], np.float32), d.cls) for d in dets]  # 2nd: low score
    track_and_embed(frames, dets, {"cam": st}, reid, stages)
    # one call for the high-score detections of all 4 frames; boxes matched to them reuse the features
    assert reid.calls == [4]
    tracklets = st.builder.finish()
    assert len(tracklets) == 1 and tracklets[0].feature is not None
    assert tracklets[0].num_features == 4
    assert int(np.argmax(tracklets[0].feature)) == 2  # red, in BGR order


def test_runner_without_extractor_runs_motion_only() -> None:
    st = CameraState.for_spec(CameraSpec("cam", Path("cam"), "images"), MtmcConfig())
    stages = {"track": 0.0, "reid": 0.0}
    frames = [Frame("cam", i, i / 10, None, 320, 240) for i in range(4)]
    track_and_embed(frames, [_dets([[80, 60, 120, 160]]) for _ in frames], {"cam": st}, None, stages)
    tracklets = st.builder.finish()
    assert len(tracklets) == 1 and tracklets[0].feature is None and len(tracklets[0].frames) == 4


def test_runner_default_fused_tracker_embeds_nothing_for_itself() -> None:
    """Default config: appearance off, so only the tracklet builder's crops are embedded."""
    cfg = MtmcConfig()
    cfg.tracklets.embed_policy = "every"
    st = CameraState.for_spec(CameraSpec("cam", Path("cam"), "images"), cfg)
    assert not st.tracker.wants_features
    reid = _ColourReid()
    img = np.full((240, 320, 3), 50, np.uint8)
    frames = [Frame("cam", i, i / 10, img, 320, 240) for i in range(4)]
    track_and_embed(frames, [_dets([[80, 60, 120, 160]]) for _ in frames], {"cam": st}, reid,
                    {"track": 0.0, "reid": 0.0})
    assert reid.calls == [4]  # the 4 output boxes, once, by the builder
    assert st.builder.finish()[0].num_features == 4


def test_benchmark_speed_table_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Smoke test of scripts/benchmark_trackers.py: every tracker row runs and the ratio is printed."""
    bench = load_script("benchmark_trackers")
    bench.speed([10], frames=3, warmup=2, fps=30.0, repeats=1)
    out = capsys.readouterr().out
    assert "ours-fused" in out and "ul-bytetrack" in out and "fused/ul-byte" in out
    assert len(out.strip().splitlines()[-1].split()) == 7  # objects, 5 trackers, ratio
