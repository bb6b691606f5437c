"""The run's common clock: one time axis for every camera.

Each camera's frames carry ``timestamp = seconds from its own first frame + offset_s``,
where ``offset_s`` says when, on the common clock, that camera's first frame was taken.
The offset comes from, in this order:

1. ``cameras.<id>.start_time`` (UTC, ISO 8601) or ``cameras.<id>.time_offset_s`` in the config;
2. the video container's ``creation_time`` metadata (container or video stream);
3. nothing: offset 0 (the file is assumed to start with the others).

When any camera has a start time, the common clock's 0 (the *origin*) is the earliest
start time, each such camera's offset is its start minus the origin, and absolute UTC
times are origin + common time. A ``time_offset_s`` is taken as it stands (seconds after
the origin, or after the common 0 when no start time is known).

This module has no heavy imports: the config validates times with :func:`parse_time`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

log = logging.getLogger(__name__)

SOURCES = ("config time_offset_s", "config start_time", "container creation_time", "none")
"""Values of a camera's ``clock.source`` in ``summary.json`` and ``trajectories.json``."""


def parse_time(text: Any) -> datetime:
    """An ISO 8601 date-time as an aware UTC ``datetime``.

    ``2026-05-01T08:00:03.2Z``, ``2026-05-01 08:00:03+02:00`` and FFmpeg's
    ``2026-05-01T08:00:03.000000Z`` are accepted; a time without a zone is taken as UTC.

    Raises:
        ValueError: not a string or not an ISO 8601 date-time (a plain sentence).
    """
    if isinstance(text, datetime):
        dt = text
    elif isinstance(text, str):
        try:
            dt = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time, got {text!r} (write e.g. '2026-05-01T08:00:03.2Z', "
                             "UTC with 'Z' or an offset like '+02:00')") from None
    else:
        raise ValueError(f"expected an ISO 8601 date-time string (quote it), got {text!r}")
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def format_utc(dt: datetime) -> str:
    """``2026-05-01T08:00:05.400Z``: UTC, milliseconds, ``Z``."""
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CameraClock:
    """Where one camera's frames sit on the common clock.

    Attributes:
        source: one of :data:`SOURCES`.
        offset_s: common-clock time (s) of the camera's first frame.
        start_time: UTC of the first frame when known (given, from the container, or the
            origin plus a ``time_offset_s``), else ``None``.
    """

    source: str = "none"
    offset_s: float = 0.0
    start_time: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "offset_s", "start_time"}`` as ``summary.json`` and ``trajectories.json`` write it."""
        return {"source": self.source, "offset_s": round(self.offset_s, 6),
                "start_time": None if self.start_time is None else format_utc(self.start_time)}


@dataclass(frozen=True)
class RunClock:
    """Every camera's :class:`CameraClock` and the origin (UTC of common time 0) when known."""

    cameras: dict[str, CameraClock]
    origin: datetime | None = None

    def offset(self, camera_id: str) -> float:
        """The camera's offset (s); 0 for a camera without a clock entry."""
        c = self.cameras.get(camera_id)
        return c.offset_s if c is not None else 0.0

    def utc(self, t: float) -> str | None:
        """The UTC (ISO 8601) of common-clock time ``t`` (s), ``None`` without an origin."""
        return None if self.origin is None else format_utc(self.origin + timedelta(seconds=float(t)))


def resolve_clocks(camera_ids: Sequence[str], configured: Mapping[str, Any],
                   container_times: Mapping[str, datetime | None], linked: bool) -> RunClock:
    """Each camera's place on the common clock.

    Args:
        camera_ids: the run's cameras.
        configured: ``cfg.cameras``: id → object with ``time_offset_s`` and ``start_time``
            (at most one set; ``start_time`` an ISO string).
        container_times: id → the container's ``creation_time`` (UTC) or ``None``; read only
            for cameras without a config entry.
        linked: more than one camera is linked across cameras; then a camera without
            clock information gets one warning line (for all such cameras together).

    Returns:
        The :class:`RunClock`. Config entries for cameras not in the run are ignored
        with one warning each.
    """
    ids = list(camera_ids)
    for cid in configured:
        if cid not in ids:
            log.warning("cameras.%s: no camera %r in this run (cameras: %s); its clock setting is ignored",
                        cid, cid, ", ".join(ids))
    starts: dict[str, tuple[datetime, str]] = {}
    offsets: dict[str, float] = {}
    for cid in ids:
        entry = configured.get(cid)
        if entry is not None and entry.start_time is not None:
            starts[cid] = (parse_time(entry.start_time), "config start_time")
        elif entry is not None and entry.time_offset_s is not None:
            offsets[cid] = float(entry.time_offset_s)
        elif container_times.get(cid) is not None:
            starts[cid] = (container_times[cid], "container creation_time")  # type: ignore[assignment]
    origin = min((s for s, _ in starts.values()), default=None)
    clocks: dict[str, CameraClock] = {}
    for cid in ids:
        if cid in starts:
            start, source = starts[cid]
            clocks[cid] = CameraClock(source, (start - origin).total_seconds(), start)  # type: ignore[operator]
        elif cid in offsets:
            start = None if origin is None else origin + timedelta(seconds=offsets[cid])
            clocks[cid] = CameraClock("config time_offset_s", offsets[cid], start)
        else:
            clocks[cid] = CameraClock()
    unknown = [cid for cid in ids if clocks[cid].source == "none"]
    if linked and unknown:
        log.warning("no clock information for camera(s) %s (no cameras.<id> entry, no container creation_time): "
                    "timing constraints assume the files start together; set cameras.<id>.time_offset_s "
                    "(seconds after the others' start) or cameras.<id>.start_time in the config if they do not",
                    ", ".join(unknown))
    return RunClock(clocks, origin)
