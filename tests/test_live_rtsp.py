"""Live mode against a real RTSP server on loopback (GStreamer, run by the system python).

The server (``tests/rtsp_server.py``) serves H.264 MP4 clips made here from
real footage in ``../shared`` (PETS09-S2L1, detected with YOLOX-nano) or, when
``../shared`` is absent, from synthetic moving rectangles (detected by the
test's blob detector). Fault tests: the server killed and restarted (with
another resolution), frozen with SIGSTOP (watchdog), one stream down while the
other keeps its rate, and SIGINT/SIGTERM of a running ``mtmc live``.

Time bounds here are generous functional limits, not performance targets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import MOT15, OSNET_ONNX, REPO, YOLOX
from test_live import BlobDetector, validate_events, validate_trajectories

from pipeline.config import MtmcConfig, load_config
from pipeline.events import read_events
from pipeline.live import LiveSummary, run_live

SYSTEM_PY = Path("/usr/bin/python3")
SERVER = REPO / "tests" / "rtsp_server.py"
PETS = MOT15 / "PETS09-S2L1" / "img1"
REAL = PETS.is_dir() and YOLOX.is_file()
FPS = 7 if REAL else 10


def _gst_missing() -> str | None:
    if not SYSTEM_PY.is_file():
        return "no system python at /usr/bin/python3 (needed for python3-gi)"
    probe = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in "
             "('filesrc', 'qtdemux', 'rtph264pay')) else 1)")
    r = subprocess.run([str(SYSTEM_PY), "-c", probe], capture_output=True, timeout=60)
    if r.returncode != 0:
        return ("GStreamer RTSP server missing: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-plugins-base gstreamer1.0-plugins-good")
    return None


_MISSING = _gst_missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def _encode(path: Path, frames: Iterator[np.ndarray], fps: int) -> Path:
    """H.264 (libx264, a keyframe every second) MP4 from BGR frames."""
    import av

    with av.open(str(path), mode="w") as out:
        stream = None
        for img in frames:
            if stream is None:
                stream = out.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
                stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps)}
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        assert stream is not None
        for packet in stream.encode():
            out.mux(packet)
    return path


def _real_frames(start: int, n: int, size: tuple[int, int]) -> Iterator[np.ndarray]:
    import cv2

    files = sorted(PETS.glob("*.jpg"))
    for i in range(start, start + n):
        f = files[i % len(files)]
        yield cv2.resize(cv2.imread(str(f)), size, interpolation=cv2.INTER_AREA)


def _synthetic_frames(n: int, size: tuple[int, int], phase: int) -> Iterator[np.ndarray]:
    w, h = size
    for i in range(n):
        img = np.full((h, w, 3), 30, np.uint8)
        x = 10 + (4 * i + phase) % (w - 80)
        img[h // 4:h // 4 + h // 2, x:x + 40] = (200, 180, 160)
        yield img


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``a``, ``b``: 384×288 clips of 40 s; ``small``: a 320×240 clip (the "other resolution")."""
    d = tmp_path_factory.mktemp("clips")
    n = 40 * FPS
    if REAL:
        return {"a": _encode(d / "a.mp4", _real_frames(0, n, (384, 288)), FPS),
                "b": _encode(d / "b.mp4", _real_frames(150, n, (384, 288)), FPS),
                "small": _encode(d / "small.mp4", _real_frames(100, n, (320, 240)), FPS)}
    return {"a": _encode(d / "a.mp4", _synthetic_frames(n, (384, 288), 0), FPS),
            "b": _encode(d / "b.mp4", _synthetic_frames(n, (384, 288), 100), FPS),
            "small": _encode(d / "small.mp4", _synthetic_frames(n, (320, 240), 50), FPS)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """One ``tests/rtsp_server.py`` process serving ``name=clip`` mounts on a fixed loopback port."""

    def __init__(self, mounts: dict[str, Path]):
        self.port = _free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.start(mounts)

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self, mounts: dict[str, Path]) -> None:
        args = [str(SYSTEM_PY), str(SERVER), "--port", str(self.port)] + [f"{k}={v}" for k, v in mounts.items()]
        deadline = time.monotonic() + 20
        while True:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return
            self.proc.wait(timeout=10)
            if time.monotonic() > deadline:  # the port may need a moment after a kill
                raise RuntimeError(f"RTSP server did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def servers() -> Iterator[Callable[[dict[str, Path]], RtspServer]]:
    started: list[RtspServer] = []

    def make(mounts: dict[str, Path]) -> RtspServer:
        s = RtspServer(mounts)
        started.append(s)
        return s

    yield make
    for s in started:
        s.kill()


@pytest.fixture(scope="session")
def models() -> tuple[object, object]:
    """(detector, ReID extractor): YOLOX-nano + OSNet ONNX from ../shared, else the blob detector and no ReID."""
    if not REAL:
        return BlobDetector(), None
    from pipeline.detectors.factory import build_detector
    from reid.factory import build_reid

    cfg = _cfg()
    det = build_detector(cfg.detector, {})
    reid = build_reid(cfg.reid) if OSNET_ONNX.is_file() else None
    return det, reid


def _cfg(**live: object) -> MtmcConfig:
    over: dict = {
        "live": {"stall_s": 2.0, "open_timeout_s": 3.0, "read_timeout_s": 3.0, "backoff_initial_s": 0.2,
                 "backoff_max_s": 1.0, "stats_every_s": 1.0, "trajectories_every_s": 2.0, "link_after_s": 2.0,
                 **live},
        "reid": {"spec": str(OSNET_ONNX) if OSNET_ONNX.is_file() else "none"},
    }
    if REAL:
        over["detector"] = {"spec": f"yolox:{YOLOX}", "threads": 1}
    return load_config(None, over)


class LiveThread:
    """``run_live`` in a thread (no signal handling) with helpers to wait for events."""

    def __init__(self, sources: list[str], out: Path, models: tuple[object, object], **live: object):
        self.out = out
        self.stop = threading.Event()
        self.summary: LiveSummary | None = None
        self.error: BaseException | None = None
        det, reid = models

        def target() -> None:
            try:
                self.summary = run_live(sources, _cfg(**live), out, detector=det, extractor=reid,  # type: ignore[arg-type]
                                        stop=self.stop, handle_signals=False)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        p = self.out / "events.jsonl"
        return read_events(p) if p.is_file() else []

    def wait_for(self, pred: Callable[[dict], bool], timeout: float, after: float = -1.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            for ev in self.events():
                if ev["time"] > after and pred(ev):
                    return ev
            time.sleep(0.1)
        kinds = [(e["event"], e.get("camera"), e.get("reason")) for e in self.events()
                 if e["event"] not in ("stats", "track_started", "track_ended", "identity_assigned")]
        raise AssertionError(f"no such event within {timeout} s; stream events so far: {kinds}")

    def finish(self) -> LiveSummary:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "run_live did not stop within 60 s"
        assert self.error is None, self.error
        assert self.summary is not None
        return self.summary


def _is(kind: str, cam: str | None = None) -> Callable[[dict], bool]:
    return lambda e: e["event"] == kind and (cam is None or e.get("camera") == cam)


def _check_final(out: Path) -> list[dict]:
    events = validate_events(out / "events.jsonl")
    started = {(e["camera"], e["local_id"]) for e in events if e["event"] == "track_started"}
    ended = {(e["camera"], e["local_id"]) for e in events if e["event"] == "track_ended"}
    assert started == ended  # every track is closed at exit
    doc = validate_trajectories(out / "trajectories.json")
    assert sum(len(i["segments"]) for i in doc["identities"]) == len(ended)
    return events


def test_two_streams_restart_other_resolution_and_one_down(tmp_path: Path, clips: dict[str, Path], servers,
                                                           models) -> None:
    """Two streams tracked live; stream a's server killed (b keeps its rate) and restarted at 320×240."""
    sa, sb = servers({"a": clips["a"]}), servers({"b": clips["b"]})
    live = LiveThread([f"a={sa.url('a')}", f"b={sb.url('b')}"], tmp_path / "out", models)
    for cam in ("a", "b"):
        live.wait_for(_is("stream_up", cam), 30)
        live.wait_for(_is("track_started", cam), 30)
    live.wait_for(_is("identity_assigned"), 30)

    sa.kill()
    t_kill = time.time()
    down = live.wait_for(_is("stream_down", "a"), 15)
    time.sleep(3.0)
    # while a is down, b keeps coming in at about its own rate and is processed
    during = [e["streams"]["b"] for e in live.events() if e["event"] == "stats" and e["time"] > down["time"] + 0.5]
    assert during, "no stats event while stream a was down"
    assert all(s["state"] == "up" and s["fps_in"] >= 0.5 * FPS and s["fps_out"] > 0 for s in during), during
    assert all(e["streams"]["a"]["state"] == "down" for e in live.events()
               if e["event"] == "stats" and e["time"] > down["time"] + 0.5)

    t_restart = time.time()
    sa.start({"a": clips["small"]})
    up = live.wait_for(_is("stream_up", "a"), 30, after=down["time"])
    assert (up["width"], up["height"]) == (320, 240)
    live.wait_for(_is("track_started", "a"), 30, after=up["time"])  # tracking resumes
    assert live.thread.is_alive()  # the process never exits on its own
    summary = live.finish()
    assert summary.cameras["a"]["reconnects"] >= 1 and summary.cameras["b"]["reconnects"] == 0
    print(f"\nkill: stream_down after {down['wall_time'] - t_kill:.1f} s ({down['reason']}); b during the outage: "
          f"fps_in {[s['fps_in'] for s in during]}; restarted at 320x240: stream_up "
          f"{up['wall_time'] - t_restart:.1f} s after the restart; "
          f"reconnect attempts {summary.cameras['a']['reconnects']}")
    events = _check_final(tmp_path / "out")
    a_ends = [e for e in events if e["event"] == "track_ended" and e["camera"] == "a"]
    assert any(e["end_time"] < down["time"] for e in a_ends)  # tracks ended at the outage...
    assert any(e["start_time"] > up["time"] - 0.5 for e in a_ends)  # ...and new ones after the restart


def test_frozen_server_fires_the_watchdog(tmp_path: Path, clips: dict[str, Path], servers, models) -> None:
    sa = servers({"a": clips["a"]})
    live = LiveThread([f"cam1={sa.url('a')}"], tmp_path / "out", models)
    live.wait_for(_is("stream_up", "cam1"), 30)
    time.sleep(1.0)
    sa.freeze()
    t_freeze = time.monotonic()
    down = live.wait_for(_is("stream_down", "cam1"), 15)
    waited = time.monotonic() - t_freeze
    assert down["reason"].startswith("stalled"), down
    assert waited < 2.0 + 5.0  # stall_s plus a generous margin
    print(f"\nSIGSTOP: stream_down after {waited:.1f} s (stall_s 2): {down['reason']}")
    sa.thaw()
    t_thaw = time.monotonic()
    live.wait_for(_is("stream_up", "cam1"), 30, after=down["time"])
    print(f"SIGCONT: stream_up again after {time.monotonic() - t_thaw:.1f} s")
    live.finish()
    _check_final(tmp_path / "out")


def _live_process(sources: list[str], out: Path) -> subprocess.Popen[str]:
    """``mtmc live`` in its own process (CLI with the ../shared models, or run_live with the blob detector)."""
    if REAL:
        cmd = [sys.executable, "-m", "pipeline.cli", "live", *sources, "-o", str(out), "--detector", f"yolox:{YOLOX}",
               "--reid", str(OSNET_ONNX) if OSNET_ONNX.is_file() else "none"]
    else:
        code = ("import sys; sys.path.insert(0, 'tests'); from test_live import BlobDetector; "
                "from pipeline.config import load_config; from pipeline.live import run_live; "
                f"run_live({sources!r}, load_config(), {str(out)!r}, detector=BlobDetector(), extractor=None); "
                "sys.exit(0)")
        cmd = [sys.executable, "-c", code]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_events(out: Path, pred: Callable[[dict], bool], timeout: float, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = out / "events.jsonl"
        if p.is_file() and any(pred(e) for e in read_events(p)):
            return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    raise AssertionError(f"event not seen within {timeout} s")


def test_sigint_writes_valid_final_files_and_a_second_one_exits_at_once(tmp_path: Path, clips: dict[str, Path],
                                                                       servers) -> None:
    s = servers({"a": clips["a"], "b": clips["b"]})
    out = tmp_path / "out"
    proc = _live_process([s.url("a"), s.url("b")], out)
    _wait_events(out, _is("track_started"), 60, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if REAL else 0), err[-2000:]  # the CLI: 128 + SIGINT; the -c script exits 0
    events = _check_final(out)
    assert events[-1]["event"] == "stats"

    out2 = tmp_path / "out2"
    proc = _live_process([s.url("a")], out2)
    _wait_events(out2, _is("stream_up"), 60, proc)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)  # the second signal: exit at once, with the first handled signal's code
    proc.communicate(timeout=30)
    assert proc.returncode in (130, 143)  # Python runs pending handlers by signal number: SIGINT may come first
    validate_events(out2 / "events.jsonl")  # whatever was written is whole lines of valid events
    if (out2 / "trajectories.json").is_file():
        validate_trajectories(out2 / "trajectories.json")


def test_credentials_never_written(tmp_path: Path, clips: dict[str, Path], servers, models) -> None:
    sa = servers({"a": clips["a"]})
    url = sa.url("a").replace("rtsp://", "rtsp://admin:hunter2@")
    live = LiveThread([url], tmp_path / "out", models)
    live.wait_for(_is("stream_up"), 30)
    live.finish()
    for f in (tmp_path / "out").iterdir():
        assert "hunter2" not in f.read_text(), f.name
    assert "***:***@" in json.loads((tmp_path / "out" / "trajectories.json").read_text())["cameras"][0]["source"]
