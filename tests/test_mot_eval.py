"""Scoring with TrackEval: hand-computed tiny cases, gt flags, camera matching, errors, real MOT15 gt."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import MOT15

from pipeline.errors import InputError
from pipeline.mot_eval import COMBINED, EvalResult, evaluate, match_gt_to_pred
from pipeline.mot_format import SeqInfo, read_mot_txt

requires_mot15 = pytest.mark.skipif(
    not (MOT15 / "PETS09-S2L1" / "gt" / "gt.txt").is_file(),
    reason="../shared/data/MOT15 is absent; a user's clone does not have it",
)


def _write(path: Path, rows: list[list[float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))
    return path


def _box(frame: int, tid: int, x: float, flag: float = 1) -> list[float]:
    """A 20×50 px box at (x, 10); MOT15 gt/tracks row."""
    return [frame, tid, x, 10, 20, 50, flag, -1, -1, -1]


# Two people, 10 frames, far apart (never overlapping); a third person is flagged 0 (ignore).
GT_ROWS = [r for f in range(1, 11) for r in (_box(f, 1, 10), _box(f, 2, 200), _box(f, 3, 400, flag=0))]


def _one(gt_rows: list[list[float]], pred_rows: list[list[float]], tmp_path: Path, **kw) -> EvalResult:
    gt = _write(tmp_path / "gt.txt", gt_rows)
    pred = _write(tmp_path / "pred.txt", pred_rows)
    return evaluate({"cam": gt}, {"cam": pred}, **kw)


def test_perfect_prediction_scores_100(tmp_path: Path) -> None:
    pred = [[*r[:6], 1, -1, -1, -1] for r in GT_ROWS if r[6] == 1]
    s = _one(GT_ROWS, pred, tmp_path)["cam"]
    for name in ("mota", "idf1", "hota", "deta", "assa", "motp", "idp", "idr"):
        assert getattr(s, name) == pytest.approx(100.0), name
    assert (s.idsw, s.fp, s.fn) == (0, 0, 0)
    assert (s.gt_ids, s.pred_ids, s.gt_dets, s.pred_dets, s.frames) == (2, 2, 20, 20, 10)


def test_one_identity_switch_by_hand(tmp_path: Path) -> None:
    # Person 1 tracked as id 1 throughout; person 2 as id 2 in frames 1-6, then as id 3 in frames 7-10.
    pred = [r for f in range(1, 11) for r in (_box(f, 1, 10), _box(f, 2 if f <= 6 else 3, 200))]
    s = _one(GT_ROWS, pred, tmp_path)["cam"]
    assert s.idsw == 1
    assert (s.fp, s.fn) == (0, 0)
    # CLEAR: MOTA = 1 - (FN + FP + IDSW) / GT = 1 - 1/20.
    assert s.mota == pytest.approx(95.0)
    # Identity: best one-to-one map 1->1 (10 frames), 2->2 (6 frames): IDTP 16, IDFP 4 (id 3), IDFN 4.
    # IDF1 = 2*16 / (2*16 + 4 + 4) = 0.8; IDP = IDR = 16/20.
    assert s.idf1 == pytest.approx(80.0)
    assert s.idp == pytest.approx(80.0)
    assert s.idr == pytest.approx(80.0)
    # HOTA: every box has IoU 1, so DetA = 1 at every alpha; AssA = mean over the 20 TPs of
    # TPA/(TPA+FPA+FNA): 10 × 1 (pair 1-1), 6 × 6/10 (pair 2-2), 4 × 4/10 (pair 2-3) -> 15.2/20.
    assert s.deta == pytest.approx(100.0)
    assert s.assa == pytest.approx(76.0)
    assert s.hota == pytest.approx(100 * math.sqrt(0.76))


def test_flag_zero_gt_is_not_a_miss_but_a_box_on_it_is_a_false_positive(tmp_path: Path) -> None:
    # MOT15 preprocessing in TrackEval: flag-0 gt rows are dropped, predictions are not matched to them first.
    pred = [r for f in range(1, 11) for r in (_box(f, 1, 10), _box(f, 2, 200))]
    s = _one(GT_ROWS, pred, tmp_path)["cam"]
    assert (s.fn, s.fp, s.gt_ids, s.gt_dets) == (0, 0, 2, 20)
    assert s.mota == pytest.approx(100.0)

    on_ignored = pred + [_box(f, 9, 400) for f in range(1, 11)]
    s = _one(GT_ROWS, on_ignored, tmp_path)["cam"]
    assert (s.fn, s.fp) == (0, 10)
    assert s.mota == pytest.approx(50.0)


def test_mot17_style_gt_drops_predictions_on_distractors(tmp_path: Path) -> None:
    # Columns 8-9 = class, visibility: person 1 is a pedestrian (class 1); 3 a distractor (class 8, flag 0);
    # 4 a pedestrian with flag 0.
    gt = [r for f in range(1, 6) for r in ([f, 1, 10, 10, 20, 50, 1, 1, 1.0],
                                           [f, 3, 400, 10, 20, 50, 0, 8, 0.5],
                                           [f, 4, 600, 10, 20, 50, 0, 1, 0.5])]
    pred = [r for f in range(1, 6) for r in (_box(f, 1, 10), _box(f, 2, 400), _box(f, 3, 600))]
    res = _one(gt, pred, tmp_path)
    assert res.gt_format == {"cam": "MOT17"}
    s = res["cam"]
    # the boxes on the distractor are removed; the ones on the flag-0 pedestrian stay as FPs
    assert (s.fn, s.fp, s.pred_dets, s.gt_dets) == (0, 5, 10, 5)
    # forced MOT15 rules: nothing is removed from the predictions
    s15 = _one(gt, pred, tmp_path, gt_format="MOT15")["cam"]
    assert (s15.fn, s15.fp, s15.pred_dets) == (0, 10, 15)


def test_combined_sums_counts_over_cameras(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.txt", GT_ROWS)
    perfect = _write(tmp_path / "a.txt", [r for f in range(1, 11) for r in (_box(f, 1, 10), _box(f, 2, 200))])
    half = _write(tmp_path / "b.txt", [_box(f, 1, 10) for f in range(1, 11)])
    res = evaluate({"a": gt, "b": gt}, {"a": perfect, "b": half})
    assert res["a"].mota == pytest.approx(100.0)
    assert res["b"].fn == 10
    c = res[COMBINED]
    assert (c.fn, c.gt_dets, c.pred_dets, c.gt_ids, c.frames) == (10, 40, 30, 4, 20)
    assert c.mota == pytest.approx(100 * (1 - 10 / 40))  # from summed counts, not an average of 100 and 50
    assert c.idf1 == pytest.approx(100 * 2 * 30 / (2 * 30 + 0 + 10))


def test_seqinfo_bounds_the_sequence(tmp_path: Path) -> None:
    seq = tmp_path / "seqA"
    _write(seq / "gt" / "gt.txt", GT_ROWS)
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=seqA\nframeRate=10\nseqLength=12\nimWidth=640\nimHeight=480\n"
    )
    pred = _write(tmp_path / "out" / "tracks" / "seqA.txt", [_box(f, 1, 10) for f in range(1, 11)])
    assert evaluate({"seqA": seq / "gt" / "gt.txt"}, {"seqA": pred})["seqA"].frames == 12
    # explicit None: length from the largest frame in gt and prediction
    assert evaluate({"seqA": seq / "gt" / "gt.txt"}, {"seqA": pred}, {"seqA": None})["seqA"].frames == 10
    short = SeqInfo(name="seqA", frame_rate=10, length=8, width=640, height=480)
    with pytest.raises(InputError, match=r"frame 10 is beyond the sequence's 8 frames"):
        evaluate({"seqA": seq / "gt" / "gt.txt"}, {"seqA": pred}, {"seqA": short})


def test_match_gt_to_pred_by_folder_and_file_names(tmp_path: Path) -> None:
    seq_a = tmp_path / "data" / "seqA"
    _write(seq_a / "gt" / "gt.txt", GT_ROWS)
    gt_b = _write(tmp_path / "data" / "seqB" / "gt" / "gt.txt", GT_ROWS)
    gt_c = _write(tmp_path / "loose" / "camC.txt", GT_ROWS)
    gt_d = _write(tmp_path / "data" / "Lobby Cam" / "gt" / "gt.txt", GT_ROWS)
    out = tmp_path / "run"
    for cam in ("seqA", "seqB", "camC", "Lobby_Cam", "extra"):
        _write(out / "tracks" / f"{cam}.txt", [_box(1, 1, 10)])

    gt, pred = match_gt_to_pred([seq_a, gt_b, gt_c, gt_d], out)
    assert gt == {"seqA": seq_a / "gt" / "gt.txt", "seqB": gt_b, "camC": gt_c, "Lobby_Cam": gt_d}
    assert set(pred) == {"seqA", "seqB", "camC", "Lobby_Cam", "extra"}
    assert pred["seqA"] == out / "tracks" / "seqA.txt"
    # a plain folder of <camera>.txt works too
    assert match_gt_to_pred([seq_a], out / "tracks")[1] == pred

    res = evaluate(gt, pred)
    assert set(res.per_camera) == {"seqA", "seqB", "camC", "Lobby_Cam"}
    assert res.warnings == ["no ground truth for predicted camera(s) extra: not scored"]
    table = res.format_table()
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["camera", "HOTA", "DetA", "AssA"]
    assert [ln.split()[0] for ln in lines[1:6]] == ["Lobby_Cam", "camC", "seqA", "seqB", COMBINED]
    assert len({len(ln) for ln in lines[:6]}) == 1  # aligned
    assert lines[-1] == "warning: no ground truth for predicted camera(s) extra: not scored"
    d = json.loads(json.dumps(res.to_dict()))
    assert d["cameras"][COMBINED]["GT_Dets"] == 80
    assert d["cameras"]["seqA"]["FN"] == 19
    assert set(d["references"]) == {"HOTA", "CLEAR", "Identity"}


def test_gt_camera_without_prediction_is_a_warning(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.txt", GT_ROWS)
    pred = _write(tmp_path / "p.txt", [_box(1, 1, 10)])
    res = evaluate({"a": gt, "b": gt}, {"a": pred})
    assert list(res.per_camera) == ["a"]
    assert res.warnings == ["no predicted tracks for gt camera(s) b: not scored"]


def test_no_common_camera_names_both_sides(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.txt", GT_ROWS)
    with pytest.raises(InputError, match=r"gt cameras \[seqA, seqB\], predicted cameras \[cam1\]"):
        evaluate({"seqA": gt, "seqB": gt}, {"cam1": gt})


def test_missing_and_bad_inputs(tmp_path: Path) -> None:
    gt = _write(tmp_path / "gt.txt", GT_ROWS)
    out = tmp_path / "run"
    _write(out / "tracks" / "cam.txt", [_box(1, 1, 10)])
    with pytest.raises(InputError, match="ground truth not found"):
        match_gt_to_pred([tmp_path / "nope"], out)
    (tmp_path / "emptyseq").mkdir()
    with pytest.raises(InputError, match=r"no gt/gt.txt"):
        match_gt_to_pred([tmp_path / "emptyseq"], out)
    with pytest.raises(InputError, match="prediction folder not found"):
        match_gt_to_pred([gt], tmp_path / "missing_run")
    with pytest.raises(InputError, match=r"no <camera>.txt prediction files"):
        match_gt_to_pred([gt], tmp_path / "emptyseq")
    with pytest.raises(InputError, match="two ground-truth inputs give camera id 'gt'"):
        match_gt_to_pred([gt, gt], out)
    with pytest.raises(InputError, match="MOTChallenge file not found"):
        evaluate({"cam": tmp_path / "missing_gt.txt"}, {"cam": out / "tracks" / "cam.txt"})
    with pytest.raises(InputError, match="MOTChallenge file not found"):
        evaluate({"cam": gt}, {"cam": tmp_path / "missing_pred.txt"})


def test_malformed_predictions_are_rejected_before_trackeval(tmp_path: Path) -> None:
    dets = [[f, -1, 10, 10, 20, 50, 0.9, -1, -1, -1] for f in range(1, 4)]
    with pytest.raises(InputError, match="looks like a detection file"):
        _one(GT_ROWS, dets, tmp_path)
    with pytest.raises(InputError, match="id 1 appears more than once in frame 2"):
        _one(GT_ROWS, [_box(2, 1, 10), _box(2, 1, 200)], tmp_path)
    with pytest.raises(InputError, match="not a 1-based integer frame"):
        _one(GT_ROWS, [_box(0, 1, 10)], tmp_path)
    with pytest.raises(InputError, match="trackeval could not score camera.s. cam: .*invalid gt classes"):
        _one(GT_ROWS, [_box(1, 1, 10)], tmp_path, gt_format="MOT17")  # MOT15 gt has no class column
    with pytest.raises(InputError, match="unknown gt_format"):
        _one(GT_ROWS, [_box(1, 1, 10)], tmp_path, gt_format="KITTI")


def test_large_ids_and_empty_prediction(tmp_path: Path) -> None:
    pred = [r for f in range(1, 11) for r in (_box(f, 10**12, 10), _box(f, 7 * 10**11, 200))]
    assert _one(GT_ROWS, pred, tmp_path)["cam"].idf1 == pytest.approx(100.0)
    s = _one(GT_ROWS, [], tmp_path)["cam"]
    assert (s.fn, s.fp, s.pred_ids, s.mota, s.hota, s.frames) == (20, 0, 0, 0.0, 0.0, 10)


@requires_mot15
def test_real_gt_detections_as_one_frame_tracks(tmp_path: Path) -> None:
    """Plumbing on a real gt file: PETS09-S2L1 detections, each its own track id, give good
    detection but no association (values measured with trackeval 1.3.0)."""
    seq = MOT15 / "PETS09-S2L1"
    det = read_mot_txt(seq / "det" / "det.txt")
    det[:, 1] = np.arange(1, len(det) + 1)
    np.savetxt(tmp_path / "PETS09-S2L1.txt", det, fmt="%.3f", delimiter=",")
    gt, preds = match_gt_to_pred([seq], tmp_path)
    s = evaluate(gt, preds)["PETS09-S2L1"]
    assert (s.gt_ids, s.gt_dets, s.frames) == (19, 4476, 795)
    assert (s.pred_ids, s.pred_dets) == (len(det), len(det))
    assert (s.fp, s.fn, s.idsw) == (852, 969, 3488)
    assert s.mota == pytest.approx(-18.610, abs=0.01)
    assert s.idf1 == pytest.approx(0.430, abs=0.01)
    assert s.deta == pytest.approx(49.99, abs=0.01)
    assert s.hota == pytest.approx(4.12, abs=0.01)
    assert s.motp == pytest.approx(66.89, abs=0.01)


@requires_mot15
def test_real_gt_with_ignored_rows_perfect_prediction(tmp_path: Path) -> None:
    """ETH-Bahnhof has 2255 flag-0 gt rows: predicting the 5415 others scores 100 everywhere."""
    gt_file = MOT15 / "ETH-Bahnhof" / "gt" / "gt.txt"
    gt = read_mot_txt(gt_file)
    keep = gt[gt[:, 6] != 0]
    assert (len(keep), len(gt) - len(keep)) == (5415, 2255)
    pred = tmp_path / "ETH-Bahnhof.txt"
    rows = np.c_[keep[:, :6], np.ones(len(keep)), -np.ones((len(keep), 3))]
    np.savetxt(pred, rows, fmt="%.3f", delimiter=",")
    s = evaluate({"ETH-Bahnhof": gt_file}, {"ETH-Bahnhof": pred})["ETH-Bahnhof"]
    assert (s.gt_dets, s.fn, s.fp, s.idsw, s.frames) == (5415, 0, 0, 0, 1000)
    for name in ("mota", "idf1", "hota"):
        assert getattr(s, name) == pytest.approx(100.0), name
