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


def write_mot_txt(path: str | Path, rows: np.ndarray) -> None:
    """Write tracker output rows ``frame,id,x,y,w,h,score,-1,-1,-1``.

    Args:
        path: output file (parent folders are created; written atomically).
        rows: N×7 array ``frame (1-based), id, x, y, w, h, score`` (pixels);
            written sorted by frame then id.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    r = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
    if len(r):
        r = r[np.lexsort((r[:, 1], r[:, 0]))]
    lines = [f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n" for f, i, x, y, w, h, s in r]
    write_text_atomic(p, "".join(lines))
