"""A finished run as the report sees it: ``summary.json``, ``trajectories.json`` and ``features.npz``.

Nothing here decodes video: identities, segments and boxes come from
``trajectories.json``, the crops behind each tracklet's feature and the linking
distances from ``features.npz`` (:mod:`pipeline.feature_store`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.feature_store import FEATURES_FILE, FeatureStore

log = logging.getLogger(__name__)


@dataclass
class Segment:
    """One tracklet of an identity.

    Attributes:
        camera: camera id. local_id: the camera tracker's id.
        start_time, end_time: seconds on the run's common clock.
        frames: T ``int64`` 0-based frame indices of the camera. boxes: T×4 ``float32`` ``xyxy`` pixels.
        scores: T ``float32`` detection scores.
        feature_frames: ``int64`` frames whose crops made the tracklet's feature (empty without one).
        nearest_distance: smallest linking distance to another camera's tracklet (``None``: none).
    """

    camera: str
    local_id: int
    start_time: float
    end_time: float
    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    feature_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    nearest_distance: float | None = None


@dataclass
class Identity:
    """One global identity: its segments in order of start time."""

    global_id: int
    segments: list[Segment]

    @property
    def cameras(self) -> list[str]:
        """Camera ids it was seen in, sorted."""
        return sorted({s.camera for s in self.segments})

    @property
    def start_time(self) -> float:
        """First seen (s, common clock)."""
        return min(s.start_time for s in self.segments)

    @property
    def end_time(self) -> float:
        """Last seen (s, common clock)."""
        return max(s.end_time for s in self.segments)

    def seen(self, camera: str) -> tuple[float, float]:
        """``(first, last)`` seen in ``camera`` (s, common clock)."""
        segs = [s for s in self.segments if s.camera == camera]
        return min(s.start_time for s in segs), max(s.end_time for s in segs)


@dataclass
class RunView:
    """What the report and ``mtmc search`` read of one run.

    Attributes:
        out: the run's output folder.
        summary: ``summary.json`` as a dict.
        cameras: the ``cameras`` entries of ``summary.json`` (id, source, kind, fps, frames, tracks ...).
        identities: by global id.
        store: ``features.npz``, ``None`` when the run kept no features.
        created: ISO 8601 UTC time the run started (``trajectories.json``), ``""`` when unknown.
    """

    out: Path
    summary: dict[str, Any]
    cameras: list[dict[str, Any]]
    identities: list[Identity]
    store: FeatureStore | None
    created: str = ""

    @property
    def linking(self) -> dict[str, Any]:
        """The ``linking`` section of ``summary.json``."""
        return dict(self.summary.get("linking") or {})

    def identity(self, global_id: int) -> Identity:
        """The identity ``global_id``. Raises ``KeyError`` when the run has none such."""
        for ident in self.identities:
            if ident.global_id == global_id:
                return ident
        raise KeyError(global_id)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path} not found: {path.parent} is not a finished mtmc run output folder ({what}); "
                         "pass the -o folder of mtmc run")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); rerun mtmc run") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not an mtmc {what}; rerun mtmc run")
    return data


def _segment(raw: dict[str, Any], features: dict[tuple[str, int], tuple[np.ndarray, float | None]]) -> Segment:
    boxes = raw.get("boxes") or []
    ff, near = features.get((raw["camera"], int(raw["local_id"])), (np.zeros(0, np.int64), None))
    return Segment(
        camera=raw["camera"], local_id=int(raw["local_id"]),
        start_time=float(raw.get("clock_start_time", raw["start_time"])),
        end_time=float(raw.get("clock_end_time", raw["end_time"])),
        frames=np.array([b["frame"] for b in boxes], np.int64),
        boxes=np.array([b["xyxy"] for b in boxes], np.float32).reshape(-1, 4),
        scores=np.array([b.get("score", 1.0) for b in boxes], np.float32),
        feature_frames=ff, nearest_distance=near,
    )


def load_run(out: str | Path, need_features: bool = False) -> RunView:
    """Read a run's outputs.

    Args:
        out: the ``-o`` folder of ``mtmc run`` (or ``mtmc live``).
        need_features: raise when ``features.npz`` is missing instead of loading without it.

    Raises:
        InputError: ``out`` is not a run folder (no ``summary.json`` / ``trajectories.json``), a file is
            unreadable, or ``features.npz`` is missing while ``need_features``.
    """
    root = Path(out)
    if not root.is_dir():
        raise InputError(f"{root}: run folder not found; pass the -o folder of mtmc run")
    summary = _read_json(root / "summary.json", "summary.json")
    traj = _read_json(root / "trajectories.json", "trajectories.json")
    store = None
    if need_features or (root / FEATURES_FILE).exists():
        store = FeatureStore.load(root / FEATURES_FILE)
    by_key: dict[tuple[str, int], tuple[np.ndarray, float | None]] = {}
    if store is not None:
        for i in range(len(store)):
            d = float(store.nearest_distance[i])
            by_key[(str(store.camera_id[i]), int(store.local_id[i]))] = (
                store.feature_frames[i], None if np.isnan(d) else d)
    identities = [
        Identity(int(r["global_id"]), sorted((_segment(s, by_key) for s in r.get("segments", [])),
                                             key=lambda s: (s.start_time, s.camera)))
        for r in traj.get("identities", []) if r.get("segments")
    ]
    created = str((traj.get("run") or {}).get("created") or "")
    return RunView(root, summary, list(summary.get("cameras", [])), identities, store, created)
