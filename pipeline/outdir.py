"""The output folder of ``mtmc run`` / ``mtmc live``: checked before any work, locked while written, replaced whole.

* :func:`check_output_dir` runs before any model is loaded: ``-o`` naming a
  file, a folder that cannot be written, a nearly full disk, a folder another
  run holds, or one that already holds a run's outputs (without ``--exist-ok``)
  is an :class:`~pipeline.errors.OutputError` (one line, exit 2).
* :class:`OutputLock` holds ``OUT/.mtmc.lock`` (``fcntl.flock``; the file names
  the pid and command) for the whole run, so two runs never mix files in one
  folder. The kernel drops the lock when its process dies, so a stale lock file
  of a dead process is simply taken over.
* :func:`clear_outputs` removes the previous run's outputs first (those its
  ``summary.json`` lists under ``outputs``, else the fixed names below, and always
  ``report.html`` / ``report/`` made from it), never a path holding one of this
  run's inputs and never other files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import OutputError

LOCK_NAME = ".mtmc.lock"
RUN_OUTPUTS = ("summary.json", "trajectories.json", "trajectories.jsonl", "topology.yaml", "events.jsonl",
               "features.npz", "tracks")
DERIVED = ("report.html", "report")  # made later from a run's outputs (mtmc report): stale once it is replaced
MIN_FREE_MB = 64.0

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the lock is advisory only through the pid file
    fcntl = None  # type: ignore[assignment]


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable(folder: Path, out: Path) -> None:
    if not folder.is_dir():
        raise OutputError(f"cannot create the output folder {out}: {folder} is a file; pass another -o")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write the output folder {out} ({exc.strerror or exc}); "
                          "pass a writable -o OUT") from None


def check_output_dir(out: str | Path, exist_ok: bool = False, min_free_mb: float = MIN_FREE_MB) -> None:
    """Check ``out`` before any work: a writable folder (or creatable), room on its disk, not in use, no old run.

    Creates nothing (a probe file is made and removed at once).

    Raises:
        OutputError: ``out`` is a file; it (or its nearest existing parent) cannot be
            written; less than ``min_free_mb`` MiB are free there; another live process
            holds its lock; or it holds a run's outputs and ``exist_ok`` is false.
    """
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise OutputError(f"-o {p} is a file, not a folder: pass a folder (created when missing) or remove the file")
    base = _nearest_existing(p)
    _check_writable(base, p)
    free_mb = shutil.disk_usage(base).free / 2**20
    if free_mb < min_free_mb:
        raise OutputError(f"only {free_mb:.0f} MiB free on the disk of {p} (needs at least {min_free_mb:.0f}): "
                          "free some space or pass another -o")
    holder = lock_holder(p)
    if holder is not None:
        raise OutputError(f"{p} is in use by another mtmc process ({holder}): wait for it to end or pass another -o")
    found = [name for name in RUN_OUTPUTS if (p / name).exists()]
    if found and not exist_ok:
        raise OutputError(f"{p} already holds a run's outputs ({', '.join(found)}): pass --exist-ok to replace "
                          "them, or another -o")


def lock_holder(out: str | Path) -> str | None:
    """Who holds ``out``'s lock (``"pid N, mtmc run, since …"``), ``None`` when nobody alive does."""
    path = Path(out) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(path)
    finally:
        os.close(fd)  # closing also drops a lock just taken
    return None


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']}, {info['command']}, since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


class OutputLock:
    """``OUT/.mtmc.lock``, held with ``flock`` from :meth:`acquire` to :meth:`release` (a context manager too).

    Args:
        out: the output folder (created by :meth:`acquire`).
        command: what holds it, e.g. ``"mtmc run"`` (written into the file with the pid).

    Raises:
        OutputError: from :meth:`acquire`, when another live process holds the lock,
            or the folder cannot be created.
    """

    def __init__(self, out: str | Path, command: str):
        self.path = Path(out) / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        """Create the folder and take the lock (a dead process's lock file is taken over)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while self._fd is None:
                self._fd = self._try_lock()
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {self.path.parent} ({exc.strerror or exc}); "
                              "pass a writable -o OUT") from None
        info = {"pid": os.getpid(), "command": self.command,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps(info).encode())
        return self

    def _try_lock(self) -> int | None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(f"{self.path.parent} is in use by another mtmc process ({_describe(self.path)}): "
                                  "wait for it to end or pass another -o") from None
        try:  # the holder before us may have removed the file between our open and flock
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _previous_outputs(out: Path) -> list[str]:
    try:
        listed = json.loads((out / "summary.json").read_text()).get("outputs")
    except (OSError, ValueError, AttributeError):
        listed = None
    if isinstance(listed, list) and all(isinstance(x, str) for x in listed):
        return listed + [d for d in DERIVED if d not in listed]
    fixed = [n for n in RUN_OUTPUTS if n != "tracks"]
    return list(DERIVED) + fixed + [f"tracks/{p.name}" for p in (out / "tracks").glob("*.txt")]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def clear_outputs(out: str | Path, keep: Iterable[str | Path] = ()) -> list[str]:
    """Remove the previous run's outputs from ``out`` (module docstring); returns what was removed.

    Args:
        out: the output folder.
        keep: this run's inputs: an output path that is, holds or lies inside one
            of them is left alone.

    Raises:
        OutputError: an old output cannot be removed.
    """
    root = Path(out).resolve()
    keep_paths = [Path(k).resolve() for k in keep]
    removed = []
    for rel in _previous_outputs(root):
        p = (root / rel).resolve()
        if not _inside(p, root) or p == root or not (p.exists() or p.is_symlink()):
            continue
        if any(_inside(k, p) or _inside(p, k) for k in keep_paths):
            continue
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except OSError as exc:
            raise OutputError(f"cannot remove the old output {p} ({exc.strerror or exc}); remove it or pass "
                              "another -o") from None
        removed.append(rel)
    for stale in root.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()
    tracks = root / "tracks"
    with contextlib.suppress(OSError):
        tracks.rmdir()  # only when empty
    return removed
