"""README.md as a newcomer meets it: its commands run as written (scripts/check_readme.py), its
paths exist or are made by an earlier command, and what the commands print says what happened."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MODELS, REPO, SHARED, load_script, requires_shared

from pipeline.results import CameraResult, RunResult

cr = load_script("check_readme")
mm = load_script("make_multicam")
README = REPO / "README.md"
CHECK_MAX_FRAMES = "10"
"""Frames per camera in the full README run: 2 cores, about 3 minutes for every marked block."""


# --- check_readme.py: which blocks, and how they are shortened ----------------------------------------


def test_marker_selects_the_block_after_it() -> None:
    text = "\n".join([
        "intro", "", cr.MARKER, "", "```bash", "echo one", "```", "",
        "```bash", "echo two", "```", cr.MARKER, "```python", "print(3)", "```", "```json", "{}", "```",
    ])
    blocks = cr.parse_blocks(text)
    assert [(b.lang, b.marked) for b in blocks] == [("bash", True), ("bash", False), ("python", True),
                                                   ("json", False)]
    assert [b.first_line for b in cr.runnable_blocks(text)] == ["echo one", "print(3)"]
    with pytest.raises(ValueError, match="must be ```bash or ```python"):
        cr.runnable_blocks(f"{cr.MARKER}\n```yaml\na: 1\n```\n")


def test_commands_are_shortened_only_where_they_allow_it() -> None:
    lim = cr.Shorten(max_frames=10, duration=6.0, epochs=1)
    short = cr.shorten_command("mtmc run scenes/tud -o runs/tud", lim)
    assert short == "mtmc run --max-frames 10 scenes/tud -o runs/tud"
    assert cr.shorten_command("mtmc run a -o b --max-frames 5", lim) == "mtmc run a -o b --max-frames 5"
    assert cr.shorten_command("mtmc run a -o b --max-frames 500", lim) == "mtmc run a -o b --max-frames 10"
    assert cr.shorten_command("python scripts/benchmark_pipeline.py s --max-frames 179", lim).endswith(
        "--max-frames 10")
    assert cr.shorten_command("mtmc live a.mp4 -o r --loop --duration 60", lim).endswith("--duration 6")
    short = cr.shorten_command("mtmc reid train d -o r --epochs 15 --p 4", lim)
    assert short == "mtmc reid train d -o r --epochs 1 --p 4"
    assert cr.shorten_command("mtmc eval --gt s --pred r && mtmc run s -o x", lim).endswith(
        "mtmc run --max-frames 10 s -o x")
    as_written = "python scripts/make_multicam.py seq -o s"
    assert cr.shorten_command(as_written, lim) == as_written
    assert cr.shorten_python('cfg = {"decode": {"max_frames": 50}}', lim) == 'cfg = {"decode": {"max_frames": 10}}'
    full = cr.Shorten(None, None, None)
    assert cr.shorten_command("mtmc run a -o b", full) == "mtmc run a -o b"
    assert cr.strip_comment("ls runs/x   # one folder per id") == "ls runs/x"
    assert cr.strip_comment("echo 'a # b'") == "echo 'a # b'"


def test_a_failing_command_stops_its_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{cr.MARKER}\n```bash\necho first\nfalse && echo never\necho after\n```\n"
                      f"{cr.MARKER}\n```bash\necho second block\n```\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    out = tmp_path / "res.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "check_readme.py"), "--readme", str(readme),
                           "--shared", str(shared), "--json", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert res["blocks"] == 2 and len(res["results"]) == 1  # stopped at the first failing block
    first = res["results"][0]
    assert first["returncode"] == 1 and first["failed_command"] == "false && echo never"
    assert "first" in first["tail"] and "after" not in first["tail"]
    assert "FAILED  exit 1" in proc.stdout and "echo first" in proc.stdout


# --- the README's paths ---------------------------------------------------------------------------------


_SPEC_PREFIX = re.compile(r"^[A-Za-z][\w.-]*:(?!//)")
_PLACEHOLDER = ("path/to/", "<", "…", "*")


def _paths_and_outputs(block: cr.Block) -> tuple[list[str], list[str]]:
    """Relative paths a block reads or names (with a ``/``; model specs' ``arch:`` prefix dropped) and
    the paths it creates (``-o``/``--out``, ``out_dir=``, ``python -m venv``)."""
    paths: list[str] = []
    outputs: list[str] = []
    if block.lang == "python":
        for m in re.finditer(r"(out_dir=)?[\"']([^\"']+)[\"']", block.text):
            (outputs if m.group(1) else paths).append(_SPEC_PREFIX.sub("", m.group(2)))
        return [p for p in paths if "/" in p], outputs
    for line in cr.logical_lines(block.text):
        tokens = shlex.split(cr.strip_comment(line))
        for i, tok in enumerate(tokens):
            prev = tokens[i - 1] if i else ""
            if prev in ("-o", "--out") or (prev == "venv" and i >= 2 and tokens[i - 2] == "-m"):
                outputs.append(tok)
                continue
            if tok.startswith("-") or "://" in tok or "=" in tok:
                continue
            tok = _SPEC_PREFIX.sub("", tok)
            if "/" in tok:
                paths.append(tok.rstrip("/"))
    return paths, outputs


def test_every_readme_path_exists_or_an_earlier_command_makes_it() -> None:
    made: list[str] = []
    missing = []
    blocks = [b for b in cr.parse_blocks(README.read_text(encoding="utf-8")) if b.lang in ("bash", "python")]
    assert blocks
    for block in blocks:
        paths, outputs = _paths_and_outputs(block)
        for p in paths:
            if any(x in p for x in _PLACEHOLDER):
                continue
            if p.startswith("../shared/") and not SHARED.is_dir():
                continue  # checked where ../shared exists
            if (REPO / p).exists() or any(p == o or p.startswith(o.rstrip("/") + "/") for o in made + outputs):
                continue
            missing.append(f"README.md:{block.line}: {p}")
        made += outputs
    assert not missing, "paths that neither exist nor are made by an earlier README command:\n" + "\n".join(missing)


def test_every_offline_bash_block_is_marked() -> None:
    """Unmarked bash blocks are the ones that cannot run here: installing from the package index, live
    network cameras, the 30-minute live soak, the whole test suite (which runs this file) and a Ray cluster."""
    unmarked = [b.first_line for b in cr.parse_blocks(README.read_text(encoding="utf-8"))
                if b.lang == "bash" and not b.marked]
    assert len(unmarked) == 6, unmarked
    assert unmarked[0].startswith("python3 -m venv")
    assert unmarked[1].startswith("mtmc live") and "rtsp://" in unmarked[1]
    assert unmarked[2].startswith("python scripts/benchmark_live.py --minutes 30")
    assert unmarked[3] == "ruff check . && python -m pytest"
    assert unmarked[4].startswith("ray start --head")  # a Ray cluster: needs a network namespace here
    assert unmarked[5].startswith("mtmc live") and "runs/live-ray" in unmarked[5]  # tests/test_ray_live.py


# --- every marked block runs ----------------------------------------------------------------------------


@requires_shared
def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    marked = cr.runnable_blocks(README.read_text(encoding="utf-8"))
    out = tmp_path / "check.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_readme.py"), "--max-frames", CHECK_MAX_FRAMES,
         "--json", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["blocks"] == len(marked) >= 8
    assert [r["line"] for r in res["results"]] == [b.line for b in marked]
    assert all(r["ok"] and r["returncode"] == 0 for r in res["results"])
    work = Path(res["workdir"])
    assert (work / "runs" / "tud" / "trajectories.json").is_file()  # the worked example ran
    assert (work / "runs" / "ft" / "osnet_ft.onnx").is_file()  # and the last ReID block
    assert f"{len(marked)} of {len(marked)} blocks ran" in proc.stdout


# --- what the commands print ----------------------------------------------------------------------------


def _result(cams: list[CameraResult], linking: dict) -> RunResult:
    return RunResult({c.camera_id: c for c in cams}, {"decode": 0.1}, 2.0, "det", {}, linking=linking)


def test_end_table_counts_in_the_right_number_and_no_repeated_camera_id() -> None:
    one = _result([CameraResult("lobby", "lobby.mp4", "video", frames=1)],
                  {"tracklets": 1, "identities": 1, "cross_camera_identities": 0, "method": "m"})
    lines = one.format_table().splitlines()
    assert lines[-2].startswith("1 camera, 1 frame in 2.0s")
    assert lines[-1].startswith("1 tracklet -> 1 identity (0 seen by several cameras)")
    bad = CameraResult("door", "door.mp4", "video", frames=795, status="failed",
                       error="door: door.mp4 contains no decodable frames")
    two = _result([CameraResult("lobby", "lobby.mp4", "video", frames=795), bad],
                  {"tracklets": 2, "identities": 2, "cross_camera_identities": 0, "method": "m"})
    table = two.format_table()
    assert "2 cameras, 1590 frames in" in table and "2 tracklets -> 2 identities" in table
    door = next(ln for ln in table.splitlines() if ln.startswith("door"))
    assert door.endswith("failed: door.mp4 contains no decodable frames") and door.count("door:") == 0


def test_make_multicam_hint_names_the_local_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    checkout = tmp_path / "mtmc"
    checkout.mkdir()
    monkeypatch.chdir(checkout)
    monkeypatch.setattr(mm, "REPO", checkout)
    hint = mm.next_hint(Path("scenes/tud"))
    assert "--detector yolox" not in hint and "downloaded on first use" in hint  # no ../shared: the defaults
    assert hint.startswith("next: mtmc run scenes/tud -o runs/tud && mtmc eval --gt scenes/tud --pred runs/tud")
    models = tmp_path / "shared" / "models"
    models.mkdir(parents=True)
    (models / "yolox_nano.onnx").write_bytes(b"")
    (models / "osnet_x0_25_msmt17.onnx").write_bytes(b"")
    hint = mm.next_hint(Path("scenes/tud"))
    assert hint == ("next: mtmc run scenes/tud -o runs/tud --detector yolox:../shared/models/yolox_nano.onnx "
                    "--reid ../shared/models/osnet_x0_25_msmt17.onnx && "
                    "mtmc eval --gt scenes/tud --pred runs/tud --cross-camera")


@pytest.mark.skipif(MODELS.joinpath("yolo11n.pt").exists(), reason="a local yolo11n.pt would load")
def test_default_detector_offline_prints_only_our_one_line(tmp_path: Path, tiny_video: Path) -> None:
    """No ultralytics settings banner or download log before (or after) the one-line error."""
    env = {k: v for k, v in os.environ.items() if k != "YOLO_VERBOSE"}
    env.update(YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(tmp_path / "ultralytics_settings"))
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(tiny_video), "-o", str(tmp_path / "run"),
                           "--no-progress"], cwd=tmp_path, env=env | {"PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("mtmc: error: cannot load detector 'yolo11n.pt'")
