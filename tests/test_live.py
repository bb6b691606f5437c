"""Live mode without a server: sources, events schema, tracklet closing, files played as live, CLI errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import moving_box_frames, write_video

from pipeline.cli import EXIT_ERROR, main
from pipeline.config import TrackletConfig, load_config
from pipeline.errors import InputError
from pipeline.events import EventWriter, events_schema, read_events
from pipeline.export import trajectories_schema
from pipeline.live import run_live
from pipeline.live_reader import parse_source, parse_sources
from pipeline.tracklets import TrackletBuilder
from pipeline.types import Detections, Frame, TrackOutput


class BlobDetector:
    """Test detector: one box per bright blob (the synthetic videos' moving rectangles)."""

    name = "blob"
    max_batch = 64

    def detect(self, frames: list[Frame]) -> list[Detections]:
        import cv2

        out = []
        for f in frames:
            assert f.image is not None
            mask = (f.image.max(axis=2) > 120).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:n] if area > 200]
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9),
                                  np.zeros(len(boxes), np.int64)))
        return out

    def close(self) -> None:
        pass


def validate_events(path: Path) -> list[dict]:
    """Every line of ``events.jsonl`` parses and matches the events schema; returns the events."""
    lines = path.read_text().splitlines()
    schema = events_schema()
    events = [json.loads(line) for line in lines]
    for ev in events:
        jsonschema.validate(ev, schema)
    return events


def validate_trajectories(path: Path) -> dict:
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, trajectories_schema())
    return doc


def test_parse_sources_names_urls_and_files() -> None:
    s = parse_source("lobby=rtsp://user:secret@10.0.0.5:554/stream1?x=1")
    assert (s.camera_id, s.url, s.is_file) == ("lobby", "rtsp://user:secret@10.0.0.5:554/stream1?x=1", False)
    assert "secret" not in s.display and "***" in s.display
    assert parse_source("rtsp://10.0.0.5/live/cam3").camera_id == "live_cam3"
    assert parse_source("http://cam.local:8080/").camera_id == "cam.local"
    f = parse_source("videos/Door Cam.mp4")
    assert (f.camera_id, f.is_file) == ("Door_Cam", True)
    ids = [s.camera_id for s in parse_sources(["a=x.mp4", "a=y.mp4", "rtsp://h/a"])]
    assert ids == ["a", "a_2", "a_3"]


@pytest.mark.parametrize("bad, match", [
    ("ftp://user:pw@host/x", "unsupported scheme 'ftp'"),
    ("=rtsp://host/x", "invalid source|cannot derive"),
    ("cam=", "invalid source|expected name=URL"),
    ("   ", "empty source"),
])
def test_parse_source_errors_are_one_line_and_masked(bad: str, match: str) -> None:
    with pytest.raises(InputError, match=match) as e:
        parse_source(bad)
    assert "\n" not in str(e.value) and "pw@" not in str(e.value)
    with pytest.raises(InputError, match="no live source"):
        parse_sources([])


def test_event_writer_lines_match_the_schema(tmp_path: Path) -> None:
    w = EventWriter(tmp_path / "e.jsonl", t0=0.0)
    w.write("stream_up", camera="a", source="rtsp://***:***@h/a", width=640, height=480, fps=25.0, time=1.0)
    w.write("track_started", camera="a", local_id=1, frame=0, xyxy=[1, 2, 3, 4], latency_s=0.1, time=1.0)
    w.write("identity_assigned", camera="a", local_id=1, global_id=1, new_identity=True)
    w.write("identity_merged", global_id=2, merged_into=1)
    w.write("track_ended", camera="a", local_id=1, global_id=1, start_time=1.0, end_time=2.0, start_frame=0,
            end_frame=9, boxes=10, num_features=3, last_xyxy=[1, 2, 3, 4])
    w.write("stream_down", camera="a", source="rtsp://h/a", reason="stalled")
    w.write("stats", period_s=5.0, memory_mb=100.0, streams={"a": {
        "state": "up", "fps_in": 25.0, "fps_out": 20.0, "dropped": 25, "dropped_total": 30,
        "latency_p50_s": 0.1, "latency_p95_s": 0.2, "width": 640, "height": 480}})
    w.close()
    w.write("stats", period_s=1.0, memory_mb=None, streams={})  # after close: ignored
    events = validate_events(tmp_path / "e.jsonl")
    assert [e["event"] for e in events][-1] == "stats" and len(events) == 7
    schema = events_schema()
    for bad in ({"event": "track_started", "time": 1, "wall_time": 1, "camera": "a"},
                {"event": "stream_down", "time": 1, "wall_time": 1, "camera": "a", "reason": "x",
                 "source": "rtsp://user:pw@h/a"},
                {"event": "nope", "time": 1, "wall_time": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    (tmp_path / "e.jsonl").write_text((tmp_path / "e.jsonl").read_text() + '{"event": "sta')
    assert len(read_events(tmp_path / "e.jsonl")) == 7  # a torn last line is skipped


def test_tracklet_builder_pop_started_and_ended() -> None:
    b = TrackletBuilder("c", TrackletConfig())
    img = np.zeros((100, 100, 3), np.uint8)
    for i in range(5):
        f = Frame("c", i, i * 0.1, img, 100, 100)
        outs = [TrackOutput(i, 1, np.array([10, 10, 40, 90], np.float32), 0.9)]
        if i >= 2:
            outs.append(TrackOutput(i, 2, np.array([50, 10, 80, 90], np.float32), 0.9))
        if i >= 3:
            outs = outs[1:]  # track 1 lost after frame 2
        embed, good = b.select(f, outs)
        b.add(f, outs, None, np.zeros(len(outs), bool), good)
        started = b.pop_started()
        assert [s[0] for s in started] == ([1] if i == 0 else [2] if i == 2 else [])
    assert b.open_span(1) == (0.0, 0.2, 0) and b.open_ids == [1, 2]
    assert b.pop_ended(now=1.0, max_age_s=1.0) == []  # 0.8 s old: the tracker may still bring it back
    ended = b.pop_ended(now=1.25, max_age_s=1.0)
    assert [t.local_id for t in ended] == [1] and len(ended[0]) == 3
    snap = b.snapshot(2)
    assert snap is not None and len(snap) == 3 and b.open_ids == [2]
    assert [t.local_id for t in b.finish()] == [2]


def _live_cfg(**live: object):
    over = {"live": {"stats_every_s": 0.5, "trajectories_every_s": 0.5, "link_after_s": 0.5, **live},
            "tracker": {"min_hits": 2}}
    return load_config(None, over)


def test_files_played_as_live_end_by_themselves(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a.mp4", moving_box_frames(40), fps=20)
    b = write_video(tmp_path / "b.mp4", moving_box_frames(30, size=(200, 320)), fps=20)
    out = tmp_path / "out"
    summary = run_live([f"left={a}", str(b), str(tmp_path / "missing.mp4")], _live_cfg(), out,
                       detector=BlobDetector(), extractor=None, duration_s=30)
    assert set(summary.cameras) == {"left", "b"}
    assert all(c["state"] == "ended" and c["frames_in"] >= 25 for c in summary.cameras.values())
    assert 1.5 <= summary.wall_s < 25  # 2 s of video at its own pace (not decoded as fast as possible)
    events = validate_events(out / "events.jsonl")
    kinds = [e["event"] for e in events]
    for k in ("stream_up", "track_started", "track_ended", "identity_assigned", "stream_down", "stats"):
        assert k in kinds, k
    started = {(e["camera"], e["local_id"]) for e in events if e["event"] == "track_started"}
    ended = {(e["camera"], e["local_id"]) for e in events if e["event"] == "track_ended"}
    assert started == ended and {c for c, _ in started} == {"left", "b"}
    assert all(e["reason"] == "end of file" for e in events if e["event"] == "stream_down")
    doc = validate_trajectories(out / "trajectories.json")
    assert {c["id"] for c in doc["cameras"]} == {"left", "b"}
    assert sum(len(i["segments"]) for i in doc["identities"]) == len(ended)


def test_cli_live_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["live", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "no usable live source" in err and "nope.mp4" in err
    assert main(["live", "gopher://u:pw@h/x", "-o", str(tmp_path / "o")]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "unsupported scheme" in err and "pw" not in err and len(err.splitlines()) == 1
    assert main(["live", "-o", str(tmp_path / "o")]) == EXIT_ERROR
    assert "no live source given" in capsys.readouterr().err
    (tmp_path / "notes.mp4").write_text("not a video")
    assert main(["live", str(tmp_path / "notes.mp4"), "-o", str(tmp_path / "o"), "--detector", "x.onnx"]) == EXIT_ERROR
    assert "x.onnx" in capsys.readouterr().err  # a model error: one line, exit 2


def test_unreachable_stream_is_reported_down_and_retried(tmp_path: Path) -> None:
    """A stream that refuses connections is down (once, with its reason) and retried with back-off, not fatal."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = write_video(tmp_path / "a.mp4", moving_box_frames(30), fps=10)
    out = tmp_path / "out"
    summary = run_live([f"gone=rtsp://bob:pw@127.0.0.1:{port}/x", f"here={a}"],
                       _live_cfg(backoff_initial_s=0.1, backoff_max_s=0.4, open_timeout_s=1.0), out,
                       detector=BlobDetector(), extractor=None, duration_s=4.0)
    assert summary.cameras["gone"]["state"] == "down" and summary.cameras["gone"]["reconnects"] >= 3
    assert summary.cameras["here"]["frames"] > 0
    events = validate_events(out / "events.jsonl")
    downs = [e for e in events if e["event"] == "stream_down" and e["camera"] == "gone"]
    assert len(downs) == 1 and "pw" not in json.dumps(downs) and "***:***@" in downs[0]["source"]
    doc = validate_trajectories(out / "trajectories.json")
    gone = next(c for c in doc["cameras"] if c["id"] == "gone")
    assert gone["status"] == "failed" and gone["frames"] == 0
