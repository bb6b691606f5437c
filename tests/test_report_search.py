"""``mtmc run --report``, ``mtmc report`` and ``mtmc search`` on a real multi-camera scene.

The scene is ``scripts/make_multicam.py`` on TUD-Stadtmitte (4 cameras, global gt ids);
the report is opened in headless Chromium (Debian's ``chromium``; those tests skip
without it) and its DOM and screenshot are checked; search is scored with query crops
cut from the ground truth of each camera (``scripts/benchmark_search.py``): the top
identity must be the one the run drew on that person in ≥ 70 % of cases (measured
76 % on this scene, 78 % on PETS09-S2L1; README "Search").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import MODELS, MOT15, OSNET_ONNX, YOLOX, load_script, requires_shared

from pipeline.cli import main
from pipeline.config import ReidConfig
from pipeline.feature_store import FeatureStore
from pipeline.report.run_view import load_run
from pipeline.search import rank_identities
from pipeline.vectors import l2_normalize
from reid.factory import build_reid

pytestmark = requires_shared
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("report")
    scene = base / "scene"
    load_script("make_multicam").make_multicam(MOT15 / "TUD-Stadtmitte", scene, "both", jitter=True, seed=0)
    code = main(["run", str(scene), "-o", str(base / "run"), "--detector", f"yolox:{YOLOX}", "--reid",
                 str(OSNET_ONNX), "--no-progress", "--report", "--gt", str(scene), "--cross-camera"])
    assert code == 0
    return scene, base / "run"


@pytest.fixture(scope="module")
def queries(scene_run: tuple[Path, Path]) -> list:
    scene, run = scene_run
    return load_script("benchmark_search").scene_queries(scene, run, per_person=3, min_height=40)


def test_features_npz_holds_every_featured_tracklet(scene_run: tuple[Path, Path]) -> None:
    _, run = scene_run
    summary = json.loads((run / "summary.json").read_text())
    store = FeatureStore.load(run / "features.npz")
    lk = summary["linking"]
    assert len(store) == lk["tracklets"] - lk["tracklets_without_feature"] > 20
    with np.load(run / "features.npz") as z:
        assert z["features"].dtype == np.float16 and z["features"].shape == (len(store), 512)
    assert store.model == summary["reid"]
    assert set(store.camera_id) == {"dj_left", "dj_right", "ov_left", "ov_right"}
    assert np.allclose(np.linalg.norm(store.features, axis=1), 1.0, atol=2e-3)
    assert all(len(f) == n for f, n in zip(store.feature_frames, store.num_features, strict=True))
    assert "features.npz" in summary["outputs"] and "report.html" not in summary["outputs"]


def _dom(path: Path) -> str:
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          path.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    return out.stdout


@requires_chromium
def test_report_renders_in_chromium_with_identity_strips(scene_run: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = scene_run
    html = (run / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', html), "the report must not load anything from outside"
    summary = json.loads((run / "summary.json").read_text())
    dom = _dom(run / "report.html")
    assert dom.count('<tr class="identity"') == summary["identities"]
    crops = dom.count('class="crop"')
    assert summary["identities"] <= crops <= 6 * summary["identities"]
    assert dom.count('class="thumb"') == 4
    assert "CROSS-CAMERA" in dom and dom.count('class="seg"') == summary["tracks"]  # one bar per tracklet
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,2000",
                    f"--screenshot={shot}", (run / "report.html").resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (2000, 1400)
    assert (img < 200).any(axis=2).mean() > 0.05 and img.std() > 20  # text, thumbnails, plots: not blank


def test_search_finds_the_identity_drawn_on_the_person(scene_run: tuple[Path, Path], queries: list) -> None:
    _, run = scene_run
    view = load_run(run, need_features=True)
    extractor = build_reid(ReidConfig(spec=str(OSNET_ONNX)))
    feats = l2_normalize(extractor.embed([q.crop for q in queries]), dtype=np.float32)
    top = [rank_identities(view, f, 1, 2.0)[1] for f in feats]
    right = [t is not None and t.global_id == q.expected for t, q in zip(top, queries, strict=True)]
    assert len(queries) >= 50 and len({q.camera for q in queries}) == 4
    assert np.mean(right) >= 0.70


def _write(path: Path, img: np.ndarray) -> Path:
    cv2.imwrite(str(path), img)
    return path


def test_search_cli_json_averages_photos_and_says_no_match(scene_run: tuple[Path, Path], queries: list,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, run = scene_run
    person = [q for q in queries if q.camera == "ov_left"][:2]
    paths = [_write(tmp_path / f"q{i}.png", q.crop) for i, q in enumerate(person)]
    assert main(["search", str(run), "--query", *map(str, paths), "--json", "--threshold", "2"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found) == 5 and [m["distance"] for m in found] == sorted(m["distance"] for m in found)
    assert set(found[0]) == {"global_id", "distance", "cameras", "seen"}
    assert found[0]["seen"][found[0]["cameras"][0]]["first_seen"] >= 0
    noise = _write(tmp_path / "noise.png", np.random.default_rng(0).integers(0, 255, (160, 64, 3), np.uint8))
    assert main(["search", str(run), "--query", str(noise), "--threshold", "0.05"]) == 0
    assert capsys.readouterr().out.startswith("no match: no identity within distance 0.05; best: identity")


def _error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


def test_search_and_report_bad_input_exit_2(scene_run: tuple[Path, Path], queries: list, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    _, run = scene_run
    query = _write(tmp_path / "q.png", queries[0].crop)
    bare = tmp_path / "bare"
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("features.npz", "report.html"))
    assert main(["search", str(bare), "--query", str(query)]) == 2
    assert "features.npz not found" in _error(capsys)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    assert main(["search", str(run), "--query", str(bad)]) == 2
    assert _error(capsys) == f"mtmc: error: cannot read query image {bad} (not an image, or corrupt); give a " \
                             "JPEG or PNG person crop"
    pth = MODELS / "osnet_x0_25_msmt17_torchreid.pth"
    if pth.is_file():
        assert main(["search", str(run), "--query", str(query), "--reid", f"osnet_x0_25:{pth}"]) == 2
        assert "features come from onnx:osnet_x0_25_msmt17.onnx" in _error(capsys)
    wide = _write(tmp_path / "wide.png", cv2.resize(queries[0].crop, (200, 50)))
    assert main(["search", str(run), "--query", str(wide)]) == 0
    assert "not a person crop" in capsys.readouterr().err
    empty = tmp_path / "empty"
    shutil.copytree(run, empty)
    FeatureStore.from_tracklets([], "onnx:osnet_x0_25_msmt17.onnx").save(empty / "features.npz")
    assert main(["search", str(empty), "--query", str(query)]) == 2
    assert "no tracklet with a feature" in _error(capsys)
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "run folder not found" in _error(capsys)


def test_report_without_features_or_sources_still_writes(scene_run: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    _, run = scene_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("features.npz", "report.html"))
    summary = json.loads((copy / "summary.json").read_text())
    summary["cameras"][0]["source"] = str(tmp_path / "gone.mp4")
    (copy / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(copy), "--max-crops", "2"]) == 0
    out = capsys.readouterr()
    assert re.search(r"wrote .*report\.html \(\d+\.\d MB, \d+ identities, \d+ crops", out.out)
    assert "no pictures of dj_left" in out.out
    html = (copy / "report.html").read_text()
    assert "no histogram: no features.npz" in html and html.count('<tr class="identity"') == summary["identities"]
