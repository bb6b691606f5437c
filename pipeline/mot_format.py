"""MOTChallenge text formats: ``det.txt``, ``gt.txt``, tracker output, ``seqinfo.ini``.

Rows are ``frame,id,x,y,w,h,score_or_flag,a,b,c`` with 1-based frames and
``tlwh`` boxes in pixels (MOTChallenge 2D MOT 2015 / MOT16 devkit layout).
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import write_text_atomic
from pipeline.errors import InputError


@dataclass
class SeqInfo:
    """Contents of a MOTChallenge ``seqinfo.ini``.

    Attributes:
        name: sequence name. frame_rate: frames per second. length: number of frames.
        width, height: image size in pixels. im_dir: image folder name. im_ext: image extension.
    """

    name: str
    frame_rate: float
    length: int
    width: int
    height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Parse ``seqinfo.ini``.

    Raises:
        InputError: the file is missing, lacks the ``[Sequence]`` section or a key,
            or a value is not a number.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: seqinfo.ini not found (a MOTChallenge sequence folder needs one)")
    cp = configparser.ConfigParser()
    try:
        cp.read(p)
        s = cp["Sequence"]
        return SeqInfo(
            name=s.get("name", p.parent.name),
            frame_rate=float(s["frameRate"]),
            length=int(s["seqLength"]),
            width=int(s["imWidth"]),
            height=int(s["imHeight"]),
            im_dir=s.get("imDir", "img1"),
            im_ext=s.get("imExt", ".jpg"),
        )
    except (KeyError, ValueError, configparser.Error) as exc:
        raise InputError(
            f"{p}: malformed seqinfo.ini ({exc!s}); it needs frameRate, seqLength, imWidth, imHeight"
        ) from None


def read_mot_txt(path: str | Path) -> np.ndarray:
    """Read a MOTChallenge text file into an N×10 ``float64`` array.

    Files with fewer than 10 columns (6 to 9) are padded with -1; an empty file
    gives a 0×10 array. Column 0 is the 1-based frame, 1 the id (-1 for
    detections), 2–5 ``tlwh`` in pixels, 6 the score (det / tracker output) or
    the ``flag`` (gt: 0 = ignore).

    Raises:
        InputError: the file is missing or a row is not numeric / too short.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: MOTChallenge file not found")
    rows: list[list[float]] = []
    with p.open() as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.replace(" ", "").split(",")
            try:
                vals = [float(x) for x in parts if x != ""]
            except ValueError:
                raise InputError(f"{p}:{lineno}: not a MOTChallenge row (non-numeric value): {line[:60]}") from None
            if len(vals) < 6:
                raise InputError(f"{p}:{lineno}: a MOTChallenge row needs at least 6 columns, got {len(vals)}")
            rows.append((vals + [-1.0] * 10)[:10])
    if not rows:
        return np.zeros((0, 10), np.float64)
    return np.asarray(rows, dtype=np.float64)


def _format_row(r: np.ndarray, precise: bool) -> str:
    if precise:
        return f"{int(r[0])},{int(r[1])}," + ",".join(f"{v:.10g}" for v in r[2:]) + "\n"
    box = ",".join(f"{v:.2f}" for v in r[2:6])
    rest = f"{r[6]:.4f},-1,-1,-1" if len(r) == 7 else ",".join(f"{v:.6g}" for v in r[6:])
    return f"{int(r[0])},{int(r[1])},{box},{rest}\n"


def write_mot_txt(path: str | Path, rows: np.ndarray, precise: bool = False) -> None:
    """Write MOTChallenge rows, sorted by frame then id (the one writer of the project).

    Args:
        path: output file (parent folders are created; written atomically).
        rows: N×7 tracker output ``frame (1-based), id, x, y, w, h, score`` (pixels,
            ``tlwh``), written as ``frame,id,x,y,w,h,score,-1,-1,-1`` (boxes with 2
            decimals, score with 4); or N×10 rows (ground truth / detections: all ten
            columns kept, boxes with 2 decimals, the rest with 6 significant digits).
        precise: every value after ``frame,id`` with 10 significant digits (files
            that another tool reads back, e.g. TrackEval's input).

    Raises:
        ValueError: ``rows`` has neither 7 nor 10 columns.
        OSError: the file cannot be written.
    """
    r = np.asarray(rows, dtype=np.float64)
    r = r.reshape(-1, r.shape[-1] if r.ndim == 2 else 7)
    if r.shape[1] not in (7, 10):
        raise ValueError(f"MOTChallenge rows need 7 or 10 columns, got {r.shape[1]}")
    if len(r):
        r = r[np.lexsort((r[:, 1], r[:, 0]))]
    write_text_atomic(path, "".join(_format_row(x, precise) for x in r))
