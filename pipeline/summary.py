"""What both ``mtmc run`` and ``mtmc live`` report about a run: stage timers, identity counts, merge records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.types import Tracklet

STAGES = ("decode", "detect", "track", "reid", "link", "export")
"""The stages timed in ``summary.json`` (``stages_s``) and the end table, in seconds."""


def stage_timers() -> dict[str, float]:
    """Seconds per stage (:data:`STAGES`), all 0.0."""
    return dict.fromkeys(STAGES, 0.0)


def identity_counts(tracklets: Sequence[Tracklet]) -> dict[str, int]:
    """``tracklets``, ``tracklets_without_feature``, ``identities`` and ``cross_camera_identities``
    (identities seen by more than one camera) of tracklets that have their global ids."""
    cams_per_id: dict[int, set[str]] = {}
    for t in tracklets:
        cams_per_id.setdefault(int(t.global_id or 0), set()).add(t.camera_id)
    return {
        "tracklets": len(tracklets),
        "tracklets_without_feature": sum(t.feature is None for t in tracklets),
        "identities": len(cams_per_id),
        "cross_camera_identities": sum(len(c) > 1 for c in cams_per_id.values()),
    }


def merge_record(global_id: int, merged_into: int, time: float) -> dict[str, Any]:
    """One identity merge as ``trajectories.json`` lists it: ids and the stream time (s, 3 decimals)."""
    return {"global_id": int(global_id), "merged_into": int(merged_into), "time": round(float(time), 3)}
