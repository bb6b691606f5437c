"""Offline vs incremental linking on the multi-camera scenes of ``scripts/make_multicam.py``.

Each scene runs through the pipeline once (offline linking, default config);
its tracklets are then linked again in incremental mode (``_link`` of the
runner: batches of ``linking.incremental_batch_s`` seconds in end-time order,
resolved ids) and both outputs are scored for cross-camera IDF1.

Measured (2026-11, yolox_nano + osnet_x0_25_msmt17, threshold 0.4, 1 s batches):

============  =======  ======================  ====================  ======
scene         offline  incremental, delay 0 s  delay 10 s (default)  sparse
============  =======  ======================  ====================  ======
TUD scene        74.4                    75.0                  74.4    74.4
PETS scene       64.3                    49.3                  62.0    64.3
============  =======  ======================  ====================  ======

Without a decision delay an online linker joins tracklets to a merely
acceptable identity before their close partner has ended, and cannot undo it
(ids never change; only merges are recorded). With the default
``linking.decision_delay_s`` (10 s) a tracklet is clustered again with every
batch until 10 s of stream time have passed since its end. The TUD scene is
only 7.1 s long, so there every id waits for the final flush (= offline); the
PETS scene (42.7 s) is the real test of the delay, and it misses the 1-point
target (62.0 vs 64.3; 64.7 with a 20 s delay): marked xfail.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
from conftest import MOT15, OSNET_ONNX, YOLOX, load_script, requires_shared

from pipeline.config import load_config
from pipeline.evaluate import evaluate, match_gt_to_pred, processed_frames
from pipeline.export import write_summary, write_tracks, write_trajectories
from pipeline.runner import _link, run

pytestmark = requires_shared


def _cross_idf1(scene: Path, result, out: Path) -> float:  # noqa: ANN001 - RunResult
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write_tracks(result, out)
    write_summary(result, out)
    write_trajectories(result, out)
    gt, pred = match_gt_to_pred([scene], out)
    res = evaluate(gt, pred, frames=processed_frames(out))
    assert res.cross_camera is not None
    return res.cross_camera.idf1


@pytest.mark.parametrize(
    "seq",
    [
        "TUD-Stadtmitte",
        pytest.param("PETS09-S2L1", marks=pytest.mark.xfail(
            reason="incremental 62.0 vs offline 64.3 with the default 10 s decision delay (49.3 without): "
                   "online joins cannot be undone (see module docstring)", strict=False)),
    ],
)
def test_offline_and_incremental_cross_camera_idf1_agree(seq: str, tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    load_script("make_multicam").make_multicam(MOT15 / seq, scene, "both", jitter=True, seed=0)
    cfg = load_config(None, {"detector": {"spec": f"yolox:{YOLOX}"}, "reid": {"spec": str(OSNET_ONNX)},
                             "output": {"progress": False}})
    offline = run([scene], cfg, out_dir=tmp_path / "offline")
    scores = {"offline": _cross_idf1(scene, offline, tmp_path / "offline")}
    for mode, over in (("incremental", {"mode": "incremental"}), ("sparse", {"method": "sparse"})):
        res = copy.deepcopy(offline)
        res.linking = _link(res.tracklets, load_config(None, {"linking": over}), with_reid=True)
        res.merges = res.linking.pop("merge_events")
        scores[mode] = _cross_idf1(scene, res, tmp_path / mode)
    assert scores["sparse"] == pytest.approx(scores["offline"], abs=1e-9), scores
    assert abs(scores["incremental"] - scores["offline"]) <= 1.0, scores
