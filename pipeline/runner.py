"""Stage wiring: decode → detect → track → embed → tracklets → link → export, over many cameras.

:func:`run` is the Python API behind ``mtmc run``: it runs the same stages on
the same inputs and returns what the CLI writes.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import LinkConfig, MtmcConfig
from pipeline.crops import CropWriter
from pipeline.detectors.base import Detector
from pipeline.detectors.factory import build_detector
from pipeline.errors import InputError, first_line
from pipeline.export import write_summary, write_tracks, write_trajectories
from pipeline.outdir import OutputLock, clear_outputs
from pipeline.progress import RunProgress, capped_total
from pipeline.reader import CameraReader, EndOfStream
from pipeline.results import CameraResult, RunResult
from pipeline.sources import CameraSpec, discover_cameras
from pipeline.stages import CameraState, track_and_embed
from pipeline.types import Frame, Tracklet
from pipeline.video_writer import write_annotated_videos
from reid.extractor import FeatureExtractor
from reid.factory import build_reid
from trackers.linking.calibrate import ThresholdChoice
from trackers.linking.incremental import IncrementalLinker
from trackers.linking.learn_topology import LearnedTopology, learn_topology, write_topology_yaml
from trackers.linking.offline import count_same_camera_links, link_tracklets_detailed
from trackers.linking.topology import validate_topology


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


def _link_incremental(tracklets: list[Tracklet], cfg: LinkConfig) -> list[dict[str, Any]]:
    """Link as live mode would: tracklets in order of ``end_time``, in batches of
    ``cfg.incremental_batch_s`` seconds of stream time, through one
    :class:`~trackers.linking.incremental.IncrementalLinker`. Afterwards every
    tracklet's ``global_id`` is its resolved id (merges applied); returns the
    merges as ``{"global_id", "merged_into", "time"}`` dicts in stream order."""
    linker = IncrementalLinker(cfg)
    order = sorted(tracklets, key=lambda t: (t.end_time, t.camera_id, t.local_id))
    merges: list[dict[str, Any]] = []
    start = 0
    while start < len(order):
        stop = start + 1
        limit = (np.floor(order[start].end_time / cfg.incremental_batch_s) + 1) * cfg.incremental_batch_s
        while stop < len(order) and order[stop].end_time < limit:
            stop += 1
        events = linker.add(order[start:stop])
        start = stop
        if start == len(order):
            events += linker.flush()  # tracklets still waiting for linking.decision_delay_s
        for e in events:
            if e.kind == "identity_merged":
                merges.append({"global_id": e.global_id, "merged_into": e.merged_into, "time": round(e.time, 3)})
    for t in tracklets:
        t.global_id = linker.resolve(int(t.global_id or 0))
    return merges


def _link(tracklets: list[Tracklet], cfg: MtmcConfig, with_reid: bool,
          frame_sizes: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """Give every tracklet a global id (linked across cameras when ReID and linking are on).

    Returns the ``linking`` summary (method, threshold and how it was set, counts,
    ``same_camera_links``, ``merges``: number of identity merges, 0 offline) plus
    ``merge_events``, the merges themselves (see :func:`_link_incremental`), which the
    caller moves to the result.
    """
    linkable = [t for t in tracklets if len(t) >= cfg.tracklets.min_length]
    merges: list[dict[str, Any]] = []
    lc = cfg.linking
    threshold: dict[str, Any] = {}
    if with_reid and lc.enabled and linkable and lc.mode == "incremental":
        merges = _link_incremental(linkable, lc)
        value = lc.threshold_fallback if lc.threshold == "auto" else lc.threshold
        source = ThresholdChoice(float(value), "fixed").describe() if lc.threshold != "auto" else (
            f"fallback: {value:g} (threshold 'auto' needs the whole run; incremental uses threshold_fallback)")
        threshold = {"threshold": value, "threshold_source": source}
        method = (f"incremental: each {lc.incremental_batch_s} s batch clustered with the identities near it, "
                  f"cosine average linkage at {value:g}, ids decided {lc.decision_delay_s} s after a "
                  "tracklet ends")
    elif with_reid and lc.enabled and linkable:
        res = link_tracklets_detailed(linkable, lc, frame_sizes)
        method = f"k-reciprocal re-ranked (k1={res.k1}, k2={res.k2})" if res.k1 else "cosine"
        if res.threshold is not None:
            threshold = {"threshold": round(res.threshold.value, 4), "threshold_source": res.threshold.describe()}
            method += f" distance, constrained average-linkage clustering at {res.threshold.value:.3g}"
        if res.method == "sparse":
            method = f"sparse ({res.num_candidate_pairs} candidate pairs) {method}"
        method += f", same-camera links: {lc.same_camera}"
    else:
        linkable = []
        why = "no ReID model" if not with_reid else "linking.enabled is false" if not lc.enabled else "no tracklets"
        method = f"no linking ({why})"
    # tracklets left out of linking get their own ids, after the linked ones, by start time
    next_id = max((int(t.global_id or 0) for t in linkable), default=0) + 1
    linked = {id(t) for t in linkable}
    for t in sorted((t for t in tracklets if id(t) not in linked), key=lambda t: (t.start_time, t.camera_id)):
        t.global_id = next_id
        next_id += 1
    cams_per_id: dict[int, set[str]] = {}
    for t in tracklets:
        cams_per_id.setdefault(int(t.global_id or 0), set()).add(t.camera_id)
    return {
        "method": method,
        "mode": lc.mode,
        **threshold,
        "tracklets": len(tracklets),
        "tracklets_without_feature": sum(t.feature is None for t in tracklets),
        "identities": len(cams_per_id),
        "cross_camera_identities": sum(len(c) > 1 for c in cams_per_id.values()),
        "same_camera_links": count_same_camera_links(tracklets),
        "merges": len(merges),
        "merge_events": merges,
    }


def _frame_sizes(result: RunResult) -> dict[str, tuple[float, float]]:
    return {c.camera_id: (float(c.width), float(c.height)) for c in result.cameras.values() if c.width and c.height}


def _link_run(result: RunResult, cfg: MtmcConfig) -> LearnedTopology | None:
    """Link ``result``'s tracklets (sets ``linking`` and ``merges``); returns the topology learned from them.

    Offline with ReID and more than one camera, the camera topology is learned from the first
    pass (:func:`trackers.linking.learn_topology.learn_topology`); with ``linking.learn_topology`` the
    tracklets are then linked again under it, the config's own ``linking.topology`` entries winning.
    """
    with_reid = result.reid is not None
    sizes = _frame_sizes(result)
    tracklets = result.tracklets
    result.linking = _link(tracklets, cfg, with_reid, sizes)
    lc = cfg.linking
    learned = None
    if with_reid and lc.enabled and lc.mode == "offline" and len({t.camera_id for t in tracklets}) > 1:
        learned = learn_topology(tracklets, max_distance=lc.learn_max_distance, min_pairs=lc.learn_min_pairs)
        rules = learned.to_config()
        if lc.learn_topology and rules:
            topo = _merge_topology(rules, lc.topology)
            second = cfg.model_copy(update={"linking": lc.model_copy(update={"topology": topo})})
            for t in tracklets:
                t.global_id = None
            result.linking = _link(tracklets, second, with_reid, sizes)
            result.linking["method"] += f"; second pass with the learned topology ({_pair_kinds(learned)})"
    result.merges = result.linking.pop("merge_events")
    return learned


def _merge_topology(learned: dict[str, dict[str, Any]], own: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``linking.topology`` of the config plus the learned pairs it does not mention (in either order)."""
    mine = set(validate_topology(own))
    out = {a: dict(row) for a, row in own.items()}
    for a, row in learned.items():
        for b, rule in row.items():
            if (min(a, b), max(a, b)) not in mine:
                out.setdefault(a, {})[b] = rule
    return out


def _pair_kinds(learned: LearnedTopology) -> str:
    known = [f"{a}-{b} {e.kind}" for (a, b), e in sorted(learned.pairs.items()) if e.kind != "unknown"]
    return ", ".join(known) or "no pair known"


def relink(result: RunResult, cfg: MtmcConfig) -> RunResult:
    """Link a finished run's tracklets again, with ``cfg.linking``, without decoding anything.

    The way to compare linking settings or modes (``linking.mode: offline`` vs
    ``incremental``, a threshold, a topology) on the same input: per-camera
    tracks and tracklet features stay those of ``result``. Tracklets are linked
    only when the run had a ReID model.

    Args:
        result: a :class:`~pipeline.results.RunResult` of :func:`run` (not changed).
        cfg: config whose ``linking`` and ``tracklets.min_length`` are used.

    Returns:
        A deep copy of ``result`` with new ``global_id`` s, ``linking`` summary,
        ``merges`` and the ``linking`` section of ``config`` replaced; write it
        with :mod:`pipeline.export` as :func:`run` would.

    Raises:
        ValueError: tracklet features disagree in length.
    """
    out = copy.deepcopy(result)
    for t in out.tracklets:
        t.global_id = None
    _link_run(out, cfg)
    out.config = {**out.config, "linking": cfg.model_dump(by_alias=True)["linking"]}
    return out


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
    :func:`trackers.linking.link_tracklets_detailed` gives each a global id.

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
    """
    t_start = time.perf_counter()
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    specs = discover_cameras(list(inputs))
    runnable = _runnable(specs, cfg)
    own_detector = detector is None
    if detector is None:
        detector = build_detector(cfg.detector, {s.camera_id: s.path for s in runnable})
    if isinstance(extractor, str):
        extractor = build_reid(cfg.reid, default_device=cfg.detector.device)
    lock = OutputLock(out_dir, "mtmc run") if out_dir is not None else None
    try:
        if lock is not None:
            lock.acquire()
            clear_outputs(out_dir, keep=inputs)  # type: ignore[arg-type]
        crop_writer = CropWriter(Path(out_dir) / "crops") if save_crops and out_dir is not None else None
        loop = _CameraLoop(specs, runnable, cfg, progress or RunProgress(cfg.output.progress))
        try:
            loop.run(detector, extractor, crop_writer, stop or threading.Event())
        finally:
            if own_detector:
                detector.close()
            result = loop.result(detector.name, extractor.name if extractor is not None else None, created)
            t = time.perf_counter()
            learned = _link_run(result, cfg)
            result.stages["link"] = time.perf_counter() - t
            if out_dir is not None:
                _write_outputs(result, Path(out_dir), specs, learned, crop_writer, save_video, t_start)
    finally:
        if lock is not None:
            lock.release()
    return result


def _runnable(specs: list[CameraSpec], cfg: MtmcConfig) -> list[CameraSpec]:
    use_pixels = not cfg.detector.spec.startswith("mot")
    runnable = [s for s in specs if not (use_pixels and s.kind == "detonly")]
    if not runnable:
        raise InputError(
            "no camera has pixels to detect on (sequence folders without img1/ or a video): "
            "use --detector mot to run on their det/det.txt"
        )
    return runnable


class _CameraLoop:
    """The decode → detect → track → embed loop over all cameras of one run."""

    def __init__(self, specs: list[CameraSpec], runnable: list[CameraSpec], cfg: MtmcConfig, progress: RunProgress):
        self.specs, self.runnable, self.cfg, self.progress = specs, runnable, cfg, progress
        self.states: dict[str, CameraState] = {}
        for s in specs:
            total = capped_total(_frame_count(s), cfg.decode.max_frames)
            self.states[s.camera_id] = CameraState(s, cfg, progress.add(s.camera_id, s.source, s.kind, total))
        self.results: dict[str, CameraResult] = {}
        for s in specs:
            if s not in runnable:
                self.results[s.camera_id] = self.states[s.camera_id].finish(
                    f"{s.camera_id}: {s.path} has no pixels (no img1/ or video); use --detector mot for its det/det.txt"
                )
        self.stages = dict.fromkeys(("decode", "detect", "track", "reid", "link", "export"), 0.0)
        self.interrupted = False

    def run(self, detector: Detector, extractor: FeatureExtractor | None, crop_writer: CropWriter | None,
            stop: threading.Event) -> None:
        """Process frames until every camera ends or ``stop`` is set; every camera is finished afterwards."""
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
        return RunResult(
            cameras={s.camera_id: self.results[s.camera_id] for s in self.specs},
            stages=self.stages,
            wall_s=0.0,
            detector=detector,
            config=self.cfg.model_dump(by_alias=True),
            reid=reid,
            created=created,
            interrupted=self.interrupted,
        )


def _write_outputs(result: RunResult, out: Path, specs: list[CameraSpec], learned: LearnedTopology | None,
                   crop_writer: CropWriter | None, save_video: bool, t_start: float) -> None:
    """Write every output that can be written; each one that cannot is named in ``result.output_errors``."""
    t = time.perf_counter()
    steps: list[tuple[str, Callable[[], object]]] = [("tracks/", lambda: write_tracks(result, out))]
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
    names += ["topology.yaml", "videos", "crops", "trajectories.json"]
    return [n for n in names if (out / n).exists()] + ["summary.json"]
