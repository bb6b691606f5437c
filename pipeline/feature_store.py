"""``OUT/features.npz``: every tracklet's ReID feature, kept so that search, relinking and the
report need no second pass over the video.

One NumPy ``.npz`` archive (no pickles; read with ``allow_pickle=False``), written atomically:

=====================  =========  ==========================================================
key                    dtype      content
=====================  =========  ==========================================================
``features``           float16    N×D L2-normalised tracklet features (MARS-style means)
``camera_id``          str        N camera ids
``local_id``           int64      N per-camera track ids
``global_id``          int64      N global ids after linking
``start_time``         float64    N first-box times, s on the run's common clock
``end_time``           float64    N last-box times, s
``num_features``       int32      N crops averaged into each feature
``feature_frames``     int64      the 0-based frames of those crops, all tracklets in a row
``frames_offsets``     int64      N+1 offsets: tracklet i's frames are ``[off[i]:off[i+1]]``
``nearest_distance``   float32    N smallest linking distance to another camera (NaN: none)
``model``              str        the ReID model's name (``FeatureExtractor.name``)
``version``            str        :data:`FORMAT_VERSION`
=====================  =========  ==========================================================

Only tracklets with a feature are stored; float16 halves the file and moves cosine
distances by under 1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import InputError
from pipeline.types import Tracklet

FEATURES_FILE = "features.npz"
FORMAT_VERSION = "1"


@dataclass
class FeatureStore:
    """The tracklet features of one run (the content of ``features.npz``; see the module docstring).

    Attributes:
        features: N×D ``float32`` L2-normalised features (stored as float16).
        camera_id: N ``str``. local_id, global_id: N ``int64``.
        start_time, end_time: N ``float64`` seconds on the run's common clock.
        num_features: N ``int32``. feature_frames: N ``int64`` arrays of 0-based frames.
        nearest_distance: N ``float32`` (``NaN`` when the linker had no other-camera distance).
        model: ReID model name.
    """

    features: np.ndarray
    camera_id: np.ndarray
    local_id: np.ndarray
    global_id: np.ndarray
    start_time: np.ndarray
    end_time: np.ndarray
    num_features: np.ndarray
    feature_frames: list[np.ndarray]
    nearest_distance: np.ndarray
    model: str

    def __len__(self) -> int:
        return len(self.local_id)

    @classmethod
    def from_tracklets(cls, tracklets: list[Tracklet], model: str,
                       nearest: dict[tuple[str, int], float] | None = None) -> FeatureStore:
        """The store of ``tracklets`` that have a feature (``nearest``: :attr:`RunResult.link_distances`).

        Raises:
            ValueError: features differ in length.
        """
        kept = [t for t in tracklets if t.feature is not None]
        dims = {len(t.feature) for t in kept}  # type: ignore[arg-type]
        if len(dims) > 1:
            raise ValueError(f"tracklet features differ in length ({sorted(dims)})")
        near = nearest or {}
        return cls(
            features=np.stack([t.feature for t in kept]).astype(np.float32) if kept else np.zeros((0, 0), np.float32),
            camera_id=np.array([t.camera_id for t in kept], dtype=str),
            local_id=np.array([t.local_id for t in kept], np.int64),
            global_id=np.array([t.global_id or 0 for t in kept], np.int64),
            start_time=np.array([t.start_time for t in kept], np.float64),
            end_time=np.array([t.end_time for t in kept], np.float64),
            num_features=np.array([t.num_features for t in kept], np.int32),
            feature_frames=[np.asarray(t.feature_frames, np.int64) for t in kept],
            nearest_distance=np.array([near.get((t.camera_id, int(t.local_id)), np.nan) for t in kept], np.float32),
            model=model,
        )

    def save(self, path: str | Path) -> None:
        """Write the archive atomically. Raises ``OSError`` when ``path`` cannot be written."""
        offsets = np.concatenate([[0], np.cumsum([len(f) for f in self.feature_frames])]).astype(np.int64)
        flat = np.concatenate(self.feature_frames) if self.feature_frames else np.zeros(0, np.int64)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, features=self.features.astype(np.float16), camera_id=self.camera_id,
                     local_id=self.local_id, global_id=self.global_id, start_time=self.start_time,
                     end_time=self.end_time, num_features=self.num_features,
                     feature_frames=flat.astype(np.int64), frames_offsets=offsets,
                     nearest_distance=self.nearest_distance, model=np.array(self.model),
                     version=np.array(FORMAT_VERSION))

    @classmethod
    def load(cls, path: str | Path) -> FeatureStore:
        """Read ``features.npz``.

        Raises:
            InputError: the file is missing (the run had no ReID model, or is older than
                features.npz) or is not a features archive of this format.
        """
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p} not found: the run kept no tracklet features (it ran without a ReID model, "
                             "or before features.npz existed); rerun mtmc run with --reid")
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"{p} is not a readable features archive ({exc}); rerun mtmc run") from exc
        missing = {"features", "camera_id", "local_id", "global_id", "frames_offsets", "model"} - set(data)
        if missing:
            raise InputError(f"{p} lacks {', '.join(sorted(missing))}: not an mtmc features archive; rerun mtmc run")
        off = data["frames_offsets"]
        flat = data["feature_frames"]
        return cls(
            features=data["features"].astype(np.float32),
            camera_id=data["camera_id"].astype(str),
            local_id=data["local_id"], global_id=data["global_id"],
            start_time=data["start_time"], end_time=data["end_time"], num_features=data["num_features"],
            feature_frames=[flat[off[i]:off[i + 1]] for i in range(len(off) - 1)],
            nearest_distance=data["nearest_distance"], model=str(data["model"]),
        )
