"""TAUDL's per-camera losses (reid/camera_aware.py) against values worked out by hand on tiny batches."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.errors import ConfigError
from reid.camera_aware import class_cameras, per_camera_cross_entropy, same_camera
from reid.losses import triplet_hard_loss
from reid.metric_losses import METRIC_LOSSES, metric_loss
from reid.train_config import default_config


def test_class_cameras_marks_every_camera_a_class_was_seen_in() -> None:
    table = class_cameras([0, 0, 1, 2, 2], [0, 1, 0, 1, 1], 3)
    assert table.tolist() == [[True, True], [True, False], [False, True]]


def test_per_camera_cross_entropy_ignores_other_cameras_classes() -> None:
    cameras = class_cameras([0, 1, 2], [0, 0, 1], 3)  # classes 0, 1 in camera 0; class 2 in camera 1
    logits = torch.tensor([[2.0, 0.0, 100.0],   # class 2 would dominate a plain softmax
                           [5.0, -3.0, 1.0]])    # camera 1 has class 2 only: nothing to tell apart
    labels, camids = torch.tensor([0, 2]), torch.tensor([0, 1])
    plain = per_camera_cross_entropy(logits, labels, camids, cameras, epsilon=0.0)
    assert float(plain) == pytest.approx(math.log(1 + math.exp(-2.0)) / 2, rel=1e-6)
    logp0 = -math.log(1 + math.exp(-2.0))
    logp1 = -2.0 + logp0
    smoothed = per_camera_cross_entropy(logits, labels, camids, cameras, epsilon=0.1)
    want0 = 0.9 * -logp0 + 0.1 * -(logp0 + logp1) / 2
    assert float(smoothed) == pytest.approx(want0 / 2, rel=1e-6)


def test_same_camera_negatives_restrict_the_triplet_to_the_anchors_camera() -> None:
    labels, camids = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 0, 1])
    d = torch.tensor([[0.0, 0.8, 0.9, 0.1],    # sample 3 is closest but seen by another camera
                      [0.8, 0.0, 0.2, 0.6],
                      [0.9, 0.2, 0.0, 0.5],
                      [0.1, 0.6, 0.5, 0.0]])
    loss = triplet_hard_loss(d, labels, margin=0.3, negatives=same_camera(camids))  # what metric_loss runs
    # anchor 0: d_ap 0.8, d_an 0.9 (sample 2, its camera) -> 0.2; anchor 1: 0.8 vs 0.6 (sample 3) -> 0.5;
    # anchors 2 and 3 are their class's only sample (d_ap 0) and their negatives are beyond the margin -> 0
    assert float(loss) == pytest.approx((0.2 + 0.5) / 4, rel=1e-6)
    plain = triplet_hard_loss(d, labels, margin=0.3)  # any camera: nearest negatives 0.1, 0.2, 0.2, 0.1
    assert float(plain) == pytest.approx((1.0 + 0.9 + 0.1 + 0.2) / 4, rel=1e-6)


@pytest.mark.parametrize("name", METRIC_LOSSES)
def test_every_metric_loss_is_zero_without_an_allowed_negative(name: str) -> None:
    torch.manual_seed(0)
    feat = torch.randn(6, 8, requires_grad=True)
    labels, camids = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 1, 1, 2, 2])  # one class per camera
    loss = metric_loss(name, feat, labels, negatives=same_camera(camids))
    loss.backward()
    assert float(loss.detach()) == 0.0 and feat.grad is not None
    mixed = torch.tensor([0, 1, 0, 1, 0, 1])
    assert float(metric_loss(name, feat.detach(), labels, negatives=same_camera(mixed))) >= 0.0
    with pytest.raises(ValueError, match="two identities"):
        metric_loss(name, feat.detach(), torch.zeros(6, dtype=torch.long))


def test_camera_aware_gradients_flow_and_config_rules() -> None:
    torch.manual_seed(0)
    feat = torch.randn(8, 4, requires_grad=True)
    labels, camids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    logits = feat @ torch.randn(4, 4)
    cameras = class_cameras(labels.tolist(), camids.tolist(), 4)
    total = per_camera_cross_entropy(logits, labels, camids, cameras) + metric_loss(
        "triplet", feat, labels, negatives=same_camera(camids))
    total.backward()
    assert feat.grad is not None and torch.isfinite(feat.grad).all() and feat.grad.abs().sum() > 0
    assert default_config(camera_aware=True, metric_loss="msml").camera_aware
    with pytest.raises(ConfigError, match="camera_aware does not combine"):
        default_config(camera_aware=True, mutual=True)
