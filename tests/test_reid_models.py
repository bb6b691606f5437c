"""ReID models: crops and preprocessing, ONNX and torch backends, OSNet / ResNet-50 BNNeck, factory errors, quality.

Quality checks use real CUHK03 crops (``../shared/data/reid/cuhk03-val``) with the
standard cross-view protocol: view 1 (``KK`` 00–04) as query, view 2 (05–09) as
gallery, cosine similarity, rank-1. Measured on the first 50 identities (the
subset the test uses): ONNX OSNet x0.25 MSMT17 0.679, torchreid OSNet x0.25
MSMT17 0.588, torchreid OSNet x0.25 Market-1501 0.226, random OSNet x0.25
0.045–0.103 (seeds 0–4; chance ≈ 0.02).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import MODELS, SHARED

from pipeline.config import ReidConfig
from pipeline.errors import ModelError
from reid import download
from reid.extractor import FeatureExtractor
from reid.factory import build_reid
from reid.models.osnet import WIDTHS, osnet
from reid.models.resnet_bnneck import resnet50_bnneck
from reid.onnx_backend import OnnxReidExtractor
from reid.preprocess import IMAGENET_MEAN, IMAGENET_STD, crop_boxes, to_tensor_batch
from reid.torch_backend import TorchReidExtractor
from reid.weights import ARCHS, build_torch_model, clean_state_dict, load_state_dict_file, load_weights

CUHK03 = SHARED / "data" / "reid" / "cuhk03-val"
OSNET_ONNX = MODELS / "osnet_x0_25_msmt17.onnx"
OSNET_MSMT = MODELS / "osnet_x0_25_msmt17_torchreid.pth"
OSNET_MARKET = MODELS / "osnet_x0_25_market1501_torchreid.pth"

requires_reid_data = pytest.mark.skipif(
    not CUHK03.is_dir() or not all(p.is_file() for p in (OSNET_ONNX, OSNET_MSMT, OSNET_MARKET)),
    reason="../shared (CUHK03 crops and OSNet models) is absent; a user's clone does not have it",
)

QUALITY_IDS = 50  # identities used for rank-1 (keeps the file well under a minute on 2 cores)


class _MeanColour(FeatureExtractor):
    """A model-free extractor: the feature is the mean of each input channel (D = 3)."""

    def __init__(self, batch: int) -> None:
        self.name, self.dim, self.batch = "mean-colour", 3, batch
        self.calls: list[int] = []

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        return batch.mean(axis=(2, 3)) + 10.0  # offset: no zero rows


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- crops and preprocessing


def test_crop_boxes_clips_to_the_image() -> None:
    img = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)  # H=80, W=100
    boxes = np.array([[-10, -5, 30, 40], [90, 70, 150, 120], [10.4, 20.6, 30.2, 40.1]], np.float32)
    crops, valid = crop_boxes(img, boxes)
    assert valid.tolist() == [True, True, True]
    assert crops[0].shape == (40, 30, 3) and np.array_equal(crops[0], img[0:40, 0:30])
    assert crops[1].shape == (10, 10, 3) and np.array_equal(crops[1], img[70:80, 90:100])
    # corners rounded outwards: floor(x1, y1), ceil(x2, y2)
    assert np.array_equal(crops[2], img[20:41, 10:31])


def test_crop_boxes_invalid_boxes_never_crash() -> None:
    img = np.zeros((80, 100, 3), np.uint8)
    boxes = np.array(
        [
            [200, 200, 300, 300],  # fully outside, right/below
            [-50, -50, -10, -10],  # fully outside, left/above
            [10, 10, 10, 30],  # zero width
            [30, 30, 10, 10],  # inverted
            [10, 10, 11, 50],  # 1 px wide
            [10, 10, 50, 12],  # 2 px high
            [np.nan, 0, 10, 10],
            [0, 0, np.inf, 10],
            [97, 10, 140, 50],  # 3 px wide after clipping
            [5, 5, 9, 9],  # exactly min_size: valid
        ],
        np.float32,
    )
    crops, valid = crop_boxes(img, boxes)
    assert valid.tolist() == [False] * 9 + [True]
    assert all(c is None for c in crops[:9]) and crops[9].shape == (4, 4, 3)
    crops, valid = crop_boxes(img, np.zeros((0, 4), np.float32))
    assert crops == [] and valid.shape == (0,) and valid.dtype == bool
    with pytest.raises(ValueError, match="H×W×3"):
        crop_boxes(np.zeros((80, 100), np.uint8), boxes)


def test_to_tensor_batch_values_on_known_pixels() -> None:
    crop = np.zeros((256, 128, 3), np.uint8)  # already network size: resizing keeps every pixel
    crop[5, 7] = (10, 20, 30)  # BGR
    x = to_tensor_batch([crop])
    assert x.shape == (1, 3, 256, 128) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    rgb = np.array([30, 20, 10], np.float32)
    np.testing.assert_allclose(x[0, :, 5, 7], (rgb / 255 - IMAGENET_MEAN) / IMAGENET_STD, atol=1e-6)
    np.testing.assert_allclose(x[0, :, 0, 0], -IMAGENET_MEAN / IMAGENET_STD, atol=1e-6)
    # a uniform crop of another size stays uniform after resizing
    flat = to_tensor_batch([np.full((37, 15, 3), (200, 100, 50), np.uint8)])[0]
    expect = (np.array([50, 100, 200], np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(flat.reshape(3, -1), np.repeat(expect[:, None], 256 * 128, 1), atol=1e-5)
    assert to_tensor_batch([]).shape == (0, 3, 256, 128)
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_batch([np.zeros((8, 8, 3), np.float32)])


def test_embed_batches_keeps_order_and_normalises() -> None:
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, (rng.integers(10, 60), rng.integers(5, 30), 3), dtype=np.uint8) for _ in range(7)]
    ex = _MeanColour(batch=3)
    feats = ex.embed(crops)
    assert ex.calls == [3, 3, 1]
    assert feats.shape == (7, 3) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
    single = np.concatenate([_MeanColour(batch=1).embed([c]) for c in crops])
    np.testing.assert_allclose(feats, single, atol=1e-6)
    assert ex.embed([]).shape == (0, 3)


def test_extract_zero_rows_for_invalid_boxes() -> None:
    img = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 50, 100], [500, 500, 600, 600], [20, 30, 21, 90], [100, 20, 150, 110]], np.float32)
    feats, valid = _MeanColour(batch=32).extract(img, boxes)
    assert valid.tolist() == [True, False, False, True]
    assert feats.shape == (4, 3) and not feats[~valid].any()
    np.testing.assert_allclose(np.linalg.norm(feats[valid], axis=1), 1.0, rtol=1e-5)
    feats, valid = _MeanColour(batch=32).extract(img, np.zeros((0, 4)))
    assert feats.shape == (0, 3) and valid.shape == (0,)


# ---------------------------------------------------------------- real crops


def _cuhk03(max_ids: int | None = None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """CUHK03 crops (BGR), identity per crop, ``True`` where camera view 2 (gallery)."""
    files = sorted(CUHK03.glob("*.jpg"))
    ids = sorted({f.name[:4] for f in files})
    keep = set(ids[:max_ids] if max_ids else ids)
    files = [f for f in files if f.name[:4] in keep]
    crops = [cv2.imread(str(f)) for f in files]
    pid = np.array([int(f.name[:4]) for f in files])
    gallery = np.array([int(f.stem[-2:]) >= 5 for f in files])
    return crops, pid, gallery


@pytest.fixture(scope="module")
def cuhk03() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    return _cuhk03(QUALITY_IDS)


def _rank1(feats: np.ndarray, pid: np.ndarray, gallery: np.ndarray) -> float:
    """Cross-view rank-1: each view-1 query's most cosine-similar view-2 crop has its identity."""
    sim = feats[~gallery] @ feats[gallery].T
    return float(np.mean(pid[gallery][sim.argmax(axis=1)] == pid[~gallery]))


@requires_reid_data
def test_onnx_batch_one_equals_batch_n(cuhk03) -> None:
    crops = cuhk03[0][:12]
    one = OnnxReidExtractor(OSNET_ONNX, batch=1)
    many = OnnxReidExtractor(OSNET_ONNX, batch=5)  # 5, 5, 2: a partial last batch
    assert one.dim == 512 and one.fixed_batch is None and one.input_hw == (256, 128)
    a, b = one.embed(crops), many.embed(crops)
    assert a.shape == (12, 512) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-5)
    assert np.all((a * b).sum(axis=1) >= 0.9999)
    # the fixed-batch path (loop over B-sized runs, last one zero-padded) gives the same features
    many.fixed_batch = 4
    c = many.embed(crops)
    assert np.all((a * c).sum(axis=1) >= 0.9999)


@requires_reid_data
def test_osnet_loads_both_torchreid_checkpoints() -> None:
    for path, classes in ((OSNET_MSMT, 1041), (OSNET_MARKET, 751)):
        raw = torch.load(path, map_location="cpu", weights_only=True)
        assert raw["classifier.weight"].shape[0] == classes
        state = load_state_dict_file(path)
        assert not any(k.startswith("classifier.") for k in state)
        model = osnet("x0_25")
        load_weights(model, state, str(path), "osnet_x0_25")  # strict on everything but the classifier
        torch.testing.assert_close(model.state_dict()["conv5.conv.weight"], raw["conv5.conv.weight"])
        ex = build_reid(ReidConfig(spec=f"osnet_x0_25:{path}", batch=8))
        assert isinstance(ex, TorchReidExtractor) and ex.dim == 512 and ex.device.type == "cpu"
        feats = ex.embed([np.full((100, 40, 3), 90, np.uint8), np.full((60, 30, 3), 200, np.uint8)])
        assert feats.shape == (2, 512) and np.isfinite(feats).all()


# parameters without the classifier, torchreid MODEL_ZOO.md "# Param (10^6)"
_ZOO_PARAMS = {"x1_0": 2.2, "x0_75": 1.3, "x0_5": 0.6, "x0_25": 0.2}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_osnet_widths_build_with_random_weights(width: str) -> None:
    torch.manual_seed(0)
    model = osnet(width).eval()
    assert model.classifier is None
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 256, 128))
        fmap = model.featuremaps(torch.rand(1, 3, 256, 128))
    assert out.shape == (2, 512) and out.dtype == torch.float32
    assert fmap.shape == (1, WIDTHS[width][3], 16, 8)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params - _ZOO_PARAMS[width]) <= 0.1 * _ZOO_PARAMS[width] + 0.05


def test_osnet_training_mode_returns_logits() -> None:
    model = osnet("x0_25", num_classes=7).train()
    assert model(torch.rand(2, 3, 256, 128)).shape == (2, 7)
    with pytest.raises(ValueError, match="x1_0"):
        osnet("x2_0")


@requires_reid_data
def test_weights_that_do_not_fit_raise_model_error(tmp_path: Path) -> None:
    state = load_state_dict_file(OSNET_MSMT)
    del state["conv5.bn.weight"]
    with pytest.raises(ModelError) as exc:
        load_weights(osnet("x0_25"), state, "w.pth", "osnet_x0_25")
    assert "1 missing (conv5.bn.weight)" in _one_line(exc)
    state = load_state_dict_file(OSNET_MSMT)
    state["extra.weight"] = torch.zeros(3)
    with pytest.raises(ModelError, match="1 unexpected \\(extra.weight\\)"):
        load_weights(osnet("x0_25"), state, "w.pth")
    with pytest.raises(ModelError) as exc:  # x0.25 weights into the x1.0 network
        build_reid(ReidConfig(spec=f"osnet_x1_0:{OSNET_MSMT}"))
    assert "of another shape" in _one_line(exc) and str(OSNET_MSMT) in str(exc.value)


def test_resnet50_bnneck_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = resnet50_bnneck().eval()
    assert not model.bottleneck.bias.requires_grad and model.classifier is None
    x = torch.rand(2, 3, 256, 128)
    with torch.inference_mode():
        feats = model(x)
        fmap = model.featuremaps(x[:1])
    assert feats.shape == (2, 2048) and fmap.shape == (1, 2048, 16, 8)  # last stride 1: 16×8, not 8×4
    trained = resnet50_bnneck(num_classes=5).train()
    logits, global_feat = trained(x)
    assert logits.shape == (2, 5) and global_feat.shape == (2, 2048)
    # a training-script checkpoint: wrapped in 'state_dict', DataParallel 'module.' prefixes, a classifier
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.classifier.weight"] = torch.zeros(5, 2048)
    path = tmp_path / "bnneck.pth"
    torch.save({"state_dict": state, "epoch": 120}, path)
    ex = build_reid(ReidConfig(spec=f"resnet50:{path}", batch=4))
    assert isinstance(ex, TorchReidExtractor) and ex.dim == 2048
    crops = [np.random.default_rng(i).integers(0, 255, (90, 40, 3), dtype=np.uint8) for i in range(3)]
    direct = TorchReidExtractor(model, batch=4).embed(crops)
    loaded = ex.embed(crops)
    assert loaded.shape == (3, 2048)
    assert np.all((direct * loaded).sum(axis=1) >= 0.9999)


@requires_reid_data
def test_rank1_on_cuhk03_cross_view(cuhk03) -> None:
    crops, pid, gallery = cuhk03
    assert gallery.sum() > 200 and (~gallery).sum() > 200
    scores = {
        "onnx": _rank1(build_reid(ReidConfig(spec=str(OSNET_ONNX))).embed(crops), pid, gallery),
        "msmt17": _rank1(build_reid(ReidConfig(spec=f"osnet_x0_25:{OSNET_MSMT}")).embed(crops), pid, gallery),
        "market1501": _rank1(build_reid(ReidConfig(spec=f"osnet_x0_25:{OSNET_MARKET}")).embed(crops), pid, gallery),
    }
    torch.manual_seed(0)
    random_net = TorchReidExtractor(build_torch_model("osnet_x0_25", None), name="random")
    scores["random"] = _rank1(random_net.embed(crops), pid, gallery)
    # measured: onnx 0.679, msmt17 0.588, market1501 0.226, random 0.045 (seed 0)
    assert scores["onnx"] >= 0.62, scores
    assert scores["msmt17"] >= 0.53, scores
    assert scores["market1501"] >= 0.18, scores
    assert scores["random"] <= 0.12 and scores["random"] < scores["msmt17"] / 3, scores


# ---------------------------------------------------------------- factory


def test_build_reid_unknown_spec_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        build_reid(ReidConfig(spec="sift"))
    msg = _one_line(exc)
    assert "'sift'" in msg and "'none'" in msg and "osnet_x0_25" in msg and ".onnx" in msg
    with pytest.raises(ModelError) as exc:
        build_reid(ReidConfig(spec=str(tmp_path / "nope.onnx")))
    assert str(tmp_path / "nope.onnx") in _one_line(exc)
    with pytest.raises(ModelError) as exc:
        build_reid(ReidConfig(spec=f"osnet_x0_25:{tmp_path / 'nope.pth'}"))
    assert str(tmp_path / "nope.pth") in _one_line(exc)
    with pytest.raises(ModelError, match="needs its architecture"):
        build_reid(ReidConfig(spec="weights.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read ReID weights"):
        build_reid(ReidConfig(spec=f"resnet50:{bad}"))
    assert build_reid(ReidConfig(spec=" None ")) is None


def _point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, url: str) -> Path:
    """Known model ``name`` now lives at ``url``; the cache is an empty folder under ``tmp_path``."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(download, "CACHE_DIR", cache)
    monkeypatch.setitem(download.KNOWN_MODELS, name, dataclasses.replace(download.KNOWN_MODELS[name], url=url))
    return cache


def test_known_name_offline_names_local_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = _point(monkeypatch, tmp_path, "osnet_x0_25_msmt17", "http://127.0.0.1:9/osnet.pth")
    with pytest.raises(ModelError) as exc:
        build_reid(ReidConfig())  # the default spec is the known name osnet_x0_25_msmt17
    msg = _one_line(exc)
    assert "osnet_x0_25_msmt17" in msg and download.LOCAL_OPTIONS in msg
    assert "--reid path/to/model.onnx, --reid osnet_x0_25:path/to/weights.pth, or --reid none" in msg
    assert not list(cache.glob("*"))  # no partial file left behind
    page = tmp_path / "quota.html"  # Drive's answer when the quota is exceeded: a page, not a file
    page.write_text("<html><body>Too many users have viewed or downloaded this file recently.</body></html>")
    _point(monkeypatch, tmp_path, "osnet_x0_25_msmt17", page.as_uri())
    with pytest.raises(ModelError, match="web page, not a checkpoint"):
        build_reid(ReidConfig(spec="osnet_x0_25_msmt17"))


@requires_reid_data
def test_known_name_download_and_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the shared file is byte-identical to the model-zoo download (SHA-256 in KNOWN_MODELS)
    cache = _point(monkeypatch, tmp_path, "osnet_x0_25_msmt17", OSNET_MSMT.as_uri())
    ex = build_reid(ReidConfig(spec="osnet_x0_25_msmt17", batch=4))
    assert isinstance(ex, TorchReidExtractor) and ex.dim == 512
    assert (cache / "osnet_x0_25_msmt17.pth").read_bytes() == OSNET_MSMT.read_bytes()
    _point(monkeypatch, tmp_path, "osnet_x0_25_msmt17", "http://127.0.0.1:9/unused")
    assert build_reid(ReidConfig(spec="osnet_x0_25_msmt17")) is not None  # served from the cache now
    # a file that is a checkpoint but not the published one fails the digest check
    _point(monkeypatch, tmp_path / "other", "osnet_x0_25_msmt17", OSNET_MARKET.as_uri())
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        build_reid(ReidConfig(spec="osnet_x0_25_msmt17"))


def test_drive_links_use_the_direct_endpoint() -> None:
    direct = download._direct_url("https://drive.google.com/uc?id=1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF")
    assert direct.startswith("https://drive.usercontent.google.com/download?id=1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF")
    assert "confirm=t" in direct
    assert download._direct_url("https://drive.google.com/file/d/abc-DEF_1/view?usp=sharing").count("id=abc-DEF_1") == 1
    assert download._direct_url("http://127.0.0.1:9/x.pth") == "http://127.0.0.1:9/x.pth"
    page = (
        '<html><form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
        '<input type="hidden" name="id" value="abc"><input type="hidden" name="confirm" value="t">'
        '<input type="hidden" name="uuid" value="u-1"></form></html>'
    )
    assert download._confirm_url(page) == "https://drive.usercontent.google.com/download?id=abc&confirm=t&uuid=u-1"
    assert all(m.arch in ARCHS for m in download.KNOWN_MODELS.values())


def test_clean_state_dict_rejects_non_state_dicts() -> None:
    with pytest.raises(ModelError, match="not a state dict"):
        clean_state_dict({"epoch": 3}, "x.pth")
    state = clean_state_dict({"model": {"module.a": torch.zeros(1), "classifier.bias": torch.zeros(2)}}, "x.pth")
    assert list(state) == ["a"]
