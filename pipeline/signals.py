"""Stop on a signal the way Ctrl-C stops: finish what is in flight, write partial results, exit 128 + signal.

``systemd``, Docker, Kubernetes and ``timeout`` stop a process with SIGTERM; a
closed terminal sends SIGHUP. :class:`GracefulStop` turns the first SIGINT,
SIGTERM or SIGHUP into a set :class:`threading.Event` that the long loops of
``mtmc run``, ``mtmc live`` and ``mtmc reid train`` poll; a second signal runs
the ``before_exit`` callbacks (close files, remove temporary files) and exits at
once with ``os._exit``. Output files are written atomically
(:mod:`pipeline.atomic`), so neither exit leaves half a file.

Exit codes follow the shell's convention: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code(signum: int) -> int:
    """The shell's exit status for a process ended by signal ``signum``: ``128 + signum``."""
    return 128 + int(signum)


def _say(text: str) -> None:
    with contextlib.suppress(OSError):  # os.write: safe in a signal handler (print may be mid-write)
        os.write(2, (text + "\n").encode("utf-8", "replace"))


class GracefulStop:
    """Context manager: the first SIGINT/SIGTERM/SIGHUP sets :attr:`event`; a second one exits at once.

    Handlers are installed only in the main thread (Python delivers signals there);
    elsewhere the context does nothing but hold the event. The previous handlers
    come back on exit.

    Args:
        event: the event to set (a new one by default); loops poll ``event.is_set()``.
        what: the first signal's message ends with it, e.g. ``"finishing the frames in flight"``.
        before_exit: callbacks run before ``os._exit`` on a second signal (never raise out).

    Attributes:
        signum: the first signal received, ``None`` before.
    """

    def __init__(self, event: threading.Event | None = None, what: str = "writing partial results",
                 before_exit: list[Callable[[], None]] | None = None):
        self.event = event or threading.Event()
        self.what = what
        self.before_exit = list(before_exit or [])
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number, ``None`` when no signal came."""
        return None if self.signum is None else exit_code(self.signum)

    def install(self) -> GracefulStop:
        """Install the handlers (main thread only; elsewhere nothing happens)."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install` (idempotent)."""
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    def __enter__(self) -> GracefulStop:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            _say(f"mtmc: second signal ({name}): exiting now")
            for fn in self.before_exit:
                with contextlib.suppress(Exception):  # exiting anyway; nothing may stop it
                    fn()
            os._exit(exit_code(self.signum))
        self.signum = signum
        _say(f"mtmc: {name}: stopping: {self.what} (signal again to exit at once)")
        self.event.set()
