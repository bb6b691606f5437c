"""Person detector through the ultralytics YOLO API (``*.pt`` weights, ``*.yaml`` models, model names).

ultralytics is imported lazily (it takes seconds to import). Weights named but
absent locally are downloaded by ultralytics; a failed download becomes a
one-line :class:`~pipeline.errors.ModelError`. ultralytics' own logging (its
settings banner on first import, download progress and retries, model
summaries) is turned off unless ``YOLO_VERBOSE`` is set, so that nothing comes
before our one-line errors; set ``YOLO_VERBOSE=True`` to see it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import DetectorConfig
from pipeline.detectors.base import PERSON_CLASS, Detector
from pipeline.devices import resolve
from pipeline.errors import ModelError, first_line
from pipeline.types import Detections, Frame

DEFAULT_IMGSZ = 640


def _import_quiet_yolo() -> Any:
    """``ultralytics.YOLO``, imported with ultralytics' logging off unless the user set ``YOLO_VERBOSE``.

    ``YOLO_VERBOSE=False`` must be in the environment before the first import (the
    settings banner is logged at import time); when ultralytics was imported
    earlier in the process, its logger is lowered to errors instead.
    """
    user_choice = "YOLO_VERBOSE" in os.environ
    os.environ.setdefault("YOLO_VERBOSE", "False")
    from ultralytics import YOLO

    if not user_choice:
        logging.getLogger("ultralytics").setLevel(logging.ERROR)
    return YOLO


def _load_failure_message(spec: str, exc: BaseException) -> str:
    """One-line ModelError text for a model that ultralytics could not load."""
    text = first_line(exc)
    download = isinstance(exc, ConnectionError) or "download failure" in text.lower()
    if download or (isinstance(exc, FileNotFoundError) and not Path(spec).exists()):
        return (
            f"cannot load detector {spec!r}: not found locally and download failed (offline?). "
            "Use a local file: --detector path/to/model.pt, an ONNX model "
            "--detector yolox:../shared/models/yolox_nano.onnx, or --detector mot for MOTChallenge det.txt"
        )
    return f"cannot load detector {spec!r}: {type(exc).__name__}: {text}"


class UltralyticsDetector(Detector):
    """Person detector running ``ultralytics.YOLO(cfg.spec)`` (YOLOv5u/v8/11 and alike).

    Frames are predicted in one batched call per :meth:`detect` (BGR ``uint8``
    arrays, letterboxing done by ultralytics), keeping class 0 only.

    Args:
        cfg: ``spec`` is a ``*.pt`` file, a ``*.yaml`` model definition (random
            weights; for tests) or a model name ultralytics can download such as
            ``yolo11n.pt``; also uses ``conf``, ``nms_iou``, ``imgsz`` (default 640),
            ``batch``, ``device`` and ``threads`` (torch intra-op threads, 0 = all
            cores; set explicitly because ultralytics lowers it). A ``device``
            this machine lacks means a warning and the CPU
            (:func:`pipeline.devices.resolve`).

    Raises:
        ModelError: the weights are missing and cannot be downloaded, or fail to
            load, or ``cuda:N`` names a GPU that does not exist.
    """

    def __init__(self, cfg: DetectorConfig) -> None:
        try:
            YOLO = _import_quiet_yolo()  # noqa: N806 - the class, as ultralytics names it
        except ImportError as exc:  # pragma: no cover - ultralytics is a dependency
            raise ModelError(
                f"cannot load detector {cfg.spec!r}: ultralytics is not installed ({exc})"
            ) from None
        self.device = resolve(cfg.device, f"ultralytics detector {Path(cfg.spec).name}")
        self.cfg = cfg
        self.threads = cfg.threads or os.cpu_count() or 1
        try:
            self.model = YOLO(cfg.spec)
        except Exception as exc:  # ultralytics raises many kinds; all mean "cannot load"
            raise ModelError(_load_failure_message(cfg.spec, exc)) from None
        # ultralytics' select_device() resets torch threads at predictor set-up
        self.model.add_callback("on_predict_start", lambda _predictor: self._set_threads())
        self._set_threads()
        self.max_batch = cfg.batch
        self.name = f"ultralytics:{Path(cfg.spec).name}"

    def _set_threads(self) -> None:
        """Set torch's intra-op thread count to ``cfg.threads`` (0 → all cores)."""
        import torch

        torch.set_num_threads(self.threads)

    def detect(self, frames: list[Frame]) -> list[Detections]:
        """Detect people in each frame; see :meth:`Detector.detect`.

        Raises:
            ModelError: a frame has no pixels or the model fails on the input.
        """
        if not frames:
            return []
        images: list[np.ndarray] = []
        for f in frames:
            if f.image is None:
                raise ModelError(
                    f"camera {f.camera_id} frame {f.index} has no pixels; "
                    "an image detector needs decoded frames (use --detector mot for det.txt)"
                )
            images.append(f.image)
        try:
            results = self.model.predict(
                images,
                classes=[PERSON_CLASS],
                conf=self.cfg.conf,
                iou=self.cfg.nms_iou,
                imgsz=self.cfg.imgsz or DEFAULT_IMGSZ,
                device=self.device,
                verbose=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"{self.name}: inference failed: {first_line(exc)}") from None
        return [self._to_detections(r, f) for r, f in zip(results, frames, strict=True)]

    @staticmethod
    def _to_detections(result: Any, frame: Frame) -> Detections:
        """ultralytics ``Results`` → :class:`Detections` (person only, clipped to the frame)."""
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32).reshape(-1, 4)
        score = boxes.conf.cpu().numpy().astype(np.float32).reshape(-1)
        cls = boxes.cls.cpu().numpy().astype(np.int64).reshape(-1)
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0.0, float(frame.width))
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0.0, float(frame.height))
        keep = (cls == PERSON_CLASS) & (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Detections(xyxy[keep], np.clip(score[keep], 0.0, 1.0), cls[keep])

    def close(self) -> None:
        """Drop the model."""
        self.model = None
