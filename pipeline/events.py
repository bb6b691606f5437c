"""``events.jsonl``: the live-mode event log, one JSON object per line, flushed as written.

Every event has ``event`` (its kind), ``time`` (seconds on the process's
monotonic clock, the same clock as the frames' timestamps: 0 = start of
``mtmc live``) and ``wall_time`` (Unix time in seconds, UTC). The kinds and
their other fields are described by ``pipeline/schemas/events.schema.json``
(JSON Schema draft 2020-12, :func:`events_schema`):

* ``track_started``: ``camera``, ``local_id``, ``frame``, ``xyxy`` (pixels),
  ``latency_s`` (capture of the frame → this event);
* ``track_ended``: ``camera``, ``local_id``, ``global_id`` (or ``null``), and the
  tracklet summary ``start_time``/``end_time`` (s), ``start_frame``/``end_frame``,
  ``boxes``, ``num_features``, ``last_xyxy``;
* ``identity_assigned``: ``camera``, ``local_id`` → ``global_id``, ``new_identity``;
* ``identity_merged``: ``global_id`` merged into ``merged_into``;
* ``stream_down``: ``camera``, ``source`` (credentials masked), ``reason``;
  ``stream_up``: ``camera``, ``source``, ``width``, ``height`` (pixels), ``fps``;
* ``stats``: ``period_s``, ``memory_mb``, and per stream (``streams``: camera →
  ``state``, ``fps_in``, ``fps_out``, ``dropped``, ``dropped_total``,
  ``latency_p50_s``, ``latency_p95_s``).
"""

from __future__ import annotations

import json
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from pipeline.redact import redact


def events_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one line of ``events.jsonl``, kept in ``pipeline/schemas/``."""
    return json.loads(resources.files("pipeline").joinpath("schemas/events.schema.json").read_text())


class EventWriter:
    """Append events to a JSONL file, one line each, flushed at once (thread-safe).

    Args:
        path: the file; created (with its folder) or truncated.
        t0: ``time.monotonic()`` at the start of the process's clock; ``time`` of
            an event is ``monotonic() - t0`` seconds.

    Raises:
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | Path, t0: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO | None = self.path.open("w", encoding="utf-8")
        self._t0 = t0
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def rebase(self, t0: float) -> None:
        """Start the clock of later events again at ``t0`` (``time.monotonic()``)."""
        self._t0 = t0

    def now(self) -> float:
        """Seconds since ``t0`` on the monotonic clock."""
        return time.monotonic() - self._t0

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Write one event ``{"event": kind, "time": ..., "wall_time": ..., **fields}`` and flush it.

        ``time`` may be given in ``fields`` (seconds on the process clock);
        otherwise it is now. Floats are written as given (round them first); secrets
        in strings are masked (:func:`pipeline.redact.redact`).
        Returns the event as written; after :meth:`close` nothing is written.
        """
        ev: dict[str, Any] = {"event": kind, "time": round(fields.pop("time", self.now()), 3),
                              "wall_time": round(time.time(), 3)}
        ev.update(fields)
        line = json.dumps(redact(ev), separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._f is not None:
                self._f.write(line)
                self._f.flush()
                self.counts[kind] = self.counts.get(kind, 0) + 1
        return ev

    def close_now(self) -> None:
        """Close from a signal handler before ``os._exit``: wait at most 1 s for a write in progress.

        Never blocks forever (the interrupted thread may hold the lock); no line is
        left half-written unless that wait runs out.
        """
        if self._lock.acquire(timeout=1.0):
            if self._f is not None:
                self._f.close()
                self._f = None
            self._lock.release()

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Parse an ``events.jsonl`` file (a partial last line, from a process killed mid-write, is skipped)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
