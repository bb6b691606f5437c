"""``mtmc adapt``: pseudo-identities from a run's own tracklets, hard negatives, confident joins, and the
command end to end on a short real multi-camera scene (torchreid OSNet start model from ../shared)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MODELS, MOT15, OSNET_ONNX, YOLOX, load_script, requires_shared

from pipeline.adapt import confident_joins
from pipeline.adapt_data import AdaptSet, pseudo_ids
from pipeline.cli import main
from pipeline.config import ReidConfig
from reid.factory import build_reid
from reid.sampler import PKSampler

START = MODELS / "osnet_x0_25_msmt17_torchreid.pth"


def test_pseudo_ids_join_chains_and_hard_negatives_map_to_them() -> None:
    keys = [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1)]
    pseudo = pseudo_ids(keys, [(0, 2), (2, 4)])
    assert pseudo[("a", 1)] == pseudo[("b", 1)] == pseudo[("c", 1)] and len(set(pseudo.values())) == 3
    data = AdaptSet(crops={k: [Path("x.jpg"), Path("y.jpg")] for k in keys},
                    negatives={("a", 1): [("a", 2)], ("a", 2): [("a", 1)]})
    assert data.hard_negatives(pseudo) == {pseudo[("a", 1)]: [pseudo[("a", 2)]], pseudo[("a", 2)]: [pseudo[("a", 1)]]}
    items = data.items(pseudo)
    assert len(items) == 10 and {it.camid for it in items} == {0, 1, 2}


def test_confident_joins_are_mutual_nearest_cross_camera_pairs_under_the_distance() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 16))
    feats = {}
    for cam, noise in (("a", 0.05), ("b", 0.05)):
        for i, v in enumerate(base):
            f = v + noise * rng.normal(size=16)
            feats[(cam, i)] = (f / np.linalg.norm(f)).astype(np.float32)
    feats[("a", 9)] = feats[("a", 0)]  # same camera: never joined with its twin
    joins = confident_joins(feats, 0.2)
    # ("a", 9) ties with ("a", 0) as b0's nearest; the first wins, so a9 is nobody's mutual nearest
    assert sorted(joins) == [(("a", 0), ("b", 0)), (("a", 1), ("b", 1)), (("a", 2), ("b", 2))]
    assert confident_joins(feats, 0.0) == []


def test_pk_sampler_puts_hard_negatives_in_one_batch() -> None:
    labels = [i // 2 for i in range(40)]
    neighbours = {i: [(i + 1) % 20, (i + 7) % 20] for i in range(20)}

    def together(sampler: PKSampler) -> int:  # neighbour pairs sharing a batch, over 20 epochs
        sets = [{labels[i] for i in b} for e in range(20) for b in sampler.batches(e)]
        return sum(n in ids for ids in sets for a in ids for n in neighbours[a])

    hard = PKSampler(labels, 4, 2, neighbours=neighbours)
    assert len(hard.batches()) == 5 and len({labels[i] for b in hard.batches() for i in b}) == 20
    assert all(len(b) == 8 and len({labels[i] for i in b}) == 4 for b in hard.batches())
    assert together(hard) >= 1.5 * together(PKSampler(labels, 4, 2))  # measured 209 vs 122


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not START.is_file():
        pytest.skip(f"{START} is absent")
    base = tmp_path_factory.mktemp("adapt")
    scene = base / "scene"
    load_script("make_multicam").make_multicam(MOT15 / "TUD-Stadtmitte", scene, "both", jitter=True, seed=0,
                                               max_frames=90)
    assert main(["run", str(scene), "-o", str(base / "run"), "--detector", f"yolox:{YOLOX}", "--reid",
                 str(OSNET_ONNX), "--no-progress"]) == 0
    return scene, base / "run"


@requires_shared
def test_adapt_writes_a_loadable_model_metrics_and_summary(short_run: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    _, run = short_run
    dest = tmp_path / "adapted"
    code = main(["adapt", str(run), "-o", str(dest), "--init", f"osnet_x0_25:{START}", "--epochs", "1",
                 "--rounds", "2", "--join-confident", "--max-crops", "4", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "use --reid osnet_x0_25:" in capsys.readouterr().out
    info = json.loads((dest / "adapt.json").read_text())
    crops = list((dest / "crops").rglob("*.jpg"))
    assert info["crops"] == len(crops) and 2 * info["tracklets"] <= len(crops) <= 4 * info["tracklets"]
    assert [r["round"] for r in info["rounds"]] == [1, 2] and info["rounds"][0]["hard_negative_pairs"] > 0
    assert all(r["pseudo_ids"] <= info["tracklets"] for r in info["rounds"])
    assert info["options"]["camera_aware"] is True  # the default: per-camera losses (TAUDL)
    assert info["options"]["metric_loss"] == "improved_triplet"
    with open(dest / "metrics.csv", newline="") as fh:
        assert [r["round"] for r in csv.DictReader(fh)] == ["1", "2"]
    ex = build_reid(ReidConfig(spec=f"osnet_x0_25:{dest / 'model.pth'}"))
    assert ex is not None and ex.embed([np.zeros((128, 64, 3), np.uint8)]).shape == (1, 512)


def _without_sources(run: Path, tmp_path: Path) -> Path:
    """A copy of the run whose summary names sources under ``tmp_path/gone`` (absent)."""
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)
    summary = json.loads((moved / "summary.json").read_text())
    for cam in summary["cameras"]:
        cam["source"] = str(tmp_path / "gone" / f"{cam['id']}.mp4")
    (moved / "summary.json").write_text(json.dumps(summary))
    return moved


@requires_shared
def test_adapt_bad_input_exits_2(short_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scene, run = short_run
    args = ["-o", str(tmp_path / "x"), "--epochs", "1", "--no-progress"]
    assert main(["adapt", str(run), *args, "--init", f"resnet9:{START}"]) == 2
    assert "give ARCH:F.pth with ARCH one of" in capsys.readouterr().err
    assert main(["adapt", str(run), *args, "--init", f"resnet50:{START}"]) == 2
    assert "mtmc: error:" in capsys.readouterr().err
    few = tmp_path / "few"
    assert main(["run", str(scene / "dj_left"), "-o", str(few), "--max-frames", "4", "--detector", f"yolox:{YOLOX}",
                 "--reid", str(OSNET_ONNX), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["adapt", str(few), *args, "--init", f"osnet_x0_25:{START}"]) == 2
    assert "mtmc adapt needs at least 8" in capsys.readouterr().err
    moved = _without_sources(run, tmp_path)
    assert main(["adapt", str(moved), *args, "--init", f"osnet_x0_25:{START}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtmc: error:") and str(tmp_path / "gone") in err


@requires_shared
def test_adapt_reads_the_runs_saved_crops_when_its_sources_are_gone(short_run: tuple[Path, Path], tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    import cv2

    from pipeline.report.run_view import load_run

    _, run = short_run
    moved = _without_sources(run, tmp_path)
    rng = np.random.default_rng(0)
    written = 0
    for ident in load_run(moved).identities:  # what mtmc run --save-crops writes (pipeline/crops.py)
        for seg in ident.segments:
            for frame in seg.frames[:3]:
                path = moved / "crops" / str(ident.global_id) / seg.camera / f"{seg.local_id}_{int(frame):06d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), rng.integers(0, 255, (96, 48, 3), dtype=np.uint8))
                written += 1
    dest = tmp_path / "adapted"
    code = main(["adapt", str(moved), "-o", str(dest), "--init", f"osnet_x0_25:{START}", "--epochs", "1",
                 "--max-crops", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    info = json.loads((dest / "adapt.json").read_text())
    assert info["crops_from"] == "saved" and info["crops"] == 2 * info["tracklets"] and written >= info["crops"]
    assert not (dest / "crops").exists() or not any((dest / "crops").iterdir())  # nothing decoded or cut


def test_topology_forbidden_camera_pairs_are_hard_negatives() -> None:
    from pipeline.adapt_data import _negatives
    from pipeline.report.run_view import Segment

    def seg(cam: str, lid: int, start: float, end: float) -> Segment:
        return Segment(cam, lid, start, end, np.zeros(0, np.int64), np.zeros((0, 4), np.float32))

    segs = [seg("a", 1, 0, 5), seg("a", 2, 3, 8), seg("b", 1, 20, 25), seg("c", 1, 10, 12), seg("c", 2, 40, 41)]
    keys = {(s.camera, s.local_id) for s in segs}
    plain = _negatives(segs, keys)
    assert plain == {("a", 1): [("a", 2)], ("a", 2): [("a", 1)]}  # one camera at the same time only
    topo = {"a": {"b": False, "c": [2.0, 6.0]}}  # a-b never; a -> c within 2-6 s
    neg = _negatives(segs, keys, topo)
    assert set(neg[("b", 1)]) == {("a", 1), ("a", 2)}
    # gaps a1->c1 5 s and a2->c1 2 s are allowed transits; 35 s and 32 s to c2 are outside the window
    assert set(neg[("c", 2)]) == {("a", 1), ("a", 2)} and ("c", 1) not in neg


def test_confident_joins_use_a_cosine_threshold_whatever_the_runs_scale() -> None:
    """features.npz holds plain features: a threshold on the camera-bias-removed scale is not used for them."""
    from pipeline.adapt import DEFAULT_THRESHOLD, _cosine_threshold

    assert _cosine_threshold({"camera_bias": True, "threshold": 0.75}) == DEFAULT_THRESHOLD == 0.4
    assert _cosine_threshold({"camera_bias": False, "threshold": 0.3}) == 0.3
    assert _cosine_threshold({"threshold": 0.35}) == 0.35  # runs from before camera_bias existed
    assert _cosine_threshold({}) == DEFAULT_THRESHOLD  # linking off
