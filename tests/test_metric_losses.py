"""The metric losses of ``mtmc reid train --metric-loss`` against values computed by hand, and one
training step of each through the trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_reid_train import IDS, _batch, _cfg, toy  # noqa: F401 - the toy dataset fixture

from pipeline.cli_reid import METRIC_LOSSES as CLI_NAMES
from pipeline.errors import ConfigError
from reid.datasets import ReidDataset
from reid.losses import triplet_hard_loss
from reid.metric_losses import (
    METRIC_LOSSES,
    contrastive_loss,
    improved_triplet_loss,
    metric_loss,
    msml_loss,
    quadruplet_loss,
)
from reid.train import build_train_net, train_step

LABELS6 = torch.tensor([0, 0, 1, 1, 2, 2])


def _dist6() -> torch.Tensor:
    """Hand-made distances of 3 identities × 2 samples (rows/cols 0..5)."""
    d = {(0, 1): 0.5, (2, 3): 0.4, (4, 5): 0.9, (0, 2): 1.0, (0, 3): 1.2, (0, 4): 0.6, (0, 5): 1.5, (1, 2): 0.7,
         (1, 3): 1.1, (1, 4): 1.3, (1, 5): 0.8, (2, 4): 1.4, (2, 5): 1.0, (3, 4): 0.95, (3, 5): 1.6}
    m = torch.zeros(6, 6, dtype=torch.float64)
    for (i, j), v in d.items():
        m[i, j] = m[j, i] = v
    return m


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_msml_hardest_positive_pair_against_hardest_negative_pair() -> None:
    # hardest positive pair (4, 5) = 0.9, hardest negative pair (0, 4) = 0.6: [0.9 - 0.6 + 0.3]+ = 0.6
    assert float(msml_loss(_dist6(), LABELS6)) == pytest.approx(0.6)
    assert float(msml_loss(_dist6(), LABELS6, margin=0.0)) == pytest.approx(0.3)


def test_quadruplet_triplet_term_plus_other_identities_pair_term() -> None:
    # per anchor (d_ap, d_an, d_nn): (.5,.6,.95) (.5,.7,.95) (.4,.7,.6) (.4,.95,.6) (.9,.6,.7) (.9,.8,.7)
    # [d_ap-d_an+.3]+ + [d_ap-d_nn+.15]+ = .2, .1, 0, 0, .6+.35, .4+.35 -> mean 2.0 / 6
    assert float(quadruplet_loss(_dist6(), LABELS6)) == pytest.approx(2.0 / 6)


def test_quadruplet_with_two_identities_is_the_batch_hard_triplet() -> None:
    d, y = _dist6()[:4, :4], LABELS6[:4]  # no pair of two other identities: only the triplet term
    # anchors (d_ap, d_an): (.5, 1.0) (.5, .7) (.4, .7) (.4, 1.1) -> [.]+ = 0, .1, 0, 0
    assert float(quadruplet_loss(d, y)) == pytest.approx(0.1 / 4)
    assert float(quadruplet_loss(d, y)) == pytest.approx(float(triplet_hard_loss(d, y)))


def test_contrastive_all_pairs_on_normalised_features() -> None:
    feat = torch.tensor([_unit(0), _unit(90), _unit(30)], dtype=torch.float64) * 3.0  # scale is normalised away
    # positive pair (0, 1): ½·d² = ½·2 = 1; negatives: d02 = sqrt(2 - √3), d12 = 1 -> ½(1 - d02)², 0
    neg = 0.5 * (1 - math.sqrt(2 - math.sqrt(3))) ** 2
    expected = 1.0 + (2 * neg + 2 * 0.0) / 4
    assert float(contrastive_loss(feat, torch.tensor([0, 0, 1]))) == pytest.approx(expected)


def test_improved_triplet_paper_constants() -> None:
    feat = torch.tensor([_unit(0), _unit(30), _unit(90), _unit(180)], dtype=torch.float64)
    sq30, sq60, sq150 = (2 - 2 * math.cos(math.radians(a)) for a in (30, 60, 150))
    # per anchor: max(d²_ap - d²_an, -1) + 0.002·max(d²_ap, 0.01)
    per = [max(sq30 - 2, -1) + 0.002 * sq30, max(sq30 - sq60, -1) + 0.002 * sq30,
           max(2 - sq60, -1) + 0.002 * 2, max(2 - sq150, -1) + 0.002 * 2]
    got = float(improved_triplet_loss(feat, torch.tensor([0, 0, 1, 1])))
    assert got == pytest.approx(float(np.mean(per)), abs=1e-9)


def test_every_loss_rejects_a_single_identity_and_names_stay_in_sync() -> None:
    assert CLI_NAMES == METRIC_LOSSES
    feat = torch.randn(4, 8)
    for name in METRIC_LOSSES:
        with pytest.raises(ValueError, match="two identities"):
            metric_loss(name, feat, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="triplet loss only"):
        metric_loss("msml", feat, torch.tensor([0, 0, 1, 1]), soft_margin=True)
    with pytest.raises(ConfigError, match="soft_margin needs metric_loss 'triplet'"):
        _cfg(".", metric_loss="quadruplet", soft_margin=True)


@pytest.mark.parametrize("name", METRIC_LOSSES)
def test_each_metric_loss_trains_through_the_trainer(name: str, toy: ReidDataset, tmp_path) -> None:  # noqa: F811
    cfg = _cfg(tmp_path, metric_loss=name)
    torch.manual_seed(0)
    net = build_train_net(cfg, IDS)
    x, y = _batch(toy)
    total, parts = train_step(cfg, [net], x, y)
    total.backward()
    assert f"loss_{name}" in parts and np.isfinite(parts[f"loss_{name}"])
    assert net.classifier.weight.grad is not None
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert any(float(g.abs().sum()) > 0 for g in grads)
