"""Stage wiring: decode → detect → track → embed → tracklets → link → export, over many cameras.

:func:`run` is the Python API behind ``mtmc run``: it runs the same stages on
the same inputs and returns what the CLI writes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.clock import RunClock, resolve_clocks
from pipeline.config import MtmcConfig
from pipeline.crops import CropWriter
from pipeline.detectors.base import Detector
from pipeline.errors import InputError, first_line
from pipeline.export import write_summary, write_tracks, write_trajectories
from pipeline.feature_store import FEATURES_FILE, FeatureStore
from pipeline.models import Models, build_models, uses_mot_detections
from pipeline.outdir import OutputLock, clear_outputs
from pipeline.progress import RunProgress, capped_total
from pipeline.reader import CameraReader, EndOfStream
from pipeline.results import CameraResult, RunResult
from pipeline.run_linking import link_run, relink
from pipeline.sources import CameraSpec, container_start_time, discover_cameras
from pipeline.stages import CameraState, track_and_embed
from pipeline.summary import stage_timers
from pipeline.types import Frame
from pipeline.video_writer import write_annotated_videos
from reid.extractor import FeatureExtractor
from trackers.linking.learn_topology import LearnedTopology, write_topology_yaml

if TYPE_CHECKING:
    from pipeline.ray_run import RayExecutor

__all__ = ["relink", "run"]
log = logging.getLogger(__name__)


def _frame_count(spec: CameraSpec) -> int | None:
    if spec.kind == "images" and spec.seqinfo is not None:
        return sum(1 for _ in (spec.path / spec.seqinfo.im_dir).iterdir())
    if spec.seqinfo is not None:
        return spec.seqinfo.length
    return None


def _gather(readers: dict[str, CameraReader], active: list[str], max_batch: int
            ) -> tuple[list[Frame], list[tuple[str, str | None]]]:
    """Take up to ``max_batch`` ready frames, at most one per camera per round (no waiting).

    Returns the frames and the cameras that ended (with their error or None);
    ``active`` is updated in place and rotated so no camera is always first.
    """
    batch: list[Frame] = []
    ended: list[tuple[str, str | None]] = []
    took = True
    while took and len(batch) < max_batch and active:
        took = False
        for cam in list(active):
            if len(batch) >= max_batch:
                break
            try:
                item = readers[cam].queue.get_nowait()
            except queue.Empty:
                continue
            if isinstance(item, EndOfStream):
                active.remove(cam)
                ended.append((cam, item.error))
                continue
            batch.append(item)
            took = True
        active[:] = active[1:] + active[:1]
    return batch, ended


def run(
    inputs: Sequence[str | Path],
    cfg: MtmcConfig,
    out_dir: str | Path | None = None,
    detector: Detector | None = None,
    extractor: FeatureExtractor | None | str = "config",
    save_video: bool = False,
    save_crops: bool = False,
    stop: threading.Event | None = None,
    progress: RunProgress | None = None,
) -> RunResult:
    """Decode, detect, track, embed and link every camera of ``inputs``; optionally write the outputs.

    Frames of all cameras are gathered round-robin (at most one frame per camera
    per round, up to ``cfg.detector.batch`` frames) and go through the detector
    in one call; each camera has its own tracker (``tracker.type``, see :func:`trackers.factory.build_tracker`);
    the crops that the embedding policy selects in that frame step, over all
    cameras, are embedded in one ReID call. When the input ends, every track
    becomes a :class:`~pipeline.types.Tracklet` and
    :func:`trackers.linking.offline.link_tracklets_detailed` gives each a global id.

    Args:
        inputs: video files, folders of videos, or MOTChallenge sequence folders
            (see :func:`pipeline.sources.discover_cameras`).
        cfg: the validated config.
        out_dir: when given, ``tracks/<camera>.txt``, ``trajectories.json`` and
            ``summary.json`` are written there (atomically) — also when the run stops
            early on an error, Ctrl-C or ``stop``. The folder is made after the models
            load and locked for the run (:class:`~pipeline.outdir.OutputLock`); a
            previous run's outputs in it are removed first (:func:`~pipeline.outdir.clear_outputs`).
        detector: an already built detector (else built from ``cfg.detector``).
        extractor: an already built ReID extractor, ``None`` for no ReID, or
            ``"config"`` to build it from ``cfg.reid``.
        save_video: also write ``videos/<camera>.mp4`` with boxes and global ids.
        save_crops: also write the crops that enter tracklet features as
            ``crops/<global_id>/<camera>/<local_id>_<frame>.jpg`` (needs ``out_dir``
            and a ReID model; see :mod:`pipeline.crops`).
        stop: when set (by a signal handler, :class:`~pipeline.signals.GracefulStop`),
            reading stops after the frames in flight; what exists is linked and
            written, marked ``interrupted``. Ctrl-C (``KeyboardInterrupt``) does the same.
        progress: per-camera progress (default: :class:`~pipeline.progress.RunProgress`
            with ``cfg.output.progress``).

    Returns:
        :class:`~pipeline.results.RunResult`. A camera whose decoding fails is
        marked ``failed`` with a one-line reason; its tracklets up to the failure
        are kept and the other cameras run to the end. Files that could not be
        written are listed in ``output_errors`` (the others are written).

    Raises:
        InputError: an input path is missing or holds no camera.
        ModelError: a detector or ReID SPEC is unknown or its weights cannot be loaded.
        OutputError: ``out_dir`` cannot be created, or another process holds its lock.
        ClusterError: ``executor.type: ray`` without Ray installed, or its cluster cannot be reached
            (:mod:`pipeline.ray_connect`); with it, each camera runs in a Ray actor (:mod:`pipeline.ray_run`).
    """
    t_start = time.perf_counter()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    specs = discover_cameras(list(inputs))
    runnable = _runnable(specs, cfg)
    models = build_models(cfg, {s.camera_id: s.path for s in runnable}, detector, extractor)
    clock = set_clocks(specs, cfg, linked=len(runnable) > 1 and cfg.linking.enabled and models.extractor is not None)
    lock = OutputLock(out_dir, "mtmc run") if out_dir is not None else None
    executor = None
    try:
        executor = _open_executor(cfg, detector is not None or not isinstance(extractor, str), save_crops)
        if lock is not None:
            lock.acquire()
            clear_outputs(out_dir, keep=inputs)  # type: ignore[arg-type]
        crop_writer = CropWriter(Path(out_dir) / "crops") if save_crops and out_dir is not None else None
        progress = progress or RunProgress(cfg.output.progress)
        loop = (_CameraLoop(specs, runnable, cfg, progress, clock) if executor is None
                else executor.loop(specs, runnable, cfg, progress, clock))
        try:
            loop.drive(models, crop_writer, stop or threading.Event())
        except BaseException:  # keep what was computed, then let the run's own error through
            _finish_quietly(loop, models, cfg, out_dir, specs, crop_writer, save_video, (t_start, created))
            raise
        return _finish(loop, models, cfg, out_dir, specs, crop_writer, save_video, (t_start, created))
    finally:
        models.close()
        if executor is not None:
            executor.close()
        if lock is not None:
            lock.release()


def _open_executor(cfg: MtmcConfig, given_models: bool, save_crops: bool) -> RayExecutor | None:
    """``None`` for ``executor.type: local``; else the Ray cluster joined (:mod:`pipeline.ray_run`), checked
    before the output folder is cleared."""
    if cfg.executor.type == "local":
        return None
    from pipeline.ray_run import RayExecutor

    return RayExecutor.open(cfg, given_models, save_crops)


def _finish(loop: _CameraLoop, models: Models, cfg: MtmcConfig, out_dir: str | Path | None, specs: list[CameraSpec],
            crop_writer: CropWriter | None, save_video: bool, started: tuple[float, str]) -> RunResult:
    """Link the run's tracklets and write the outputs (when ``out_dir`` is given)."""
    extractor = models.extractor
    result = loop.result(models.detector.name, extractor.name if extractor is not None else None, started[1])
    t = time.perf_counter()
    learned = link_run(result, cfg)
    result.stages["link"] = time.perf_counter() - t
    if out_dir is not None:
        _write_outputs(result, Path(out_dir), specs, learned, crop_writer, save_video, started[0])
    return result


def _finish_quietly(*args: Any) -> None:
    """:func:`_finish` after the loop failed: partial outputs written when possible, never a second error."""
    try:
        _finish(*args)
    except Exception as exc:  # noqa: BLE001 - the loop's own error is the one to report
        log.warning("partial outputs could not be written after the error (%s)", first_line(exc))


def set_clocks(specs: list[CameraSpec], cfg: MtmcConfig, linked: bool) -> RunClock:
    """Put every camera on the common clock (:mod:`pipeline.clock`): sets ``spec.time_offset_s``.

    ``cfg.cameras`` first, else the container's ``creation_time`` (video files), else offset 0;
    warnings for config entries of cameras the run lacks and, when ``linked``, for cameras
    without clock information.
    """
    probed = {s.camera_id: container_start_time(s) for s in specs if s.camera_id not in cfg.cameras}
    clock = resolve_clocks([s.camera_id for s in specs], cfg.cameras, probed, linked)
    for s in specs:
        s.time_offset_s = clock.offset(s.camera_id)
    return clock


def _runnable(specs: list[CameraSpec], cfg: MtmcConfig) -> list[CameraSpec]:
    use_pixels = not uses_mot_detections(cfg.detector.spec)
    runnable = [s for s in specs if not (use_pixels and s.kind == "detonly")]
    if not runnable:
        raise InputError(
            "no camera has pixels to detect on (sequence folders without img1/ or a video): "
            "use --detector mot to run on their det/det.txt"
        )
    return runnable


class _CameraLoop:
    """The decode → detect → track → embed loop over all cameras of one run."""

    def __init__(self, specs: list[CameraSpec], runnable: list[CameraSpec], cfg: MtmcConfig, progress: RunProgress,
                 clock: RunClock | None = None):
        self.specs, self.runnable, self.cfg, self.progress = specs, runnable, cfg, progress
        self.states: dict[str, CameraState] = {}
        for s in specs:
            total = capped_total(_frame_count(s), cfg.decode.max_frames)
            self.states[s.camera_id] = CameraState.for_spec(s, cfg, progress.add(s.camera_id, s.source, s.kind, total))
        self.results: dict[str, CameraResult] = {}
        for s in specs:
            if s not in runnable:
                self.results[s.camera_id] = self.states[s.camera_id].finish(
                    f"{s.camera_id}: {s.path} has no pixels (no img1/ or video); use --detector mot for its det/det.txt"
                )
        self.stages = stage_timers()
        self.interrupted = False
        self.clock = clock

    def drive(self, models: Models, crop_writer: CropWriter | None, stop: threading.Event) -> None:
        """Process frames until every camera ends or ``stop`` is set; every camera is finished afterwards.

        Only reader shutdown and closing the cameras' tracks happen in ``finally``.
        """
        detector, extractor = models.detector, models.extractor
        wakeup = threading.Event()
        qsize, max_frames = self.cfg.decode.queue_size, self.cfg.decode.max_frames
        readers = {s.camera_id: CameraReader(s, qsize, max_frames, wakeup) for s in self.runnable}
        for r in readers.values():
            r.start()
        active = [s.camera_id for s in self.runnable]
        max_batch = max(1, min(self.cfg.detector.batch, detector.max_batch))
        try:
            while active and not stop.is_set():
                wakeup.clear()
                batch, ended = _gather(readers, active, max_batch)
                if batch:
                    t = time.perf_counter()
                    dets = detector.detect(batch)
                    self.stages["detect"] += time.perf_counter() - t
                    track_and_embed(batch, dets, self.states, extractor, self.stages, crop_writer)
                elif active and not ended:
                    wakeup.wait(0.05)
                for cam, error in ended:  # after this batch's frames of that camera
                    self.results[cam] = self.states[cam].finish(error)
                self.progress.tick()
            self.interrupted = bool(active)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            for r in readers.values():
                r.stop()
            for cam in active:
                st = self.states[cam]
                self.results[cam] = st.finish(None, "interrupted") if self.interrupted else st.finish(
                    "stopped by an error")
            self.stages["decode"] = sum(r.decode_s for r in readers.values())

    def result(self, detector: str, reid: str | None, created: str) -> RunResult:
        """The run's :class:`~pipeline.results.RunResult` (not linked yet)."""
        if self.clock is not None:
            for cid, res in self.results.items():
                res.clock = self.clock.cameras.get(cid)
        return RunResult(
            cameras={s.camera_id: self.results[s.camera_id] for s in self.specs},
            stages=self.stages,
            wall_s=0.0,
            detector=detector,
            config=self.cfg.model_dump(by_alias=True),
            reid=reid,
            created=created,
            interrupted=self.interrupted,
            clock=self.clock,
        )


def _write_outputs(result: RunResult, out: Path, specs: list[CameraSpec], learned: LearnedTopology | None,
                   crop_writer: CropWriter | None, save_video: bool, t_start: float) -> None:
    """Write every output that can be written; each one that cannot is named in ``result.output_errors``."""
    t = time.perf_counter()
    steps: list[tuple[str, Callable[[], object]]] = [("tracks/", lambda: write_tracks(result, out))]
    if result.reid is not None:
        steps.append((FEATURES_FILE, lambda: FeatureStore.from_tracklets(
            result.tracklets, str(result.reid), result.link_distances).save(out / FEATURES_FILE)))
    if learned is not None:
        steps.append(("topology.yaml", lambda: write_topology_yaml(out / "topology.yaml", learned)))
    if crop_writer is not None:
        steps.append(("crops/", lambda: crop_writer.finish(result.tracklets)))
    if save_video and not result.interrupted:
        steps.append(("videos/", lambda: write_annotated_videos(result, specs, out / "videos")))
    for name, fn in steps:
        _attempt(result, out / name, fn)
    result.wall_s = time.perf_counter() - t_start  # trajectories.json: the run up to writing it
    _attempt(result, out / "trajectories.json", lambda: write_trajectories(result, out))
    result.stages["export"] = time.perf_counter() - t
    result.wall_s = time.perf_counter() - t_start
    result.outputs = _listed_outputs(out, result)
    _attempt(result, out / "summary.json", lambda: write_summary(result, out))


def _attempt(result: RunResult, path: Path, fn: Callable[[], object]) -> None:
    try:
        fn()
    except OSError as exc:
        result.output_errors.append(f"cannot write {path} ({exc.strerror or first_line(exc)}); "
                                    "the other outputs are written")


def _listed_outputs(out: Path, result: RunResult) -> list[str]:
    """What this run wrote, relative to ``out`` (``summary.json`` lists it; ``--exist-ok`` removes it)."""
    names = [f"tracks/{c}.txt" for c in result.cameras]
    names += [FEATURES_FILE, "topology.yaml", "videos", "crops", "trajectories.json"]
    return [n for n in names if (out / n).exists()] + ["summary.json"]
