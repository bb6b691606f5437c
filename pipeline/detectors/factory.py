"""Choose and build the detector backend named by ``DetectorConfig.spec``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pipeline.config import DetectorConfig
from pipeline.detectors.base import Detector
from pipeline.errors import ModelError

SPEC_HELP = (
    "'mot' (each sequence's det/det.txt), 'mot:DIR' (DIR/<camera>.txt), "
    "'[yolox:|yolov5:|yolov8:]model.onnx', 'model.pt', 'model.yaml' "
    "or an ultralytics name such as 'yolo11n.pt'"
)
_ONNX_PREFIXES = ("yolox:", "yolov5:", "yolov8:")
_ULTRALYTICS_NAME = re.compile(r"^(yolov?\d+[a-z0-9-]*|rtdetr-[a-z0-9-]+)$", re.IGNORECASE)


def mot_det_files(camera_paths: Mapping[str, Path], det_dir: Path | None = None) -> dict[str, Path]:
    """Locate each camera's MOTChallenge ``det.txt``.

    Args:
        camera_paths: camera id → its input (a MOTChallenge sequence folder or a video file).
        det_dir: with ``'mot:DIR'``, the folder holding ``<camera>.txt`` files.

    Returns:
        camera id → existing ``det.txt`` path. Without ``det_dir``: a folder's
        ``det/det.txt``; for a file, ``<parent>/det/det.txt`` when the parent
        folder is named like the camera.

    Raises:
        ModelError: ``det_dir`` or a camera's file is missing (names the camera and path).
    """
    if det_dir is not None and not det_dir.is_dir():
        raise ModelError(
            f"detections folder not found: {det_dir} (--detector mot:DIR needs DIR/<camera>.txt)"
        )
    files: dict[str, Path] = {}
    for cam, src in camera_paths.items():
        src = Path(src)
        if det_dir is not None:
            path = det_dir / f"{cam}.txt"
        elif src.is_dir():
            path = src / "det" / "det.txt"
        elif src.parent.name == cam:
            path = src.parent / "det" / "det.txt"
        else:
            raise ModelError(
                f"camera {cam}: no MOTChallenge det/det.txt next to {src}; "
                f"use --detector mot:DIR with DIR/{cam}.txt"
            )
        if not path.is_file():
            hint = "" if det_dir is not None else f" (or use --detector mot:DIR with DIR/{cam}.txt)"
            raise ModelError(f"camera {cam}: detections file not found: {path}{hint}")
        files[cam] = path
    return files


def build_detector(cfg: DetectorConfig, camera_paths: Mapping[str, Path]) -> Detector:
    """Build the backend for ``cfg.spec``.

    ``'mot'`` / ``'mot:DIR'`` → :class:`~pipeline.detectors.mot_det.MotDetDetector`;
    ``'[family:]*.onnx'`` → :class:`~pipeline.detectors.onnx_yolo.OnnxYoloDetector`;
    ``'*.pt'``, ``'*.yaml'`` or an ultralytics model name →
    :class:`~pipeline.detectors.ultralytics_backend.UltralyticsDetector`.

    Args:
        cfg: detector settings.
        camera_paths: camera id → input path (used by the ``mot`` specs only).

    Raises:
        ModelError: unknown SPEC, a missing model or detections file (named), or
            weights that cannot be loaded.
    """
    spec = cfg.spec.strip()
    if spec == "mot" or spec.startswith("mot:"):
        from pipeline.detectors.mot_det import MotDetDetector

        det_dir = Path(spec[4:]).expanduser() if spec.startswith("mot:") else None
        return MotDetDetector(mot_det_files(camera_paths, det_dir), conf=cfg.conf)
    lower = spec.lower()
    if lower.endswith(".onnx"):
        from pipeline.detectors.onnx_yolo import OnnxYoloDetector

        return OnnxYoloDetector(cfg.model_copy(update={"spec": spec}))
    if lower.startswith(_ONNX_PREFIXES):
        raise ModelError(f"detector SPEC {spec!r}: a family prefix must be followed by an .onnx file")
    if lower.endswith((".pt", ".yaml", ".yml")) or _ULTRALYTICS_NAME.match(spec):
        local = Path(spec).expanduser()
        if len(local.parts) > 1 and not local.exists():
            raise ModelError(f"detector weights not found: {local}")
        from pipeline.detectors.ultralytics_backend import UltralyticsDetector

        weights = str(local) if len(local.parts) > 1 else spec
        return UltralyticsDetector(cfg.model_copy(update={"spec": weights}))
    raise ModelError(f"unknown detector SPEC {spec!r}: use {SPEC_HELP}")
