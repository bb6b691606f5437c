"""Faults around a run: output folder checks and lock, signals, unwritable outputs, secrets, progress off a TTY.

Each case asserts what a user sees: the exit code, the first line of stderr, which
files exist afterwards, and that no secret is in any file.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import MOT15, OSNET_ONNX, REPO, YOLOX, moving_box_frames, requires_shared, write_video

from pipeline.cli import main
from pipeline.export import trajectories_schema
from pipeline.outdir import LOCK_NAME, OutputLock, clear_outputs
from pipeline.progress import RunProgress, capped_total
from pipeline.redact import mask_text, redact

MOT_ARGS = ["--detector", "mot", "--reid", "none", "--no-progress"]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- output folder


@requires_shared
@pytest.mark.parametrize(
    ("prepare", "extra", "code", "first_line"),
    [
        ("file", [], 2, "is a file, not a folder"),
        ("old_run", [], 2, "already holds a run's outputs (summary.json, tracks): pass --exist-ok"),
        ("locked", [], 2, "is in use by another mtmc process (pid "),
        ("readonly", [], 2, "cannot write the output folder"),
    ],
)
def test_output_folder_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str], prepare: str,
                                               extra: list[str], code: int, first_line: str) -> None:
    out = tmp_path / "out"
    lock = None
    if prepare == "file":
        out.write_text("not a folder")
    elif prepare == "old_run":
        (out / "tracks").mkdir(parents=True)
        (out / "summary.json").write_text("{}")
    elif prepare == "locked":
        lock = OutputLock(out, "mtmc run").acquire()
    elif prepare == "readonly":
        out.mkdir()
        if subprocess.run(["chattr", "+i", str(out)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
    before = _files(tmp_path)
    try:
        t0 = time.perf_counter()
        got, _, err = _cli(capsys, "run", MOT15 / "TUD-Campus", "-o", out, *MOT_ARGS, *extra)
        elapsed = time.perf_counter() - t0
    finally:
        if lock is not None:
            lock.release()
        if prepare == "readonly":
            subprocess.run(["chattr", "-i", str(out)], check=False)
    assert got == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtmc: error: ") and first_line in lines[0], err
    assert str(out) in lines[0]
    if prepare != "locked":
        assert _files(tmp_path) == before  # nothing written
    assert elapsed < 30  # refused up front, not after the run (a loose bound: the run itself takes seconds)


@requires_shared
def test_exist_ok_replaces_the_old_run_and_nothing_else(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _cli(capsys, "run", MOT15 / "TUD-Campus", MOT15 / "TUD-Stadtmitte", "-o", out, *MOT_ARGS)[0] == 0
    (out / "notes.txt").write_text("mine")
    code, _, err = _cli(capsys, "run", MOT15 / "TUD-Campus", "-o", out, *MOT_ARGS, "--exist-ok")
    assert code == 0, err
    assert sorted(p.name for p in (out / "tracks").iterdir()) == ["TUD-Campus.txt"]  # the stale camera is gone
    summary = json.loads((out / "summary.json").read_text())
    assert [c["id"] for c in summary["cameras"]] == ["TUD-Campus"]
    assert summary["outputs"] == ["tracks/TUD-Campus.txt", "trajectories.json", "summary.json"]
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "command": "mtmc run", "started": "x"}))
    with OutputLock(tmp_path, "mtmc run"):
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_clear_outputs_never_touches_inputs(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "cam.mp4").write_bytes(b"x")
    (tmp_path / "summary.json").write_text(json.dumps({"outputs": ["videos", "summary.json", "../elsewhere"]}))
    removed = clear_outputs(tmp_path, keep=[tmp_path / "videos" / "cam.mp4"])
    assert removed == ["summary.json"]
    assert (tmp_path / "videos" / "cam.mp4").is_file()


def test_two_runs_into_one_folder_the_second_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "cam_a.mp4", moving_box_frames())
    with OutputLock(tmp_path / "out", "mtmc live"):
        code, _, err = _cli(capsys, "live", video, "-o", tmp_path / "out", "--detector", "mot")
    assert code == 2 and "is in use by another mtmc process" in err and "mtmc live" in err


# ---------------------------------------------------------------- inputs and results


@requires_shared
def test_zero_byte_video_as_only_camera_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    code, _, err = _cli(capsys, "run", empty, "-o", tmp_path / "out", "--detector", f"yolox:{YOLOX}",
                        "--reid", "none", "--no-progress")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("mtmc: error: no camera could be decoded (empty: cannot open")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["failed_cameras"] == ["empty"] and summary["frames"] == 0


@requires_shared
def test_no_tracklets_says_so_not_linking_disabled(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   tiny_video: Path) -> None:
    # a moving rectangle, no person: nothing detected, so nothing to link
    code, out, _ = _cli(capsys, "run", tiny_video, "-o", tmp_path / "out", "--detector", f"yolox:{YOLOX}",
                        "--reid", str(OSNET_ONNX), "--no-progress")
    tmp_path = tmp_path / "out"
    assert code == 0
    linking = json.loads((tmp_path / "summary.json").read_text())["linking"]
    assert linking["tracklets"] == 0 and linking["method"] == "no linking (no tracklets)"
    assert "no linking (no tracklets)" in out


@requires_shared
def test_unwritable_trajectories_still_writes_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.runner as runner

    def refuse(result: object, out_dir: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(runner, "write_trajectories", refuse)
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "run", MOT15 / "TUD-Campus", "-o", out, *MOT_ARGS)
    assert code == 2
    assert err.strip() == (f"mtmc: error: cannot write {out / 'trajectories.json'} (Operation not permitted); "
                           "the other outputs are written")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["output_errors"] and "trajectories.json" not in summary["outputs"]
    assert _files(out) == ["summary.json", "tracks/TUD-Campus.txt"]  # no temporary file left


# ---------------------------------------------------------------- secrets

SECRETS = ("Secret9", "pw%40x", "tok3n", "S1G")


@pytest.mark.parametrize(("text", "masked"), [
    ("rtsp://admin:Secret9@host/s", "rtsp://***:***@host/s"),
    ("http://h/v?user=a&password=X", "http://h/v?user=a&password=***"),
    ("lobby=https://h/v.m3u8?token=tok3n&x=1", "lobby=https://h/v.m3u8?token=***&x=1"),
    ("s3 https://b/k?X-Amz-Signature=S1G&X-Amz-Credential=c", "s3 https://b/k?X-Amz-Signature=***&X-Amz-Credential=***"),
    ("ffmpeg: rtsp://u:p@ss@h:554/a failed", "ffmpeg: rtsp://***:***@h:554/a failed"),
    ("/data/cam a.mp4", "/data/cam a.mp4"),
])
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_redact_walks_nested_config() -> None:
    cfg = {"live": {"sources": ["lobby=rtsp://admin:Secret9@host/s"]}, "k": 1, "n": None}
    assert redact(cfg) == {"live": {"sources": ["lobby=rtsp://***:***@host/s"]}, "k": 1, "n": None}


@requires_shared
def test_no_secret_in_any_output_file_or_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "site.yaml"
    cfg.write_text("live:\n  sources:\n    - lobby=rtsp://admin:Secret9@host/s\n"
                   "    - http://h/v?user=a&password=pw%40x&token=tok3n\n"
                   "    - https://b/k?X-Amz-Signature=S1G\n")
    code, out, err = _cli(capsys, "run", MOT15 / "TUD-Campus", "-o", tmp_path / "out", "--config", cfg, *MOT_ARGS)
    assert code == 0
    code_cfg, cfg_out, cfg_err = _cli(capsys, "config", "--config", cfg)
    assert code_cfg == 0 and "rtsp://***:***@host/s" in cfg_out
    texts = [out, err, cfg_out, cfg_err] + [p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(texts) >= 6
    for secret in SECRETS:
        assert not any(secret in t for t in texts), secret
    traj = json.loads((tmp_path / "out" / "trajectories.json").read_text())
    assert traj["run"]["config"]["live"]["sources"][0] == "lobby=rtsp://***:***@host/s"


# ---------------------------------------------------------------- progress off a terminal


def test_progress_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = RunProgress(stream=stream, tty=False, every_s=0.0)
    a = progress.add("cam_a", "/v/a.mp4", "video", capped_total(300, 40))
    b = progress.add("cam_b", "/v/b.mp4", "video", capped_total(None, None))
    assert a is not None and b is not None
    a.update(10)
    b.update(3)
    progress.tick()
    a.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "mtmc: camera cam_a: /v/a.mp4 (video, 40 frames)"
    assert lines[1] == "mtmc: camera cam_b: /v/b.mp4 (video)"
    assert lines[2].startswith("mtmc: 0 s: 13 frames (") and lines[2].endswith("; cam_a 10/40, cam_b 3")


def test_no_progress_prints_nothing() -> None:
    stream = io.StringIO()
    progress = RunProgress(enabled=False, stream=stream, tty=False, every_s=0.0)
    assert progress.add("cam_a", "/v/a.mp4", "video", 10) is None
    progress.tick()
    assert stream.getvalue() == ""


# ---------------------------------------------------------------- signals on a real multi-camera run


def _start_run(out: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "pipeline.cli", "run", str(MOT15 / "TUD-Campus"), str(MOT15 / "PETS09-S2L1"),
           str(MOT15 / "TUD-Stadtmitte"), "-o", str(out), "--detector", f"yolox:{YOLOX}", "--reid", str(OSNET_ONNX),
           *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_frames(proc: subprocess.Popen[str], seconds: float) -> None:
    """Wait until the run lists its cameras (off a TTY: one line each), then ``seconds`` more."""
    assert proc.stderr is not None
    seen = 0
    while seen < 3:
        line = proc.stderr.readline()
        assert line, "the run ended before listing its cameras"
        seen += line.startswith("mtmc: camera ")
    time.sleep(seconds)


@requires_shared
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_writes_valid_partial_outputs(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out = tmp_path / "out"
    proc = _start_run(out)
    _wait_for_frames(proc, 6.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert f"mtmc: {sig.name}: stopping" in stderr
    traj = json.loads((out / "trajectories.json").read_text())
    jsonschema.validate(traj, trajectories_schema())
    assert traj["run"]["interrupted"] is True
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["failed_cameras"] == []
    statuses = {c["id"]: c["status"] for c in summary["cameras"]}
    assert "interrupted" in statuses.values() and set(statuses.values()) <= {"ok", "interrupted"}
    assert 0 < summary["frames"] < 71 + 300 + 179
    assert summary["linking"]["tracklets"] > 0 and summary["identities"] > 0
    assert (out / "tracks" / "PETS09-S2L1.txt").stat().st_size > 0
    assert not list(out.glob(".*.tmp")) and not (out / LOCK_NAME).exists()
    assert "interrupted" in stdout


@requires_shared
def test_second_signal_on_a_real_run_leaves_only_whole_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _start_run(out)
    _wait_for_frames(proc, 3.0)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    # 143 from our handler; -15 (the shell's 143 too) when the second signal lands after it is gone at exit
    assert proc.returncode in (143, -signal.SIGTERM), stderr
    assert not list(out.glob(".*.tmp"))
    for f in out.glob("*.json"):
        json.loads(f.read_text())  # whole files only (or none, when the second signal came first)


GRACEFUL = """
import os, signal, sys, time
from pathlib import Path
from pipeline.signals import GracefulStop
marker = Path(sys.argv[1])
with GracefulStop(what="test", before_exit=[lambda: marker.write_text("cleaned")]) as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    while not stop.event.is_set():
        time.sleep(0.01)
    print("first signal seen", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
print("not reached", flush=True)
"""


def test_second_signal_runs_cleanup_and_exits_at_once(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", GRACEFUL, str(marker)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 143
    assert proc.stdout == "first signal seen\n"
    assert proc.stderr.splitlines() == [
        "mtmc: SIGTERM: stopping: test (signal again to exit at once)",
        "mtmc: second signal (SIGTERM): exiting now",
    ]
    assert marker.read_text() == "cleaned"
    assert time.perf_counter() - t0 < 5  # did not sleep out the 5 s


@requires_shared
def test_no_secret_in_live_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_video: Path) -> None:
    cfg = tmp_path / "site.yaml"
    cfg.write_text("live:\n  sources: [lobby=rtsp://admin:Secret9@host/s]\n  backoff_initial_s: 0.2\n")
    down = "door=http://127.0.0.1:9/v?user=a&password=pw%40x&token=tok3n"  # nothing listens on port 9
    code, out, err = _cli(capsys, "live", tiny_video, down, "-o", tmp_path / "out", "--config", cfg,
                          "--duration", "3", "--detector", f"yolox:{YOLOX}", "--reid", "none")
    assert code == 0, err
    events = (tmp_path / "out" / "events.jsonl").read_text()
    assert '"event":"stream_down"' in events and "password=***" in events
    texts = [out, err] + [p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    for secret in SECRETS:
        assert not any(secret in t for t in texts), secret


def test_nearly_full_disk_is_refused(tmp_path: Path) -> None:
    from pipeline.errors import OutputError
    from pipeline.outdir import check_output_dir

    with pytest.raises(OutputError, match=r"MiB free on the disk of .*: free some space or pass another -o"):
        check_output_dir(tmp_path / "out", min_free_mb=1e12)
