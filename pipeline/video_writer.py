"""Annotated videos (``--save-video``): each camera's frames with boxes and global ids.

Frames are decoded a second time after linking (global ids are known only
then), drawn with OpenCV and encoded with PyAV (H.264 through libx264 when the
PyAV build has it, else MPEG-4 Part 2).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.results import RunResult
from pipeline.sources import CameraError, CameraSpec, iter_frames


def id_colour(global_id: int) -> tuple[int, int, int]:
    """A BGR colour for a global id, the same in every camera (golden-ratio hue steps)."""
    h = (global_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_boxes(image: np.ndarray, xyxy: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Draw N ``xyxy`` boxes (pixels) labelled with their ids on a BGR uint8 image (in place)."""
    for (x1, y1, x2, y2), gid in zip(np.asarray(xyxy).astype(int), ids, strict=True):
        colour = id_colour(int(gid))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        label = str(int(gid))
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
        cv2.rectangle(image, (x1, max(0, y1 - th - 6)), (x1 + tw + 4, max(th + 6, y1)), colour, -1)
        cv2.putText(image, label, (x1 + 2, max(th + 2, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)
    return image


def _codec() -> str:
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.error.FFmpegError, ValueError):
            continue
    return "mpeg4"


def write_annotated_video(spec: CameraSpec, rows: np.ndarray, frames: int, fps: float, path: Path) -> None:
    """Write one camera's annotated video.

    Args:
        spec: the camera (decoded again).
        rows: N×7 MOTChallenge rows ``frame (1-based), id, x, y, w, h, score`` (pixels).
        frames: how many frames the run processed (the video has as many).
        fps: frame rate of the output (frames/s); 25 when unknown.
        path: output ``.mp4``.
    """
    by_frame: dict[int, np.ndarray] = {}
    if len(rows):
        for f in np.unique(rows[:, 0]).astype(int):
            by_frame[f] = rows[rows[:, 0] == f]
    codec = _codec()
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = None
        try:
            for frame in iter_frames(spec):
                if frame.index >= frames or frame.image is None:
                    break
                img = frame.image.copy()
                r = by_frame.get(frame.index + 1)
                if r is not None:
                    xyxy = r[:, 2:6].copy()
                    xyxy[:, 2:] += xyxy[:, :2]
                    draw_boxes(img, xyxy, r[:, 1])
                if stream is None:
                    stream = out.add_stream(codec, rate=round(fps) if fps > 0 else 25)
                    stream.width, stream.height = img.shape[1] // 2 * 2, img.shape[0] // 2 * 2
                    stream.pix_fmt = "yuv420p"
                    if codec == "mpeg4":
                        stream.bit_rate = 4_000_000
                img = img[: stream.height, : stream.width]
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    out.mux(packet)
        except CameraError:
            pass  # a camera that failed part-way: its video ends where decoding did
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)


def write_annotated_videos(result: RunResult, specs: Sequence[CameraSpec], out_dir: Path) -> None:
    """Write ``<out_dir>/<camera>.mp4`` for every camera with pixels, one colour per global id."""
    for spec in specs:
        cam = result.cameras[spec.camera_id]
        if spec.kind == "detonly" or cam.frames == 0:
            continue
        write_annotated_video(spec, cam.rows, cam.frames, cam.fps, out_dir / f"{spec.camera_id}.mp4")
