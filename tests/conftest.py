"""Shared test fixtures: the ../shared data folder and small synthetic videos."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

# no network checks or downloads from ultralytics inside tests
os.environ.setdefault("YOLO_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MOT15 = SHARED / "data" / "MOT15"
MODELS = SHARED / "models"
YOLOX = MODELS / "yolox_nano.onnx"
OSNET_ONNX = MODELS / "osnet_x0_25_msmt17.onnx"

requires_shared = pytest.mark.skipif(
    not (MOT15 / "PETS09-S2L1").is_dir() or not YOLOX.is_file(),
    reason="../shared (MOT15 sequences and models) is absent; a user's clone does not have it",
)


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts are not a package) as module ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """Encode BGR uint8 frames (H×W×3, even sizes) to an H.264/MPEG-4 file with PyAV."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def moving_box_frames(n: int = 30, size: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    """Synthetic frames: a bright rectangle moving right on a dark background."""
    frames = []
    for i in range(n):
        img = np.full((*size, 3), 30, np.uint8)
        x = 20 + 4 * i
        img[60:180, x:x + 50] = (200, 180, 160)
        frames.append(img)
    return frames


@pytest.fixture
def tiny_video(tmp_path: Path) -> Path:
    """A valid 30-frame 320×240 video at 25 fps."""
    return write_video(tmp_path / "cam_a.mp4", moving_box_frames())
