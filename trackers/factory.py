"""Build the per-camera tracker named by ``tracker.type`` (see :mod:`trackers.base` for the list)."""

from __future__ import annotations

from pipeline.config import TrackerConfig
from trackers.base import Tracker
from trackers.byte_tracker import ByteTracker
from trackers.fused_tracker import FusedTracker
from trackers.sort_tracker import SortTracker

TRACKERS: dict[str, type] = {"sort": SortTracker, "bytetrack": ByteTracker, "fused": FusedTracker}


def build_tracker(cfg: TrackerConfig | None = None) -> Tracker:
    """A fresh tracker of type ``cfg.type`` configured by ``cfg``.

    Args:
        cfg: the ``tracker`` config section (``TrackerConfig()`` by default).

    Returns:
        A :class:`~trackers.base.Tracker` (``SortTracker``, ``ByteTracker`` or ``FusedTracker``).

    Raises:
        ValueError: unknown ``cfg.type`` (the config validation normally prevents it).
    """
    cfg = cfg if cfg is not None else TrackerConfig()
    try:
        cls = TRACKERS[cfg.type]
    except KeyError:
        raise ValueError(f"unknown tracker.type {cfg.type!r}; expected one of {sorted(TRACKERS)}") from None
    return cls(cfg)
