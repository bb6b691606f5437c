"""Bounded live memory: ``live.retention_s`` flushes old identities to ``trajectories.jsonl``; UTC times.

The linker's :meth:`~trackers.linking.incremental.IncrementalLinker.forget`, a
session driven on its own clock (frames with chosen timestamps, ``retire(now)``),
and short real sessions on a looped synthetic video.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import write_video
from test_live import BlobDetector

from pipeline.config import LinkConfig, load_config
from pipeline.events import read_events
from pipeline.export import identity_schema, trajectories_schema, utc_iso
from pipeline.live import run_live
from pipeline.live_reader import LiveFrame, parse_sources
from pipeline.live_session import LiveSession
from pipeline.redact import redact
from pipeline.types import Tracklet
from trackers.linking.incremental import IncrementalLinker


class RandomExtractor:
    """Test ReID: a random feature per crop, so every track is its own identity (and in the gallery)."""

    name = "random"
    batch = 8

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.rng.normal(size=(len(crops), 32)).astype(np.float32)

    def close(self) -> None:
        pass


def _tracklet(cam: str, lid: int, t0: float, t1: float, feat: np.ndarray | None) -> Tracklet:
    ts = np.linspace(t0, t1, 5)
    return Tracklet(camera_id=cam, local_id=lid, frames=np.arange(5), timestamps=ts,
                    boxes=np.tile(np.array([0, 0, 10, 20], np.float32), (5, 1)), scores=np.full(5, 0.9),
                    feature=feat, num_features=1 if feat is not None else 0)


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


# ------------------------------------------------------------------ the linker


def test_linker_forget_removes_identities_and_keeps_resolve_sane() -> None:
    lk = IncrementalLinker(LinkConfig(decision_delay_s=0.0, incremental_threshold=0.3))
    a, b = _unit([1, 0, 0, 0]), _unit([0, 1, 0, 0])
    t1, t2, t3 = _tracklet("c1", 1, 0, 1, a), _tracklet("c2", 1, 2, 3, b), _tracklet("c1", 2, 5, 6, b)
    lk.add([t1, t2])
    lk.add([t3])
    assert (t1.global_id, t2.global_id, t3.global_id) == (1, 2, 2)
    assert lk.gallery_size == 2 and lk.num_identities == 2
    # a bridging tracklet merges two identities (4 into 3); forgetting 4 forgets its survivor 3
    u, v = _unit([0, 0, 1, 0, 0]), _unit([0, 0, 0.6, 0.8, 0])
    t4, t5 = _tracklet("c1", 3, 10, 11, u[:4]), _tracklet("c2", 3, 12, 13, v[:4])
    lk.add([t4])
    lk.add([t5])
    assert (t4.global_id, t5.global_id) == (3, 4)
    events = lk.add([_tracklet("c3", 3, 14, 15, _unit([0, 0, 1.6, 0.8]))])
    assert [(e.kind, e.global_id, e.merged_into) for e in events if e.kind == "identity_merged"] == [
        ("identity_merged", 4, 3)]
    assert lk.resolve(4) == 3
    open_t = _tracklet("c4", 1, 20, 21, _unit([0, 0, 0, 1]))
    lk.add([open_t], still_open=True)  # a track still in view: its identity is busy, never forgotten
    gid_open = open_t.global_id
    assert lk.busy(gid_open) and not lk.busy(1)
    assert lk.forget([1, t5.global_id, gid_open]) == [1, 3]
    assert lk.num_identities == 2 and lk.gallery_size == 2 and lk.resolve(gid_open) == gid_open
    for gone in (1, 3, t5.global_id):
        with pytest.raises(KeyError, match="forgotten"):
            lk.resolve(gone)
    with pytest.raises(KeyError, match="never assigned"):
        lk.resolve(99)
    # the same person seen again after being forgotten gets a new id
    again = _tracklet("c1", 9, 30, 31, a)
    lk.add([again])
    assert again.global_id == gid_open + 1 and lk.gallery_size == 3
    # identity 2 still takes its own look-alike
    t6 = _tracklet("c5", 7, 32, 33, b)
    lk.add([t6])
    assert t6.global_id == 2


def test_linker_forget_compacts_member_tables_and_gallery_rows() -> None:
    rng = np.random.default_rng(1)
    lk = IncrementalLinker(LinkConfig(decision_delay_s=0.0, incremental_threshold=0.2))
    keep: list[Tracklet] = []
    for rnd in range(6):
        batch = [_tracklet(f"c{i % 3}", rnd * 1000 + i, rnd * 100 + i * 0.01, rnd * 100 + i * 0.01 + 0.5,
                           rng.normal(size=64).astype(np.float32)) for i in range(600)]
        lk.add(batch)
        old = [t.global_id for t in batch[:-5]]
        assert lk.forget(old)
        keep += batch[-5:]
    assert lk.num_identities == 30 and lk.gallery_size == 30
    assert len(lk._member_gid) < 1500  # compacted: not 3600 rows
    assert lk._rows <= 700  # gallery slots are reused, not one per id ever given
    for t in keep:  # the survivors still resolve and still match their own feature
        assert lk.resolve(t.global_id) == t.global_id
    probe = _tracklet("c9", 1, 1000, 1001, np.asarray(keep[-1].feature))
    lk.add([probe])
    assert probe.global_id == keep[-1].global_id


# ------------------------------------------------------------------ a session on its own clock


def _frames_of(cam: str, start: float, n: int, x0: int, fps: float = 10.0, first_index: int = 0) -> list[LiveFrame]:
    out = []
    for i in range(n):
        img = np.full((240, 320, 3), 30, np.uint8)
        img[60:180, x0 + 4 * i: x0 + 4 * i + 50] = (200, 180, 160)
        out.append(LiveFrame(cam, first_index + i, start + i / fps, img, 320, 240, capture_mono=time.monotonic()))
    return out


def _empty(cam: str, start: float, n: int, first_index: int, fps: float = 10.0) -> list[LiveFrame]:
    img = np.full((240, 320, 3), 30, np.uint8)
    return [LiveFrame(cam, first_index + i, start + i / fps, img, 320, 240, capture_mono=time.monotonic())
            for i in range(n)]


def test_session_flushes_old_identities_once_and_forgets_them(tmp_path: Path) -> None:
    cfg = load_config(None, {"live": {"retention_s": 1.0, "link_after_s": None},
                             "tracker": {"min_hits": 2, "max_age_s": 0.3}, "linking": {"decision_delay_s": 0.0}})
    out = tmp_path / "out"
    out.mkdir()
    src = parse_sources(["cam=rtsp://admin:hunter2@10.0.0.9/s?token=abc"])
    session = LiveSession(src, cfg, out, BlobDetector(), RandomExtractor(), time.monotonic(), lambda m: None)
    base = 1000.0  # frames far ahead of the real session clock: only the test's retire(now) calls flush
    try:
        idx = 0
        for k in range(4):  # a person crosses the view every 3 s of the session clock, then leaves
            for f in (_frames_of("cam", base + 3.0 * k, 12, 20, first_index=idx)
                      + _empty("cam", base + 3.0 * k + 1.2, 10, idx + 12)):
                session.process([f])
                session.housekeeping()
            idx += 22
        assert sum(len(v) for v in session.done.values()) == 4
        assert session.linker.num_identities == 4 and session.linker.gallery_size == 4
        # persons were in view at 0-1.1, 3-4.1, 6-7.1, 9-10.1 s: at 7.5 s the first two left over 1 s ago
        assert session.retire(base + 7.5) == [1, 2]
        assert session.retire(base + 7.5) == []  # exactly once
        assert session.retire(base + 12.5) == [3, 4]
        assert session.linker.gallery_size == 0 and session.linker.num_identities == 0
        assert not any(session.done.values()) and not session.assigned
        session.write_trajectories(final=True)
    finally:
        session.events.close()
        session.close_files()
    text = (out / "trajectories.jsonl").read_text()
    assert "hunter2" not in text and json.loads(json.dumps(redact(json.loads(text.splitlines()[0])))) == json.loads(
        text.splitlines()[0])
    lines = read_events(out / "trajectories.jsonl")
    assert [ln["global_id"] for ln in lines] == [1, 2, 3, 4]
    for ln in lines:
        jsonschema.validate(ln, identity_schema())
        assert ln["start_utc"].endswith("Z") and ln["segments"][0]["end_utc"] == ln["end_utc"]
    doc = json.loads((out / "trajectories.json").read_text())
    jsonschema.validate(doc, trajectories_schema())
    assert doc["identities"] == [] and doc["run"]["linking"]["flushed_identities"] == 4
    assert "hunter2" not in (out / "trajectories.json").read_text()


# ------------------------------------------------------------------ real sessions on a looped video


def _crossing_video(path: Path) -> Path:
    """1.2 s of a box crossing the view, then 1.2 s of nothing (20 fps): looped, a new person every 2.4 s."""
    frames = []
    for i in range(48):
        img = np.full((240, 320, 3), 30, np.uint8)
        if i < 24:
            img[60:180, 20 + 8 * i: 70 + 8 * i] = (200, 180, 160)
        frames.append(img)
    return write_video(path, frames, fps=20)


def _run(tmp_path: Path, retention_s: float, seconds: float) -> tuple[Path, object]:
    video = _crossing_video(tmp_path / "door.mp4")
    cfg = load_config(None, {"live": {"loop_files": True, "retention_s": retention_s, "trajectories_every_s": 0.5,
                                      "stats_every_s": 0.5, "link_after_s": 0.5},
                             "tracker": {"min_hits": 2, "max_age_s": 0.2}, "linking": {"decision_delay_s": 0.0}})
    out = tmp_path / "out"
    summary = run_live([f"a={video}", f"b={video}"], cfg, out, detector=BlobDetector(), extractor=RandomExtractor(),
                       duration_s=seconds)
    return out, summary


def test_live_session_flushes_to_jsonl_and_snapshot_holds_the_window(tmp_path: Path) -> None:
    out, summary = _run(tmp_path, retention_s=1.0, seconds=4.5)
    lines = read_events(out / "trajectories.jsonl")
    assert lines and summary.flushed == len(lines)
    schema = identity_schema()
    for ln in lines:
        jsonschema.validate(ln, schema)
    doc = json.loads((out / "trajectories.json").read_text())
    jsonschema.validate(doc, trajectories_schema())
    flushed = {ln["global_id"] for ln in lines}
    kept = {i["global_id"] for i in doc["identities"]}
    assert len(flushed) == len(lines) and not flushed & kept  # each identity once, in one place
    assert doc["run"]["linking"]["flushed_identities"] == len(lines)
    segs = [(s["camera"], s["local_id"]) for i in [*lines, *doc["identities"]] for s in i["segments"]]
    ended = [(e["camera"], e["local_id"]) for e in read_events(out / "events.jsonl") if e["event"] == "track_ended"]
    assert sorted(segs) == sorted(ended)  # every track once, in the jsonl or in the snapshot
    end_wall = max(e["wall_time"] for e in read_events(out / "events.jsonl"))
    for ln in lines:  # flushed: last seen more than retention_s before the end of the session
        assert datetime.fromisoformat(ln["end_utc"].replace("Z", "+00:00")).timestamp() < end_wall - 1.0
    assert sum(c["tracks"] for c in summary.cameras.values()) == len(ended)


def test_live_session_without_retention_pressure_writes_no_lines(tmp_path: Path) -> None:
    out, summary = _run(tmp_path, retention_s=3600.0, seconds=3.0)
    assert summary.flushed == 0
    assert not (out / "trajectories.jsonl").exists() or (out / "trajectories.jsonl").read_text() == ""
    doc = json.loads((out / "trajectories.json").read_text())
    assert doc["identities"] and doc["run"]["linking"]["flushed_identities"] == 0
    ident = doc["identities"][0]
    start = datetime.fromisoformat(ident["start_utc"].replace("Z", "+00:00")).timestamp()
    events = read_events(out / "events.jsonl")
    first = next(e for e in events if e["event"] == "track_started")
    assert abs(start - (first["wall_time"] - (first["time"] - ident["start_time"]))) < 0.5


def test_utc_iso_and_torn_last_line(tmp_path: Path) -> None:
    assert utc_iso(0.0) == "1970-01-01T00:00:00.000Z" and utc_iso(1.2345) == "1970-01-01T00:00:01.234Z"
    p = tmp_path / "trajectories.jsonl"
    p.write_text('{"global_id": 1}\n{"global_id": 2, "cam')
    assert [x["global_id"] for x in read_events(p)] == [1]
