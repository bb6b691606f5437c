"""Stage wiring: decode → detect → track → export, over many cameras at once.

:func:`run` is the Python API behind ``mtmc run``: it runs the same stages on
the same inputs and returns what the CLI writes.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.config import MtmcConfig
from pipeline.detectors.base import Detector
from pipeline.detectors.factory import build_detector
from pipeline.errors import InputError
from pipeline.mot_format import write_mot_txt
from pipeline.reader import CameraReader, EndOfStream
from pipeline.results import CameraResult, RunResult
from pipeline.sources import CameraSpec, discover_cameras, probe_fps
from pipeline.types import Frame, xyxy_to_tlwh
from trackers.byte_tracker import ByteTracker


class _CameraState:
    """Mutable per-camera state of a run (tracker, collected rows, progress bar)."""

    def __init__(self, spec: CameraSpec, cfg: MtmcConfig, bar: tqdm | None):
        self.spec = spec
        self.tracker = ByteTracker(cfg.tracker)
        self.rows: list[np.ndarray] = []
        self.bar = bar
        self.result = CameraResult(spec.camera_id, spec.source, spec.kind, fps=probe_fps(spec))
        if spec.seqinfo is not None:
            self.result.width, self.result.height = spec.seqinfo.width, spec.seqinfo.height

    def add(self, frame: Frame, outputs: list) -> None:
        r = self.result
        r.frames += 1
        r.width, r.height = frame.width, frame.height
        if outputs:
            xyxy = np.stack([o.xyxy for o in outputs]).astype(np.float64)
            tlwh = xyxy_to_tlwh(xyxy)
            block = np.column_stack([
                np.full(len(outputs), frame.index + 1),
                [o.track_id for o in outputs],
                tlwh,
                [o.score for o in outputs],
            ])
            self.rows.append(block)
        if self.bar is not None:
            self.bar.update(1)

    def finish(self, error: str | None) -> CameraResult:
        r = self.result
        r.rows = np.concatenate(self.rows) if self.rows else r.rows
        if error is not None:
            r.status, r.error = "failed", error
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        return r


def _frame_count(spec: CameraSpec) -> int | None:
    if spec.kind == "images" and spec.seqinfo is not None:
        return sum(1 for _ in (spec.path / spec.seqinfo.im_dir).iterdir())
    if spec.seqinfo is not None:
        return spec.seqinfo.length
    return None


def write_tracks(result: RunResult, out_dir: str | Path) -> None:
    """Write ``tracks/<camera>.txt`` (MOTChallenge) for every camera, a failed one too
    (its rows up to the failure)."""
    tracks = Path(out_dir) / "tracks"
    tracks.mkdir(parents=True, exist_ok=True)
    for cam in result.cameras.values():
        write_mot_txt(tracks / f"{cam.camera_id}.txt", cam.rows)


def write_summary(result: RunResult, out_dir: str | Path) -> None:
    """Write ``summary.json`` atomically (temporary file, then rename)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(result.summary(), indent=2))
    os.replace(tmp, out / "summary.json")


def run(
    inputs: Sequence[str | Path],
    cfg: MtmcConfig,
    out_dir: str | Path | None = None,
    detector: Detector | None = None,
) -> RunResult:
    """Decode, detect and track every camera of ``inputs``; optionally write the outputs.

    Frames of all cameras are gathered round-robin (at most one frame per camera
    per round, up to ``cfg.detector.batch`` frames) and go through the detector
    in one call; each camera has its own :class:`~trackers.byte_tracker.ByteTracker`.

    Args:
        inputs: video files, folders of videos, or MOTChallenge sequence folders
            (see :func:`pipeline.sources.discover_cameras`).
        cfg: the validated config.
        out_dir: when given, ``tracks/<camera>.txt`` and ``summary.json`` are
            written there — also when the run stops early on an error or Ctrl-C.
        detector: an already built detector (else built from ``cfg.detector``).

    Returns:
        :class:`~pipeline.results.RunResult` with per-camera MOTChallenge rows.
        A camera whose decoding fails is marked ``failed`` with a one-line
        reason; the others run to the end.

    Raises:
        InputError: an input path is missing or holds no camera.
        ModelError: the detector SPEC is unknown or its weights cannot be loaded.
    """
    t_start = time.perf_counter()
    specs = discover_cameras(list(inputs))
    use_pixels = not cfg.detector.spec.startswith("mot")
    runnable = [s for s in specs if not (use_pixels and s.kind == "detonly")]
    if not runnable:
        raise InputError(
            "no camera has pixels to detect on (sequence folders without img1/ or a video): "
            "use --detector mot to run on their det/det.txt"
        )
    own_detector = detector is None
    if detector is None:
        detector = build_detector(cfg.detector, {s.camera_id: s.path for s in runnable})
    progress = None if cfg.output.progress else True  # None: tqdm shows bars only on a terminal
    states: dict[str, _CameraState] = {}
    for i, s in enumerate(specs):
        bar = tqdm(total=_frame_count(s), desc=s.camera_id[:20], unit="f", position=i, leave=True, disable=progress)
        states[s.camera_id] = _CameraState(s, cfg, bar)
    results: dict[str, CameraResult] = {}
    for s in specs:
        if s not in runnable:
            results[s.camera_id] = states[s.camera_id].finish(
                f"{s.camera_id}: {s.path} has no pixels (no img1/ or video); use --detector mot for its det/det.txt"
            )

    wakeup = threading.Event()
    readers = {s.camera_id: CameraReader(s, cfg.decode.queue_size, cfg.decode.max_frames, wakeup) for s in runnable}
    for r in readers.values():
        r.start()
    stages = {"decode": 0.0, "detect": 0.0, "track": 0.0, "export": 0.0}
    active = [s.camera_id for s in runnable]
    max_batch = max(1, min(cfg.detector.batch, detector.max_batch))
    interrupted = False
    try:
        while active:
            wakeup.clear()
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
                        ended.append((cam, item.error))  # finished after this batch's frames
                        continue
                    batch.append(item)
                    took = True
                active = active[1:] + active[:1]  # rotate so no camera is always first
            if batch:
                t = time.perf_counter()
                dets = detector.detect(batch)
                stages["detect"] += time.perf_counter() - t
                t = time.perf_counter()
                for frame, d in zip(batch, dets, strict=True):
                    st = states[frame.camera_id]
                    st.add(frame, st.tracker.update(d, frame.timestamp, frame.index))
                stages["track"] += time.perf_counter() - t
            elif active and not ended:
                wakeup.wait(0.05)
            for cam, error in ended:
                results[cam] = states[cam].finish(error)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for r in readers.values():
            r.stop()
        for cam in active:
            results[cam] = states[cam].finish("interrupted" if interrupted else "stopped by an error")
        stages["decode"] = sum(r.decode_s for r in readers.values())
        if own_detector:
            detector.close()
        result = RunResult(
            cameras={s.camera_id: results[s.camera_id] for s in specs},
            stages=stages,
            wall_s=time.perf_counter() - t_start,
            detector=detector.name,
            config=cfg.model_dump(),
            interrupted=interrupted,
        )
        if out_dir is not None:
            t = time.perf_counter()
            write_tracks(result, out_dir)
            stages["export"] = time.perf_counter() - t
            result.wall_s = time.perf_counter() - t_start
            write_summary(result, out_dir)
    return result
