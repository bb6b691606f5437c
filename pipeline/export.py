"""Writers for a run's outputs: MOTChallenge tracks, ``summary.json``, ``trajectories.json``.

Every file is written atomically (:mod:`pipeline.atomic`: temporary file, then
rename), so a reader never sees half a file, and with secrets masked
(:mod:`pipeline.redact`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import write_json_atomic
from pipeline.mot_format import write_mot_txt
from pipeline.results import RunResult

SCHEMA_VERSION = "1.0"


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


def trajectories(result: RunResult) -> dict[str, Any]:
    """Build the ``trajectories.json`` document (schema ``pipeline/schemas/trajectories.schema.json``).

    Identities are sorted by global id; each holds one segment per tracklet
    (camera, local track id, first/last frame (0-based) and time (s)) with its
    per-frame boxes (``xyxy``, pixels) and scores. ``merges`` lists the identity
    merges of incremental linking (ids in ``identities`` are already resolved).
    """
    by_gid: dict[int, list] = {}
    for cam in result.cameras.values():
        for t in cam.tracklets:
            by_gid.setdefault(int(t.global_id or 0), []).append(t)
    identities = []
    for gid in sorted(by_gid):
        segs = sorted(by_gid[gid], key=lambda t: (t.start_time, t.camera_id))
        identities.append({
            "global_id": gid,
            "cameras": sorted({t.camera_id for t in segs}),
            "start_time": _r(min(t.start_time for t in segs), 3),
            "end_time": _r(max(t.end_time for t in segs), 3),
            "segments": [
                {
                    "camera": t.camera_id,
                    "local_id": int(t.local_id),
                    "start_frame": int(t.frames[0]),
                    "end_frame": int(t.frames[-1]),
                    "start_time": _r(t.start_time, 3),
                    "end_time": _r(t.end_time, 3),
                    "num_features": int(t.num_features),
                    "boxes": [
                        {"frame": int(f), "time": _r(ts, 3), "xyxy": [_r(v) for v in b], "score": _r(sc, 3)}
                        for f, ts, b, sc in zip(t.frames, t.timestamps, np.asarray(t.boxes), t.scores, strict=True)
                    ],
                }
                for t in segs
            ],
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "created": result.created,
            "wall_s": _r(result.wall_s, 3),
            "models": {"detector": result.detector, "reid": result.reid},
            "linking": result.linking,
            "config": result.config,
            "interrupted": result.interrupted,
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


def write_trajectories(result: RunResult, out_dir: str | Path) -> None:
    """Write ``trajectories.json`` (:func:`trajectories`). Raises ``OSError`` when ``out_dir`` is not writable."""
    write_json_atomic(Path(out_dir) / "trajectories.json", trajectories(result))
