"""Multi-camera scenes cut from real MOT15 footage (scripts/make_multicam.py) and cross-camera IDF1.

Figures measured when these tests were written (libx264, default rule: ≥ 50 % of a box
inside the crop, visible part ≥ 8 px):

* TUD-Stadtmitte (179 frames, 640×480): ov_left/ov_right 384×480, dj_left/dj_right
  288×480; ids 2, 7, 9 are seen by both overlapping cameras in the same frame (159
  id-frames); ids 2 (dj_left → dj_right, 18-frame gap) and 7 (dj_right → dj_left,
  60 frames) walk from one disjoint view into the other.
* PETS09-S2L1 (first 60 frames, 768×576): see ``test_pets_scene_pixels_and_overlap``.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import av
import cv2
import faiss
import numpy as np
import pytest
from conftest import MOT15, YOLOX, load_script

from pipeline.cli import main as mtmc_main
from pipeline.config import load_config
from pipeline.detectors.factory import build_detector
from pipeline.errors import InputError
from pipeline.mot_eval import COMBINED, CROSS_CAMERA, evaluate
from pipeline.mot_format import read_mot_txt, read_seqinfo, write_mot_txt
from pipeline.sources import discover_cameras
from pipeline.types import Frame

TUD = MOT15 / "TUD-Stadtmitte"
PETS = MOT15 / "PETS09-S2L1"
CAMERAS = ["ov_left", "ov_right", "dj_left", "dj_right"]

requires_footage = pytest.mark.skipif(
    not (TUD / "TUD-Stadtmitte.mp4").is_file() or not (PETS / "img1").is_dir(),
    reason="../shared/data/MOT15 footage (TUD-Stadtmitte.mp4, PETS09-S2L1/img1) is absent; "
           "a user's clone does not have it",
)


mm = load_script("make_multicam")


# --------------------------------------------------------------------------- pure functions


def test_crop_layout_overlapping_and_disjoint() -> None:
    crops = {c.name: c for c in mm.crop_layout(640, 480, "both")}
    assert list(crops) == CAMERAS
    assert (crops["ov_left"].x0, crops["ov_left"].x1) == (0, 384)
    assert (crops["ov_right"].x0, crops["ov_right"].x1) == (256, 640)
    assert (crops["dj_left"].x0, crops["dj_left"].x1) == (0, 288)
    assert (crops["dj_right"].x0, crops["dj_right"].x1) == (352, 640)
    assert crops["ov_left"].x1 > crops["ov_right"].x0  # overlap
    assert crops["dj_left"].x1 < crops["dj_right"].x0  # gap
    for c in crops.values():
        assert c.width % 2 == 0 and c.height % 2 == 0 and (c.y0, c.y1) == (0, 480)
    odd = mm.crop_layout(641, 481, "overlap")
    assert all(c.width % 2 == 0 and c.height == 480 and c.x1 <= 641 for c in odd)
    assert [c.name for c in mm.crop_layout(640, 480, "disjoint")] == ["dj_left", "dj_right"]
    with pytest.raises(InputError, match="unknown layout"):
        mm.crop_layout(640, 480, "grid")
    with pytest.raises(InputError, match="overlap"):
        mm.crop_layout(640, 480, "both", overlap_frac=0.4)


def test_crop_rows_visibility_rule_by_hand() -> None:
    crop = mm.Crop("c", 100, 0, 300, 200)
    rows = np.array([
        [1, 1, 150, 10, 20, 40, 1, -1, -1, -1],   # fully inside -> (50, 10, 20, 40)
        [1, 2, 90, 10, 20, 40, 0, 5, 6, 7],       # 10 of 20 px wide inside: exactly 50 % -> kept, clipped
        [1, 3, 89, 10, 20, 40, 1, -1, -1, -1],    # 9 of 20 px inside: 45 % -> dropped
        [2, 4, 290, 190, 40, 40, 1, -1, -1, -1],  # 10×10 of 40×40 inside: 6 % -> dropped
        [2, 5, 95, 10, 10, 40, 1, -1, -1, -1],    # 5 of 10 px: 50 %, but 5 px < min_size 8 -> dropped
        [3, 6, -20, 10, 40, 40, 1, -1, -1, -1],   # outside the crop -> dropped
    ], float)
    out = mm.crop_rows(rows, crop, (640, 480))
    np.testing.assert_allclose(out, [
        [1, 1, 50, 10, 20, 40, 1, -1, -1, -1],
        [1, 2, 0, 10, 10, 40, 0, 5, 6, 7],  # flag 0 and columns 8-10 kept
    ])
    # the reference area is the part inside the source frame: a box cut by the frame edge is not penalised
    edge = np.array([[1, 7, 630, 10, 20, 40, 1, -1, -1, -1]], float)  # 10 px inside the 640 px frame
    out = mm.crop_rows(edge, mm.Crop("r", 440, 0, 640, 480), (640, 480))
    np.testing.assert_allclose(out[:, 2:6], [[190, 10, 10, 40]])


def test_jitter_is_deterministic_and_differs_per_camera() -> None:
    a, b = mm.camera_jitter(4, seed=3), mm.camera_jitter(4, seed=3)
    for (ga, ba), (gb, bb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ga, gb)
        np.testing.assert_array_equal(ba, bb)
    gains = np.stack([g for g, _ in a])
    assert np.all(np.abs(gains - 1) <= mm.JITTER_GAIN) and len({tuple(g) for g in gains}) == 4
    assert not np.allclose(mm.camera_jitter(4, seed=4)[0][0], a[0][0])


# --------------------------------------------------------------------------- cross-camera IDF1, synthetic


def _rows(frames: range, tid: int, x: float = 10) -> list[list[float]]:
    """One 20×50 px box per frame at (x, 10) — MOT15 gt/track rows."""
    return [[f, tid, x, 10, 20, 50, 1, -1, -1, -1] for f in frames]


def _write(path: Path, rows: list[list[float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    return path


def _two_cameras(tmp_path: Path, gt_b_id: int, pred_a_id: int, pred_b_id: int):
    # camera a: person seen in frames 1-10; camera b: frames 1-6 (its own 6-frame sequence)
    gt = {"a": _write(tmp_path / "gt_a.txt", _rows(range(1, 11), 1)),
          "b": _write(tmp_path / "gt_b.txt", _rows(range(1, 7), gt_b_id))}
    pred = {"a": _write(tmp_path / "pred_a.txt", _rows(range(1, 11), pred_a_id)),
            "b": _write(tmp_path / "pred_b.txt", _rows(range(1, 7), pred_b_id))}
    return evaluate(gt, pred)


def test_cross_camera_same_global_id_scores_100(tmp_path: Path) -> None:
    res = _two_cameras(tmp_path, gt_b_id=1, pred_a_id=7, pred_b_id=7)
    x = res.cross_camera
    assert x is not None and res[CROSS_CAMERA] is x
    assert (x.idf1, x.idp, x.idr, x.assa, x.hota, x.mota) == pytest.approx((100, 100, 100, 100, 100, 100))
    assert (x.idsw, x.gt_ids, x.pred_ids, x.gt_dets, x.frames) == (0, 1, 1, 16, 16)


def test_cross_camera_id_switch_between_cameras_by_hand(tmp_path: Path) -> None:
    # gt: person 1 in both cameras; prediction: id 1 in camera a, id 2 in camera b.
    res = _two_cameras(tmp_path, gt_b_id=1, pred_a_id=1, pred_b_id=2)
    for cam in ("a", "b", COMBINED):  # each camera alone is perfect
        assert res[cam].idf1 == pytest.approx(100.0) and res[cam].idsw == 0
    x = res.cross_camera
    assert x is not None
    # Chained: gt 1 has 16 boxes; pred 1 covers 10 of them, pred 2 the other 6. Best one-to-one map 1<->1:
    # IDTP 10, IDFN 6, IDFP 6 -> IDF1 = 2*10 / (2*10 + 6 + 6) = 62.5 %, IDP = IDR = 10/16.
    assert x.idf1 == pytest.approx(62.5)
    assert x.idp == pytest.approx(62.5) and x.idr == pytest.approx(62.5)
    # CLEAR: the switch at the camera change is one IDSW -> MOTA = 1 - 1/16.
    assert x.idsw == 1 and x.mota == pytest.approx(100 * (1 - 1 / 16))
    # HOTA (IoU 1 everywhere, DetA 1): AssA = (10 * 10/16 + 6 * 6/16) / 16 = 136/256.
    assert x.deta == pytest.approx(100.0)
    assert x.assa == pytest.approx(100 * 136 / 256)
    assert x.hota == pytest.approx(100 * math.sqrt(136 / 256))
    assert (x.gt_ids, x.pred_ids, x.frames) == (1, 2, 16)


def test_cross_camera_two_people_merged_into_one_id(tmp_path: Path) -> None:
    # gt: person 1 in camera a, a different person 2 in camera b; prediction gives both global id 5.
    res = _two_cameras(tmp_path, gt_b_id=2, pred_a_id=5, pred_b_id=5)
    assert res["a"].idf1 == pytest.approx(100.0) and res["b"].idf1 == pytest.approx(100.0)
    x = res.cross_camera
    assert x is not None
    # Map 5<->1: IDTP 10; person 2's 6 boxes are IDFN, pred 5's 6 boxes there IDFP -> 20 / 32.
    assert x.idf1 == pytest.approx(62.5)
    assert (x.gt_ids, x.pred_ids) == (2, 1)


def test_cross_camera_row_in_table_json_and_options(tmp_path: Path) -> None:
    res = _two_cameras(tmp_path, gt_b_id=1, pred_a_id=1, pred_b_id=2)
    lines = res.format_table().splitlines()
    assert [ln.split()[0] for ln in lines[1:]] == ["a", "b", COMBINED, CROSS_CAMERA]
    assert len({len(ln) for ln in lines}) == 1
    d = json.loads(json.dumps(res.to_dict()))
    assert d["cross_camera"]["IDF1"] == pytest.approx(62.5)
    assert set(d["cameras"]) == {"a", "b", COMBINED}

    gt = {"a": tmp_path / "gt_a.txt", "b": tmp_path / "gt_b.txt"}
    pred = {"a": tmp_path / "pred_a.txt", "b": tmp_path / "pred_b.txt"}
    off = evaluate(gt, pred, cross_camera=False)
    assert off.cross_camera is None and off.to_dict()["cross_camera"] is None
    assert CROSS_CAMERA not in off.format_table()
    with pytest.raises(KeyError):
        off[CROSS_CAMERA]
    single = evaluate({"a": gt["a"]}, {"a": pred["a"]})
    assert single.cross_camera is None


def test_cross_camera_skipped_when_gt_formats_differ(tmp_path: Path) -> None:
    mot17 = [[*r[:7], 1, 1, -1] for r in _rows(range(1, 7), 1)]  # class 1 pedestrian, visibility 1
    gt = {"a": _write(tmp_path / "gt_a.txt", _rows(range(1, 11), 1)), "b": _write(tmp_path / "gt_b.txt", mot17)}
    pred = {"a": _write(tmp_path / "pred_a.txt", _rows(range(1, 11), 1)),
            "b": _write(tmp_path / "pred_b.txt", _rows(range(1, 7), 1))}
    res = evaluate(gt, pred)
    assert res.gt_format == {"a": "MOT15", "b": "MOT17"}
    assert res.cross_camera is None
    assert any(w.startswith(f"{CROSS_CAMERA} not scored") for w in res.warnings)


# --------------------------------------------------------------------------- scenes from real footage


@pytest.fixture(scope="module")
def tud_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    if not (TUD / "TUD-Stadtmitte.mp4").is_file():
        pytest.skip("../shared/data/MOT15/TUD-Stadtmitte is absent; a user's clone does not have it")
    out = tmp_path_factory.mktemp("tud_scene")
    return out, mm.make_multicam(TUD, out, "both", jitter=True, seed=1)


def _video_frames(path: Path) -> tuple[int, tuple[int, int], np.ndarray]:
    """Frame count, (width, height) and the first frame (BGR) of a video."""
    n, first = 0, None
    with av.open(str(path)) as c:
        for vf in c.decode(video=0):
            if first is None:
                first = vf.to_ndarray(format="bgr24")
            n += 1
    assert first is not None
    return n, (first.shape[1], first.shape[0]), first


def _check_scene(out: Path, reports: list, source_gt: np.ndarray) -> dict[str, np.ndarray]:
    assert sorted(p.name for p in out.iterdir()) == sorted(CAMERAS)
    specs = discover_cameras([out])  # what `mtmc run OUT` sees
    assert [(s.camera_id, s.kind) for s in specs] == [(c, "video") for c in sorted(CAMERAS)]
    gts = {}
    for r in reports:
        folder = out / r.crop.name
        info = read_seqinfo(folder / "seqinfo.ini")
        n, size, _ = _video_frames(folder / f"{r.crop.name}.mp4")
        assert n == info.length == r.frames
        assert size == (info.width, info.height) == (r.crop.width, r.crop.height)
        gt = read_mot_txt(folder / "gt" / "gt.txt")
        assert len(gt) == r.gt_boxes > 0
        assert gt[:, 0].min() >= 1 and gt[:, 0].max() <= info.length
        assert np.all(gt[:, 2] >= 0) and np.all(gt[:, 3] >= 0)
        assert np.all(gt[:, 2] + gt[:, 4] <= info.width + 1e-6) and np.all(gt[:, 3] + gt[:, 5] <= info.height + 1e-6)
        # every row is a source row (same frame, id and flag): global ids, flags kept
        src = {(int(f), int(i)): fl for f, i, fl in source_gt[:, [0, 1, 6]]}
        assert all(src[(int(f), int(i))] == fl for f, i, fl in gt[:, [0, 1, 6]])
        gts[r.crop.name] = gt
    return gts


@requires_footage
def test_tud_scene_cameras_videos_gt_and_shared_people(tud_scene: tuple[Path, list]) -> None:
    out, reports = tud_scene
    assert [r.crop.name for r in reports] == CAMERAS
    gts = _check_scene(out, reports, read_mot_txt(TUD / "gt" / "gt.txt"))
    assert all(r.frames == 179 for r in reports)
    # overlapping cameras: measured ids 2, 7, 9 in both at the same frame
    together = mm.ids_seen_together(gts["ov_left"], gts["ov_right"])
    assert len(together) >= 3, together
    # disjoint cameras: never the same person in the same frame, but people walk from one view into the other
    assert mm.ids_seen_together(gts["dj_left"], gts["dj_right"]) == set()
    handed = mm.ids_handed_over(gts["dj_left"], gts["dj_right"])
    assert len(handed) >= 2 and {d for d, _ in handed.values()} == {"a->b", "b->a"}, handed
    assert all(gap > 0 for _, gap in handed.values())
    table = mm.format_table(reports).splitlines()
    assert table[0].split()[0] == "camera" and [ln.split()[0] for ln in table[1:]] == CAMERAS
    assert "(256,0,640,480)" in table[2]


@requires_footage
def test_gt_as_prediction_scores_100_cross_camera(tud_scene: tuple[Path, list], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = tud_scene
    pred_dir = tmp_path / "pred"
    for cam in CAMERAS:
        gt = read_mot_txt(out / cam / "gt" / "gt.txt")
        gt = gt[gt[:, 6] != 0]
        write_mot_txt(pred_dir / "tracks" / f"{cam}.txt", np.column_stack([gt[:, :6], np.ones(len(gt))]))
    assert mtmc_main(["eval", "--gt", str(out), "--pred", str(pred_dir), "--json", "--cross-camera"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["cameras"]) == {*CAMERAS, COMBINED}
    x = d["cross_camera"]
    assert (x["IDF1"], x["HOTA"], x["MOTA"]) == pytest.approx((100.0, 100.0, 100.0))
    assert x["IDSW"] == 0 and x["Frames"] == 4 * 179
    assert x["GT_IDs"] == len(set().union(*(set(read_mot_txt(out / c / "gt" / "gt.txt")[:, 1]) for c in CAMERAS)))
    assert mtmc_main(["eval", "--gt", str(out), "--pred", str(pred_dir), "--cross-camera"]) == 0
    assert CROSS_CAMERA in capsys.readouterr().out
    assert mtmc_main(["eval", "--gt", str(out), "--pred", str(pred_dir)]) == 0  # off by default
    assert CROSS_CAMERA not in capsys.readouterr().out


@requires_footage
def test_pets_scene_pixels_and_overlap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pets"
    assert mm.main([str(PETS), "-o", str(out), "--max-frames", "60"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split()[0] == "camera" and "codec" in printed
    reports = [mm.CameraReport(c, out / c.name, 60, len(read_mot_txt(out / c.name / "gt" / "gt.txt")))
               for c in mm.crop_layout(768, 576)]
    gts = _check_scene(out, reports, read_mot_txt(PETS / "gt" / "gt.txt"))
    assert all(g[:, 0].max() <= 60 for g in gts.values())
    # the video is the source crop (no jitter): small coding error only
    src = cv2.imread(str(PETS / "img1" / "000001.jpg"))
    for c in mm.crop_layout(768, 576):
        _, _, first = _video_frames(out / c.name / f"{c.name}.mp4")
        err = np.abs(first.astype(int) - src[c.y0:c.y1, c.x0:c.x1].astype(int)).mean()
        assert err < 6.0, (c.name, err)
    together = mm.ids_seen_together(gts["ov_left"], gts["ov_right"])
    assert len(together) >= 3, together
    # refuses to overwrite, and reports bad input in one line
    assert mm.main([str(PETS), "-o", str(out), "--max-frames", "5"]) == 2
    assert mm.main([str(tmp_path / "missing"), "-o", str(tmp_path / "x")]) == 2
    assert "make_multicam: error:" in capsys.readouterr().err


@requires_footage
@pytest.mark.skipif(not YOLOX.is_file(), reason="../shared/models/yolox_nano.onnx is absent")
def test_scene_bytes_do_not_depend_on_what_the_process_ran(tmp_path: Path) -> None:
    """The same source and seed give the same files in a fresh interpreter and after ONNX Runtime
    and faiss ran in this one (libx264's macroblock tree once made them differ: 40 frames were enough)."""
    args = [str(PETS), "-o", "{out}", "--max-frames", "40", "--jitter"]
    script = Path(mm.__file__)
    fresh = tmp_path / "fresh"
    proc = subprocess.run([sys.executable, str(script), *[a.format(out=fresh) for a in args]],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    detector = build_detector(load_config(None, {"detector": {"spec": f"yolox:{YOLOX}"}}).detector, {})
    img = cv2.imread(str(PETS / "img1" / "000001.jpg"))
    detector.detect([Frame("c", 0, 0.0, img, img.shape[1], img.shape[0])])
    g = np.random.default_rng(0).normal(size=(2000, 64)).astype(np.float32)
    faiss.knn(g[:50], g, 10)
    here = tmp_path / "here"
    assert mm.main([a.format(out=here) for a in args]) == 0
    digest = {d: {c: hashlib.md5((d / c / f"{c}.mp4").read_bytes()).hexdigest() for c in CAMERAS}
              for d in (fresh, here)}
    assert digest[fresh] == digest[here]
