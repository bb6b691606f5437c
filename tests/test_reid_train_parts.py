"""ReID training building blocks (losses, P×K sampler) and the verified ONNX export.

Expected loss values are worked out by hand in the comments (small batches with
round numbers), not by calling the code under test.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import MODELS, SHARED
from torch import nn

from pipeline.errors import ModelError
from reid import onnx_export as reid_export
from reid.losses import (
    aligned_triplet_loss,
    hard_example_mining,
    label_smoothing_cross_entropy,
    metric_mutual_loss,
    mutual_kl_loss,
    pairwise_euclidean,
    triplet_hard_loss,
)
from reid.onnx_export import export_from_spec, export_onnx, row_cosines
from reid.sampler import PKSampler

CUHK03 = SHARED / "data" / "reid" / "cuhk03-val"
OSNET_MSMT = MODELS / "osnet_x0_25_msmt17_torchreid.pth"

# P=2, K=2 batch: samples 0, 1 are identity 0; samples 2, 3 identity 1.
LABELS = torch.tensor([0, 0, 1, 1])
DIST = torch.tensor(
    [
        [0.0, 1.0, 2.0, 0.5],
        [1.0, 0.0, 1.5, 3.0],
        [2.0, 1.5, 0.0, 0.4],
        [0.5, 3.0, 0.4, 0.0],
    ]
)
# hardest positive / negative per anchor on DIST:
#   a0: pos max(0, 1.0) = 1.0 (idx 1), neg min(2.0, 0.5) = 0.5 (idx 3)
#   a1: pos 1.0 (idx 0),               neg min(1.5, 3.0) = 1.5 (idx 2)
#   a2: pos 0.4 (idx 3),               neg min(2.0, 1.5) = 1.5 (idx 1)
#   a3: pos 0.4 (idx 2),               neg min(0.5, 3.0) = 0.5 (idx 0)


def test_pairwise_euclidean_values_and_finite_gradient() -> None:
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    y = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    d = pairwise_euclidean(x, y)
    # |(0,0)-(0,0)| = 0 (clamped to 1e-6), |(0,0)-(0,1)| = 1, |(3,4)-(0,0)| = 5, |(3,4)-(0,1)| = sqrt(9+9)
    expected = torch.tensor([[0.0, 1.0], [5.0, math.sqrt(18.0)]])
    assert torch.allclose(d, expected, atol=1e-5)
    xx = pairwise_euclidean(x, x)  # zero diagonal: sqrt at the clamp, gradient must stay finite
    xx.sum().backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError):
        pairwise_euclidean(torch.zeros(2, 3), torch.zeros(2, 4))


def test_label_smoothing_cross_entropy_hand_computed() -> None:
    # sample 0: logits (0, 0, 0) → p = (1/3, 1/3, 1/3); any smoothing → −log(1/3) = ln 3
    # sample 1: logits (0, ln 2, 0) → p = (1/4, 1/2, 1/4), target 1, ε = 0.3 → q = (0.1, 0.8, 0.1):
    #   0.1·ln 4 + 0.8·ln 2 + 0.1·ln 4 = 1.2·ln 2
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(2.0), 0.0]])
    targets = torch.tensor([0, 1])
    loss = label_smoothing_cross_entropy(logits, targets, epsilon=0.3)
    assert loss.item() == pytest.approx((math.log(3.0) + 1.2 * math.log(2.0)) / 2, abs=1e-6)
    # ε = 0 is plain cross-entropy: (ln 3 + ln 2) / 2
    plain = label_smoothing_cross_entropy(logits, targets, epsilon=0.0)
    assert plain.item() == pytest.approx((math.log(3.0) + math.log(2.0)) / 2, abs=1e-6)
    # target 0 for sample 1, ε = 0.3 → q = (0.8, 0.1, 0.1): 0.8·ln 4 + 0.1·ln 2 + 0.1·ln 4 = 1.9·ln 2
    other = label_smoothing_cross_entropy(logits, torch.tensor([0, 0]), epsilon=0.3)
    assert other.item() == pytest.approx((math.log(3.0) + 1.9 * math.log(2.0)) / 2, abs=1e-6)
    with pytest.raises(ValueError):
        label_smoothing_cross_entropy(logits, targets, epsilon=1.5)


def test_hard_example_mining_indices() -> None:
    d_ap, d_an, idx_p, idx_n, valid = hard_example_mining(DIST, LABELS)
    assert idx_p.tolist() == [1, 0, 3, 2]
    assert idx_n.tolist() == [3, 2, 1, 0]
    assert torch.allclose(d_ap, torch.tensor([1.0, 1.0, 0.4, 0.4]))
    assert torch.allclose(d_an, torch.tensor([0.5, 1.5, 1.5, 0.5]))
    assert valid.all()


def test_trihard_margin_hand_computed() -> None:
    # max(0, 0.3 + d_ap − d_an): a0 0.3+1.0−0.5 = 0.8; a1 0.3+1.0−1.5 < 0 → 0; a2 0.3+0.4−1.5 < 0 → 0;
    # a3 0.3+0.4−0.5 = 0.2 → mean (0.8 + 0.2) / 4 = 0.25
    dist = DIST.clone().requires_grad_(True)
    loss = triplet_hard_loss(dist, LABELS, margin=0.3)
    assert loss.item() == pytest.approx(0.25, abs=1e-6)
    loss.backward()
    # only the active triplets get gradient: +1/4 on (0,1), (3,2); −1/4 on (0,3), (3,0)
    grad = torch.zeros(4, 4)
    grad[0, 1], grad[0, 3], grad[3, 2], grad[3, 0] = 0.25, -0.25, 0.25, -0.25
    assert torch.allclose(dist.grad, grad)


def test_trihard_soft_margin_hand_computed() -> None:
    # log(1 + exp(d_ap − d_an)) with d_ap − d_an = 0.5, −0.5, −1.1, −0.1
    expected = sum(math.log1p(math.exp(v)) for v in (0.5, -0.5, -1.1, -0.1)) / 4
    loss = triplet_hard_loss(DIST, LABELS, soft_margin=True)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_trihard_mining_on_global_distance_for_local() -> None:
    local = torch.tensor(
        [
            [0.0, 0.2, 0.9, 0.7],
            [0.2, 0.0, 0.1, 0.6],
            [0.9, 0.1, 0.0, 0.5],
            [0.7, 0.6, 0.5, 0.0],
        ]
    )
    # pairs mined on DIST: (a, p, n) = (0, 1, 3), (1, 0, 2), (2, 3, 1), (3, 2, 0); on `local`:
    #   a0 0.3+0.2−0.7 < 0 → 0; a1 0.3+0.2−0.1 = 0.4; a2 0.3+0.5−0.1 = 0.7; a3 0.3+0.5−0.7 = 0.1 → 1.2 / 4 = 0.3
    assert triplet_hard_loss(local, LABELS, mining_dist=DIST).item() == pytest.approx(0.3, abs=1e-6)
    # mining on `local` itself picks negative 1 for a3 (0.6 < 0.7): 0.3+0.5−0.6 = 0.2 → 1.3 / 4 = 0.325
    assert triplet_hard_loss(local, LABELS).item() == pytest.approx(0.325, abs=1e-6)
    with pytest.raises(ValueError, match="two identities"):
        triplet_hard_loss(DIST, torch.tensor([5, 5, 5, 5]))


def test_aligned_triplet_uses_global_hard_pairs_for_local() -> None:
    # global features on a line: 0 → 0.0, 1 → 1.0 (id 0); 2 → 0.6, 3 → 3.0 (id 1)
    g = torch.tensor([[0.0], [1.0], [0.6], [3.0]], requires_grad=True)
    # global hardest pairs: a0 p1 (1.0) n2 (0.6); a1 p0 (1.0) n2 (0.4); a2 p3 (2.4) n1 (0.4); a3 p2 (2.4) n1 (2.0)
    local = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1) * torch.ones(4, 2, 3)
    seen: list[tuple[list[int], list[int]]] = []

    def fake_local(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append((x[:, 0, 0].long().tolist(), y[:, 0, 0].long().tolist()))
        return (x - y).abs().sum(dim=(1, 2)) / 6  # |i − j| for rows filled with i and j

    global_loss, local_loss = aligned_triplet_loss(g, local, LABELS, local_distance=fake_local)
    assert seen == [([0, 1, 2, 3], [1, 0, 3, 2]), ([0, 1, 2, 3], [2, 2, 1, 1])]
    # global: a0 0.3+1.0−0.6 = 0.7; a1 0.3+1.0−0.4 = 0.9; a2 0.3+2.4−0.4 = 2.3; a3 0.3+2.4−2.0 = 0.7 → 4.6 / 4
    assert global_loss.item() == pytest.approx(1.15, abs=1e-4)
    # local |i − j|: a0 0.3+1−2 < 0; a1 0.3+1−1 = 0.3; a2 0.3+1−1 = 0.3; a3 0.3+1−2 < 0 → 0.6 / 4
    assert local_loss.item() == pytest.approx(0.15, abs=1e-6)
    global_loss.backward()
    assert torch.isfinite(g.grad).all()


def test_aligned_triplet_with_reid_aligned_local_distance() -> None:
    aligned = pytest.importorskip("reid.aligned")
    torch.manual_seed(0)
    g = torch.randn(6, 8, requires_grad=True)
    loc = torch.randn(6, 4, 5, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    global_loss, local_loss = aligned_triplet_loss(g, loc, labels, local_distance=aligned.local_distance)
    (global_loss + local_loss).backward()
    assert torch.isfinite(loc.grad).all() and loc.grad.abs().sum() > 0


def test_mutual_kl_hand_computed_and_partner_gets_no_gradient() -> None:
    # p1 = softmax(0, 0) = (1/2, 1/2); p2 = softmax(0, ln 3) = (1/4, 3/4)
    # KL(p2 ‖ p1) = 1/4·ln(1/2) + 3/4·ln(3/2); gradient w.r.t. logits = p1 − p2 = (1/4, −1/4)
    logits = torch.tensor([[0.0, 0.0]], requires_grad=True)
    partner = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)
    loss = mutual_kl_loss(logits, partner)
    assert loss.item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-6)
    loss.backward()
    assert torch.allclose(logits.grad, torch.tensor([[0.25, -0.25]]), atol=1e-6)
    assert partner.grad is None
    same = mutual_kl_loss(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 2.0, 3.0]]))
    assert same.item() == pytest.approx(0.0, abs=1e-7)


def test_metric_mutual_loss_hand_computed_and_zero_gradient_on_partner() -> None:
    d1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    d2 = torch.tensor([[0.0, 3.0], [3.0, 0.0]], requires_grad=True)
    loss = metric_mutual_loss(d1, d2)
    # (0 + (1−3)² + (1−3)² + 0) / 4 = 2; ∂/∂d1 = 2(d1 − d2) / 4 = −1 off the diagonal
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert torch.allclose(d1.grad, torch.tensor([[0.0, -1.0], [-1.0, 0.0]]))
    assert d2.grad is None
    # through features: the partner network's parameters get no gradient either
    torch.manual_seed(0)
    net1, net2 = nn.Linear(4, 3), nn.Linear(4, 3)
    x = torch.randn(5, 4)
    metric_mutual_loss(pairwise_euclidean(net1(x), net1(x)), pairwise_euclidean(net2(x), net2(x))).backward()
    assert net1.weight.grad is not None and net1.weight.grad.abs().sum() > 0
    assert net2.weight.grad is None


# ---------------------------------------------------------------- sampler


def test_pk_sampler_every_batch_is_p_ids_times_k() -> None:
    # identities 0..9 with 1..10 images each: ids 0-2 have fewer than K = 4
    labels = [ident for ident in range(10) for _ in range(ident + 1)]
    p, k = 3, 4
    sampler = PKSampler(labels, p=p, k=k, seed=7)
    assert sampler.batches_per_epoch == 10 // 3
    assert len(sampler) == 3 * p * k
    repeated_few = False
    for _epoch in range(60):
        flat = list(sampler)
        assert len(flat) == len(sampler)
        for b in range(0, len(flat), p * k):
            batch = flat[b : b + p * k]
            per_id = Counter(labels[i] for i in batch)
            assert len(per_id) == p and set(per_id.values()) == {k}
            for ident in per_id:
                picks = [i for i in batch if labels[i] == ident]
                assert picks == batch[batch.index(picks[0]) : batch.index(picks[0]) + k]  # contiguous
                if ident + 1 >= k:
                    assert len(set(picks)) == k  # enough images: without replacement
                else:
                    repeated_few = True
                    assert len(set(picks)) <= ident + 1  # with replacement among its few images
        # every identity at most once per epoch
        ids = [labels[i] for i in flat[::k]]
        assert len(ids) == len(set(ids))
    assert repeated_few


def test_pk_sampler_deterministic_and_dataloader() -> None:
    labels = [i % 7 for i in range(70)]
    a, b = PKSampler(labels, 2, 3, seed=1), PKSampler(labels, 2, 3, seed=1)
    assert [list(a) for _ in range(3)] == [list(b) for _ in range(3)]
    assert list(PKSampler(labels, 2, 3, seed=2)) != list(PKSampler(labels, 2, 3, seed=1))
    c = PKSampler(labels, 2, 3, seed=1)
    first, second = list(c), list(c)
    assert first != second  # the epoch advances
    c.set_epoch(0)
    assert list(c) == first
    loader = torch.utils.data.DataLoader(list(range(70)), batch_size=6, sampler=PKSampler(labels, 2, 3, seed=1))
    assert [t.tolist() for t in loader] == PKSampler(labels, 2, 3, seed=1).batches(0)
    with pytest.raises(ValueError):
        PKSampler(labels, p=8, k=2)


# ---------------------------------------------------------------- export


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


def test_export_tiny_model_parity(tmp_path: Path) -> None:
    figures = export_onnx(_tiny_model(), tmp_path / "tiny.onnx", input_hw=(64, 32))
    assert figures["min_cosine_b1"] >= 0.9999 and figures["min_cosine_b16"] >= 0.9999
    assert figures["feature_dim"] == 8
    from pipeline.onnx_session import open_session

    session = open_session(tmp_path / "tiny.onnx", "cpu", 0, "test")
    assert session.get_inputs()[0].name == "images" and session.get_outputs()[0].name == "features"
    out = session.run(None, {"images": np.zeros((5, 3, 64, 32), np.float32)})[0]
    assert out.shape == (5, 8)  # dynamic batch


def test_export_parity_failure_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(session: object, x: np.ndarray) -> np.ndarray:
        return np.random.default_rng(0).standard_normal((len(x), 8)).astype(np.float32)

    monkeypatch.setattr(reid_export, "_onnx_features", wrong)
    with pytest.raises(ModelError, match=r"minimum per-row cosine -?\d\.\d+ < 0.9999"):
        export_onnx(_tiny_model(), tmp_path / "bad.onnx", input_hw=(64, 32))
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_export_from_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="ARCH:weights"):
        export_from_spec("weights.pth", tmp_path / "x.onnx")
    with pytest.raises(ModelError, match="not found"):
        export_from_spec("osnet_x0_25:" + str(tmp_path / "missing.pth"), tmp_path / "x.onnx")


def test_row_cosines() -> None:
    a = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, -1.0]])
    assert row_cosines(a, b).tolist() == pytest.approx([1.0, 1.0, -1.0])


@pytest.mark.skipif(
    not OSNET_MSMT.is_file() or not CUHK03.is_dir(),
    reason="../shared OSNet x0.25 weights or CUHK03 crops absent; a user's clone does not have them",
)
def test_export_osnet_from_shared_weights(tmp_path: Path) -> None:
    from reid.onnx_backend import OnnxReidExtractor
    from reid.preprocess import to_tensor_batch
    from reid.torch_backend import TorchReidExtractor

    files = sorted(CUHK03.glob("*.jpg"))[:: max(1, len(sorted(CUHK03.glob("*.jpg"))) // 12)][:12]
    crops = [cv2.imread(str(f)) for f in files]
    assert all(c is not None for c in crops)
    out = tmp_path / "osnet_x0_25.onnx"
    figures = export_from_spec(f"osnet_x0_25:{OSNET_MSMT}", out, sample=to_tensor_batch(crops))
    assert figures["min_cosine_b1"] >= 0.9999
    assert figures["min_cosine_b16"] >= 0.9999
    assert figures["min_cosine_sample"] >= 0.9999
    assert figures["feature_dim"] == 512

    from reid.factory import build_torch_model, load_state_dict_file

    model = build_torch_model("osnet_x0_25", load_state_dict_file(OSNET_MSMT))
    torch_feats = TorchReidExtractor(model, batch=5, threads=2).embed(crops)
    onnx_ext = OnnxReidExtractor(out, batch=5, threads=2)
    assert onnx_ext.dim == 512 and onnx_ext.fixed_batch is None
    onnx_feats = onnx_ext.embed(crops)
    assert row_cosines(torch_feats, onnx_feats).min() >= 0.9999
