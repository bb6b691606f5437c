"""Deep metric losses beside batch-hard triplet: contrastive, improved triplet, quadruplet, MSML.

Each takes a P×K batch's N×D features (or their N×N distances) and N identity labels and
returns a 0-dim, differentiable, batch-averaged loss; :func:`metric_loss` picks one by name
(``mtmc reid train --metric-loss``).

* ``contrastive`` — Hadsell, Chopra and LeCun, "Dimensionality Reduction by Learning an
  Invariant Mapping", CVPR 2006, eq. 4: over every pair of the batch,
  ``½·d²`` for a positive pair and ``½·max(0, m − d)²`` for a negative one, positives and
  negatives each averaged and then added (a P×K batch has far more negative pairs). On
  L2-normalised features (``d ∈ [0, 2]``), margin ``m = 1``.
* ``improved_triplet`` — Cheng, Gong, Zhou, Wang and Zheng, "Person Re-Identification by
  Multi-Channel Parts-Based CNN with Improved Triplet Loss Function", CVPR 2016, eq. 3–4:
  ``max(d²_ap − d²_an, τ1) + β·max(d²_ap, τ2)`` with the paper's ``τ1 = −1``, ``τ2 = 0.01``,
  ``β = 0.002`` on L2-normalised features (squared distances), the second term pulling
  positives together in absolute terms; triplets mined batch-hard.
* ``quadruplet`` — Chen, Chen, Zhang and Huang, "Beyond Triplet Loss: a Deep Quadruplet
  Network for Person Re-Identification", CVPR 2017, eq. 5–6: the triplet term
  ``[d_ap − d_an + α1]+`` plus ``[d_ap − d_nn + α2]+``, where ``d_nn`` is the smallest
  distance between two samples of two *other* identities (neither the anchor's), mined
  batch-hard; ``α2 = α1 / 2`` (the paper keeps the second constraint weaker), ``α1`` the
  triplet margin (0.3, feature units) instead of the paper's adaptive margin.
* ``msml`` — Xiao, Luo and Zhang, "Margin Sample Mining Loss: A Deep Learning Based Method
  for Person Re-identification", 2017 (arXiv:1710.00478), eq. 6: one term per batch,
  ``[max d(a, p) − min d(m, n) + α]+`` over the hardest positive pair and the hardest
  negative pair of the whole batch, ``α`` = 0.3 (feature units).
* ``triplet`` — :func:`reid.losses.triplet_hard_loss` (Hermans et al., 2017).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from reid.losses import TRIPLET_MARGIN, hard_example_mining, pairwise_euclidean, triplet_hard_loss

METRIC_LOSSES = ("triplet", "contrastive", "improved_triplet", "quadruplet", "msml")
CONTRASTIVE_MARGIN = 1.0
IMPROVED_TAU1, IMPROVED_TAU2, IMPROVED_BETA = -1.0, 0.01, 0.002


def _masks(labels: torch.Tensor, negatives: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """N×N same-identity mask without the diagonal, and the different-identity mask (within ``negatives``)."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same if negatives is None else ~same & negatives


def _no_negative(neg: torch.Tensor, name: str, negatives: torch.Tensor | None) -> bool:
    """True when the batch has no negative pair and ``negatives`` restricted them (the loss is then 0).

    Raises:
        ValueError: no negative pair without a restriction (a batch of one identity).
    """
    if bool(neg.any()):
        return False
    if negatives is None:
        raise ValueError(f"{name} loss needs at least two identities in the batch")
    return True


def contrastive_loss(feat: torch.Tensor, labels: torch.Tensor, margin: float = CONTRASTIVE_MARGIN,
                     negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Contrastive loss (Hadsell et al., CVPR 2006) over all pairs of L2-normalised ``feat`` (N×D).

    Returns ``mean_pos(½ d²) + mean_neg(½ max(0, margin − d)²)`` (a batch without positive pairs
    has only the negative term). ``negatives``: see :func:`metric_loss`. Raises ``ValueError`` for a
    batch of one identity (unrestricted).
    """
    pos, neg = _masks(labels, negatives)
    if _no_negative(neg, "contrastive", negatives):
        return feat.sum() * 0.0
    f = F.normalize(feat, dim=1)
    d = pairwise_euclidean(f, f)
    loss = 0.5 * F.relu(margin - d[neg]).pow(2).mean()
    if bool(pos.any()):
        loss = loss + 0.5 * d[pos].pow(2).mean()
    return loss


def improved_triplet_loss(feat: torch.Tensor, labels: torch.Tensor, tau1: float = IMPROVED_TAU1,
                          tau2: float = IMPROVED_TAU2, beta: float = IMPROVED_BETA,
                          negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Improved triplet loss (Cheng et al., CVPR 2016) on L2-normalised ``feat`` (N×D), batch-hard triplets.

    Per anchor ``max(d²_ap − d²_an, tau1) + beta·max(d²_ap, tau2)``, averaged over anchors that
    have a negative. ``negatives``: see :func:`metric_loss`. Raises ``ValueError`` for a batch of one
    identity (unrestricted).
    """
    f = F.normalize(feat, dim=1)
    d_ap, d_an, _, _, valid = hard_example_mining(pairwise_euclidean(f, f), labels, negatives)
    if _no_negative(valid, "improved_triplet", negatives):
        return feat.sum() * 0.0
    ap2, an2 = d_ap[valid].pow(2), d_an[valid].pow(2)
    return (torch.clamp(ap2 - an2, min=tau1) + beta * torch.clamp(ap2, min=tau2)).mean()


def quadruplet_loss(dist: torch.Tensor, labels: torch.Tensor, margin: float = TRIPLET_MARGIN,
                    negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Quadruplet loss (Chen et al., CVPR 2017) on N×N distances, batch-hard.

    Per anchor: ``[d_ap − d_an + margin]+ + [d_ap − d_nn + margin/2]+`` with ``d_nn`` the smallest
    distance between two samples of two different identities other than the anchor's (the
    second term is left out for anchors whose batch has fewer than three identities).
    ``negatives``: see :func:`metric_loss`. Raises ``ValueError`` for a batch of one identity (unrestricted).
    """
    d_ap, d_an, _, _, valid = hard_example_mining(dist, labels, negatives)
    if _no_negative(valid, "quadruplet", negatives):
        return dist.sum() * 0.0
    _, neg = _masks(labels, negatives)
    big = torch.finfo(dist.dtype).max
    other = labels.unsqueeze(1) != labels.unsqueeze(0)  # other[a, j]: j is not of a's identity
    # pair (j, k) allowed for anchor a: y_j != y_k, both != y_a; d_nn[a] = min over those pairs
    allowed = neg.unsqueeze(0) & other.unsqueeze(2) & other.unsqueeze(1)
    d_nn = torch.where(allowed, dist.unsqueeze(0), dist.new_full((), big)).flatten(1).min(dim=1).values
    has_nn = allowed.flatten(1).any(dim=1)
    first = F.relu(d_ap - d_an + margin)[valid]
    second = torch.where(has_nn, F.relu(d_ap - d_nn + margin / 2), torch.zeros_like(d_ap))[valid]
    return (first + second).mean()


def msml_loss(dist: torch.Tensor, labels: torch.Tensor, margin: float = TRIPLET_MARGIN,
              negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Margin sample mining loss (Xiao et al., 2017) on N×N distances: ``[max_pos d − min_neg d + margin]+``
    over the whole batch (the diagonal is no positive pair; a batch without a positive pair uses 0).
    ``negatives``: see :func:`metric_loss`. Raises ``ValueError`` for a batch of one identity (unrestricted)."""
    pos, neg = _masks(labels, negatives)
    if _no_negative(neg, "msml", negatives):
        return dist.sum() * 0.0
    hardest_pos = dist[pos].max() if bool(pos.any()) else dist.new_zeros(())
    return F.relu(hardest_pos - dist[neg].min() + margin)


def metric_loss(name: str, feat: torch.Tensor, labels: torch.Tensor, margin: float = TRIPLET_MARGIN,
                soft_margin: bool = False, negatives: torch.Tensor | None = None) -> torch.Tensor:
    """The metric loss ``name`` (one of :data:`METRIC_LOSSES`) of N×D features ``feat``.

    ``margin`` is the hinge margin of ``triplet``, ``quadruplet`` (α1) and ``msml`` (feature
    units); ``contrastive`` and ``improved_triplet`` use their papers' constants on
    L2-normalised features. ``soft_margin`` applies to ``triplet`` only. ``negatives`` (N×N ``bool``)
    restricts the pairs that count as negatives (e.g. to one camera's: :mod:`reid.camera_aware`); a
    batch without any allowed negative then gives a zero loss.

    Raises:
        ValueError: an unknown name, ``soft_margin`` with another loss, or (without ``negatives``) a
            batch of one identity.
    """
    if soft_margin and name != "triplet":
        raise ValueError(f"soft margin is defined for the triplet loss only, not {name}")
    if name == "contrastive":
        return contrastive_loss(feat, labels, negatives=negatives)
    if name == "improved_triplet":
        return improved_triplet_loss(feat, labels, negatives=negatives)
    dist = pairwise_euclidean(feat, feat)
    if name == "triplet":
        return triplet_hard_loss(dist, labels, margin, soft_margin, negatives=negatives)
    if name == "quadruplet":
        return quadruplet_loss(dist, labels, margin, negatives)
    if name == "msml":
        return msml_loss(dist, labels, margin, negatives)
    raise ValueError(f"unknown metric loss {name!r}: one of {', '.join(METRIC_LOSSES)}")
