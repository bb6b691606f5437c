"""Atomic file writes: a reader (or a process killed mid-write) never sees half a file.

Each write goes to a hidden temporary file in the target's folder and is
renamed over the target (``os.replace``, atomic on POSIX). The temporary file
is removed when the write fails, and :func:`remove_partial` removes those of
writes still in progress when the process must exit at once (a second signal,
:mod:`pipeline.signals`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.redact import redact

_in_progress: set[Path] = set()
_lock = threading.Lock()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on an error it is removed.

    Raises:
        OSError: the folder cannot be created or written, or the rename fails
            (``path`` is then unchanged and no temporary file is left).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    with _lock:
        _in_progress.add(tmp)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with _lock:
            _in_progress.discard(tmp)
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically. Raises ``OSError`` as :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically, secrets masked (:func:`pipeline.redact.redact`).

    Raises:
        OSError: as :func:`atomic_path`.
        TypeError: ``data`` holds a value JSON cannot encode.
    """
    write_text_atomic(path, json.dumps(redact(data), indent=1, ensure_ascii=False))


def remove_partial() -> None:
    """Remove the temporary files of writes in progress (before ``os._exit``); never raises."""
    got = _lock.acquire(timeout=0.5)  # a signal handler runs in the main thread, which may hold the lock
    try:
        pending = list(_in_progress)
    finally:
        if got:
            _lock.release()
    for tmp in pending:
        with contextlib.suppress(OSError):
            tmp.unlink()
