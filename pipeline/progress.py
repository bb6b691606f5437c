"""Progress of ``mtmc run``: bars on a terminal, plain log lines everywhere else (nohup, CI, a log file).

On a terminal every camera has a :mod:`tqdm` bar. Off a terminal, stderr gets
one line per camera found and, every ``every_s`` seconds, one line with the
frames done, the frame rate and each camera's count; nothing waits for the run
to end. Totals are capped by ``--max-frames``.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class _Counter:
    """A per-camera handle with tqdm's ``update``/``close`` that only counts (off a terminal)."""

    def __init__(self, camera_id: str, total: int | None):
        self.camera_id, self.total, self.n, self.closed = camera_id, total, 0, False

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        of = f"/{self.total}" if self.total else ""
        return f"{self.camera_id} {self.n}{of}" + (" done" if self.closed else "")


def capped_total(frames: int | None, max_frames: int | None) -> int | None:
    """Frames a camera will process: its frame count capped by ``max_frames`` (either may be unknown: ``None``)."""
    if frames is None:
        return max_frames
    return frames if max_frames is None else min(frames, max_frames)


class RunProgress:
    """Per-camera progress for one run (module docstring).

    Args:
        enabled: ``False`` (``--no-progress``): no bars and no lines at all.
        every_s: seconds between progress lines off a terminal.
        stream: where to write (default ``sys.stderr``).
        tty: force terminal (bars) or not; default: ``stream.isatty()``.
    """

    def __init__(self, enabled: bool = True, every_s: float = 10.0, stream: TextIO | None = None,
                 tty: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(self.stream.isatty()) if tty is None else tty
        self.every_s = every_s
        self._counters: list[_Counter] = []
        self._bars = 0
        self._t0 = time.monotonic()
        self._next = self._t0 + every_s

    def add(self, camera_id: str, source: str, kind: str, total: int | None) -> tqdm | _Counter | None:
        """A handle for one camera (``update(n)``, ``close()``), ``None`` when disabled; off a TTY, logs the camera."""
        if not self.enabled:
            return None
        if self.tty:
            self._bars += 1
            return tqdm(total=total, desc=camera_id[:20], unit="f", position=self._bars - 1, leave=True,
                        file=self.stream)
        frames = f", {total} frames" if total else ""
        self._say(f"camera {camera_id}: {source} ({kind}{frames})")
        counter = _Counter(camera_id, total)
        self._counters.append(counter)
        return counter

    def tick(self) -> None:
        """Write a progress line when ``every_s`` has passed since the last (off a terminal only)."""
        now = time.monotonic()
        if not self._counters or now < self._next:
            return
        self._next = now + self.every_s
        done = sum(c.n for c in self._counters)
        elapsed = now - self._t0
        cams = ", ".join(c.describe() for c in self._counters)
        self._say(f"{elapsed:.0f} s: {done} frames ({done / max(elapsed, 1e-9):.1f} frames/s); {cams}")

    def _say(self, text: str) -> None:
        print(f"mtmc: {text}", file=self.stream, flush=True)
