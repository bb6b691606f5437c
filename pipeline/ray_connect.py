"""Joining (or starting) the Ray cluster that ``--executor ray`` runs on.

Ray is an optional dependency (the ``ray`` extra): this module imports it only in
:func:`import_ray`, so ``mtmc`` without the extra runs as before and ``--executor
ray`` without it fails with the install command.
"""

from __future__ import annotations

import os
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
        kwargs = {"address": address} if address is not None else {"num_cpus": os.cpu_count() or 1}
        try:
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     configure_logging=True)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError, TimeoutError ...
            raise ClusterError(f"cannot reach the Ray cluster at {shown} ({mask_text(first_line(exc))}); start it "
                               "with 'ray start --head' or fix --ray-address / executor.ray_address") from None
        return cls(address, started_here=True)

    def close(self) -> None:
        """Leave the cluster (``ray.shutdown``) when this object joined it; idempotent."""
        if self.started_here:
            import_ray().shutdown()
            self.started_here = False
