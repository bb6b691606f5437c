"""ReID evaluation: metrics, dataset readers, AlignedReID shortest path, ``mtmc reid eval``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.errors import InputError
from reid.aligned import element_distance, local_distance_matrix, shortest_path
from reid.datasets import detect_layout, load_dataset
from reid.metrics import evaluate_rank
from tests.conftest import MODELS, SHARED

CUHK = SHARED / "data" / "reid" / "cuhk03-val"
ONNX = MODELS / "osnet_x0_25_msmt17.onnx"
requires_reid_data = pytest.mark.skipif(
    not CUHK.is_dir() or not ONNX.is_file(), reason="../shared/data/reid/cuhk03-val or the OSNet ONNX model is absent"
)


# ---------------------------------------------------------------- metrics


def test_ap_minp_hand_checked() -> None:
    rel = [1, 3, 6, 9, 10]  # ranks of the true matches among 10 gallery items
    dist = np.arange(1, 11, dtype=float)[None]
    g_pids = np.array([7 if r in rel else 100 + r for r in range(1, 11)])
    m = evaluate_rank(dist, np.array([7]), g_pids, np.array([0]), np.ones(10, int))
    assert m.mAP == pytest.approx((1 + 2 / 3 + 3 / 6 + 4 / 9 + 5 / 10) / 5)
    assert m.mAP == pytest.approx(0.622, abs=1e-3)
    assert m.mINP == pytest.approx(5 / 10)
    assert m.rank(1) == 1.0 and m.num_query == 1 and m.num_skipped == 0


def test_same_camera_excluded_and_skipped() -> None:
    # query 0 (id 1, cam 0): nearest is id 1 in cam 0 (excluded), then id 2, then id 1 cam 1
    # query 1 (id 3, cam 0): its only match is in the same camera → skipped
    dist = np.array([[0.1, 0.2, 0.3], [0.5, 0.1, 0.2]])
    g_pids, g_cams = np.array([1, 2, 1]), np.array([0, 1, 1])
    q_pids = np.array([1, 3])
    m = evaluate_rank(dist, q_pids, g_pids, np.array([0, 0]), g_cams)
    assert m.num_query == 1 and m.num_skipped == 1
    assert m.rank(1) == 0.0 and m.rank(2) == 1.0
    assert m.mAP == pytest.approx(0.5) and m.mINP == pytest.approx(0.5)
    none = evaluate_rank(dist[1:], q_pids[1:], np.array([3, 2, 1]), np.array([0]), g_cams * 0)
    assert none.num_query == 0 and none.num_skipped == 1 and none.mAP == 0.0


# ---------------------------------------------------------------- AlignedReID


def _brute(d: np.ndarray) -> float:
    h, w = d.shape
    best = np.inf
    for downs in itertools.combinations(range(h + w - 2), h - 1):
        i = j = 0
        total = d[0, 0]
        for step in range(h + w - 2):
            if step in downs:
                i += 1
            else:
                j += 1
            total += d[i, j]
        best = min(best, total)
    return float(best)


@pytest.mark.parametrize("h", [1, 2, 3, 4, 5])
def test_shortest_path_brute_force(h: int) -> None:
    import torch

    rng = np.random.default_rng(h)
    d = rng.random((6, h, h)).astype(np.float32)
    want = np.array([_brute(x) for x in d])
    np.testing.assert_allclose(shortest_path(d), want, rtol=1e-5)
    np.testing.assert_allclose(shortest_path(torch.from_numpy(d)).numpy(), want, rtol=1e-5)


def test_local_distance_matrix() -> None:
    import torch

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3, 4, 5)).astype(np.float32), rng.normal(size=(2, 4, 5)).astype(np.float32)
    d = local_distance_matrix(x, y)
    assert d.shape == (3, 2)
    e = element_distance(np.linalg.norm(x[1][:, None] - y[0][None], axis=-1))
    assert d[1, 0] == pytest.approx(_brute(e), rel=1e-5)
    assert np.allclose(element_distance(np.array([0.7])), (np.exp(0.7) - 1) / (np.exp(0.7) + 1))
    np.testing.assert_allclose(local_distance_matrix(torch.from_numpy(x), torch.from_numpy(y)).numpy(), d, rtol=1e-4)


# ---------------------------------------------------------------- dataset readers


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 4, 3), 128, np.uint8))


def test_market_and_duke(tmp_path: Path) -> None:
    m = tmp_path / "market"
    for name in ("query/0001_c1s1_000151_00.jpg", "query/-1_c1s1_000001_00.jpg",
                 "bounding_box_test/0001_c2s1_000301_00.jpg", "bounding_box_test/0000_c3s1_000001_00.jpg",
                 "bounding_box_test/-1_c3s1_000002_00.jpg", "bounding_box_train/0002_c1s1_000001_00.jpg"):
        _img(m / name)
    ds = load_dataset(m)
    assert ds.layout == "market1501" and len(ds.query) == 1 and len(ds.train) == 1
    assert sorted((it.pid, it.camid) for it in ds.gallery) == [(0, 3), (1, 2)]
    d = tmp_path / "duke"
    for name in ("query/0005_c2_f0046985.jpg", "bounding_box_test/0005_c5_f0051781.jpg"):
        _img(d / name)
    ds = load_dataset(d)
    assert ds.layout == "dukemtmcreid" and (ds.query[0].pid, ds.query[0].camid) == (5, 2)


def test_msmt17(tmp_path: Path) -> None:
    names = {"list_query.txt": "0000/0000_000_01_0303morning_0015_0.jpg 0\n",
             "list_gallery.txt": "0000/0000_001_05_0303noon_0100_1.jpg 0\n0001/0001_000_02_0303noon_0001_0.jpg 1\n"}
    for lst, text in names.items():
        (tmp_path / lst).write_text(text)
        for line in text.splitlines():
            _img(tmp_path / "test" / line.split()[0])
    ds = load_dataset(tmp_path)
    assert ds.layout == "msmt17"
    assert [(it.pid, it.camid) for it in ds.gallery] == [(0, 5), (1, 2)]
    assert ds.query[0].path.is_file()


def test_cuhk03(tmp_path: Path) -> None:
    for name in ("0001_00.jpg", "0001_07.jpg", "0002_04.jpg", "0002_05.jpg"):
        _img(tmp_path / name)
    ds = load_dataset(tmp_path)
    assert ds.layout == "cuhk03" and {it.camid for it in ds.query} == {1} and len(ds.gallery) == 2


def test_mars_fallback_and_mat(tmp_path: Path) -> None:
    from scipy.io import savemat

    names = ["0001C1T0001F001.jpg", "0001C1T0001F002.jpg", "0001C2T0002F001.jpg",
             "0000C3T0001F001.jpg", "00-1C1T0001F001.jpg"]
    for n in names:
        _img(tmp_path / "bbox_test" / n[:4] / n)
    _img(tmp_path / "bbox_train" / "0003" / "0003C1T0001F001.jpg")
    ds = load_dataset(tmp_path)
    assert ds.layout == "mars" and ds.tracklet
    assert [(it.pid, it.camid, len(it.frames)) for it in ds.query] == [(1, 1, 2)]
    assert sorted((it.pid, it.camid) for it in ds.gallery) == [(0, 3), (1, 2)]
    assert len(ds.train) == 1
    info = tmp_path / "info"
    info.mkdir()
    (info / "test_name.txt").write_text("\n".join(names[:4]) + "\n")
    savemat(info / "tracks_test_info.mat", {"track_test_info": np.array([[1, 2, 1, 1], [3, 3, 1, 2], [4, 4, 0, 3]])})
    savemat(info / "query_IDX.mat", {"query_IDX": np.array([[2]])})
    ds = load_dataset(tmp_path, "mars")
    assert [(it.pid, it.camid) for it in ds.query] == [(1, 2)]
    assert sorted((it.pid, it.camid, len(it.frames)) for it in ds.gallery) == [(0, 3, 1), (1, 1, 2)]


def test_generic(tmp_path: Path) -> None:
    for rel in ("alice/camA/1.jpg", "alice/camB/2.jpg", "alice/camB/3.jpg", "bob/camB/1.jpg"):
        _img(tmp_path / "g" / rel)
    ds = load_dataset(tmp_path / "g")
    assert ds.layout == "generic" and len(ds.query) == 1 and len(ds.gallery) == 3
    for rel in ("query/a/c1/1.jpg", "gallery/a/c2/1.jpg", "gallery/b/c2/2.png"):
        _img(tmp_path / "s" / rel)
    ds = load_dataset(tmp_path / "s")
    assert ds.layout == "generic" and len(ds.query) == 1 and {it.pid for it in ds.gallery} == {0, 1}


def test_unknown_layout(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match=str(tmp_path)):
        detect_layout(tmp_path)
    with pytest.raises(InputError, match="layout"):
        load_dataset(tmp_path, "viper")


# ---------------------------------------------------------------- CLI


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reid", "eval", str(tmp_path), "--reid", str(ONNX)]) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if not x.startswith("mtmc: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("mtmc: error: unknown ReID dataset layout")


@requires_reid_data
def test_cli_local_with_onnx(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reid", "eval", str(CUHK), "--reid", str(ONNX), "--local"]) == 2
    assert "torch" in capsys.readouterr().err


@requires_reid_data
@pytest.mark.parametrize("rerank, r1, mean_ap", [(False, 0.48, 0.49), (True, 0.51, 0.56)])
def test_cli_cuhk03(rerank: bool, r1: float, mean_ap: float, capsys: pytest.CaptureFixture[str]) -> None:
    # measured: rank-1 51.9 % / mAP 52.2 %, re-ranked 54.6 % / 59.0 %
    args = ["reid", "eval", str(CUHK), "--reid", str(ONNX), "--json", "--batch", "64"]
    args += ["--rerank"] if rerank else []
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["num_query"] == 451 and res["num_gallery"] == 487 and res["num_skipped"] == 0
    assert res["rank1"] > r1 and res["mAP"] > mean_ap and res["rerank"] is rerank
