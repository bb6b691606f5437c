"""Build a multi-camera scene of real footage, with global ids, from one MOTChallenge sequence.

Every "camera" is a rectangular crop of the source frames (full height, part of the
width), so the pixels are real footage and the people's identities are known in
every camera: the sequence's own gt ids are the global ids.

Layouts (fractions of the frame width, crops span the full height):

* ``overlap`` — ``ov_left`` = left 60 %, ``ov_right`` = right 60 %: a person in the
  middle 20 % strip is seen by both cameras in the same frame;
* ``disjoint`` — ``dj_left`` = left 45 %, ``dj_right`` = right 45 %, with a 10 % gap
  no camera sees: a person walking across leaves one view and later enters the other;
* ``both`` (default) — the four cameras above.

Each camera becomes ``OUT/<camera>/`` in MOTChallenge layout, so ``mtmc run OUT -o RUN``
and ``mtmc eval --gt OUT --pred RUN`` work on it directly:

* ``<camera>.mp4`` — the crop, encoded with PyAV (libx264 CRF 18 when this PyAV build
  has it, else MPEG-4 part 2 at a high bit rate; one encoder thread, so the same
  source and seed give the same file); width and height are even;
* ``seqinfo.ini`` — ``name``, ``frameRate``, ``seqLength``, ``imWidth``, ``imHeight``;
* ``gt/gt.txt`` — the source gt rows (1-based frame = video frame index + 1) with the
  ORIGINAL ids (same person = same id in every camera), the ``flag`` column and
  columns 8–10 unchanged, boxes shifted into crop coordinates and clipped to the crop;
* ``det/det.txt`` — when the source has ``det/det.txt``, its detections under the
  same rule (so ``mtmc run OUT --detector mot`` needs no model).

Box rule: a box is kept in a camera when the part of it inside the crop covers at
least ``min_visible`` (default 0.5) of its area inside the source frame, and that
part is at least ``min_size`` (default 8) pixels wide and high; it is then clipped to
the crop. A person half out of the view therefore disappears from that camera's gt,
as a detector would usually miss them too.

``--offsets K1,K2,...`` (one whole number per camera, in layout order) makes cameras that
start at different times: camera i loses its first Ki source frames, as a file that began
Ki frames later would (its video, gt and det start at the source's frame Ki+1, numbered
from 1 again), and ``OUT/mtmc.yaml`` gets the matching clock config,
``cameras: {<camera>: {time_offset_s: Ki / fps}}``, for ``mtmc run OUT --config OUT/mtmc.yaml``.

``--jitter`` gives every camera a deterministic (``--seed``) colour/brightness change:
per BGR channel ``out = clip(gain * in + bias)`` with ``gain`` uniform in
``1 ± 0.2`` and ``bias`` uniform in ``± 20`` grey levels, so appearance differs
across cameras as between real cameras.

Usage::

    python scripts/make_multicam.py ../shared/data/MOT15/TUD-Stadtmitte -o scene --jitter
    mtmc run scene -o run && mtmc eval --gt scene --pred run
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(REPO))

from pipeline.errors import InputError  # noqa: E402
from pipeline.mot_format import read_mot_txt, write_mot_txt  # noqa: E402
from pipeline.sources import CameraError, discover_cameras, iter_frames  # noqa: E402
from pipeline.video_writer import VideoWriter, pick_codec  # noqa: E402

LAYOUTS = ("overlap", "disjoint", "both")
"""Values of ``--layout``."""

OVERLAP_FRAC = 0.6
"""Width of each overlapping crop as a fraction of the frame width (the middle 20 % is shared)."""

DISJOINT_FRAC = 0.45
"""Width of each disjoint crop as a fraction of the frame width (a 10 % gap separates them)."""

JITTER_GAIN = 0.2
"""``--jitter``: per-channel gain drawn uniformly from ``1 ± JITTER_GAIN``."""

JITTER_BIAS = 20.0
"""``--jitter``: per-channel bias drawn uniformly from ``± JITTER_BIAS`` grey levels (0–255 scale)."""


@dataclass(frozen=True)
class Crop:
    """One camera: a rectangle of the source frame.

    Attributes:
        name: camera id, also the sequence folder and video name.
        x0, y0, x1, y1: crop corners in source pixels (``x1``/``y1`` exclusive);
            ``x1 - x0`` and ``y1 - y0`` are even (video encoders need it).
    """

    name: str
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Crop width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Crop height in pixels."""
        return self.y1 - self.y0


@dataclass
class CameraReport:
    """What was written for one camera.

    Attributes:
        crop: the camera's :class:`Crop`.
        folder: ``OUT/<camera>``.
        frames: frames written (= ``seqLength``).
        gt_boxes: gt rows kept (all flags).
        gt_ids: distinct gt ids kept (global ids).
        shared_ids: ids of ``gt_ids`` that also appear in at least one other camera.
        det_boxes: detections kept, or ``None`` when the source has no ``det/det.txt``.
    """

    crop: Crop
    folder: Path
    frames: int
    gt_boxes: int
    gt_ids: set[int] = field(default_factory=set)
    shared_ids: set[int] = field(default_factory=set)
    det_boxes: int | None = None


def _even(x: float) -> int:
    return int(x) // 2 * 2


def crop_layout(
    width: int,
    height: int,
    layout: str = "both",
    overlap_frac: float = OVERLAP_FRAC,
    disjoint_frac: float = DISJOINT_FRAC,
) -> list[Crop]:
    """Camera crops of a ``width`` × ``height`` pixel frame.

    Args:
        width, height: source frame size in pixels.
        layout: ``"overlap"`` (``ov_left``, ``ov_right``), ``"disjoint"`` (``dj_left``,
            ``dj_right``) or ``"both"`` (all four, in that order).
        overlap_frac: width of each overlapping crop, a fraction of ``width`` in (0.5, 1].
        disjoint_frac: width of each disjoint crop, a fraction of ``width`` in (0, 0.5).

    Returns:
        Crops spanning the full (even) height; widths rounded down to even, right crops
        flush with the right edge (moved left by one pixel when ``width`` is odd).

    Raises:
        InputError: unknown layout, fractions outside their range, or crops under 16 pixels.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not 0.5 < overlap_frac <= 1.0:
        raise InputError(f"overlap fraction {overlap_frac} must be in (0.5, 1] so that the two crops overlap")
    if not 0.0 < disjoint_frac < 0.5:
        raise InputError(f"disjoint fraction {disjoint_frac} must be in (0, 0.5) so that the two crops do not meet")
    h = _even(height)
    crops: list[Crop] = []
    groups = (("ov", overlap_frac, "overlap"), ("dj", disjoint_frac, "disjoint"))
    for prefix, frac, kind in groups:
        if layout not in (kind, "both"):
            continue
        w = _even(frac * width)
        if w < 16 or h < 16:
            raise InputError(f"a {frac:.0%} crop of a {width}x{height} frame is too small ({w}x{h} px)")
        x0_right = _even(width - w)
        crops += [Crop(f"{prefix}_left", 0, 0, w, h), Crop(f"{prefix}_right", x0_right, 0, x0_right + w, h)]
    return crops


def crop_rows(
    rows: np.ndarray,
    crop: Crop,
    frame_size: tuple[int, int],
    min_visible: float = 0.5,
    min_size: float = 8.0,
) -> np.ndarray:
    """Move MOTChallenge rows into a crop's coordinates.

    Args:
        rows: N×10 rows ``frame, id, x, y, w, h, flag_or_score, a, b, c`` (``tlwh`` in
            source pixels), as :func:`pipeline.mot_format.read_mot_txt` returns.
        crop: the camera.
        frame_size: source ``(width, height)`` in pixels; a box's reference area is
            its part inside the source frame, so boxes already cut by the frame edge
            are not dropped for that.
        min_visible: keep a box when its area inside the crop is at least this
            fraction of its reference area.
        min_size: and when the part inside the crop is at least this many pixels
            wide and high.

    Returns:
        M×10 kept rows (M ≤ N, input order), box clipped to the crop and shifted by
        ``(-x0, -y0)``; every other column unchanged.
    """
    r = np.asarray(rows, dtype=np.float64).reshape(-1, 10)
    x1, y1 = r[:, 2], r[:, 3]
    x2, y2 = x1 + r[:, 4], y1 + r[:, 5]
    fw, fh = frame_size
    ref = (np.clip(x2, 0, fw) - np.clip(x1, 0, fw)).clip(0) * (np.clip(y2, 0, fh) - np.clip(y1, 0, fh)).clip(0)
    cx1, cy1 = np.clip(x1, crop.x0, crop.x1), np.clip(y1, crop.y0, crop.y1)
    cx2, cy2 = np.clip(x2, crop.x0, crop.x1), np.clip(y2, crop.y0, crop.y1)
    vw, vh = (cx2 - cx1).clip(0), (cy2 - cy1).clip(0)
    keep = (ref > 0) & (vw * vh >= min_visible * ref) & (vw >= min_size) & (vh >= min_size)
    out = r[keep].copy()
    out[:, 2], out[:, 3] = cx1[keep] - crop.x0, cy1[keep] - crop.y0
    out[:, 4], out[:, 5] = vw[keep], vh[keep]
    return out


def camera_jitter(n_cameras: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deterministic per-camera colour change: ``(gain, bias)``, each a length-3 BGR array.

    ``gain`` is uniform in ``1 ± JITTER_GAIN``, ``bias`` uniform in ``± JITTER_BIAS`` grey
    levels; the same ``seed`` gives the same values.
    """
    rng = np.random.default_rng(seed)
    return [
        (rng.uniform(1 - JITTER_GAIN, 1 + JITTER_GAIN, 3), rng.uniform(-JITTER_BIAS, JITTER_BIAS, 3))
        for _ in range(n_cameras)
    ]


def _apply_jitter(img: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
    out = img.astype(np.float32) * gain.astype(np.float32) + bias.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _source_frames(seq_dir: Path, max_frames: int | None) -> tuple[Iterator[np.ndarray], float]:
    specs = discover_cameras([seq_dir])
    spec = specs[0]
    if len(specs) != 1 or spec.seqinfo is None or spec.kind == "detonly":
        raise InputError(f"{seq_dir}: not a MOTChallenge sequence folder with pixels (img1/ or one video inside)")
    fps = spec.seqinfo.frame_rate

    def frames() -> Iterator[np.ndarray]:
        for i, frame in enumerate(iter_frames(spec)):
            if max_frames is not None and i >= max_frames:
                return
            assert frame.image is not None
            yield frame.image

    return frames(), fps


def cut_rows(rows: np.ndarray, k: int) -> np.ndarray:
    """MOTChallenge rows of a camera that started ``k`` frames later: rows of frames > ``k``, renumbered from 1."""
    r = np.asarray(rows, dtype=np.float64)
    out = r[r[:, 0] > k].copy()
    out[:, 0] -= k
    return out


def _check_offsets(offsets: Sequence[int] | None, crops: Sequence[Crop]) -> list[int]:
    if offsets is None:
        return [0] * len(crops)
    ks = [int(k) for k in offsets]
    if len(ks) != len(crops):
        raise InputError(f"--offsets gives {len(ks)} values for {len(crops)} cameras "
                         f"({', '.join(c.name for c in crops)}): give one per camera, in that order")
    if any(k < 0 for k in ks):
        raise InputError(f"--offsets must be whole numbers of frames >= 0, got {','.join(map(str, ks))}")
    return ks


def write_clock_config(path: Path, crops: Sequence[Crop], cuts: Sequence[int], fps: float) -> None:
    """Write the scene's clock config: ``cameras: {<camera>: {time_offset_s: k / fps}}`` (YAML)."""
    lines = ["# clock of this scene (scripts/make_multicam.py --offsets): camera i lost its first k_i frames",
             "cameras:"]
    lines += [f"  {c.name}: {{time_offset_s: {round(k / fps, 9)!r}}}  # {k} frames"
              for c, k in zip(crops, cuts, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _write_seqinfo(path: Path, name: str, fps: float, length: int, crop: Crop) -> None:
    rate = f"{int(fps)}" if float(fps).is_integer() else f"{fps:g}"
    path.write_text(
        f"[Sequence]\nname={name}\nframeRate={rate}\nseqLength={length}\n"
        f"imWidth={crop.width}\nimHeight={crop.height}\n"
    )


def make_multicam(
    seq_dir: str | Path,
    out_dir: str | Path,
    layout: str = "both",
    *,
    jitter: bool = False,
    seed: int = 0,
    max_frames: int | None = None,
    min_visible: float = 0.5,
    min_size: float = 8.0,
    codec: str | None = None,
    overwrite: bool = False,
    offsets: Sequence[int] | None = None,
) -> list[CameraReport]:
    """Write a multi-camera scene (one MOTChallenge sequence folder per crop) from one sequence.

    Args:
        seq_dir: MOTChallenge sequence folder with ``seqinfo.ini``, ``gt/gt.txt`` and
            pixels (``img1/*.jpg`` or one video file; video frame i = gt frame i+1).
        out_dir: output folder; ``out_dir/<camera>/`` is written per camera.
        layout: ``"overlap"``, ``"disjoint"`` or ``"both"``, see :func:`crop_layout`.
        jitter: apply :func:`camera_jitter` colour changes (deterministic with ``seed``).
        seed: random seed of the jitter.
        max_frames: use at most this many frames (from the first); default all frames
            that have pixels (PETS09-S2L1: 300 of the 795 in seqinfo).
        min_visible, min_size: box rule, see :func:`crop_rows`.
        codec: PyAV encoder name; default :func:`pipeline.video_writer.pick_codec`.
        overwrite: replace existing camera folders' files instead of refusing.
        offsets: frames cut from the start of each camera (layout order); camera i then
            starts at source frame ``offsets[i] + 1`` (renumbered 1) and ``out_dir/mtmc.yaml``
            gets the matching ``cameras.<id>.time_offset_s`` (:func:`write_clock_config`).

    Returns:
        One :class:`CameraReport` per camera, in layout order.

    Raises:
        InputError: ``seq_dir`` is not a sequence with gt and pixels, ``max_frames`` < 1,
            the layout is invalid, a camera folder already exists (without ``overwrite``),
            the source yields no frame, ``codec`` cannot be opened, or ``offsets`` has the wrong
            length, a negative value or one that leaves a camera no frame.
        CameraError: decoding the source fails.
    """
    src = Path(seq_dir)
    out = Path(out_dir)
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    gt_path = src / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise InputError(f"{src}: no gt/gt.txt (the scene needs ground truth for its global ids)")
    gt = read_mot_txt(gt_path)
    det_path = src / "det" / "det.txt"
    det = read_mot_txt(det_path) if det_path.is_file() else None

    frames, fps = _source_frames(src, max_frames)
    codec = codec or pick_codec()
    first = next(frames, None)
    if first is None:
        raise InputError(f"{src}: no frame could be read")
    frame_size = (first.shape[1], first.shape[0])
    crops = crop_layout(*frame_size, layout)
    cuts = _check_offsets(offsets, crops)
    for c in crops:
        folder = out / c.name
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise InputError(f"{folder} exists and is not empty (choose another output folder or --overwrite)")
    gains = camera_jitter(len(crops), seed) if jitter else None

    writers: list[VideoWriter] = []
    n = 0
    try:
        for c in crops:
            (out / c.name).mkdir(parents=True, exist_ok=True)
            try:
                writers.append(VideoWriter(out / c.name / f"{c.name}.mp4", c.width, c.height, fps, codec,
                                           threads=1))  # the same bytes on every run and machine
            except (av.error.FFmpegError, ValueError, av.codec.codec.UnknownCodecError) as exc:
                raise InputError(f"cannot encode with codec {codec!r} ({exc}); try libx264 or mpeg4") from None
        img: np.ndarray | None = first
        while img is not None:
            for k, (c, w) in enumerate(zip(crops, writers, strict=True)):
                if n < cuts[k]:  # this camera starts later
                    continue
                part = img[c.y0:c.y1, c.x0:c.x1]
                w.write(_apply_jitter(part, *gains[k]) if gains else part)
            n += 1
            img = next(frames, None)
    finally:
        for w in writers:
            w.close()

    if max(cuts) >= n:
        raise InputError(f"--offsets {max(cuts)} leaves a camera no frame (the source has {n}): cut fewer frames")
    reports = []
    for c, k in zip(crops, cuts, strict=True):
        folder = out / c.name
        rows = cut_rows(crop_rows(gt[gt[:, 0] <= n], c, frame_size, min_visible, min_size), k)
        write_mot_txt(folder / "gt" / "gt.txt", rows)
        _write_seqinfo(folder / "seqinfo.ini", c.name, fps, n - k, c)
        det_boxes = None
        if det is not None:
            drows = cut_rows(crop_rows(det[det[:, 0] <= n], c, frame_size, min_visible, min_size), k)
            write_mot_txt(folder / "det" / "det.txt", drows)
            det_boxes = len(drows)
        reports.append(CameraReport(c, folder, n - k, len(rows), {int(i) for i in rows[:, 1]}, det_boxes=det_boxes))
    if offsets is not None:
        write_clock_config(out / "mtmc.yaml", crops, cuts, fps)
    for r in reports:
        others = set().union(*(o.gt_ids for o in reports if o is not r))
        r.shared_ids = r.gt_ids & others
    return reports


def ids_seen_together(gt_a: np.ndarray, gt_b: np.ndarray) -> set[int]:
    """Ids that appear in both cameras in at least one common frame.

    Args:
        gt_a, gt_b: N×≥2 MOTChallenge rows (frame, id, …) of two cameras of one scene.
    """
    a = {(int(f), int(i)) for f, i in gt_a[:, :2]}
    return {int(i) for f, i in gt_b[:, :2] if (int(f), int(i)) in a}


def ids_handed_over(gt_a: np.ndarray, gt_b: np.ndarray) -> dict[int, tuple[str, int]]:
    """Ids seen by both cameras but never in the same frame (a walk from one view to the other).

    Args:
        gt_a, gt_b: N×≥2 MOTChallenge rows (frame, id, …) of two cameras.

    Returns:
        id → (``"a->b"`` or ``"b->a"``, gap in frames between the last frame in the
        first camera and the first frame in the second; ``"a<->b"`` and gap 0 when the
        id goes back and forth, its visits interleaving).
    """
    out: dict[int, tuple[str, int]] = {}
    for i in sorted({int(v) for v in gt_a[:, 1]} & {int(v) for v in gt_b[:, 1]}):
        fa, fb = gt_a[gt_a[:, 1] == i, 0], gt_b[gt_b[:, 1] == i, 0]
        if set(fa.astype(int)) & set(fb.astype(int)):
            continue
        if fa.max() < fb.min():
            out[i] = ("a->b", int(fb.min() - fa.max()))
        elif fb.max() < fa.min():
            out[i] = ("b->a", int(fa.min() - fb.max()))
        else:
            out[i] = ("a<->b", 0)
    return out


def format_table(reports: Sequence[CameraReport]) -> str:
    """Aligned text table: camera, crop ``(x0,y0,x1,y1)`` in source pixels, frames, gt boxes,
    gt ids, ids shared with other cameras."""
    rows = [["camera", "crop (x0,y0,x1,y1)", "size", "frames", "gt_boxes", "gt_ids", "shared_ids"]]
    for r in reports:
        c = r.crop
        rows.append([c.name, f"({c.x0},{c.y0},{c.x1},{c.y1})", f"{c.width}x{c.height}", str(r.frames),
                     str(r.gt_boxes), str(len(r.gt_ids)), str(len(r.shared_ids))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join([row[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))])
        for row in rows
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make_multicam.py",
        description="Cut a MOTChallenge sequence into overlapping/disjoint camera crops with global gt ids.",
    )
    p.add_argument("sequence", type=Path,
                   help="MOTChallenge sequence folder (seqinfo.ini, gt/gt.txt, img1/ or one video)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder (one sequence folder per camera)")
    p.add_argument("--layout", choices=LAYOUTS, default="both",
                   help="overlap: ov_left/ov_right (60%% each); disjoint: dj_left/dj_right (45%% each, "
                        "10%% gap); both (default): all four")
    p.add_argument("--jitter", action="store_true", help="per-camera colour/brightness change (gain/bias per channel)")
    p.add_argument("--seed", type=int, default=0, help="seed of --jitter (default 0)")
    p.add_argument("--max-frames", type=int, metavar="N", help="use at most the first N frames")
    p.add_argument("--min-visible", type=float, default=0.5,
                   help="keep a gt box when at least this fraction of it lies inside the crop (default 0.5)")
    p.add_argument("--min-size", type=float, default=8.0,
                   help="and when its visible part is at least this many pixels wide and high (default 8)")
    p.add_argument("--codec", help="PyAV encoder (default libx264 when available, else mpeg4)")
    p.add_argument("--overwrite", action="store_true", help="overwrite existing camera folders")
    p.add_argument("--offsets", type=_offsets_arg, metavar="K1,K2,...",
                   help="cameras that start later: cut the first Ki frames of camera i (layout order) and write "
                        "the matching cameras.<id>.time_offset_s to OUT/mtmc.yaml")
    return p


def _offsets_arg(text: str) -> list[int]:
    try:
        return [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers of frames, comma-separated, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns 0 on success, 2 on bad input (one-line error on stderr)."""
    args = _parser().parse_args(argv)
    codec = args.codec or pick_codec()
    try:
        reports = make_multicam(
            args.sequence, args.out, args.layout, jitter=args.jitter, seed=args.seed, max_frames=args.max_frames,
            min_visible=args.min_visible, min_size=args.min_size, codec=codec, overwrite=args.overwrite,
            offsets=args.offsets,
        )
    except (InputError, CameraError) as exc:
        print(f"make_multicam: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(reports))
    if args.offsets is not None:
        clock = args.out / "mtmc.yaml"
        print(f"cameras start {args.offsets} frames late; their offsets are in {clock}: pass --config {clock} "
              "to mtmc run (without it the cameras are taken to start together)")
    print(f"codec {codec}; wrote {args.out}/<camera>/ (video, seqinfo.ini, gt/gt.txt)")
    print(next_hint(args.out))
    return 0


def next_hint(scene: Path) -> str:
    """The "next:" lines: the ``mtmc run`` and ``mtmc eval`` commands for ``scene``, copyable as they stand.

    With ``../shared/models`` beside the checkout (the project's real models) the run names
    them, so it works offline; otherwise it uses the default models, which download on first use.
    """
    run_dir = Path("runs") / scene.name
    models = REPO.parent / "shared" / "models"
    detector, reid = models / "yolox_nano.onnx", models / "osnet_x0_25_msmt17.onnx"
    run = f"mtmc run {scene} -o {run_dir}"
    if detector.is_file() and reid.is_file():
        run += f" --detector yolox:{_shown(detector)} --reid {_shown(reid)}"
        note = ""
    else:
        note = ("\n      (default models yolo11n.pt and osnet_x0_25_msmt17: downloaded on first use; "
                "offline, add --detector and --reid with local models)")
    return f"next: {run} && mtmc eval --gt {scene} --pred {run_dir} --cross-camera{note}"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below its parent (``../shared/…``), else absolute."""
    rel = os.path.relpath(path, Path.cwd())
    return rel if not rel.startswith("../..") else str(path)


if __name__ == "__main__":
    sys.exit(main())
