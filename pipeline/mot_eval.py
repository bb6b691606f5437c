"""Score per-camera tracker output against MOTChallenge ground truth with TrackEval.

The metrics are computed by the ``trackeval`` library (the MOTChallenge reference
implementation), not by code of ours:

* HOTA, DetA, AssA — Luiten et al., "HOTA: A Higher Order Metric for Evaluating
  Multi-Object Tracking", IJCV 2021;
* MOTA, MOTP, IDSW, FP, FN (CLEAR MOT) — Bernardin & Stiefelhagen, "Evaluating
  Multiple Object Tracking Performance: The CLEAR MOT Metrics", EURASIP JIVP 2008;
* IDF1, IDP, IDR — Ristani et al., "Performance Measures and a Data Set for
  Multi-Target, Multi-Camera Tracking", ECCV Workshops 2016.

How it works: every camera's ``gt.txt`` and predicted tracks are validated, then
written in normalised form into a temporary folder laid out as TrackEval expects
(``gt/<seq>/gt/gt.txt``, ``trackers/mtmc/data/<seq>.txt``), and
``trackeval.Evaluator`` runs ``trackeval.datasets.MotChallenge2DBox`` on it with
printing and file output switched off. Internal sequence names (``seq000`` …) keep
odd camera ids away from file names and CSV. The combined row is TrackEval's own
``combine_sequences`` of each metric over all cameras (sums of TP/FP/FN/IDTP…,
not an average of percentages).

Ground-truth ``flag`` column (7th, 0 = ignore) — TrackEval's MotChallenge2DBox
preprocessing is applied as is:

* MOT15-style gt (columns 8–10 are world coordinates or -1): gt rows whose flag
  is 0 are removed before scoring, so missing them is no FN; predictions are
  *not* matched against them first, so a predicted box on an ignored person is
  an FP (TrackEval skips all other preprocessing for ``BENCHMARK='MOT15'``).
* MOT16/17/20-style gt (column 8 is a class id 1–13): predictions matched
  (Hungarian, IoU ≥ 0.5) to a distractor-class gt box (person on vehicle, static
  person, distractor, reflection; non-MOT vehicle too for MOT20) are removed
  first, then every gt row that is not a pedestrian or has flag 0 is removed.

Cross-camera scores (row ``CROSS-CAMERA``, :attr:`EvalResult.cross_camera`): when
more than one camera is scored, every camera's gt and prediction are chained into
one long sequence — camera *k*'s frames shifted by the summed lengths of the
cameras before it (camera-id order) — with ids kept exactly as they are, and all
metrics are run on it once more. Ids are never relabelled per camera, so one gt id
is one person in every camera and one predicted id is one global (linked) track:

* IDF1/IDP/IDR (Ristani et al., 2016) then use a single one-to-one gt↔prediction
  identity map over all cameras — the multi-camera IDF1 of that paper — so a
  person who keeps one predicted id everywhere scores 100, while a person whose
  id changes from one camera to the next, or two people in different cameras who
  share one predicted id, lose the frames of the unmatched part;
* AssA/HOTA penalise the same errors through association; CLEAR's IDSW also
  counts a switch at a camera change (MOTA drops by it);
* detection figures (DetA, FP, FN, MOTP) stay (nearly) those of ``COMBINED``; only
  the frame-wise matching's preference for already-associated pairs may differ.

This is meaningful only when gt ids are global (the same person has the same id
in every camera, as in scenes made by ``scripts/make_multicam.py``); for unrelated
sequences (e.g. all of MOT15), whose gt ids restart per sequence, the row merges
different people and should be ignored (``evaluate(..., cross_camera=False)``). It
is skipped, with a warning, when cameras need different gt preprocessing (MOT15 and
MOT17 gt mixed).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.mot_format import SeqInfo, read_mot_txt, read_seqinfo, write_mot_txt

COMBINED = "COMBINED"
"""Key of the all-cameras row in :class:`EvalResult` (``result["COMBINED"]``)."""

CROSS_CAMERA = "CROSS-CAMERA"
"""Key of the cross-camera row in :class:`EvalResult` (``result["CROSS-CAMERA"]``), see the module docstring."""

GT_FORMATS = ("auto", "MOT15", "MOT16", "MOT17", "MOT20")
"""Values of ``evaluate(..., gt_format=)``; ``auto`` picks MOT15 or MOT17 per camera."""

METRIC_REFERENCES = {
    "HOTA": "Luiten et al., HOTA: A Higher Order Metric for Evaluating Multi-Object Tracking, IJCV 2021",
    "CLEAR": "Bernardin & Stiefelhagen, Evaluating Multiple Object Tracking Performance: "
             "The CLEAR MOT Metrics, EURASIP JIVP 2008",
    "Identity": "Ristani et al., Performance Measures and a Data Set for Multi-Target, "
                "Multi-Camera Tracking, ECCV Workshops 2016",
}

_TRACKER = "mtmc"
_CLASS = "pedestrian"
# MOT16/17/20 gt class ids (MotChallenge2DBox.class_name_to_class_id): 1 pedestrian … 13 crowd.
_MOT17_CLASS_IDS = range(1, 14)


@dataclass(frozen=True)
class Scores:
    """Metrics of one camera, or of all cameras combined.

    Ratios are percentages (0–100; MOTA can be negative), counts are plain ints. HOTA, DetA and AssA are
    the means over the IoU thresholds 0.05…0.95 (Luiten et al., IJCV 2021); MOTA,
    MOTP (mean IoU of matched boxes), IDSW, FP and FN are CLEAR MOT at IoU ≥ 0.5
    (Bernardin & Stiefelhagen, 2008); IDF1, IDP, IDR are the identity measures at
    IoU ≥ 0.5 (Ristani et al., 2016). ``gt_ids``/``gt_dets`` count ground truth
    after flag/class filtering, ``pred_ids``/``pred_dets`` the predictions scored,
    ``frames`` the sequence length(s). :meth:`to_dict` and the table use the usual
    names (``HOTA``, ``DetA``, ``IDF1``, ``GT_IDs`` …). Values are TrackEval's, also where it is
    degenerate (a camera with no gt after filtering gets MOTA 0 for itself but its
    FPs still lower the combined MOTA).
    """

    hota: float
    deta: float
    assa: float
    mota: float
    motp: float
    idf1: float
    idp: float
    idr: float
    idsw: int
    fp: int
    fn: int
    gt_ids: int
    pred_ids: int
    gt_dets: int
    pred_dets: int
    frames: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict keyed by the metrics' usual names (``HOTA``, ``IDF1``, ``GT_IDs`` …); JSON-able."""
        return {_DISPLAY_NAMES[k]: v for k, v in asdict(self).items()}


_DISPLAY_NAMES = {
    "hota": "HOTA", "deta": "DetA", "assa": "AssA", "mota": "MOTA", "motp": "MOTP", "idf1": "IDF1",
    "idp": "IDP", "idr": "IDR", "idsw": "IDSW", "fp": "FP", "fn": "FN", "gt_ids": "GT_IDs",
    "pred_ids": "Pred_IDs", "gt_dets": "GT_Dets", "pred_dets": "Pred_Dets", "frames": "Frames",
}
_TABLE_FORMATS = {_DISPLAY_NAMES[f.name]: ("{:.1f}" if f.type == "float" else "{:d}") for f in fields(Scores)}


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate`.

    Attributes:
        per_camera: camera id → :class:`Scores`, in camera-id order.
        combined: all scored cameras together (each metric's TrackEval ``combine_sequences``
            over the cameras, as in its ``COMBINED_SEQ``: sums of counts, not means of %).
        gt_format: camera id → the TrackEval benchmark preprocessing used
            (``"MOT15"``, ``"MOT17"`` …), see the module docstring.
        warnings: one line per camera that was not scored (gt without prediction
            or prediction without gt), or why cross-camera scores were skipped.
        cross_camera: all cameras chained into one sequence with global ids (see the
            module docstring): IDF1 here is the multi-camera IDF1 of Ristani et al.
            (2016), in which an identity switch between cameras counts. ``None`` when
            one camera was scored, ``cross_camera=False`` was asked, or cameras mix
            gt formats. ``frames`` is the chained length (sum over cameras).
    """

    per_camera: dict[str, Scores]
    combined: Scores
    gt_format: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cross_camera: Scores | None = None

    def __getitem__(self, camera: str) -> Scores:
        """Scores of ``camera``, of all cameras for ``"COMBINED"``, or the chained
        cross-camera scores for ``"CROSS-CAMERA"``.

        Raises:
            KeyError: the camera was not scored, or ``"CROSS-CAMERA"`` was not computed.
        """
        if camera == COMBINED:
            return self.combined
        if camera == CROSS_CAMERA:
            if self.cross_camera is None:
                raise KeyError(f"{CROSS_CAMERA} scores were not computed (one camera, or cross_camera=False)")
            return self.cross_camera
        return self.per_camera[camera]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: ``{"cameras": {id: scores, ..., "COMBINED": scores},
        "cross_camera": scores or None, "gt_format": {...}, "warnings": [...], "references": {...}}``.

        The cross-camera scores sit outside ``"cameras"`` so that ``"cameras"`` keeps one
        entry per camera plus ``COMBINED``.
        """
        cams: dict[str, Any] = {cid: s.to_dict() for cid, s in self.per_camera.items()}
        cams[COMBINED] = self.combined.to_dict()
        return {
            "cameras": cams,
            "cross_camera": None if self.cross_camera is None else self.cross_camera.to_dict(),
            "gt_format": dict(self.gt_format),
            "warnings": list(self.warnings),
            "references": dict(METRIC_REFERENCES),
        }

    def format_table(self) -> str:
        """Aligned text table: one row per camera, then ``COMBINED``, then ``CROSS-CAMERA``
        when computed; ratios in % with one decimal; any warnings follow as ``warning: …`` lines."""
        names = list(_TABLE_FORMATS)
        rows = [["camera", *names]]
        extra = [] if self.cross_camera is None else [(CROSS_CAMERA, self.cross_camera)]
        for cid, s in [*self.per_camera.items(), (COMBINED, self.combined), *extra]:
            d = s.to_dict()
            rows.append([cid, *(_TABLE_FORMATS[n].format(d[n]) for n in names)])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))])
            for r in rows
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class _Sequence:
    """One camera ready for TrackEval: validated N×10 gt and M×10 prediction rows."""

    camera: str
    gt: np.ndarray
    pred: np.ndarray
    length: int
    benchmark: str


def match_gt_to_pred(
    gt_args: Sequence[str | Path], pred_dir: str | Path
) -> tuple[dict[str, Path], dict[str, Path]]:
    """Resolve ``mtmc eval`` inputs into camera id → file mappings for :func:`evaluate`.

    Args:
        gt_args: MOTChallenge sequence folders (``gt/gt.txt`` inside; camera id =
            folder name), folders of such sequence folders, or ``gt.txt`` files (camera id = the sequence folder name
            when the file is ``<seq>/gt/gt.txt``, else the file stem). A gt camera id
            that only matches a prediction file after sanitising (as ``mtmc run``
            does: ``Lobby Cam`` → ``Lobby_Cam``) takes the sanitised id.
        pred_dir: an ``mtmc run`` output folder (``tracks/<camera>.txt``) or a folder
            of ``<camera>.txt`` files.

    Returns:
        ``(gt, pred)``: camera id → ``gt.txt`` path, camera id → predicted tracks
        path (every ``*.txt`` found). Pairing, and the errors/warnings for cameras on
        one side only, are :func:`evaluate`'s job.

    Raises:
        InputError: a GT path is missing or is a folder without ``gt/gt.txt``; two GT
            inputs give the same camera id; ``pred_dir`` is missing, not a folder, or
            holds no ``.txt`` file.
    """
    pdir = Path(pred_dir)
    if not pdir.exists():
        raise InputError(f"{pdir}: prediction folder not found (give an mtmc run output folder)")
    if not pdir.is_dir():
        raise InputError(f"{pdir}: --pred must be a folder (tracks/<camera>.txt or <camera>.txt), not a file")
    tracks = pdir / "tracks" if (pdir / "tracks").is_dir() else pdir
    pred = {p.stem: p for p in sorted(tracks.glob("*.txt")) if p.is_file()}
    if not pred:
        raise InputError(f"{tracks}: no <camera>.txt prediction files found")

    gt: dict[str, Path] = {}
    expanded: list[Path] = []
    for arg in gt_args:  # a folder of sequence folders stands for each sequence in it
        p = Path(arg)
        subs = sorted(c for c in p.iterdir() if (c / "gt" / "gt.txt").is_file()) if p.is_dir() else []
        expanded.extend(subs if subs and not (p / "gt" / "gt.txt").is_file() else [p])
    for p in expanded:
        if p.is_dir():
            gt_file = p / "gt" / "gt.txt"
            if not gt_file.is_file():
                raise InputError(f"{p}: not a MOTChallenge sequence folder (no gt/gt.txt)")
            camera = p.resolve().name
        elif p.is_file():
            gt_file = p
            camera = p.resolve().parent.parent.name if p.resolve().parent.name == "gt" else p.stem
        else:
            raise InputError(f"{p}: ground truth not found (give a sequence folder or a gt.txt file)")
        if camera not in pred:
            from pipeline.sources import sanitize_camera_id

            with contextlib.suppress(InputError):
                safe = sanitize_camera_id(camera)
                if safe in pred:
                    camera = safe
        if camera in gt:
            raise InputError(f"two ground-truth inputs give camera id {camera!r}: {gt[camera]} and {gt_file}")
        gt[camera] = gt_file
    return gt, pred


def processed_frames(pred_dir: str | Path) -> dict[str, int]:
    """Frames each camera of an ``mtmc run`` output processed, from its ``summary.json``.

    Returns:
        camera id → frames; empty when ``pred_dir`` has no readable ``summary.json``
        (a plain folder of ``<camera>.txt``).
    """
    path = Path(pred_dir) / "summary.json"
    try:
        data = json.loads(path.read_text())
        return {str(c["id"]): int(c["frames"]) for c in data["cameras"] if int(c["frames"]) > 0}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def evaluate(
    gt: Mapping[str, Path],
    pred: Mapping[str, Path],
    seqinfo: Mapping[str, SeqInfo | None] | None = None,
    *,
    gt_format: str = "auto",
    frames: Mapping[str, int] | None = None,
    cross_camera: bool = True,
) -> EvalResult:
    """Score predicted tracks against ground truth, camera by camera and combined.

    Metrics come from TrackEval: HOTA/DetA/AssA (Luiten et al., IJCV 2021), CLEAR
    MOT MOTA/MOTP/IDSW/FP/FN (Bernardin & Stiefelhagen, 2008) and IDF1/IDP/IDR
    (Ristani et al., 2016); boxes are matched by IoU of ``tlwh`` pixel boxes.

    Args:
        gt: camera id → MOTChallenge ``gt.txt`` (``frame,id,x,y,w,h,flag,…``,
            1-based frames, pixels; flag 0 = ignore, see the module docstring).
        pred: camera id → predicted tracks (``frame,id,x,y,w,h,score,-1,-1,-1``).
            Only cameras present in both mappings are scored; the others are named
            in ``EvalResult.warnings``.
        seqinfo: camera id → sequence info whose ``length`` (frames) bounds the
            sequence; ``None`` for a camera means "use the largest frame in its gt
            and prediction". Cameras not in the mapping (or ``seqinfo=None``) use
            ``<seq>/seqinfo.ini`` when the gt file is ``<seq>/gt/gt.txt``, else the
            largest frame.
        gt_format: TrackEval benchmark preprocessing: ``"MOT15"``, ``"MOT16"``,
            ``"MOT17"``, ``"MOT20"``, or ``"auto"`` (MOT17 when every gt row's 8th
            column is a class id 1–13, else MOT15).
        frames: camera id → number of frames the run processed (``summary.json``);
            only gt frames 1..N of that camera are scored, so a run over the first
            300 frames of a 795-frame sequence (or with ``--max-frames``) is not
            charged for frames it never saw.
        cross_camera: also score all cameras chained into one sequence with ids
            kept as they are (:attr:`EvalResult.cross_camera`, multi-camera IDF1 of
            Ristani et al., 2016); only done when more than one camera is scored, and
            only meaningful when gt ids are global across cameras.

    Returns:
        :class:`EvalResult` with per-camera, combined and (optionally) cross-camera :class:`Scores`.

    Raises:
        InputError: no camera is in both ``gt`` and ``pred`` (both lists named); a
            file is missing or malformed; a frame is < 1, not an integer, or beyond
            the sequence length; an id is negative or not an integer, or repeats
            within a frame; ``gt_format`` is unknown; TrackEval rejects the data.
    """
    if gt_format not in GT_FORMATS:
        raise InputError(f"unknown gt_format {gt_format!r}; use one of {', '.join(GT_FORMATS)}")
    common = sorted(set(gt) & set(pred))
    if not common:
        raise InputError(
            "no camera has both ground truth and predictions: "
            f"gt cameras [{', '.join(sorted(gt)) or 'none'}], "
            f"predicted cameras [{', '.join(sorted(pred)) or 'none'}] (pred files are matched by name)"
        )
    warnings = []
    only_gt = sorted(set(gt) - set(pred))
    only_pred = sorted(set(pred) - set(gt))
    if only_gt:
        warnings.append(f"no predicted tracks for gt camera(s) {', '.join(only_gt)}: not scored")
    if only_pred:
        warnings.append(f"no ground truth for predicted camera(s) {', '.join(only_pred)}: not scored")

    seqs = {}
    for cam in common:
        info = _find_seqinfo(cam, Path(gt[cam]), seqinfo)
        limit = frames.get(cam) if frames else None
        seqs[cam] = _load_sequence(cam, Path(gt[cam]), Path(pred[cam]), info, gt_format, limit)

    per_seq: dict[str, dict[str, dict[str, Any]]] = {}
    metrics = _metrics()
    for benchmark in sorted({s.benchmark for s in seqs.values()}):
        group = {cam: s for cam, s in seqs.items() if s.benchmark == benchmark}
        per_seq.update(_run_trackeval(group, metrics, benchmark))
    combined = {m.get_name(): m.combine_sequences({c: r[m.get_name()] for c, r in per_seq.items()})
                for m in [*metrics, _count_metric()]}
    cross: Scores | None = None
    if cross_camera and len(seqs) > 1:
        benchmarks = sorted({s.benchmark for s in seqs.values()})
        if len(benchmarks) > 1:
            warnings.append(
                f"{CROSS_CAMERA} not scored: cameras need different gt preprocessing ({', '.join(benchmarks)})"
            )
        else:
            chained = _chain_sequences([seqs[cam] for cam in common])
            res = _run_trackeval({CROSS_CAMERA: chained}, metrics, benchmarks[0])[CROSS_CAMERA]
            cross = _scores(res, chained.length)
    return EvalResult(
        per_camera={cam: _scores(per_seq[cam], seqs[cam].length) for cam in common},
        combined=_scores(combined, sum(s.length for s in seqs.values())),
        gt_format={cam: seqs[cam].benchmark for cam in common},
        warnings=warnings,
        cross_camera=cross,
    )


def _chain_sequences(seqs: Sequence[_Sequence]) -> _Sequence:
    """Concatenate cameras into one sequence: camera k's frames shifted by the lengths of
    cameras 0..k-1, ids untouched (global), same benchmark preprocessing."""
    gts, preds, offset = [], [], 0
    for s in seqs:
        for rows, out in ((s.gt, gts), (s.pred, preds)):
            shifted = rows.copy()
            shifted[:, 0] += offset
            out.append(shifted)
        offset += s.length
    return _Sequence(
        camera=CROSS_CAMERA,
        gt=np.concatenate(gts, axis=0),
        pred=np.concatenate(preds, axis=0),
        length=offset,
        benchmark=seqs[0].benchmark,
    )


def _metrics() -> list[Any]:
    from trackeval.metrics import CLEAR, HOTA, Identity

    quiet = {"PRINT_CONFIG": False}
    return [HOTA(), CLEAR(dict(quiet)), Identity(dict(quiet))]


def _count_metric() -> Any:
    from trackeval.metrics import Count

    return Count()


def _find_seqinfo(cam: str, gt_path: Path, seqinfo: Mapping[str, SeqInfo | None] | None) -> SeqInfo | None:
    if seqinfo is not None and cam in seqinfo:
        return seqinfo[cam]
    ini = gt_path.parent.parent / "seqinfo.ini"
    if gt_path.parent.name == "gt" and ini.is_file():
        return read_seqinfo(ini)
    return None


def _load_sequence(
    cam: str, gt_path: Path, pred_path: Path, info: SeqInfo | None, gt_format: str, limit: int | None = None
) -> _Sequence:
    gt = read_mot_txt(gt_path)
    pred = read_mot_txt(pred_path)
    for rows, path in ((gt, gt_path), (pred, pred_path)):
        _check_rows(rows, path)
    if limit is not None:
        gt = gt[gt[:, 0] <= limit]
        length = int(limit)
        source = "frames processed by the run (summary.json)"
    elif info is not None:
        length = int(info.length)
        source = f"seqinfo.ini of {info.name}"
    else:
        length = int(max([1, *gt[:, 0], *pred[:, 0]]))
        source = "largest frame in gt and prediction"
    for rows, path in ((gt, gt_path), (pred, pred_path)):
        if len(rows) and rows[:, 0].max() > length:
            raise InputError(
                f"{path}: frame {int(rows[:, 0].max())} is beyond the sequence's {length} frames ({source})"
            )
    if gt_format == "auto":
        cls = gt[:, 7]
        is_mot17 = len(gt) > 0 and bool(np.all(np.isin(cls, np.asarray(_MOT17_CLASS_IDS, float))))
        benchmark = "MOT17" if is_mot17 else "MOT15"
    else:
        benchmark = gt_format
    return _Sequence(camera=cam, gt=gt, pred=pred, length=length, benchmark=benchmark)


def _check_rows(rows: np.ndarray, path: Path) -> None:
    """Reject rows TrackEval would mis-read: bad frames or ids, duplicate ids in a frame."""
    if not len(rows):
        return
    if not np.all(np.isfinite(rows[:, :6])):
        raise InputError(f"{path}: NaN or infinite value in frame, id or box columns")
    frame, ids = rows[:, 0], rows[:, 1]
    bad = (frame < 1) | (frame != np.round(frame))
    if bad.any():
        raise InputError(f"{path}: frame {frame[bad][0]:g} is not a 1-based integer frame number")
    bad = (ids < 0) | (ids != np.round(ids))
    if bad.any():
        hint = " (this looks like a detection file, not tracks)" if np.all(ids == -1) else ""
        raise InputError(f"{path}: id {ids[bad][0]:g} is not a non-negative integer track id{hint}")
    pairs = np.stack([frame, ids], axis=1)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    if (counts > 1).any():
        f, i = uniq[counts > 1][0]
        raise InputError(f"{path}: id {int(i)} appears more than once in frame {int(f)}")


def _relabel(ids: np.ndarray) -> np.ndarray:
    """Map ids to 1..K (TrackEval sizes lookup arrays by the largest id)."""
    if not len(ids):
        return ids
    return np.unique(ids, return_inverse=True)[1].reshape(-1) + 1.0


def _write_rows(path: Path, rows: np.ndarray, is_gt: bool) -> None:
    out = rows.copy()
    out[:, 1] = _relabel(out[:, 1])
    if not is_gt:
        out[:, 7:10] = -1  # class column -1: TrackEval rejects predicted classes > 1
    write_mot_txt(path, out, precise=True)


def _run_trackeval(
    seqs: Mapping[str, _Sequence], metrics: list[Any], benchmark: str
) -> dict[str, dict[str, Any]]:
    """Run ``trackeval.Evaluator`` on ``seqs`` (one benchmark preprocessing) in a temporary folder.

    Returns camera id → metric name (``HOTA``, ``CLEAR``, ``Identity``, ``Count``) →
    TrackEval's raw result dict for that sequence.
    """
    import trackeval
    from trackeval.utils import TrackEvalException

    names = {f"seq{i:03d}": cam for i, cam in enumerate(seqs)}
    with tempfile.TemporaryDirectory(prefix="mtmc-eval-") as tmp:
        root = Path(tmp)
        for name, cam in names.items():
            s = seqs[cam]
            _write_rows(root / "gt" / name / "gt" / "gt.txt", s.gt, is_gt=True)
            _write_rows(root / "trackers" / _TRACKER / "data" / f"{name}.txt", s.pred, is_gt=False)
        dataset_cfg = {
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "OUTPUT_FOLDER": str(root / "output"),
            "TRACKERS_TO_EVAL": [_TRACKER],
            "CLASSES_TO_EVAL": [_CLASS],
            "BENCHMARK": benchmark,
            "SPLIT_TO_EVAL": "train",
            "SKIP_SPLIT_FOL": True,
            "DO_PREPROC": True,
            "PRINT_CONFIG": False,
            "SEQ_INFO": {name: seqs[cam].length for name, cam in names.items()},
        }
        eval_cfg = {
            "USE_PARALLEL": False,
            "BREAK_ON_ERROR": True,
            "LOG_ON_ERROR": None,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                dataset = trackeval.datasets.MotChallenge2DBox(dataset_cfg)
                evaluator = trackeval.Evaluator(eval_cfg)
                out, _ = evaluator.evaluate([dataset], list(metrics))
        except TrackEvalException as exc:
            msg = str(exc)
            for name, cam in names.items():
                msg = msg.replace(name, cam)
            raise InputError(f"trackeval could not score camera(s) {', '.join(seqs)}: {msg}") from None
    res = out[dataset.get_name()][_TRACKER]
    return {cam: res[name][_CLASS] for name, cam in names.items()}


def _pct(x: Any) -> float:
    v = float(np.mean(x)) * 100.0
    return 0.0 if math.isnan(v) else v


def _scores(res: Mapping[str, Mapping[str, Any]], frames: int) -> Scores:
    hota, clear, ident, count = res["HOTA"], res["CLEAR"], res["Identity"], res["Count"]
    return Scores(
        hota=_pct(hota["HOTA"]),
        deta=_pct(hota["DetA"]),
        assa=_pct(hota["AssA"]),
        mota=_pct(clear["MOTA"]),
        motp=_pct(clear["MOTP"]),
        idf1=_pct(ident["IDF1"]),
        idp=_pct(ident["IDP"]),
        idr=_pct(ident["IDR"]),
        idsw=int(clear["IDSW"]),
        fp=int(clear["CLR_FP"]),
        fn=int(clear["CLR_FN"]),
        gt_ids=int(count["GT_IDs"]),
        pred_ids=int(count["IDs"]),
        gt_dets=int(count["GT_Dets"]),
        pred_dets=int(count["Dets"]),
        frames=int(frames),  # not CLR_Frames: TrackEval leaves it 0 when gt or prediction is empty
    )
