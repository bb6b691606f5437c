"""``--executor ray`` on a real local Ray, against the local executor, on a make_multicam scene.

Ray binds the machine's network address whatever it is told, so every Ray process here runs in a
private network namespace (``unshare -n`` with only loopback up; see ../shared/DESIGN.md): Ray
traffic never leaves the machine. Skipped with the reason when Ray is not installed, when a namespace
cannot be made (not root), or without ../shared.
"""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import MOT15, OSNET_ONNX, YOLOX, load_script, requires_shared
from ray_netns import in_netns, requires_ray, scenario

from pipeline.cli import main
from pipeline.mot_eval import evaluate, match_gt_to_pred, processed_frames

FRAMES = 100  # per camera: 4 cameras x 100 frames of TUD-Stadtmitte
MODEL_ARGS = ["--detector", f"yolox:{YOLOX}", "--reid", str(OSNET_ONNX), "--no-progress",
              "--max-frames", str(FRAMES)]
pytestmark = [requires_shared, requires_ray]


def _mtmc(scene: Path, out: Path, *extra: str | Path) -> str:
    args = ["mtmc", "run", scene, "-o", out, *MODEL_ARGS, "--executor", "ray", *extra]
    return shlex.join(str(a) for a in args)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray") / "scene"
    load_script("make_multicam").make_multicam(MOT15 / "TUD-Stadtmitte", out, "both", jitter=True, seed=0)
    return out


@pytest.fixture(scope="module")
def ray_cfg(scene: Path) -> Path:
    """All four camera actors at once on 2 CPUs, tracklets to the driver every 16 frames."""
    cfg = scene.parent / "ray.yaml"
    cfg.write_text(yaml.safe_dump({"executor": {"num_cpus_per_camera": 0.5, "chunk_frames": 16}}))
    return cfg


@pytest.fixture(scope="module")
def local_run(scene: Path) -> Path:
    out = scene.parent / "local"
    assert main(["run", str(scene), "-o", str(out), *MODEL_ARGS]) == 0
    return out


@pytest.fixture(scope="module")
def ray_run(scene: Path, ray_cfg: Path) -> Path:
    out = scene.parent / "ray"
    proc = in_netns(_mtmc(scene, out, "--config", ray_cfg))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _summary(out: Path) -> dict[str, dict]:
    return {c["id"]: c for c in json.loads((out / "summary.json").read_text())["cameras"]}


def _cross_idf1(scene: Path, out: Path) -> float:
    gt, pred = match_gt_to_pred([scene], out)
    res = evaluate(gt, pred, frames=processed_frames(out))
    assert res.cross_camera is not None
    return res.cross_camera.idf1


def _assert_same_as_local(scene: Path, local: Path, other: Path) -> None:
    a, b = _summary(local), _summary(other)
    assert sorted(a) == sorted(b)
    for cam in a:
        assert b[cam]["status"] == "ok" and b[cam]["frames"] == a[cam]["frames"] == FRAMES
        assert abs(b[cam]["boxes"] - a[cam]["boxes"]) <= 0.01 * a[cam]["boxes"], (cam, a[cam], b[cam])
    assert abs(_cross_idf1(scene, other) - _cross_idf1(scene, local)) <= 1.0


def _tracks(out: Path, cam: str) -> set[frozenset[tuple[float, ...]]]:
    """The camera's tracks as sets of (frame, x, y, w, h) rows, whatever their ids."""
    rows = np.loadtxt(out / "tracks" / f"{cam}.txt", delimiter=",", ndmin=2)
    return {frozenset(map(tuple, rows[rows[:, 1] == i][:, [0, 2, 3, 4, 5]].round(2))) for i in np.unique(rows[:, 1])}


def test_ray_gives_the_cameras_boxes_and_cross_camera_idf1_of_local(scene: Path, local_run: Path,
                                                                    ray_run: Path) -> None:
    _assert_same_as_local(scene, local_run, ray_run)
    executor = json.loads((ray_run / "summary.json").read_text()).get("config", {}).get("executor", {})
    assert executor.get("type") == "ray"


def test_ray_start_head_cluster_and_ray_address(scene: Path, local_run: Path, ray_cfg: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = scene.parent / "head"
    script = (f"ray start --head --port {port} --num-cpus 2 --include-dashboard false --disable-usage-stats "
              f">/dev/null && {_mtmc(scene, out, '--config', ray_cfg, '--ray-address', f'127.0.0.1:{port}')}; "
              "rc=$?; ray stop --force >/dev/null 2>&1; exit $rc")
    proc = in_netns(script)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same_as_local(scene, local_run, out)
    local_ids = {i for c in _summary(local_run) for i in np.loadtxt(local_run / "tracks" / f"{c}.txt",
                                                                     delimiter=",", ndmin=2)[:, 1]}
    head_ids = {i for c in _summary(out) for i in np.loadtxt(out / "tracks" / f"{c}.txt", delimiter=",",
                                                              ndmin=2)[:, 1]}
    assert len(head_ids) == len(local_ids)


def test_killed_camera_actor_fails_that_camera_only(scene: Path, ray_run: Path, ray_cfg: Path) -> None:
    out = scene.parent / "killed"
    argv = ["run", scene, "-o", out, *MODEL_ARGS, "--executor", "ray", "--config", ray_cfg]
    res, stderr = scenario("kill", "ov_right", 64, argv)
    assert res == {"rc": 1, "acted": True}, stderr[-3000:]
    full, got = _summary(ray_run), _summary(out)
    assert got["ov_right"]["status"] == "failed" and "Ray actor died" in got["ov_right"]["error"]
    assert "camera failed: ov_right" in stderr
    assert 0 < got["ov_right"]["boxes"] < full["ov_right"]["boxes"]
    assert _tracks(out, "ov_right") <= _tracks(ray_run, "ov_right")  # the tracklets it had sent, unchanged
    for cam in ("ov_left", "dj_left", "dj_right"):
        assert got[cam]["status"] == "ok" and got[cam]["frames"] == FRAMES
        assert _tracks(out, cam) == _tracks(ray_run, cam)


def test_sigterm_writes_partial_results(scene: Path, ray_cfg: Path) -> None:
    out = scene.parent / "term"
    argv = ["run", scene, "-o", out, *MODEL_ARGS, "--executor", "ray", "--config", ray_cfg]
    res, stderr = scenario("term", "dj_left", 32, argv)
    assert res == {"rc": 143, "acted": True}, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    cams = {c["id"]: c for c in summary["cameras"]}
    assert cams["dj_left"]["status"] == "interrupted" and 32 <= cams["dj_left"]["frames"] < FRAMES
    assert all((out / "tracks" / f"{c}.txt").is_file() for c in cams)


def test_unreachable_address_exits_2_naming_it(scene: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    proc = in_netns(_mtmc(scene, tmp_path / "out", "--ray-address", f"ray://admin:Secret9@127.0.0.1:{port}"),
                    timeout=120)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("mtmc: error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0] and "Secret9" not in proc.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_camera_actor_the_cluster_cannot_hold_exits_2(scene: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "gpu.yaml"
    cfg.write_text(yaml.safe_dump({"executor": {"num_gpus_per_camera": 16}}))  # more GPUs than a node has
    proc = in_netns(_mtmc(scene, tmp_path / "out", "--config", cfg), timeout=300)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("mtmc: error:")]
    assert len(errors) == 1 and "asks for 1 CPUs and 16 GPUs" in errors[0]
    assert not (tmp_path / "out" / "summary.json").exists()
