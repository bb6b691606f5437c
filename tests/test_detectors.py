"""Detector backends: letterbox/NMS, YOLO decoders on known tensors, det.txt, real models, errors."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import MOT15, YOLOX, requires_shared

from pipeline.config import DetectorConfig
from pipeline.detectors.factory import build_detector
from pipeline.detectors.mot_det import MotDetDetector
from pipeline.detectors.onnx_yolo import (
    OnnxYoloDetector,
    decode_yolov5,
    decode_yolov8,
    decode_yolox,
    detect_family,
    grid_cells,
    postprocess,
)
from pipeline.detectors.preprocess import LetterboxInfo, letterbox, nms, unletterbox_boxes
from pipeline.errors import ModelError
from pipeline.mot_format import read_mot_txt
from pipeline.types import Frame, tlwh_to_xyxy

PETS = MOT15 / "PETS09-S2L1"


def _frame(w: int, h: int, image: np.ndarray | None = None, cam: str = "cam") -> Frame:
    return Frame(camera_id=cam, index=0, timestamp=0.0, image=image, width=w, height=h)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M×N IoU of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


# --- letterbox and NMS ------------------------------------------------------------------------


@pytest.mark.parametrize("center", [False, True])
def test_letterbox_round_trip(center: bool) -> None:
    img = np.random.default_rng(0).integers(0, 255, (576, 768, 3), dtype=np.uint8)
    canvas, info = letterbox(img, (416, 416), center=center)
    assert canvas.shape == (416, 416, 3) and canvas.dtype == np.uint8
    assert info.scale == pytest.approx(416 / 768)
    if center:  # 768x576 → 416x312, 52 px of grey above and below
        assert (info.pad_x, info.pad_y) == (0, 52)
        assert (canvas[:52] == 114).all() and (canvas[-52:] == 114).all()
    else:  # YOLOX: image top-left, grey only at the bottom
        assert (info.pad_x, info.pad_y) == (0, 0)
        assert (canvas[312:] == 114).all()
    box = np.array([[100.0, 50.0, 300.0, 400.0]], np.float32)
    mapped = box * info.scale + np.array([info.pad_x, info.pad_y] * 2, np.float32)
    np.testing.assert_allclose(unletterbox_boxes(mapped, info, 768, 576), box, atol=1e-3)


def test_unletterbox_clips_to_frame() -> None:
    info = LetterboxInfo(scale=0.5, pad_x=10.0, pad_y=0.0)
    out = unletterbox_boxes(np.array([[0.0, -5.0, 500.0, 20.0]]), info, 640, 480)
    np.testing.assert_allclose(out, [[0.0, 0.0, 640.0, 40.0]])


def test_nms_removes_duplicate() -> None:
    boxes = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [50, 50, 60, 70]], np.float32)
    keep = nms(boxes, np.array([0.6, 0.9, 0.5], np.float32), 0.5)
    assert keep.tolist() == [1, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)


# --- decoders on hand-built tensors -------------------------------------------------------------


def test_decode_yolox_known_cell_maps_back_to_original_pixels() -> None:
    assert grid_cells(416, 416) == 3549
    raw = np.zeros((1, 3549, 85), np.float32)
    # stride-16 grid (26×26) follows the 52×52 stride-8 grid; cell gx=5, gy=3
    idx = 52 * 52 + 3 * 26 + 5
    raw[0, idx, :4] = [0.5, 0.5, math.log(2.0), math.log(4.0)]  # → centre (88, 56), size 32×64
    raw[0, idx, 4], raw[0, idx, 5] = 0.9, 0.8  # objectness × person = 0.72
    car = 100  # a confident car, not a person
    raw[0, car, 4], raw[0, car, 5], raw[0, car, 5 + 2] = 0.9, 0.05, 0.95
    xyxy, score = decode_yolox(raw, (416, 416))
    assert xyxy.shape == (1, 3549, 4) and score.shape == (1, 3549)
    np.testing.assert_allclose(xyxy[0, idx], [72, 24, 104, 88], atol=1e-4)
    assert score[0, idx] == pytest.approx(0.72)
    # an 832×624 frame is scaled by 0.5 and placed top-left
    _, info = letterbox(np.zeros((624, 832, 3), np.uint8), (416, 416), center=False)
    det = postprocess(xyxy[0], score[0], info, _frame(832, 624), conf=0.1, iou=0.45)
    assert len(det) == 1
    np.testing.assert_allclose(det.xyxy[0], [144, 48, 208, 176], atol=1e-3)
    assert det.score[0] == pytest.approx(0.72) and det.cls[0] == 0


def test_decode_yolox_rejects_wrong_grid() -> None:
    with pytest.raises(ModelError, match="3549"):
        decode_yolox(np.zeros((1, 100, 85), np.float32), (416, 416))


def test_decode_yolov5_row_centered_letterbox_and_clip() -> None:
    raw = np.zeros((1, 2, 85), np.float32)
    raw[0, 0, :7] = [100, 80, 40, 60, 0.9, 0.5, 0.1]  # person 0.45, box (80, 50, 120, 110)
    raw[0, 1, :7] = [300, 300, 40, 60, 0.9, 0.05, 0.9]  # score 0.045: dropped
    xyxy, score = decode_yolov5(raw)
    np.testing.assert_allclose(xyxy[0, 0], [80, 50, 120, 110])
    assert score[0].tolist() == pytest.approx([0.45, 0.045])
    _, info = letterbox(np.zeros((480, 640, 3), np.uint8), (640, 640), center=True)
    assert (info.scale, info.pad_y) == (1.0, 80.0)
    det = postprocess(xyxy[0], score[0], info, _frame(640, 480), conf=0.1, iou=0.45)
    np.testing.assert_allclose(det.xyxy, [[80, 0, 120, 30]])  # y −30 clipped to 0


def test_decode_yolov8_column() -> None:
    raw = np.zeros((1, 84, 3), np.float32)
    raw[0, :5, 1] = [320, 240, 100, 200, 0.7]  # column 1: a person at 0.7
    raw[0, :4, 2] = [10, 10, 4, 4]
    raw[0, 4 + 1, 2] = 0.99  # column 2: a bicycle
    xyxy, score = decode_yolov8(raw)
    assert xyxy.shape == (1, 3, 4)
    np.testing.assert_allclose(xyxy[0, 1], [270, 140, 370, 340])
    assert score[0].tolist() == pytest.approx([0.0, 0.7, 0.0])


@pytest.mark.parametrize(
    ("shape", "hw", "family"),
    [
        ((1, 3549, 85), (416, 416), "yolox"),
        ((1, 84, 8400), (640, 640), "yolov8"),
        ((1, 25200, 85), (640, 640), "yolov5"),
        ((4, 5, 2100), (320, 320), "yolov8"),
    ],
)
def test_detect_family_from_shape(shape: tuple[int, ...], hw: tuple[int, int], family: str) -> None:
    assert detect_family(shape, hw) == family


def test_detect_family_unknown_asks_for_prefix() -> None:
    with pytest.raises(ModelError, match="prefix"):
        detect_family((1, 100, 6), (640, 640))


# --- MOTChallenge det.txt -----------------------------------------------------------------------


@requires_shared
def test_mot_det_frame_one_matches_file() -> None:
    det_txt = PETS / "det" / "det.txt"
    lines = [ln.split(",") for ln in det_txt.read_text().splitlines() if ln.strip()]
    frame1 = [ln for ln in lines if int(float(ln[0])) == 1]
    det = MotDetDetector({"PETS09-S2L1": det_txt}, conf=0.0)
    assert det.max_batch >= 1024
    out = det.detect([_frame(768, 576, cam="PETS09-S2L1")])[0]
    assert len(out) == len(frame1) > 0
    x, y, w, h = (float(v) for v in frame1[0][2:6])
    assert np.isclose(out.xyxy, [x, y, x + w, y + h], atol=1e-3).all(axis=1).any()
    strong = sum(float(ln[6]) >= 0.9 for ln in frame1)
    high = MotDetDetector({"PETS09-S2L1": det_txt}, conf=0.9)
    assert len(high.detect([_frame(768, 576, cam="PETS09-S2L1")])[0]) == strong


def test_mot_det_clips_scores_and_indexes_frames(tmp_path: Path) -> None:
    p = tmp_path / "cam.txt"
    p.write_text("2,-1,10,20,30,40,5.0,-1,-1,-1\n1,-1,0,0,5,5,0.5,-1,-1,-1\n2,-1,1,1,0,3,0.9,-1,-1,-1\n")
    det = MotDetDetector({"cam": p})
    frames = [Frame("cam", i, 0.0, None, 100, 100) for i in range(3)]
    f0, f1, f2 = det.detect(frames)
    assert len(f0) == 1 and len(f2) == 0
    np.testing.assert_allclose(f1.xyxy, [[10, 20, 40, 60]])  # zero-width row dropped
    assert f1.score.tolist() == [1.0]
    with pytest.raises(ModelError, match="other"):
        det.detect([Frame("other", 0, 0.0, None, 100, 100)])


# --- factory and its errors ---------------------------------------------------------------------


@requires_shared
def test_factory_mot_uses_sequence_det_txt() -> None:
    det = build_detector(DetectorConfig(spec="mot", conf=0.0), {"PETS09-S2L1": PETS})
    assert isinstance(det, MotDetDetector)
    assert len(det.detect([_frame(768, 576, cam="PETS09-S2L1")])[0]) > 0


def test_factory_mot_dir(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("1,-1,0,0,5,5,0.5,-1,-1,-1\n")
    det = build_detector(DetectorConfig(spec=f"mot:{tmp_path}"), {"a": tmp_path / "a.mp4"})
    assert len(det.detect([_frame(10, 10, cam="a")])[0]) == 1


def test_factory_missing_det_txt_names_camera(tmp_path: Path) -> None:
    seq = tmp_path / "seqA"
    seq.mkdir()
    with pytest.raises(ModelError, match=r"camera seqA: .*det\.txt"):
        build_detector(DetectorConfig(spec="mot"), {"seqA": seq})
    with pytest.raises(ModelError, match="camera cam1"):
        build_detector(DetectorConfig(spec="mot"), {"cam1": tmp_path / "video.mp4"})
    with pytest.raises(ModelError, match="b.txt"):
        build_detector(DetectorConfig(spec=f"mot:{tmp_path}"), {"b": seq})


@pytest.mark.parametrize("spec", ["foo.bar", "detr", "yolox:model.bin"])
def test_factory_unknown_spec(spec: str) -> None:
    with pytest.raises(ModelError, match="detector SPEC"):
        build_detector(DetectorConfig(spec=spec), {})


@pytest.mark.parametrize("spec", ["missing.onnx", "yolox:missing.onnx", "models/missing.pt"])
def test_factory_missing_model_file(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="missing"):
        build_detector(DetectorConfig(spec=spec), {})


def test_factory_corrupt_onnx_is_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelError, match="cannot load ONNX detector model") as info:
        build_detector(DetectorConfig(spec=f"yolov8:{bad}"), {})
    assert "\n" not in str(info.value)


def test_ultralytics_offline_download_is_one_line_model_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as info:
        build_detector(DetectorConfig(spec="yolo11n.pt"), {})
    msg = str(info.value)
    assert "\n" not in msg and "'yolo11n.pt'" in msg and "download failed" in msg and "--detector mot" in msg


# --- real models --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def yolox() -> OnnxYoloDetector:
    det = build_detector(DetectorConfig(spec=str(YOLOX), conf=0.1), {})
    assert isinstance(det, OnnxYoloDetector)
    return det


def _pets_recall(det: OnnxYoloDetector, frame_numbers: list[int]) -> float:
    gt = read_mot_txt(PETS / "gt" / "gt.txt")
    hits = total = 0
    for n in frame_numbers:
        img = cv2.imread(str(PETS / "img1" / f"{n:06d}.jpg"))
        out = det.detect([Frame("PETS09-S2L1", n - 1, 0.0, img, img.shape[1], img.shape[0])])[0]
        g = gt[(gt[:, 0] == n) & (gt[:, 6] == 1)]
        total += len(g)
        if len(out) and len(g):
            hits += int((_iou(tlwh_to_xyxy(g[:, 2:6]), out.xyxy).max(axis=1) > 0.5).sum())
    return hits / total


@requires_shared
def test_yolox_nano_finds_pets_people(yolox: OnnxYoloDetector) -> None:
    assert yolox.family == "yolox" and yolox.input_hw == (416, 416) and yolox.max_batch == 1
    # measured at conf 0.1: frame 1 → 3 of 3 gt people at IoU > 0.5; frames 1, 31, …, 271 → 0.945
    assert _pets_recall(yolox, [1]) >= 0.66
    assert _pets_recall(yolox, list(range(1, 300, 30))) >= 0.9


@requires_shared
def test_yolox_batch_of_frames_and_errors(yolox: OnnxYoloDetector) -> None:
    img = cv2.imread(str(PETS / "img1" / "000001.jpg"))
    a, b = yolox.detect([_frame(768, 576, img), _frame(768, 576, img)])
    np.testing.assert_allclose(a.xyxy, b.xyxy)
    assert (a.xyxy[:, [0, 2]] <= 768).all() and (a.score >= 0.1).all() and (a.cls == 0).all()
    with pytest.raises(ModelError, match="no pixels"):
        yolox.detect([_frame(768, 576, None)])
    with pytest.raises(ModelError, match="fixed at 416x416"):
        build_detector(DetectorConfig(spec=f"yolox:{YOLOX}", imgsz=640), {})


def test_ultralytics_yaml_random_weights_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    try:
        det = build_detector(DetectorConfig(spec="yolov8n.yaml", imgsz=160, conf=0.25), {})
        img = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        out = det.detect([_frame(320, 240, img), _frame(320, 240, img)])
        assert len(out) == 2 and all(o.xyxy.shape[1] == 4 for o in out)
        assert all((o.cls == 0).all() for o in out)
        assert torch.get_num_threads() == os.cpu_count()  # ultralytics' own reset is undone
        det.close()
    finally:
        torch.set_num_threads(before)


def test_nms_agrees_with_torchvision_on_random_boxes() -> None:
    import torch
    from torchvision.ops import nms as tv_nms

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 60))
        xy = rng.uniform(0, 300, (n, 2))
        boxes = np.hstack([xy, xy + rng.uniform(5, 80, (n, 2))]).astype(np.float32)
        scores = rng.uniform(0.01, 1, n).astype(np.float32)
        expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.45).numpy()
        assert nms(boxes, scores, 0.45).tolist() == expected.tolist()
