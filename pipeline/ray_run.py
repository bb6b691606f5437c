"""``mtmc run --executor ray``: one Ray actor per camera, linking on the driver.

Each runnable camera gets a :class:`~pipeline.ray_camera.CameraWorker` actor (``executor.num_cpus_per_camera``
CPUs, ``executor.num_gpus_per_camera`` GPUs, no restarts and no task retries, so Ray never replays a
camera's frames into duplicate tracklets). The driver keeps one ``step`` call in flight per actor and
collects the tracklets each call closes; when every camera has ended, the run is linked and written by
the same code as the local executor (:func:`pipeline.runner._finish`). An actor that dies (killed, out
of memory, node lost) makes its camera ``failed`` with the tracklets it had handed over; the others go on.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import Any

from pipeline.clock import RunClock
from pipeline.config import MtmcConfig
from pipeline.crops import CropWriter
from pipeline.errors import ConfigError, first_line
from pipeline.models import Models
from pipeline.progress import RunProgress
from pipeline.ray_camera import CameraWorker, Chunk
from pipeline.ray_connect import ClusterError, RayConnection, import_ray
from pipeline.redact import mask_text
from pipeline.results import RunResult
from pipeline.runner import _CameraLoop
from pipeline.sources import CameraSpec
from pipeline.types import Tracklet

ACTOR_PREFIX = "mtmc-camera"
"""Camera actors are named ``mtmc-camera-<driver pid>-<run>-<camera id>`` (``ray.util.list_named_actors``)."""
_RUNS = itertools.count()
log = logging.getLogger(__name__)


def camera_actor_options(cfg: MtmcConfig, name: str) -> dict[str, Any]:
    """The ``.options()`` of a camera actor: its resources, its name, and no restarts or retries."""
    ex = cfg.executor
    return {"num_cpus": ex.num_cpus_per_camera, "num_gpus": ex.num_gpus_per_camera, "max_restarts": 0,
            "max_task_retries": 0, "name": name, "lifetime": "non_detached"}


class RayCameraLoop(_CameraLoop):
    """:class:`pipeline.runner._CameraLoop` whose cameras run in Ray actors (same arguments, same results).

    Attributes (besides the parent's):
        payload_bytes: camera id → pickled bytes of the tracklets its actor sent to the driver.
        actor_names: camera id → Ray actor name.
    """

    def __init__(self, specs: list[CameraSpec], runnable: list[CameraSpec], cfg: MtmcConfig, progress: RunProgress,
                 clock: RunClock | None, connection: RayConnection):
        super().__init__(specs, runnable, cfg, progress, clock)
        self.connection = connection
        run = f"{os.getpid()}-{next(_RUNS)}"
        self.actor_names = {s.camera_id: f"{ACTOR_PREFIX}-{run}-{s.camera_id}" for s in runnable}
        self.payload_bytes = dict.fromkeys(self.actor_names, 0)
        self._received: dict[str, list[Tracklet]] = {c: [] for c in self.actor_names}
        self._actor_stages: dict[str, dict[str, float]] = {}
        self._actors: dict[str, Any] = {}

    def drive(self, models: Models, crop_writer: CropWriter | None, stop: threading.Event) -> None:
        """Run every camera in its actor until all end or ``stop`` is set; every camera is finished afterwards.

        ``models`` is not used here (each actor builds its own from the config).

        ``crop_writer`` must be ``None`` (:meth:`RayExecutor.open` refuses ``--save-crops``).
        """
        ray = import_ray()
        remote = ray.remote(CameraWorker)
        _warn_waves(ray, self.cfg, len(self.runnable))
        actors = self._actors
        pending: dict[Any, str] = {}
        try:
            for s in self.runnable:
                options = camera_actor_options(self.cfg, self.actor_names[s.camera_id])
                actors[s.camera_id] = remote.options(**options).remote(s, self.cfg)
            pending = {actors[c].step.remote(self.cfg.executor.chunk_frames): c for c in actors}
            self._collect(ray, pending, stop)
            self.interrupted = bool(pending)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            self._wind_down(ray, pending)

    def _collect(self, ray: Any, pending: dict[Any, str], stop: threading.Event) -> None:
        """Take the chunks as they come and ask each camera for the next one, until all end or ``stop``."""
        n = self.cfg.executor.chunk_frames
        while pending and not stop.is_set():
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.1)
            for ref in ready:
                cid = pending.pop(ref)
                chunk = self._get(ray, ref, cid)
                if chunk is not None and not chunk.ended:
                    pending[self._actors[cid].step.remote(n)] = cid
            self.progress.tick()

    def _get(self, ray: Any, ref: Any, cid: str, status: str | None = None) -> Chunk | None:
        """The chunk behind ``ref`` (recorded; a last chunk finishes the camera with ``status``), or ``None``
        when the actor died (the camera is finished as failed)."""
        try:
            chunk: Chunk = ray.get(ref)
        except ray.exceptions.RayError as exc:
            self._settle(cid, f"{cid}: its Ray actor died ({mask_text(first_line(exc))}); the tracklets it had "
                              "sent are kept", None)
            return None
        self._record(cid, chunk)
        if chunk.ended:
            self._settle(cid, chunk.error, status)
        return chunk

    def _record(self, cid: str, chunk: Chunk) -> None:
        st = self.states[cid]
        st.result.frames += chunk.frames
        if chunk.width:
            st.result.width, st.result.height = chunk.width, chunk.height
        if st.bar is not None and chunk.frames:
            st.bar.update(chunk.frames)
        self._received[cid].extend(chunk.tracklets)
        self.payload_bytes[cid] += chunk.payload_bytes
        self._actor_stages[cid] = chunk.stages

    def _settle(self, cid: str, error: str | None, status: str | None) -> None:
        """Finish camera ``cid`` on the driver: status, and every tracklet received, by local id."""
        res = self.states[cid].finish(error, status)
        res.tracklets = sorted(self._received[cid], key=lambda t: t.local_id)
        self.results[cid] = res
        actor = self._actors.pop(cid, None)
        if actor is not None:  # its CPUs go to a camera still waiting for them
            import_ray().kill(actor, no_restart=True)

    def _wind_down(self, ray: Any, pending: dict[Any, str]) -> None:
        """Collect the chunks in flight, close the cameras still open (interrupted or stopped by an error),
        then end every actor."""
        status, error = ("interrupted", None) if self.interrupted else (None, "stopped by an error")
        for ref, cid in list(pending.items()):
            if cid in self._actor_stages:  # started: its chunk in flight ends within executor.chunk_frames
                self._get(ray, ref, cid)
            else:  # still waiting for CPUs (or loading models): nothing to wait for
                self._settle(cid, error, status)
        refs = {c: a.finish.remote(error, status) for c, a in self._actors.items() if c not in self.results}
        for cid, ref in refs.items():
            self._get(ray, ref, cid, status)
        for stages in self._actor_stages.values():
            for k, v in stages.items():
                self.stages[k] = self.stages.get(k, 0.0) + v
        for a in self._actors.values():
            ray.kill(a, no_restart=True)
        self._actors.clear()

    def result(self, detector: str, reid: str | None, created: str) -> RunResult:
        """The parent's result plus ``executor``: type, address, actor names and bytes sent per camera."""
        res = super().result(detector, reid, created)
        address = self.connection.address
        res.executor = {"type": "ray", "address": mask_text(address) if address else "local",
                        "actors": dict(self.actor_names), "payload_bytes": dict(self.payload_bytes)}
        return res


def check_resources(ray: Any, cfg: MtmcConfig) -> None:
    """Raise ``ClusterError`` when the cluster has fewer CPUs or GPUs than one camera actor asks for
    (``executor.num_cpus_per_camera`` / ``num_gpus_per_camera``): such an actor would never start."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))
    ex = cfg.executor
    if ex.num_cpus_per_camera > cpus or ex.num_gpus_per_camera > gpus:
        raise ClusterError(f"a camera actor asks for {ex.num_cpus_per_camera:g} CPUs and {ex.num_gpus_per_camera:g} "
                           f"GPUs but the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: lower "
                           "executor.num_cpus_per_camera / executor.num_gpus_per_camera or add nodes")


def _warn_waves(ray: Any, cfg: MtmcConfig, cameras: int) -> None:
    """Warn when the cluster has too few CPUs for every camera actor at once (the rest wait for a free slot)."""
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    need = cameras * cfg.executor.num_cpus_per_camera
    if need > cpus:
        log.warning("the Ray cluster has %g CPUs for %d camera actors of executor.num_cpus_per_camera %g: cameras "
                    "run in turns (set executor.num_cpus_per_camera to %g to run them all at once)", cpus, cameras,
                    cfg.executor.num_cpus_per_camera, max(0.01, cpus / cameras))


class RayExecutor:
    """What :func:`pipeline.runner.run` needs of Ray: a connection and the camera loop on it."""

    def __init__(self, connection: RayConnection):
        self.connection = connection

    @classmethod
    def open(cls, cfg: MtmcConfig, given_models: bool, save_crops: bool = False) -> RayExecutor:
        """Join the cluster of ``executor.ray_address``.

        Raises:
            ConfigError: ``given_models``: built model objects were passed (actors build their own from the
                config); or ``save_crops`` (``--save-crops`` writes crops on the driver's disk: not with Ray).
            ClusterError: Ray missing or the cluster unreachable (:meth:`RayConnection.open`), or it has fewer
                CPUs/GPUs than one camera actor asks for (:func:`check_resources`).
        """
        if save_crops:
            raise ConfigError("--save-crops is not supported with --executor ray; run it with --executor local")
        if given_models:
            raise ConfigError("executor.type ray builds the models in each camera actor from the config: pass "
                              "detector/reid SPECs in the config, not model objects")
        connection = RayConnection.open(cfg.executor)
        try:
            check_resources(import_ray(), cfg)
        except ClusterError:
            connection.close()
            raise
        return cls(connection)

    def loop(self, specs: list[CameraSpec], runnable: list[CameraSpec], cfg: MtmcConfig, progress: RunProgress,
             clock: RunClock | None) -> RayCameraLoop:
        """A :class:`RayCameraLoop` for these cameras."""
        return RayCameraLoop(specs, runnable, cfg, progress, clock, self.connection)

    def close(self) -> None:
        """Leave the cluster when this run joined it."""
        self.connection.close()
