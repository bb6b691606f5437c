"""``mtmc live --executor ray`` on a real local Ray: one named actor per stream, events and linking on the driver.

Two overlapping views of a make_multicam scene are played as live files (real time, 25 fps, ~7 s).
Every Ray process runs in a private network namespace (tests/ray_netns.py).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import MOT15, OSNET_ONNX, YOLOX, load_script, requires_shared
from ray_netns import in_netns, requires_ray, scenario
from test_live import validate_events, validate_trajectories

pytestmark = [requires_shared, requires_ray]
CAMS = ("ov_left", "ov_right")
MODEL_ARGS = ["--detector", f"yolox:{YOLOX}", "--reid", str(OSNET_ONNX)]


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("ray_live") / "scene"
    load_script("make_multicam").make_multicam(MOT15 / "TUD-Stadtmitte", out, "overlap", jitter=False, seed=0)
    return [out / c / f"{c}.mp4" for c in CAMS]


@pytest.fixture(scope="module")
def live_cfg(streams: list[Path]) -> Path:
    cfg = streams[0].parent.parent.parent / "live.yaml"
    cfg.write_text(yaml.safe_dump({"executor": {"num_cpus_per_camera": 0.5},
                                   "live": {"stats_every_s": 1.0, "trajectories_every_s": 1.0, "link_after_s": 1.0,
                                            "backoff_initial_s": 0.2}}))
    return cfg


def _live_argv(streams: list[Path], out: Path, cfg: Path) -> list[str]:
    return ["live", *map(str, streams), "-o", str(out), *MODEL_ARGS, "--executor", "ray", "--config", str(cfg),
            "--duration", "120"]


def _by_camera(events: list[dict], kind: str, cam: str) -> list[dict]:
    return [e for e in events if e["event"] == kind and e.get("camera") == cam]


def test_live_on_ray_tracks_and_links_every_stream(streams: list[Path], live_cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = in_netns("mtmc " + shlex.join(_live_argv(streams, out, live_cfg)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = validate_events(out / "events.jsonl")
    ups = {c: [e["time"] for e in _by_camera(events, "stream_up", c)] for c in CAMS}
    assert all(len(t) == 1 for t in ups.values()) and abs(ups[CAMS[0]][0] - ups[CAMS[1]][0]) < 1.0  # together
    for cam in CAMS:
        started = _ids(events, "track_started", cam)
        assert len(started) >= 2 and started == _ids(events, "track_ended", cam), cam
        assert [e["reason"] for e in _by_camera(events, "stream_down", cam)] == ["end of file"]
    assert all(0 <= e["latency_s"] < 5 for e in events if e["event"] == "track_started")
    doc = validate_trajectories(out / "trajectories.json")
    cams = {c["id"]: c for c in doc["cameras"]}
    assert set(cams) == set(CAMS) and all(c["status"] == "ok" and c["frames"] >= 20 for c in cams.values())
    assert doc["run"]["models"]["detector"].startswith("onnx-yolox") and doc["run"]["models"]["reid"]
    both = [i for i in doc["identities"] if {s["camera"] for s in i["segments"]} == set(CAMS)]
    assert both, "no identity spans the two overlapping views"


def _act(action: str, camera: str, rc: int, streams: list[Path], cfg: Path, out: Path) -> tuple[list[dict], str]:
    """Run the live session with ``action`` on ``camera``'s actor after 25 frames; its events and stderr."""
    res, stderr = scenario(action, camera, 25, _live_argv(streams, out, cfg))
    assert res == {"rc": rc, "acted": True}, stderr[-3000:]
    return validate_events(out / "events.jsonl"), stderr


def _ids(events: list[dict], kind: str, cam: str) -> set[int]:
    return {e["local_id"] for e in _by_camera(events, kind, cam)}


def test_a_killed_stream_actor_is_restarted_and_the_other_stream_goes_on(streams: list[Path], live_cfg: Path,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "killed"
    events, stderr = _act("kill", "ov_left", 0, streams, live_cfg, out)
    downs = _by_camera(events, "stream_down", "ov_left")
    assert "Ray actor died" in downs[0]["reason"] and len(_by_camera(events, "stream_up", "ov_left")) == 2
    assert "starting a new Ray actor" in stderr
    died = downs[0]["time"]
    before = {e["local_id"] for e in _by_camera(events, "track_started", "ov_left") if e["time"] < died}
    after = {e["local_id"] for e in _by_camera(events, "track_started", "ov_left") if e["time"] > died}
    assert before and after and min(after) > max(before)  # the new actor's ids continue the old ones
    started = _ids(events, "track_started", "ov_right")
    assert started and started == _ids(events, "track_ended", "ov_right")
    cams = {c["id"]: c for c in json.loads((out / "trajectories.json").read_text())["cameras"]}
    assert cams["ov_right"]["status"] == "ok" and cams["ov_left"]["frames"] > 25


def test_sigterm_closes_every_stream_and_writes_the_files(streams: list[Path], live_cfg: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "term"
    events, _ = _act("term", "ov_right", 143, streams, live_cfg, out)
    for cam in CAMS:
        assert _ids(events, "track_started", cam) == _ids(events, "track_ended", cam), cam
    doc = validate_trajectories(out / "trajectories.json")
    assert {c["id"] for c in doc["cameras"]} == set(CAMS)
    assert all(c["frames"] >= 25 for c in doc["cameras"] if c["id"] == "ov_right")
