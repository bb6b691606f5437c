"""Camera sources: discover cameras from CLI inputs and decode their frames.

Three kinds of camera:

* ``video``: a video file decoded with PyAV (timestamps in seconds from the
  stream's presentation times);
* ``images``: a MOTChallenge sequence folder with ``img1/*.jpg`` and
  ``seqinfo.ini`` (timestamp = index / ``frameRate``);
* ``detonly``: a MOTChallenge sequence folder without pixels, used with the
  precomputed ``det.txt`` detector (frames carry ``image=None``).

A sequence folder that holds one video file instead of ``img1/`` (as
``TUD-Campus/TUD-Campus.mp4`` in ``../shared``) is a ``video`` camera named
after the folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2

from pipeline.errors import InputError, first_line
from pipeline.mot_format import SeqInfo, read_seqinfo
from pipeline.types import Frame

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".h264"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_camera_id(name: str) -> str:
    """Make a camera id safe to use as a file name.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` become ``_``;
    leading dots are dropped (no hidden files, no ``..``); at most 64 characters.

    Raises:
        InputError: nothing usable is left (e.g. the name was ``"..."``).
    """
    cid = _UNSAFE.sub("_", name).lstrip("._")[:64].rstrip("_")
    if not cid:
        raise InputError(f"cannot derive a camera id from {name!r}: rename the file or folder")
    return cid


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]*@")


def mask_text(text: str) -> str:
    """Mask the ``user:password@`` of every URL inside ``text`` as ``***:***@`` (never print passwords).

    Works on a bare URL and on messages that quote one (e.g. FFmpeg errors); the
    user info runs to the last ``@`` before the URL's path, so a password holding
    ``@`` is masked whole.
    """
    return _USERINFO.sub(r"\1***:***@", text)


def mask_credentials(url: str) -> str:
    """Replace ``user:password@`` in a URL by ``***:***@`` (see :func:`mask_text`)."""
    return mask_text(url)


@dataclass
class CameraSpec:
    """One camera found in the inputs.

    Attributes:
        camera_id: sanitised id (file stem or sequence folder name), unique in a run.
        path: the video file or the sequence folder.
        kind: ``"video"``, ``"images"`` or ``"detonly"``.
        seqinfo: parsed ``seqinfo.ini`` for MOTChallenge folders, else ``None``.
        video: the video file when ``kind == "video"``.
    """

    camera_id: str
    path: Path
    kind: str
    seqinfo: SeqInfo | None = None
    video: Path | None = None

    @property
    def source(self) -> str:
        """Printable source (credentials masked)."""
        return mask_credentials(str(self.video or self.path))


def _is_sequence(folder: Path) -> bool:
    return (folder / "seqinfo.ini").is_file()


def _sequence_spec(folder: Path) -> CameraSpec:
    info = read_seqinfo(folder / "seqinfo.ini")
    cid = sanitize_camera_id(folder.name)
    img_dir = folder / info.im_dir
    if img_dir.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in img_dir.iterdir()):
        return CameraSpec(cid, folder, "images", info)
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if len(videos) == 1:
        return CameraSpec(cid, folder, "video", info, videos[0])
    return CameraSpec(cid, folder, "detonly", info)


def discover_cameras(inputs: list[str | Path]) -> list[CameraSpec]:
    """Turn CLI inputs into cameras.

    Args:
        inputs: video files, MOTChallenge sequence folders, or folders holding
            videos and/or sequence folders (one level deep).

    Returns:
        Cameras in input order (files of a folder sorted by name), ids unique
        (a repeated id gets ``_2``, ``_3`` … appended).

    Raises:
        InputError: a path does not exist, a folder holds no video or sequence,
            or no input was given.
    """
    if not inputs:
        raise InputError("no input given: pass video files, a folder of videos, or MOTChallenge sequence folders")
    specs: list[CameraSpec] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"input not found: {p} (check the path)")
        if p.is_file():
            specs.append(CameraSpec(sanitize_camera_id(p.stem), p, "video", video=p))
        elif _is_sequence(p):
            specs.append(_sequence_spec(p))
        else:
            found: list[CameraSpec] = []
            for child in sorted(p.iterdir()):
                if child.is_dir() and _is_sequence(child):
                    found.append(_sequence_spec(child))
                elif child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS:
                    found.append(CameraSpec(sanitize_camera_id(child.stem), child, "video", video=child))
            if not found:
                raise InputError(
                    f"no cameras in folder {p}: expected video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                    "or MOTChallenge sequence folders (img1/ + seqinfo.ini)"
                )
            specs.extend(found)
    seen: dict[str, int] = {}
    for s in specs:
        n = seen.get(s.camera_id, 0) + 1
        seen[s.camera_id] = n
        if n > 1:
            s.camera_id = f"{s.camera_id}_{n}"
    return specs


class CameraError(Exception):
    """Decoding of one camera failed; the message is one line naming the camera."""


def _video_frames(spec: CameraSpec) -> Iterator[Frame]:
    path = spec.video
    assert path is not None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise CameraError(f"{spec.camera_id}: cannot open {spec.source} as a video ({exc.__class__.__name__}: "
                          f"{first_line(exc)}); is it a valid video file?") from None
    with container:
        if not container.streams.video:
            raise CameraError(f"{spec.camera_id}: {spec.source} has no video stream")
        stream = container.streams.video[0]
        # no frame threading inside the decoder: cameras already decode in parallel
        # (one reader thread each), and FFmpeg's "AUTO" threading cost more CPU per
        # frame here (4.2 vs 3.8 ms on the PETS09 scene) on a machine the detector saturates
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else (spec.seqinfo.frame_rate if spec.seqinfo else 0.0)
        t0: float | None = None
        index = 0
        try:
            for vf in container.decode(stream):
                t = vf.time
                if t is None:
                    t = index / fps if fps > 0 else float(index)
                if t0 is None:
                    t0 = t
                img = vf.to_ndarray(format="bgr24")
                yield Frame(spec.camera_id, index, float(t - t0), img, img.shape[1], img.shape[0])
                index += 1
        except av.error.FFmpegError as exc:
            raise CameraError(
                f"{spec.camera_id}: decoding {spec.source} failed after {index} frames "
                f"({first_line(exc)}); the file may be truncated or corrupt"
            ) from None
        if index == 0:
            raise CameraError(f"{spec.camera_id}: {spec.source} contains no decodable frames")


def _image_frames(spec: CameraSpec) -> Iterator[Frame]:
    info = spec.seqinfo
    assert info is not None
    files = sorted(p for p in (spec.path / info.im_dir).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    for index, f in enumerate(files):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise CameraError(f"{spec.camera_id}: cannot read image {f} (corrupt or not an image)")
        yield Frame(spec.camera_id, index, index / info.frame_rate, img, img.shape[1], img.shape[0])


def _detonly_frames(spec: CameraSpec) -> Iterator[Frame]:
    info = spec.seqinfo
    assert info is not None
    for index in range(info.length):
        yield Frame(spec.camera_id, index, index / info.frame_rate, None, info.width, info.height)


def iter_frames(spec: CameraSpec) -> Iterator[Frame]:
    """Decode one camera's frames in order.

    Yields:
        :class:`~pipeline.types.Frame` with a 0-based index and a timestamp in
        seconds from the first frame.

    Raises:
        CameraError: the source cannot be opened or decoding fails part-way
            (frames yielded before stay valid).
    """
    if spec.kind == "video":
        return _video_frames(spec)
    if spec.kind == "images":
        return _image_frames(spec)
    return _detonly_frames(spec)


def probe_fps(spec: CameraSpec) -> float:
    """Nominal frame rate (frames/s) of a camera, 0.0 when the container gives none."""
    if spec.seqinfo is not None:
        return spec.seqinfo.frame_rate
    try:
        with av.open(str(spec.video)) as c:
            rate = c.streams.video[0].average_rate or c.streams.video[0].guessed_rate
            return float(rate) if rate else 0.0
    except (av.error.FFmpegError, OSError, IndexError):
        return 0.0

