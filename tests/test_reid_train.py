"""ReID training loop (reid.train) on a tiny synthetic identity set: loss goes down, resume, export, options."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipeline.config import ReidConfig
from pipeline.errors import ConfigError, ModelError
from reid.datasets import ReidDataset, ReidItem
from reid.factory import build_reid
from reid.train import ReidTrainNet, TrainConfig, build_train_net, lr_factor, train, train_step

IDS, PER_ID, HW = 6, 8, (64, 32)


def _person(pid: int, j: int, rng: np.random.Generator) -> np.ndarray:
    """A 64×32 BGR 'person': identity = top/bottom colours + stripe pattern, with noise and a shift."""
    top = np.array([(pid * 40) % 256, (pid * 90 + 60) % 256, (255 - pid * 35) % 256], np.uint8)
    bottom = np.array([(200 - pid * 30) % 256, (pid * 70) % 256, (pid * 50 + 100) % 256], np.uint8)
    img = np.zeros((HW[0], HW[1], 3), np.uint8)
    img[: HW[0] // 2] = top
    img[HW[0] // 2 :] = bottom
    img[:, :: pid % 3 + 2] //= 2  # vertical stripes, period by identity
    img = np.roll(img, int(rng.integers(-2, 3)), axis=1)
    noise = rng.normal(0, 8, img.shape)
    return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ReidDataset:
    root = tmp_path_factory.mktemp("toyreid")
    rng = np.random.default_rng(0)
    train, query, gallery = [], [], []
    for pid in range(IDS):
        for j in range(PER_ID):
            path = root / f"{pid:04d}_c{j % 2 + 1}_{j:03d}.png"
            cv2.imwrite(str(path), _person(pid, j, rng))
            item = ReidItem(path, pid + 10, j % 2 + 1)
            train.append(item)
            (query if j == 0 else gallery if j in (1, 3) else []).append(item)
    return ReidDataset(root=root, layout="generic", query=query, gallery=gallery, train=train)


def _cfg(out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        arch="osnet_x0_25", input_hw=HW, p=3, k=4, epochs=3, lr=3e-3, warmup_epochs=0, schedule="cosine",
        eval_every=0, num_workers=0, progress=False, out_dir=str(out), seed=0, amp=False,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_train_reduces_loss_writes_files_and_resumes(toy: ReidDataset, tmp_path: Path) -> None:
    torch.manual_seed(0)
    out = tmp_path / "run"
    cfg = _cfg(out, epochs=6, eval_every=3)
    res = train(cfg, toy)
    hist = res["history"]
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4, 5, 6]
    assert res["num_classes"] == IDS
    # 6 ids / P=3 → 2 batches per epoch
    assert hist[-1]["step"] == 12
    first, final = hist[0]["loss"], hist[-1]["loss"]
    assert np.isfinite(final) and final < first, (first, final)
    assert "mAP" in hist[2] and "mAP" in hist[5] and "mAP" not in hist[0]
    assert 0.0 <= hist[-1]["mAP"] <= 1.0
    for name in ("last.pth", "best.pth", "model.pth", "metrics.csv", "metrics.jsonl"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 6 and rows[2]["mAP"] != "" and rows[0]["mAP"] == ""
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 6
    json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])

    ck = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert ck["epoch"] == 6 and ck["config"]["arch"] == "osnet_x0_25" and ck["pids"] == list(range(10, 16))

    # resume from epoch 6 to 8: only epochs 7 and 8 run, the step count continues
    res2 = train(_cfg(out, epochs=8, eval_every=3, resume=str(out / "last.pth")), toy)
    assert [r["epoch"] for r in res2["history"]] == [7, 8]
    assert res2["history"][-1]["step"] == 16
    assert len(list(csv.DictReader((out / "metrics.csv").open()))) == 8

    # the exported state dict loads through the normal --reid path
    ext = build_reid(ReidConfig(spec=f"osnet_x0_25:{out / 'model.pth'}", batch=4, threads=1))
    assert ext is not None and ext.dim == 512
    feats = ext.embed([_person(1, 0, np.random.default_rng(1)), _person(2, 0, np.random.default_rng(2))])
    assert feats.shape == (2, 512) and np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-4)


def test_resume_rejects_other_architecture(toy: ReidDataset, tmp_path: Path) -> None:
    out = tmp_path / "r"
    train(_cfg(out, epochs=1), toy)
    with pytest.raises(ModelError, match="classes|osnet"):
        train(_cfg(out, arch="osnet_x0_5", epochs=2, resume=str(out / "last.pth")), toy)


def _batch(toy: ReidDataset) -> tuple[torch.Tensor, torch.Tensor]:
    from reid.train import TrainImageDataset, build_transform

    data = TrainImageDataset(toy.train, build_transform(HW, train=True))
    idx = [i for pid in range(3) for i in range(pid * PER_ID, pid * PER_ID + 4)]
    items = [data[i] for i in idx]
    return torch.stack([x for x, _, _ in items]), torch.tensor([y for _, y, _ in items])


def test_aligned_branch_step(toy: ReidDataset, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, aligned=True, local_stripes=4, local_dim=32)
    net = build_train_net(cfg, IDS)
    x, y = _batch(toy)
    out = net(x)
    assert out["local"].shape == (12, 4, 32) and out["feat"].shape == (12, 512) and out["logits"].shape == (12, IDS)
    total, parts = train_step(cfg, [net], x, y)
    total.backward()
    assert all(np.isfinite(v) for v in parts.values()) and parts["loss_local"] > 0
    assert net.local_reduce[0].weight.grad is not None
    net.eval()
    assert net(x).shape == (12, 512)


def test_mutual_learning_step(toy: ReidDataset, tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, mutual=True)
    torch.manual_seed(0)
    nets = [build_train_net(cfg, IDS), build_train_net(cfg, IDS)]
    x, y = _batch(toy)
    total, parts = train_step(cfg, nets, x, y)
    total.backward()
    assert {"loss_kl", "loss_metric"} <= set(parts) and all(np.isfinite(v) for v in parts.values())
    assert parts["loss_kl"] >= 0 and parts["loss_metric"] > 0
    assert all(n.classifier.weight.grad is not None for n in nets)


def test_resnet_wrapper_keeps_reid_weights_layout() -> None:
    from reid.weights import build_torch_model

    net = ReidTrainNet("resnet50", 5)
    state = net.inference_module().state_dict()
    assert "bottleneck.weight" in state and "classifier.weight" in state
    model = build_torch_model("resnet50", {k: v for k, v in state.items() if not k.startswith("classifier.")})
    assert model.feature_dim == 2048


def test_schedule_and_config_checks() -> None:
    cfg = TrainConfig(epochs=120, warmup_epochs=10, milestones=(40, 70))
    assert lr_factor(cfg, 0) == pytest.approx(0.1) and lr_factor(cfg, 5) == pytest.approx(0.55)
    assert lr_factor(cfg, 10) == 1.0 and lr_factor(cfg, 40) == pytest.approx(0.1)
    assert lr_factor(cfg, 70) == pytest.approx(0.01)
    cos = TrainConfig(epochs=11, warmup_epochs=1, schedule="cosine", min_lr_factor=0.0)
    assert lr_factor(cos, 1) == 1.0 and lr_factor(cos, 10) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError):
        TrainConfig(arch="vit")
    with pytest.raises(ConfigError):
        TrainConfig(optimizer="lion")


def test_cli_train_export_eval_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``mtmc reid train`` → ``mtmc reid export`` → ``mtmc reid eval`` on a generic-layout folder."""
    from pipeline.cli import main

    rng = np.random.default_rng(1)
    root = tmp_path / "data"
    for split, pids, cams in (("train", range(4), (1, 2)), ("query", (4, 5), (1,)), ("gallery", (4, 5), (2,))):
        for pid in pids:
            for cam in cams:
                d = root / split / f"{pid:04d}" / f"cam{cam}"
                d.mkdir(parents=True)
                for j in range(4):
                    cv2.imwrite(str(d / f"{j}.png"), _person(pid, j, rng))
    out = tmp_path / "run"
    assert main(["reid", "train", str(root), "-o", str(out), "--epochs", "2", "--p", "2", "--k", "2",
                 "--warmup-epochs", "0", "--eval-every", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "trained 2 epochs" in printed and "4 identities" in printed
    assert (out / "model.pth").is_file() and len((out / "metrics.csv").read_text().splitlines()) == 3
    onnx = tmp_path / "model.onnx"
    assert main(["reid", "export", f"osnet_x0_25:{out / 'model.pth'}", "-o", str(onnx), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["min_cosine_b1"] >= 0.9999 and figures["min_cosine_b16"] >= 0.9999
    assert main(["reid", "eval", str(root), "--reid", str(onnx), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["num_query"] == 8 and res["num_gallery"] == 8 and 0.0 <= res["mAP"] <= 1.0
    # a bad option value is a one-line error, exit 2
    assert main(["reid", "train", str(root), "-o", str(out), "--p", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


class _StopAfter(threading.Event):
    """An event that turns set after it has been asked ``n`` times (a SIGTERM arriving mid-epoch)."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def is_set(self) -> bool:
        self.left -= 1
        if self.left < 0:
            self.set()
        return super().is_set()


def test_stop_mid_epoch_writes_a_resumable_checkpoint(toy: ReidDataset, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # asked before each epoch, before each batch and after each epoch: stops inside epoch 2 after one of its two batches
    res = train(_cfg(out, epochs=4), toy, stop=_StopAfter(6))
    assert res["interrupted"] is True and res["epochs"] == 1 and res["step"] == 3
    assert len(res["history"]) == 1  # the finished epoch only
    ck = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (1, 3)
    assert (out / "model.pth").is_file() and not list(out.glob(".*.tmp"))
    resumed = train(_cfg(out, epochs=2, resume=str(out / "last.pth")), toy)
    assert resumed["interrupted"] is False and [r["epoch"] for r in resumed["history"]] == [2]
