"""scripts/benchmark_identity.py on a real scene variant: scores, caches, and the default's promise that
linking never costs a camera its own identities."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MODELS, MOT15, load_script, requires_shared

from pipeline.config import load_config

pytestmark = requires_shared


@pytest.fixture(scope="module")
def bench_mod():
    return load_script("benchmark_identity")


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


def test_defaults_keep_per_camera_identity_and_caches_work(bench_mod, tmp_path: Path) -> None:
    v = bench_mod.Variant("TUD-Campus", 0.625, 2, 0)
    bench = bench_mod.Bench(MOT15, MODELS / "yolox_nano.onnx", MODELS / "osnet_x0_25_msmt17.onnx", tmp_path)
    cfg = load_config(None, {"output": {"progress": False}})
    res = bench_mod.score_variant(bench, v, cfg)
    assert set(res["layouts"]) == {"single", "overlap", "adjacent", "four"}
    for name, lay in res["layouts"].items():
        assert lay["drop"] >= -1.0, (name, lay)  # linking lowers no camera's IDF1 by more than a point
        assert lay["same_camera_links"] == 0
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


def test_loso_table_names_a_choice_per_held_out_sequence(bench_mod, tmp_path: Path, capsys) -> None:
    argv = ["--seqs", "TUD-Campus", "TUD-Stadtmitte", "--scales", "0.5", "--steps", "2", "--seeds", "0",
            "--cache", str(tmp_path), "--candidate", "linking.threshold=0.4", "--candidate", "linking.threshold=0.3"]
    assert bench_mod.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("TUD-Campus ", "TUD-Stadtmitte "))]
    assert len(rows) == 2 and all("linking.threshold=0." in r for r in rows)


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
