"""scripts/benchmark_identity.py on a real scene variant: scores, caches, and the default's promise that
linking never costs a camera its own identities; the BoxMOT reference's worker protocol (without BoxMOT)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import MODELS, MOT15, REPO, load_script, requires_shared

from pipeline.config import load_config


@pytest.fixture(scope="module")
def bench_mod():
    return load_script("benchmark_identity")


@requires_shared
def test_variant_views_and_gt_follow_scale_and_step(bench_mod) -> None:
    src = bench_mod.load_source(MOT15, "TUD-Campus")
    crops = bench_mod.view_crops(*src.size)
    assert set(crops) == set(bench_mod.VIEWS) and crops["full"].width == 640
    full = bench_mod.view_gt(src, crops["full"], 0.5, 2)
    assert full[:, 0].max() == (len(src.frames) + 1) // 2  # every second frame, renumbered from 1
    assert full[:, [2, 4]].max() <= 320 + 1e-6 and full[:, [3, 5]].max() <= 240 + 1e-6
    v = bench_mod.Variant("TUD-Campus", 0.5, 2, 0)
    bench = bench_mod.Bench(MOT15, MODELS / "yolox_nano.onnx", MODELS / "osnet_x0_25_msmt17.onnx", Path("/nonexistent"))
    bench.sources["TUD-Campus"] = src
    img = next(iter(bench.view_frames(v, "ov_left")))
    assert img.shape == (240, 192, 3)  # 60 % of 640 = 384 px wide, halved


@requires_shared
def test_defaults_keep_per_camera_identity_and_caches_work(bench_mod, tmp_path: Path) -> None:
    v = bench_mod.Variant("TUD-Campus", 0.625, 2, 0)
    bench = bench_mod.Bench(MOT15, MODELS / "yolox_nano.onnx", MODELS / "osnet_x0_25_msmt17.onnx", tmp_path)
    cfg = load_config(None, {"output": {"progress": False}})
    res = bench_mod.score_variant(bench, v, cfg)
    assert set(res["layouts"]) == {"single", "overlap", "adjacent", "four"}
    for name, lay in res["layouts"].items():
        assert lay["drop"] >= -1.0, (name, lay)  # linking lowers no camera's IDF1 by more than a point
        if name != "single":
            assert 20.0 < lay["cross_idf1"] <= 100.0
    assert all(30.0 < res["tracker"][view]["IDF1"] <= 100.0 for view in bench_mod.VIEWS)
    bench.reid.save()
    assert bench.reid.misses > 0 and list(tmp_path.glob("reid-*.npz"))
    assert len(list(tmp_path.glob("det-*/TUD-Campus-x0.625-s0-*.npz"))) == len(bench_mod.VIEWS)

    again = bench_mod.Bench(MOT15, MODELS / "yolox_nano.onnx", MODELS / "osnet_x0_25_msmt17.onnx", tmp_path)
    res2 = bench_mod.score_variant(again, v, cfg)
    assert again.reid.misses == 0 and again.timings["detect"] == 0.0  # both models skipped
    assert res2["layouts"] == res["layouts"] and res2["tracker"] == res["tracker"]
    # fragments of one broken track joined (measured: 2 on `overlap`, its worst camera +3.7 IDF1);
    # with same-camera links off, the tracker's identities are exactly what comes out
    assert res["layouts"]["overlap"]["same_camera_links"] >= 1 and res["layouts"]["overlap"]["drop"] > 0.0
    never = bench_mod.score_variant(again, v, load_config(None, {"output": {"progress": False},
                                                                 "linking": {"same_camera": "never"}}))
    assert all(lay["same_camera_links"] == 0 and lay["drop"] == 0.0 for lay in never["layouts"].values())


@requires_shared
def test_loso_table_names_a_choice_per_held_out_sequence(bench_mod, tmp_path: Path, capsys) -> None:
    argv = ["--seqs", "TUD-Campus", "TUD-Stadtmitte", "--scales", "0.5", "--steps", "2", "--seeds", "0",
            "--cache", str(tmp_path), "--candidate", "linking.threshold=0.4", "--candidate", "linking.threshold=0.3"]
    assert bench_mod.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("TUD-Campus ", "TUD-Stadtmitte "))]
    assert len(rows) == 2 and all("linking.threshold=0." in r for r in rows)


def test_extra_scale_adds_variants_for_one_sequence_only(bench_mod, capsys) -> None:
    vs = bench_mod.variants(["PETS09-S2L1", "TUD-Campus"], [1.0], [1], [0, 1], {"TUD-Campus": [0.3]})
    assert [(v.seq, v.scale) for v in vs] == [("PETS09-S2L1", 1.0)] * 2 + [("TUD-Campus", 1.0)] * 2 \
        + [("TUD-Campus", 0.3)] * 2
    assert bench_mod.main(["--seqs", "TUD-Campus", "--extra-scale", "TUD-Stadtmitte=0.3"]) == 2
    err = capsys.readouterr().err
    assert "--extra-scale" in err and "TUD-Stadtmitte" in err and len(err.strip().splitlines()) == 1


@requires_shared
def test_missing_data_is_a_clear_error(bench_mod, tmp_path: Path, capsys) -> None:
    assert bench_mod.main(["--data", str(tmp_path), "--seqs", "NOPE"]) == 2
    assert "not found" in capsys.readouterr().err


def test_oracle_links_each_persons_longest_tracklet_per_camera(bench_mod, tmp_path: Path) -> None:
    """Two cameras see persons 1 and 2; camera b's view of person 1 is broken into two tracklets and
    the linker's ids are all wrong. The oracle gives person 1's longer piece and person 2 their gt ids
    and the short piece an id of its own: cross-camera IDF1 is what perfect linking scores."""
    import numpy as np

    from pipeline.mot_eval import evaluate
    from pipeline.results import CameraResult
    from pipeline.types import Tracklet

    def tr(cam: str, lid: int, frames: range, x: float) -> Tracklet:
        f = np.arange(frames.start, frames.stop, dtype=np.int64)
        boxes = np.tile(np.float32([[x, 10, x + 20, 60]]), (len(f), 1))
        return Tracklet(cam, lid, f, f / 10.0, boxes, np.ones(len(f), np.float32), None, 0, 100 + lid)

    cams = {"a": CameraResult("a", "a", "video"), "b": CameraResult("b", "b", "video")}
    cams["a"].tracklets = [tr("a", 1, range(0, 10), 0), tr("a", 2, range(0, 10), 100)]
    cams["b"].tracklets = [tr("b", 1, range(0, 7), 0), tr("b", 2, range(7, 10), 0), tr("b", 3, range(0, 10), 100)]
    gt = {}
    for view in cams:
        rows = [[f + 1, pid, x, 10, 20, 50, 1, 1, 1, 1] for pid, x in ((1, 0), (2, 100)) for f in range(10)]
        gt[view] = np.array(rows, np.float64)
    rows = bench_mod.oracle_rows(cams, gt)
    assert [t.global_id for t in cams["b"].tracklets] == [101, 102, 103]  # the input is left as it was
    ids_b = {int(i) for i in rows["b"][:, 1]}
    assert {1, 2} <= ids_b and len(ids_b) == 3
    paths = {}
    for view in cams:
        paths[view] = (tmp_path / f"gt-{view}.txt", tmp_path / f"pred-{view}.txt")
        np.savetxt(paths[view][0], gt[view], fmt="%.6g", delimiter=",")
        np.savetxt(paths[view][1], rows[view], fmt="%.6g", delimiter=",")
    res = evaluate({v: p[0] for v, p in paths.items()}, {v: p[1] for v, p in paths.items()}, cross_camera=True)
    # 40 gt boxes; only the 3 boxes of b's short piece miss person 1's id
    assert res.cross_camera.idf1 == pytest.approx(100 * 2 * 37 / 80, abs=0.01)


FAKE_WORKER = """
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, {scripts!r})
import boxmot_reference as w

args = sys.argv[2:]  # argv[1] is the real worker's path
if args == ["--version"]:
    print("0.0-fake")
    sys.exit(0)
in_dir, out_dir, confs = Path(args[0]), Path(args[1]), [float(c) for c in args[3:]]
for view in w.views_in(in_dir):
    inp = w.read_view_input(in_dir, view)
    assert inp["frames"].shape[0] == inp["n"]
    for c in confs:  # every detection its own track: the rows show what arrived
        k = np.flatnonzero(inp["score"] >= c)
        xy = inp["xyxy"][k]
        rows = np.column_stack([inp["frame"][k] + 1, k + 1, xy[:, :2], xy[:, 2:] - xy[:, :2], inp["score"][k]])
        w.write_rows(w.rows_path(out_dir, view, c), rows)
"""


def _fake_python(tmp_path: Path) -> Path:
    """An executable standing in for BoxMOT's interpreter: the project's python running FAKE_WORKER."""
    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER.format(scripts=str(REPO / "scripts")))
    exe = tmp_path / "bin" / "python"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp_path / "fake_worker.py"}" "$@"\n')
    exe.chmod(0o755)
    return exe


def test_boxmot_worker_files_round_trip_through_a_subprocess(bench_mod, tmp_path: Path) -> None:
    w = bench_mod.boxmot_reference
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    frame = np.array([0, 0, 2], np.int32)
    xyxy = np.array([[1, 2, 11, 22], [5, 5, 9, 15.5], [0, 0, 30, 20]], np.float32)
    score, emb = np.array([0.9, 0.2, 0.35], np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    w.write_view_input(tmp_path / "in", "cam", 12.5, frame, xyxy, score, emb, frames)
    w.write_view_input(tmp_path / "in", "empty", 12.5, np.zeros(0), np.zeros((0, 4)), np.zeros(0), np.zeros((0, 8)),
                       frames)
    back = w.read_view_input(tmp_path / "in", "cam")
    assert back["n"] == 3 and back["fps"] == 12.5 and np.array_equal(back["frames"], np.stack(frames))
    assert np.array_equal(back["xyxy"], xyxy) and np.array_equal(back["emb"], emb)

    ref = bench_mod.probe_boxmot(_fake_python(tmp_path), (0.1, 0.3))
    assert ref.version == "0.0-fake" and ref.confs == (0.1, 0.3)
    rows = bench_mod.run_boxmot_worker(ref, tmp_path / "in", tmp_path / "out")
    assert set(rows) == {0.1, 0.3} and set(rows[0.1]) == {"cam", "empty"} and rows[0.3]["empty"].shape == (0, 7)
    assert np.allclose(rows[0.1]["cam"], [[1, 1, 1, 2, 10, 20, 0.9], [1, 2, 5, 5, 4, 10.5, 0.2],
                                          [3, 3, 0, 0, 30, 20, 0.35]])
    assert rows[0.3]["cam"][:, 1].tolist() == [1, 3]  # only the detections ≥ 0.3


def test_missing_or_boxmot_less_python_is_a_one_line_error(bench_mod, tmp_path: Path, capsys) -> None:
    nope = tmp_path / "venv" / "bin" / "python"
    assert bench_mod.main(["--boxmot", str(nope)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(nope) in err and "not found" in err and "pip install boxmot" in err
    assert bench_mod.main(["--boxmot", sys.executable]) == 2  # the project's venv: no BoxMOT there, by design
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "boxmot is not installed" in err and "python3 -m venv" in err


def test_reference_table_compares_every_tracker_with_ours(bench_mod) -> None:
    def per_view(idf1: float) -> dict[str, dict[str, float]]:
        return {v: {"IDF1": idf1, "HOTA": idf1 / 2, "MOTA": idf1 - 10} for v in bench_mod.VIEWS}

    results = [{"variant": f"SEQ-{i} x1 /1 s0", "tracker": per_view(60.0), "reference": per_view(50.0 + i),
                "boxmot": per_view(70.0), "boxmot_by_conf": {"0.1": per_view(70.0), "0.3": per_view(66.0)},
                "boxmot_version": "9.9"} for i in range(2)]
    lines = bench_mod.reference_table(results).splitlines()
    row = {tuple(x.split()[:2]): x.split()[2:] for x in lines[3:] if len(x.split()) > 2}
    assert row[("all", "ours")] == ["10", "60.0", "30.0", "50.0"]
    assert row[("all", "ul-botsort")][:5] == ["10", "50.5", "25.2", "40.5", "-9.5"]
    assert row[("SEQ-1", "boxmot@0.3")][4:] == ["+6.0", "+3.0", "+6.0", "0.909"]
    assert "BoxMOT 9.9" in lines[-1] and bench_mod.reference_table([{"variant": "x", "tracker": {}}]) == ""


@pytest.mark.skipif(not os.environ.get("MTMC_BOXMOT_PYTHON"), reason="set MTMC_BOXMOT_PYTHON to BoxMOT's venv python")
def test_real_boxmot_keeps_two_walkers_apart(bench_mod, tmp_path: Path) -> None:
    w = bench_mod.boxmot_reference
    n, rng = 15, np.random.default_rng(1)
    feats = rng.normal(size=(2, 16)).astype(np.float32)
    frame = np.repeat(np.arange(n), 2).astype(np.int32)
    xyxy = np.array([[10 + 3 * k + 100 * j, 20, 50 + 3 * k + 100 * j, 120] for k in range(n) for j in range(2)],
                    np.float32)
    frames = [np.full((160, 320, 3), 40, np.uint8) for _ in range(n)]
    w.write_view_input(tmp_path / "in", "cam", 10.0, frame, xyxy, np.full(2 * n, 0.9, np.float32),
                       feats[np.arange(2 * n) % 2], frames)
    ref = bench_mod.probe_boxmot(Path(os.environ["MTMC_BOXMOT_PYTHON"]), (0.1,))
    rows = bench_mod.run_boxmot_worker(ref, tmp_path / "in", tmp_path / "out")[0.1]["cam"]
    assert len(np.unique(rows[:, 1])) == 2 and len(rows) >= 2 * (n - 1)
    assert json_meta(tmp_path / "out")["options"]["cam"] == {"track_buffer": 10}


def json_meta(folder: Path) -> dict:
    import json

    return json.loads((folder / "meta.json").read_text())
