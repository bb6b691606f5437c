"""Writers for a run's outputs: MOTChallenge tracks, ``summary.json``, ``trajectories.json``.

Every file is written atomically (:mod:`pipeline.atomic`: temporary file, then
rename), so a reader never sees half a file, and with secrets masked
(:mod:`pipeline.redact`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import write_json_atomic
from pipeline.clock import format_utc
from pipeline.mot_format import write_mot_txt
from pipeline.results import RunResult
from pipeline.types import Tracklet

SCHEMA_VERSION = "1.1"


def trajectories_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``trajectories.json``, kept in ``pipeline/schemas/``."""
    text = resources.files("pipeline").joinpath("schemas/trajectories.schema.json").read_text()
    return json.loads(text)


def write_tracks(result: RunResult, out_dir: str | Path) -> None:
    """Write ``tracks/<camera>.txt`` (MOTChallenge, global ids) for every camera,
    a failed one too (its rows up to the failure).

    Raises:
        OSError: ``out_dir`` cannot be created or written.
    """
    tracks = Path(out_dir) / "tracks"
    tracks.mkdir(parents=True, exist_ok=True)
    for cam in result.cameras.values():
        write_mot_txt(tracks / f"{cam.camera_id}.txt", cam.rows)


def write_summary(result: RunResult, out_dir: str | Path) -> None:
    """Write ``summary.json`` (fields in the README). Raises ``OSError`` when ``out_dir`` is not writable."""
    write_json_atomic(Path(out_dir) / "summary.json", result.summary())


def _r(x: float, nd: int = 2) -> float:
    return round(float(x), nd)


def utc_iso(unix_s: float) -> str:
    """Unix seconds as an ISO 8601 UTC time with milliseconds: ``2026-05-01T08:00:03.200Z``
    (:func:`pipeline.clock.format_utc`)."""
    return format_utc(datetime.fromtimestamp(float(unix_s), timezone.utc))


def identity_schema() -> dict[str, Any]:
    """The JSON Schema of one identity of ``trajectories.json`` (= one line of live ``trajectories.jsonl``)."""
    schema = trajectories_schema()
    return {"$schema": schema["$schema"], **schema["properties"]["identities"]["items"]}


def identity_record(gid: int, tracklets: Sequence[Tracklet], utc_origin: float | None = None,
                    offsets: Mapping[str, float] | None = None) -> dict[str, Any]:
    """One entry of ``trajectories.json``'s ``identities`` (and one line of ``trajectories.jsonl``).

    One segment per tracklet (camera, local track id, first/last frame (0-based)
    and time (s)) with its per-frame boxes (``xyxy``, pixels) and scores, in
    order of start time. ``utc_origin``: Unix time (s) of time 0 of the
    tracklets' clock; when given, the identity and each segment also get
    ``start_utc``/``end_utc`` (ISO 8601, :func:`utc_iso`). ``offsets``: camera id →
    clock offset (s, :mod:`pipeline.clock`; offline runs): segment and box times are
    then seconds from that camera's first frame (tracklet time − offset), and each
    segment gets ``clock_start_time``/``clock_end_time`` on the common clock; the
    identity's ``start_time``/``end_time`` are always on the tracklets' (common) clock.
    """
    segs = sorted(tracklets, key=lambda t: (t.start_time, t.camera_id))
    off = {t.camera_id: float((offsets or {}).get(t.camera_id, 0.0)) for t in segs}
    out: dict[str, Any] = {
        "global_id": int(gid),
        "cameras": sorted({t.camera_id for t in segs}),
        "start_time": _r(min(t.start_time for t in segs), 3),
        "end_time": _r(max(t.end_time for t in segs), 3),
        "segments": [
            {
                "camera": t.camera_id,
                "local_id": int(t.local_id),
                "start_frame": int(t.frames[0]),
                "end_frame": int(t.frames[-1]),
                "start_time": _r(t.start_time - off[t.camera_id], 3),
                "end_time": _r(t.end_time - off[t.camera_id], 3),
                **({} if offsets is None else {"clock_start_time": _r(t.start_time, 3),
                                               "clock_end_time": _r(t.end_time, 3)}),
                "num_features": int(t.num_features),
                "boxes": [
                    {"frame": int(f), "time": _r(ts - off[t.camera_id], 3), "xyxy": [_r(v) for v in b],
                     "score": _r(sc, 3)}
                    for f, ts, b, sc in zip(t.frames, t.timestamps, np.asarray(t.boxes), t.scores, strict=True)
                ],
            }
            for t in segs
        ],
    }
    if utc_origin is not None:
        for item, (start, end) in zip((out, *out["segments"]),
                                      ((min(t.start_time for t in segs), max(t.end_time for t in segs)),
                                       *((t.start_time, t.end_time) for t in segs)), strict=True):
            item["start_utc"] = utc_iso(utc_origin + start)
            item["end_utc"] = utc_iso(utc_origin + end)
    return out


def trajectories(result: RunResult, utc_origin: float | None = None) -> dict[str, Any]:
    """Build the ``trajectories.json`` document (schema ``pipeline/schemas/trajectories.schema.json``).

    Identities (:func:`identity_record`) are sorted by global id. ``merges`` lists the identity
    merges of incremental linking (ids in ``identities`` are already resolved). ``utc_origin``:
    Unix time (s) of time 0 of the tracklets' clock (live mode: the session start), adds UTC times;
    offline it comes from ``result.clock`` (the earliest camera start time, when one is known),
    which also gives each camera's ``clock`` entry and offset (:mod:`pipeline.clock`).
    """
    by_gid: dict[int, list] = {}
    for cam in result.cameras.values():
        for t in cam.tracklets:
            by_gid.setdefault(int(t.global_id or 0), []).append(t)
    clock = result.clock
    offsets = None if clock is None else {cid: c.offset_s for cid, c in clock.cameras.items()}
    if utc_origin is None and clock is not None and clock.origin is not None:
        utc_origin = clock.origin.timestamp()
    identities = [identity_record(gid, by_gid[gid], utc_origin, offsets) for gid in sorted(by_gid)]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "created": result.created,
            "wall_s": _r(result.wall_s, 3),
            "models": {"detector": result.detector, "reid": result.reid},
            "linking": result.linking,
            "config": result.config,
            "interrupted": result.interrupted,
            **({} if clock is None else {"clock_origin": clock.utc(0.0)}),
        },
        "cameras": [
            {
                "id": c.camera_id,
                "source": c.source,
                "fps": _r(c.fps, 3),
                "width": c.width,
                "height": c.height,
                "frames": c.frames,
                "status": c.status,
                "error": c.error,
                **({} if c.clock is None else {"clock": c.clock.to_dict()}),
            }
            for c in result.cameras.values()
        ],
        "identities": identities,
        "merges": list(result.merges),
        "tracklets_without_feature": [
            {"camera": c.camera_id, "local_id": int(t.local_id), "boxes": len(t)}
            for c in result.cameras.values() for t in c.tracklets if t.feature is None
        ],
    }


def write_trajectories(result: RunResult, out_dir: str | Path, utc_origin: float | None = None) -> None:
    """Write ``trajectories.json`` (:func:`trajectories`). Raises ``OSError`` when ``out_dir`` is not writable."""
    write_json_atomic(Path(out_dir) / "trajectories.json", trajectories(result, utc_origin))
