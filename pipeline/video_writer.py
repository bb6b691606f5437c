"""Annotated videos (``--save-video``): each camera's frames with boxes and global ids.

Frames are decoded a second time after linking (global ids are known only
then), drawn with OpenCV and encoded with PyAV (H.264 through libx264 when the
PyAV build has it, else MPEG-4 Part 2).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from fractions import Fraction
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


def pick_codec() -> str:
    """The video encoder to use: ``"libx264"`` when this PyAV build can open it, else ``"mpeg4"``."""
    try:
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height, ctx.pix_fmt = 64, 64, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
        return "libx264"
    except (av.error.FFmpegError, ValueError, av.codec.codec.UnknownCodecError):
        return "mpeg4"


class VideoWriter:
    """Encode BGR frames into a video file with PyAV (yuv420p).

    libx264 at CRF 18 (``veryfast``, macroblock-tree rate control off);
    MPEG-4 Part 2 at about 0.5 bit per pixel (at least 4 Mbit/s),
    near-lossless at these sizes. libx264's macroblock tree made the bytes
    depend on what else the process had run (the same frames encoded
    differently after an ONNX Runtime session or a faiss search, decoded
    pixels up to 33 grey levels apart), so test scenes were not reproducible;
    without it, and with a fixed ``threads``, the same frames give the same file.

    Args:
        path: output file (``.mp4``).
        width, height: frame size in pixels (even; frames are cropped to it).
        fps: frame rate (frames/s); 25 when not positive.
        codec: PyAV encoder name; default :func:`pick_codec`.
        threads: encoder threads; 0 lets the codec choose (from the core count,
            so the bytes differ between machines); a file that must be the same
            everywhere (test scenes) needs a fixed number.

    Raises:
        av.error.FFmpegError, ValueError: the codec cannot be opened.
    """

    def __init__(self, path: Path, width: int, height: int, fps: float, codec: str | None = None,
                 threads: int = 0) -> None:
        codec = codec or pick_codec()
        self.width, self.height = width // 2 * 2, height // 2 * 2
        rate = Fraction(fps if fps > 0 else 25).limit_denominator(1001)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.codec_context.thread_count = threads
        if codec == "libx264":
            self.stream.options = {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}
        else:
            self.stream.bit_rate = max(4_000_000, int(0.5 * self.width * self.height * float(rate)))

    def write(self, img: np.ndarray) -> None:
        """Encode one H×W×3 uint8 BGR frame."""
        img = np.ascontiguousarray(img[: self.height, : self.width])
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


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
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
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
            if writer is None:
                writer = VideoWriter(path, img.shape[1], img.shape[0], fps)
            writer.write(img)
    except CameraError:
        pass  # a camera that failed part-way: its video ends where decoding did
    finally:
        if writer is not None:
            writer.close()


def write_annotated_videos(result: RunResult, specs: Sequence[CameraSpec], out_dir: Path) -> None:
    """Write ``<out_dir>/<camera>.mp4`` for every camera with pixels, one colour per global id."""
    for spec in specs:
        cam = result.cameras[spec.camera_id]
        if spec.kind == "detonly" or cam.frames == 0:
            continue
        write_annotated_video(spec, cam.rows, cam.frames, cam.fps, out_dir / f"{spec.camera_id}.mp4")
