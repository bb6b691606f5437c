"""The models of a run, built the same way for ``mtmc run`` and ``mtmc live``: detector and ReID extractor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import MtmcConfig
from pipeline.detectors.base import Detector
from pipeline.detectors.factory import build_detector
from reid.extractor import FeatureExtractor
from reid.factory import build_reid


def uses_mot_detections(spec: str) -> bool:
    """``True`` for the ``mot`` / ``mot:DIR`` detector SPECs (precomputed MOTChallenge detections, no pixels)."""
    s = spec.strip()
    return s == "mot" or s.startswith("mot:")


@dataclass
class Models:
    """A run's detector and ReID extractor (``None``: no ReID); ``own_detector``: built here, closed by close()."""

    detector: Detector
    extractor: FeatureExtractor | None
    own_detector: bool

    def close(self) -> None:
        """Close the detector when it was built here (idempotent for the detectors of this project)."""
        if self.own_detector:
            self.detector.close()


def build_models(cfg: MtmcConfig, camera_paths: Mapping[str, Path], detector: Detector | None = None,
                 extractor: FeatureExtractor | None | str = "config") -> Models:
    """Build what is not given: the detector from ``cfg.detector``, the extractor from ``cfg.reid``.

    Args:
        cfg: the validated config.
        camera_paths: camera id → input path (the ``mot`` detectors read their files there).
        detector: an already built detector (not closed by :meth:`Models.close`).
        extractor: an already built extractor, ``None`` for no ReID, or ``"config"``.

    Raises:
        ModelError: a SPEC is unknown or its weights cannot be loaded (the detector built
            here is closed again when the ReID model fails).
    """
    own = detector is None
    det = detector if detector is not None else build_detector(cfg.detector, camera_paths)
    if not isinstance(extractor, str):
        return Models(det, extractor, own)
    try:
        return Models(det, build_reid(cfg.reid, default_device=cfg.detector.device), own)
    except BaseException:
        if own:
            det.close()
        raise
