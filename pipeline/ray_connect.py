"""Joining (or starting) the Ray cluster that ``--executor ray`` runs on.

Ray is an optional dependency (the ``ray`` extra): this module imports it only in
:func:`import_ray`, so ``mtmc`` without the extra runs as before and ``--executor
ray`` without it fails with the install command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from types import ModuleType

from pipeline.config import ExecutorConfig
from pipeline.errors import MtmcError, first_line
from pipeline.redact import mask_text

INSTALL_HINT = 'pip install -e ".[ray]" (or pip install "mtmc[ray]")'


class ClusterError(MtmcError):
    """Ray is not installed, or the Ray cluster cannot be reached or started (exit 2)."""


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises:
        ClusterError: Ray is not installed; the message gives the install command.
    """
    # Ray's C++ fatal-signal handler turns SIGTERM into an abort; GracefulStop handles signals instead
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def resolve_address(cfg: ExecutorConfig) -> str | None:
    """The address to join: ``executor.ray_address``, else ``"auto"`` when ``RAY_ADDRESS`` is set, else ``None``
    (start a local Ray in this process with the machine's CPUs)."""
    if cfg.ray_address is not None:
        return cfg.ray_address
    return "auto" if os.environ.get("RAY_ADDRESS") else None


def probe(address: str, timeout_s: float = 5.0) -> None:
    """Check that the head of ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) accepts TCP connections.

    ``ray.init`` keeps retrying an address that does not answer for minutes; this fails at once.
    ``auto`` (Ray finds the cluster itself) is not probed.

    Raises:
        ClusterError: nothing listens there within ``timeout_s`` seconds, or the address has no port.
    """
    if address == "auto":  # Ray reads RAY_ADDRESS (or finds a cluster started on this machine)
        address = os.environ.get("RAY_ADDRESS") or "auto"
        if address == "auto":
            return
    hostport = address.split("://", 1)[-1].rsplit("@", 1)[-1].split("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClusterError(f"Ray address {mask_text(address)} has no HOST:PORT; give e.g. 127.0.0.1:6379, "
                           "ray://HOST:10001 or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {mask_text(address)} ({exc.strerror or first_line(exc)}); "
                           "start it with 'ray start --head' or fix --ray-address / executor.ray_address") from None


@contextlib.contextmanager
def _keep_signal_handlers() -> Iterator[None]:
    """Restore this process's SIGINT/SIGTERM/SIGHUP handlers after the block (main thread only).

    ``ray.init`` installs its own fatal-signal handler (SIGTERM aborts with a stack dump); the run's
    :class:`~pipeline.signals.GracefulStop` must stay in charge so a signal flushes partial results.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    saved = {s: signal.getsignal(s) for s in sigs}
    try:
        yield
    finally:
        for s, handler in saved.items():
            if handler is not None:
                signal.signal(s, handler)


class RayConnection:
    """This process's Ray session for one run: joined at :meth:`open`, left at :meth:`close`.

    Attributes:
        address: the address joined (``None``: a local Ray started here), as given.
        started_here: ``ray.init`` was called by this object (so :meth:`close` shuts it down).
    """

    def __init__(self, address: str | None, started_here: bool):
        self.address = address
        self.started_here = started_here

    @classmethod
    def open(cls, cfg: ExecutorConfig) -> RayConnection:
        """Join the cluster of :func:`resolve_address` (or reuse a Ray already initialised in this process).

        Raises:
            ClusterError: Ray is not installed, or the address cannot be reached (the message names the
                address, credentials masked) or a local Ray cannot start.
        """
        ray = import_ray()
        address = resolve_address(cfg)
        if ray.is_initialized():
            return cls(address, started_here=False)
        shown = mask_text(address) if address is not None else "a local Ray (ray.init)"
        if address is not None:
            probe(address)
        else:  # Ray nices its workers (15): on a shared machine the camera actors would starve behind any process
            os.environ.setdefault("RAY_worker_niceness", "0")
        kwargs: dict[str, object] = {"address": address} if address is not None else {
            "num_cpus": os.cpu_count() or 1, "include_dashboard": False}
        try:
            with _keep_signal_handlers():
                ray.init(**kwargs, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError, TimeoutError ...
            raise ClusterError(f"cannot reach the Ray cluster at {shown} ({mask_text(first_line(exc))}); start it "
                               "with 'ray start --head' or fix --ray-address / executor.ray_address") from None
        return cls(address, started_here=True)

    def close(self) -> None:
        """Leave the cluster (``ray.shutdown``) when this object joined it; idempotent."""
        if self.started_here:
            import_ray().shutdown()
            self.started_here = False
