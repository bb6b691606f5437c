"""The pictures of the report: identity crops and one annotated thumbnail per camera, as JPEG data URIs.

Each camera's source (from ``summary.json``) is decoded once, up to the last frame
needed, and only the frames that hold a chosen crop or the thumbnail are kept. The
crops are those whose ReID features made the tracklet's feature
(``features.npz``), evenly subsampled; a tracklet without a feature shows evenly
spaced boxes of its own.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.errors import InputError, first_line
from pipeline.report.run_view import Identity, RunView
from pipeline.sources import CameraError, CameraSpec, discover_cameras, frames_at
from pipeline.types import Frame
from pipeline.video_writer import draw_boxes
from reid.preprocess import crop_boxes

log = logging.getLogger(__name__)


@dataclass
class Crop:
    """One crop of an identity: camera, 0-based frame, seconds on the common clock, JPEG data URI."""

    camera: str
    frame: int
    time: float
    uri: str


@dataclass
class Pictures:
    """Crops per global id, an annotated thumbnail per camera id (data URIs), and why some are missing."""

    crops: dict[int, list[Crop]] = field(default_factory=dict)
    thumbnails: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def jpeg_uri(image: np.ndarray, quality: int = 80) -> str:
    """A ``data:image/jpeg;base64,...`` URI of an H×W×3 ``uint8`` BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _resize_to(image: np.ndarray, height: int | None = None, width: int | None = None) -> np.ndarray:
    h, w = image.shape[:2]
    scale = (height / h) if height is not None else (width / w) if width is not None else 1.0
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def choose_crops(identity: Identity, max_crops: int) -> dict[str, list[tuple[int, np.ndarray, float]]]:
    """Which boxes of ``identity`` to show: camera → ``(frame, xyxy, time)``, at most ``max_crops`` in all.

    Cameras share the budget evenly (each at least one); within a camera the frames that made
    a feature come first, else evenly spaced boxes of its tracklets.
    """
    cams = identity.cameras
    per_cam = max(1, max_crops // max(1, len(cams)))
    out: dict[str, list[tuple[int, np.ndarray, float]]] = {}
    for cam in cams:
        boxes: list[tuple[int, np.ndarray, float]] = []
        fallback: list[tuple[int, np.ndarray, float]] = []
        for s in (s for s in identity.segments if s.camera == cam):
            pos = {int(f): i for i, f in enumerate(s.frames)}
            dt = (s.end_time - s.start_time) / max(1, len(s.frames) - 1)
            times = {int(f): s.start_time + i * dt for i, f in enumerate(s.frames)}
            boxes += [(int(f), s.boxes[pos[int(f)]], times[int(f)]) for f in s.feature_frames if int(f) in pos]
            fallback += [(int(f), s.boxes[i], times[int(f)]) for i, f in enumerate(s.frames)]
        out[cam] = _evenly(sorted(boxes or fallback, key=lambda b: b[0]), per_cam)
    return out


def camera_spec(cam: dict) -> CameraSpec:
    """The :class:`CameraSpec` of a ``summary.json`` camera entry (its ``source`` found again).

    Raises:
        InputError: the source is gone or holds no camera.
    """
    specs = discover_cameras([cam["source"]])
    match = [s for s in specs if s.camera_id == cam["id"]] or specs
    return match[0]


def _thumb_frame(view: RunView, camera: str) -> tuple[int, np.ndarray, np.ndarray] | None:
    """The camera's frame with the most boxes: ``(frame, N×4 xyxy, N global ids)``."""
    rows = [(int(f), b, ident.global_id) for ident in view.identities for s in ident.segments if s.camera == camera
            for f, b in zip(s.frames, s.boxes, strict=True)]
    if not rows:
        return None
    frames = np.array([r[0] for r in rows])
    best = int(np.bincount(frames).argmax())
    sel = [r for r in rows if r[0] == best]
    return best, np.stack([r[1] for r in sel]), np.array([r[2] for r in sel])


def collect_pictures(view: RunView, max_crops: int = 6, crop_height: int = 96, thumb_width: int = 480) -> Pictures:
    """Decode each camera once and cut the report's crops and thumbnails.

    Args:
        view: the run. max_crops: crops per identity (over all its cameras).
        crop_height: crops are downscaled to this height (pixels). thumb_width: thumbnail width (pixels).

    Returns:
        :class:`Pictures`; a camera whose source cannot be opened or decoded is named in
        ``missing`` with the reason (its crops and thumbnail are left out, the rest is kept).
    """
    pics = Pictures()
    wanted: dict[str, dict[int, list[tuple[int, np.ndarray, float]]]] = {}
    for ident in view.identities:
        for cam, boxes in choose_crops(ident, max_crops).items():
            for f, b, t in boxes:
                wanted.setdefault(cam, {}).setdefault(f, []).append((ident.global_id, b, t))
    for cam in view.cameras:
        cid = cam["id"]
        thumb = _thumb_frame(view, cid)
        try:
            _cut_camera(cam, wanted.get(cid, {}), thumb, pics, crop_height, thumb_width)
        except (InputError, CameraError, OSError) as exc:
            pics.missing[cid] = first_line(exc)
            log.warning("report: no pictures of camera %s (%s)", cid, first_line(exc))
    for crops in pics.crops.values():
        crops.sort(key=lambda c: (c.time, c.camera))
    return pics


def _cut_camera(cam: dict, wanted: dict[int, list[tuple[int, np.ndarray, float]]],
                thumb: tuple[int, np.ndarray, np.ndarray] | None, pics: Pictures, crop_height: int,
                thumb_width: int) -> None:
    if cam.get("kind") == "detonly":
        raise InputError("the camera had detections only, no pixels")
    for frame in frames_at(camera_spec(cam), [*wanted, *([thumb[0]] if thumb else [])]):
        if frame.image is not None:
            _cut_frame(frame, cam["id"], wanted.get(frame.index, []), thumb, pics, crop_height, thumb_width)


def _cut_frame(frame: Frame, cam: str, wanted: list[tuple[int, np.ndarray, float]],
               thumb: tuple[int, np.ndarray, np.ndarray] | None, pics: Pictures, crop_height: int,
               thumb_width: int) -> None:
    assert frame.image is not None
    if wanted:
        crops, _ = crop_boxes(frame.image, np.stack([b for _, b, _ in wanted]))
        for (gid, _, t), crop in zip(wanted, crops, strict=True):
            if crop is not None:
                pics.crops.setdefault(gid, []).append(Crop(cam, frame.index, t, jpeg_uri(
                    _resize_to(crop, height=crop_height))))
    if thumb is not None and frame.index == thumb[0]:
        drawn = draw_boxes(frame.image.copy(), thumb[1], thumb[2])
        pics.thumbnails[cam] = jpeg_uri(_resize_to(drawn, width=thumb_width), quality=75)
