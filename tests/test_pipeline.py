"""End to end: ``mtmc run`` (CLI and Python API) on real input, and its bad-input paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MOT15, YOLOX, moving_box_frames, requires_shared, write_video

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.mot_format import read_mot_txt
from pipeline.runner import run

YOLOX_SPEC = f"yolox:{YOLOX}"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@requires_shared
def test_api_and_cli_write_the_same_tracks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seqs = [MOT15 / "PETS09-S2L1", MOT15 / "TUD-Stadtmitte"]
    cfg = load_config(overrides={"detector": {"spec": "mot"}, "reid": {"spec": "none"}, "output": {"progress": False}})
    result = run(seqs, cfg)
    assert list(result.cameras) == ["PETS09-S2L1", "TUD-Stadtmitte"]
    assert result.cameras["PETS09-S2L1"].frames == 300  # pixels exist for the first 300 frames
    assert result.cameras["TUD-Stadtmitte"].frames == 179
    code, out, _ = _cli(capsys, "run", *seqs, "-o", tmp_path, "--detector", "mot", "--reid", "none", "--no-progress")
    assert code == 0
    assert "PETS09-S2L1" in out and "frames/s" in out
    for cam, res in result.cameras.items():
        written = read_mot_txt(tmp_path / "tracks" / f"{cam}.txt")
        assert len(written) == len(res.rows) > 100
        np.testing.assert_allclose(written[:, :6], res.rows[np.lexsort((res.rows[:, 1], res.rows[:, 0]))][:, :6],
                                   atol=0.01)
        assert written[:, 0].min() >= 1  # MOTChallenge frames are 1-based
        assert np.all(written[:, 7:] == -1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 479
    assert [c["id"] for c in summary["cameras"]] == ["PETS09-S2L1", "TUD-Stadtmitte"]
    assert summary["cameras"][0]["fps"] == 7 and summary["cameras"][0]["width"] == 768
    assert set(summary["stages_s"]) == {"decode", "detect", "track", "reid", "link", "export"}
    assert summary["failed_cameras"] == []


@requires_shared
def test_detonly_sequences_need_the_mot_detector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "run", MOT15 / "ADL-Rundle-6", "-o", tmp_path, "--detector", YOLOX_SPEC)
    assert code == 2
    assert "use --detector mot" in err and err.count("\n") == 1
    code, _, _ = _cli(capsys, "run", MOT15 / "ADL-Rundle-6", "-o", tmp_path, "--detector", "mot",
                      "--reid", "none", "--max-frames", "50", "--no-progress")
    assert code == 0
    rows = read_mot_txt(tmp_path / "tracks" / "ADL-Rundle-6.txt")
    assert rows[:, 0].max() <= 50 and len(np.unique(rows[:, 1])) >= 5


@requires_shared
def test_yolox_on_video_and_image_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "run", MOT15 / "TUD-Campus", MOT15 / "PETS09-S2L1", "-o", tmp_path,
                        "--detector", YOLOX_SPEC, "--reid", "none", "--max-frames", "40", "--no-progress")
    assert code == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    cams = {c["id"]: c for c in summary["cameras"]}
    assert cams["TUD-Campus"]["kind"] == "video" and cams["TUD-Campus"]["frames"] == 40
    assert cams["PETS09-S2L1"]["kind"] == "images" and cams["PETS09-S2L1"]["frames"] == 40
    assert cams["TUD-Campus"]["width"] == 640 and cams["TUD-Campus"]["fps"] == 25
    # TUD-Campus has 5-8 people in view in its first frames; PETS09 about 5
    assert 3 <= cams["TUD-Campus"]["tracks"] <= 15
    assert 3 <= cams["PETS09-S2L1"]["tracks"] <= 15
    assert "yolox" in summary["detector"].lower()


@requires_shared
def test_a_corrupt_camera_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cams = tmp_path / "cams"
    cams.mkdir()
    shutil.copy(MOT15 / "TUD-Campus" / "TUD-Campus.mp4", cams / "entrance.mp4")
    data = (MOT15 / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4").read_bytes()
    (cams / "broken.mp4").write_bytes(data[: len(data) // 3])
    write_video(cams / "synthetic.mp4", moving_box_frames(20))
    out_dir = tmp_path / "out"
    code, out, err = _cli(capsys, "run", cams, "-o", out_dir, "--detector", YOLOX_SPEC, "--reid", "none",
                          "--no-progress")
    assert code == 1
    assert "camera failed: broken: cannot open" in err
    summary = json.loads((out_dir / "summary.json").read_text())
    by_id = {c["id"]: c for c in summary["cameras"]}
    assert summary["failed_cameras"] == ["broken"]
    assert by_id["broken"]["status"] == "failed" and "broken.mp4" in by_id["broken"]["error"]
    assert by_id["entrance"]["status"] == "ok" and by_id["entrance"]["frames"] == 71
    assert by_id["synthetic"]["frames"] == 20
    assert len(read_mot_txt(out_dir / "tracks" / "entrance.txt")) > 100
    assert (out_dir / "tracks" / "broken.txt").exists()


def test_bad_input_gives_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         tiny_video: Path) -> None:
    out = tmp_path / "out"
    cases = [
        (["run", tmp_path / "missing.mp4", "-o", out], "input not found: "),
        (["run", tmp_path / "emptydir", "-o", out], "no cameras in folder"),
        (["run", tiny_video, "-o", out, "--detector", "fancy-detector"], "unknown detector SPEC 'fancy-detector'"),
        (["run", tiny_video, "-o", out, "--detector", tmp_path / "nope.onnx"], "nope.onnx"),
        (["run", tiny_video, "-o", out, "--detector", "yolov8n.yaml", "--reid", "fancy-reid"], "fancy-reid"),
        (["run", tiny_video, "-o", out, "--detector", "yolov8n.yaml", "--reid", tmp_path / "no.onnx"], "no.onnx"),
        (["run", tiny_video, "-o", out, "--config", tmp_path / "bad.yaml"], "tracker.max_age: unknown key"),
        (["run", tiny_video, "-o", out, "--conf", "2"], "detector.conf"),
        (["eval", "--gt", tmp_path / "nogt", "--pred", tmp_path / "pred"], "nogt"),
        (["eval", "--gt", tmp_path / "nogt", "--pred", tmp_path / "nopred"], "prediction folder not found"),
    ]
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "pred" / "tracks").mkdir(parents=True)
    (tmp_path / "pred" / "tracks" / "cam.txt").write_text("1,1,10,10,5,5,1,-1,-1,-1\n")
    (tmp_path / "bad.yaml").write_text("tracker:\n  max_age: 3\n")
    for argv, expected in cases:
        code, _, err = _cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert err.startswith("mtmc: error: ") and expected in err, (argv, err)
        assert err.count("\n") == 1, err  # exactly one line


def test_missing_weights_offline_names_local_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     tiny_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no yolo11n.pt lying around
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    code, _, err = _cli(capsys, "run", tiny_video, "-o", tmp_path / "out")
    assert code == 2
    assert "yolo11n.pt" in err and ".onnx" in err and "mot" in err
    assert err.count("\n") == 1


def test_ultralytics_backend_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             tiny_video: Path) -> None:
    # random weights built from the YAML: exercises the real loading and predict code offline
    code, out, err = _cli(capsys, "run", tiny_video, "-o", tmp_path, "--detector", "yolov8n.yaml",
                          "--reid", "none", "--max-frames", "5", "--no-progress")
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cameras"][0]["frames"] == 5
    assert (tmp_path / "tracks" / "cam_a.txt").exists()
