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

import logging
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from pathlib import Path

import av
import cv2

from pipeline.clock import parse_time
from pipeline.errors import InputError, first_line
from pipeline.mot_format import SeqInfo, read_seqinfo
from pipeline.redact import mask_text
from pipeline.types import Frame

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".h264"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_KEPT = frozenset("._-")
_MAX_ID_CHARS = 64
_MAX_ID_BYTES = 200  # UTF-8; leaves room for "_2", ".txt" … under the usual 255-byte file name limit
log = logging.getLogger(__name__)


def _id_char(c: str) -> bool:
    # letters and digits of any script (with their combining marks: Indic vowel signs, …) are kept
    return c.isalnum() or c in _KEPT or unicodedata.category(c).startswith("M")


def sanitize_camera_id(name: str, source: str | None = None, fix: str = "rename the file or folder") -> str:
    """Make a camera id safe to use as a file name, keeping the letters of any script.

    ``name`` is NFKC-normalised; Unicode letters and digits (``str.isalnum``, with
    their combining marks), ``.``, ``_`` and ``-`` are kept, every run of other
    characters (whitespace, ``/``, ``\\``, control characters, ``:*?"<>|``, ``#`` …)
    becomes one ``_``; leading dots and underscores are dropped (no hidden files,
    no ``..``), as are trailing underscores; at most 64 characters and 200 UTF-8 bytes
    (``"caméra 北"`` → ``"caméra_北"``).

    Args:
        name: file stem, folder name or camera name.
        source: what the error message names (e.g. the path as given); default ``repr(name)``.
        fix: what the error message tells the user to do.

    Raises:
        InputError: nothing usable is left (e.g. the name was ``"..."``); one line
            ``cannot derive a camera id from <source>: <fix>``.
    """
    text = unicodedata.normalize("NFKC", name)
    cid = "".join("".join(run) if kept else "_" for kept, run in groupby(text, key=_id_char))
    cid = cid.lstrip("._")[:_MAX_ID_CHARS]
    while len(cid.encode()) > _MAX_ID_BYTES:
        cid = cid[:-1]
    cid = cid.rstrip("_")
    if not cid:
        raise InputError(f"cannot derive a camera id from {source or repr(name)}: {fix}")
    return cid


def unique_camera_ids(ids: list[str], sources: list[str]) -> list[str]:
    """Make camera ids unique: a repeated id gets ``_2``, ``_3`` … (one not already in use), with a warning.

    Ids compare case-insensitively (``Cam`` and ``cam`` would share a file on a
    case-insensitive file system). Each rename is logged as one warning line
    naming both sources and the new id.

    Args:
        ids: sanitised ids in input order.
        sources: printable source of each id (credentials masked), for the warning.

    Returns:
        The ids, the first of each kept and the later ones suffixed.
    """
    taken = {i.casefold() for i in ids}
    first: dict[str, tuple[str, str]] = {}
    out: list[str] = []
    for cid, src in zip(ids, sources, strict=True):
        key = cid.casefold()
        if key not in first:
            first[key] = (cid, src)
            out.append(cid)
            continue
        n = 2
        while f"{key}_{n}" in taken:
            n += 1
        new = f"{cid}_{n}"
        taken.add(new.casefold())
        log.warning("camera id %r of %s clashes with %r of %s: it becomes %r (rename one to choose its id)",
                    cid, src, *first[key], new)
        out.append(new)
    return out


def mask_credentials(url: str) -> str:
    """``url`` with its secrets masked: ``user:password@`` and secret query parameters
    (:func:`pipeline.redact.mask_text`)."""
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
        time_offset_s: added to every frame's timestamp: the common-clock time of the
            camera's first frame (:mod:`pipeline.clock`; the runner sets it, 0 by default).
    """

    camera_id: str
    path: Path
    kind: str
    seqinfo: SeqInfo | None = None
    video: Path | None = None
    time_offset_s: float = 0.0

    @property
    def source(self) -> str:
        """Printable source (credentials masked)."""
        return mask_credentials(str(self.video or self.path))


def _is_sequence(folder: Path) -> bool:
    return (folder / "seqinfo.ini").is_file()


def _list_dir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        reason = exc.strerror or first_line(exc)
        raise InputError(f"cannot read folder {folder} ({reason}): check its permissions") from None


def _sequence_spec(folder: Path) -> CameraSpec:
    info = read_seqinfo(folder / "seqinfo.ini")
    name = folder.name if folder.name not in ("", "..") else folder.resolve().name  # "mtmc run ." inside one
    cid = sanitize_camera_id(name, str(folder), "rename the folder")
    img_dir = folder / info.im_dir
    if img_dir.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in _list_dir(img_dir)):
        return CameraSpec(cid, folder, "images", info)
    videos = [p for p in _list_dir(folder) if p.suffix.lower() in VIDEO_EXTENSIONS]
    if len(videos) == 1:
        return CameraSpec(cid, folder, "video", info, videos[0])
    return CameraSpec(cid, folder, "detonly", info)


def _video_spec(path: Path) -> CameraSpec:
    return CameraSpec(sanitize_camera_id(path.stem, str(path), "rename the file"), path, "video", video=path)


def _folder_specs(folder: Path) -> list[CameraSpec]:
    found: list[CameraSpec] = []
    for child in _list_dir(folder):
        if child.is_dir() and _is_sequence(child):
            found.append(_sequence_spec(child))
        elif child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS:
            found.append(_video_spec(child))
    if not found:
        raise InputError(
            f"no cameras in folder {folder}: expected video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
            "or MOTChallenge sequence folders (img1/ + seqinfo.ini)"
        )
    return found


def _input_specs(raw: str | Path) -> list[CameraSpec]:
    p = Path(raw)
    if not p.exists():
        raise InputError(f"input not found: {p} (check the path)")
    if p.is_file():
        return [_video_spec(p)]
    if not p.is_dir():
        raise InputError(f"{p} is neither a file nor a folder: pass video files or folders")
    return [_sequence_spec(p)] if _is_sequence(p) else _folder_specs(p)


def _reject_repeats(specs: list[CameraSpec], origins: list[Path]) -> None:
    seen: dict[Path, str] = {}
    for s, origin in zip(specs, origins, strict=True):
        real = (s.video or s.path).resolve()
        given = str(s.path) if s.path == origin else f"{s.path} in {origin}"
        if real in seen:
            both = f" (as {seen[real]} and {given})" if seen[real] != given else ""
            raise InputError(f"{real} is given twice{both}: pass each camera once")
        seen[real] = given


def discover_cameras(inputs: list[str | Path]) -> list[CameraSpec]:
    """Turn CLI inputs into cameras.

    Args:
        inputs: video files, MOTChallenge sequence folders, or folders holding
            videos and/or sequence folders (one level deep).

    Returns:
        Cameras in input order (files of a folder sorted by name), ids unique:
        a repeated id gets ``_2``, ``_3`` … (one no other camera has), with a
        warning naming both sources (see :func:`unique_camera_ids`).

    Raises:
        InputError: no input was given, a path does not exist or cannot be read,
            a folder holds no video or sequence, a file name gives no camera id
            (the message names the path), or one file is given twice (directly,
            through its folder, or through a link: same resolved path).
    """
    if not inputs:
        raise InputError("no input given: pass video files, a folder of videos, or MOTChallenge sequence folders")
    found = [(spec, Path(raw)) for raw in inputs for spec in _input_specs(raw)]
    specs = [spec for spec, _ in found]
    _reject_repeats(specs, [origin for _, origin in found])
    for spec, cid in zip(specs, unique_camera_ids([s.camera_id for s in specs], [s.source for s in specs]),
                         strict=True):
        spec.camera_id = cid
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


def _shifted(frames: Iterator[Frame], offset_s: float) -> Iterator[Frame]:
    for frame in frames:
        frame.timestamp += offset_s
        yield frame


def iter_frames(spec: CameraSpec) -> Iterator[Frame]:
    """Decode one camera's frames in order.

    Yields:
        :class:`~pipeline.types.Frame` with a 0-based index and a timestamp in
        seconds on the run's common clock: seconds from the camera's first frame
        plus ``spec.time_offset_s``.

    Raises:
        CameraError: the source cannot be opened or decoding fails part-way
            (frames yielded before stay valid).
    """
    if spec.kind == "video":
        frames = _video_frames(spec)
    elif spec.kind == "images":
        frames = _image_frames(spec)
    else:
        frames = _detonly_frames(spec)
    return _shifted(frames, spec.time_offset_s) if spec.time_offset_s else frames


def frames_at(spec: CameraSpec, indices: Iterable[int]) -> Iterator[Frame]:
    """Decode one camera once, up to the last of ``indices``, and yield only those frames (0-based, in order).

    Raises:
        CameraError: as :func:`iter_frames`.
    """
    wanted = set(int(i) for i in indices)
    if not wanted:
        return
    last = max(wanted)
    frames = iter_frames(spec)
    try:
        for frame in frames:
            if frame.index > last:
                break
            if frame.index in wanted:
                yield frame
    finally:
        frames.close()  # type: ignore[attr-defined]  # a video's container is closed at once


def container_start_time(spec: CameraSpec) -> datetime | None:
    """UTC ``creation_time`` of a video camera's container (or its video stream) when PyAV exposes one.

    ``None`` for image/det-only cameras, a file without the tag, an unparsable tag
    (logged at debug level) or a file that cannot be opened (decoding reports that).
    """
    if spec.kind != "video" or spec.video is None:
        return None
    try:
        with av.open(str(spec.video)) as c:
            tags = [c.metadata, *(s.metadata for s in c.streams.video[:1])]
    except (av.error.FFmpegError, OSError):
        return None
    for tag in (m.get("creation_time") for m in tags):
        if tag:
            try:
                return parse_time(tag)
            except ValueError:
                log.debug("%s: creation_time %r is not ISO 8601; ignored", spec.camera_id, tag)
    return None


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

