"""Training losses for person ReID: label-smoothed cross-entropy, batch-hard triplet, mutual learning.

All functions take and return ``torch`` tensors and are differentiable; a loss is
a 0-dim tensor, averaged over the batch. Distances are Euclidean in feature units.

* :func:`label_smoothing_cross_entropy` — Szegedy, Vanhoucke, Ioffe, Shlens and
  Wojna, "Rethinking the Inception Architecture for Computer Vision", CVPR 2016,
  §7 (label-smoothing regularisation).
* :func:`hard_example_mining`, :func:`triplet_hard_loss` — Hermans, Beyer and
  Leibe, "In Defense of the Triplet Loss for Person Re-Identification", 2017
  (arXiv:1703.07737), "Batch Hard" (TriHard) with a hinge margin or the soft
  margin ``log(1 + exp(d_ap − d_an))``.
* :func:`aligned_triplet_loss` — Zhang et al., "AlignedReID: Surpassing
  Human-Level Performance in Person Re-Identification", 2017 (arXiv:1711.08184),
  §3.1: the hard positive and negative are mined with the *global* distance and
  the same pairs are used for the *local* (aligned stripes) distance too.
* :func:`mutual_kl_loss`, :func:`metric_mutual_loss` — Zhang, Xiang, Hospedales
  and Lu, "Deep Mutual Learning", CVPR 2018, as used in AlignedReID §3.2: the KL
  divergence between two models' class probabilities, and the mean squared
  difference of their batch distance matrices with zero gradient on the
  partner's side.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

TRIPLET_MARGIN = 0.3
"""Default hinge margin of the batch-hard triplet loss (feature units; Hermans et al. / AlignedReID)."""


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distance of every row of ``x`` to every row of ``y``.

    Computed as ``sqrt(max(‖x‖² + ‖y‖² − 2 x·y, eps))``: the clamp keeps the
    square root away from 0 and negative rounding errors, so the gradient is
    finite everywhere (identical rows get distance ``sqrt(eps)`` = 1e-6, not 0,
    and no gradient through that entry).

    Args:
        x: N×D floating tensor.
        y: M×D floating tensor of the same dtype and D.
        eps: floor of the squared distance.

    Returns:
        N×M tensor of the inputs' dtype, ≥ ``sqrt(eps)``.

    Raises:
        ValueError: the inputs are not 2-D or their feature sizes differ.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected N×D and M×D features, got {tuple(x.shape)} and {tuple(y.shape)}")
    sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1).unsqueeze(0) - 2.0 * (x @ y.t())
    return sq.clamp_min(eps).sqrt()


def label_smoothing_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against smoothed labels (Szegedy et al., CVPR 2016, §7).

    The target distribution of a sample of class ``y`` among ``K`` classes is
    ``q_k = (1 − ε)·[k = y] + ε / K``; the loss is ``−Σ_k q_k log softmax(z)_k``,
    averaged over the batch. ``ε = 0`` is the plain cross-entropy.

    Args:
        logits: N×K unnormalised class scores (floating).
        targets: N ``int64`` class indices in ``[0, K)``.
        epsilon: smoothing weight ε in ``[0, 1]``.

    Returns:
        0-dim tensor (nats).

    Raises:
        ValueError: wrong shapes or ε outside ``[0, 1]``.
    """
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(f"expected N×K logits and N targets, got {tuple(logits.shape)} and {tuple(targets.shape)}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"label smoothing epsilon must be in [0, 1], got {epsilon}")
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, targets.long().unsqueeze(1)).squeeze(1)
    uniform = -log_p.mean(dim=1)
    return ((1.0 - epsilon) * nll + epsilon * uniform).mean()


def hard_example_mining(
    dist: torch.Tensor, labels: torch.Tensor, negatives: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each anchor, its hardest positive (farthest same id) and hardest negative (nearest other id).

    The anchor itself counts among its positives (its distance is the smallest
    possible, so it is picked only when it is its identity's sole sample).

    Args:
        dist: N×N distances (row = anchor).
        labels: N identity labels (any integer dtype).
        negatives: N×N ``bool``, the pairs that may serve as negatives (e.g. same camera only:
            :func:`reid.camera_aware.same_camera`); ``None``: every pair of different identities.

    Returns:
        ``(d_ap, d_an, idx_p, idx_n, valid)``: the N hardest-positive and
        hardest-negative distances (taken from ``dist``, differentiable), their N
        ``int64`` column indices, and an N ``bool`` mask, ``False`` for anchors
        without any negative (their ``d_an``/``idx_n`` are meaningless).

    Raises:
        ValueError: ``dist`` is not N×N or ``labels`` not N.
    """
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape[1] != n or labels.shape != (n,):
        raise ValueError(f"expected N×N distances and N labels, got {tuple(dist.shape)} and {tuple(labels.shape)}")
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    neg = ~same if negatives is None else ~same & negatives
    with torch.no_grad():
        inf = torch.finfo(dist.dtype).max
        idx_p = dist.masked_fill(~same, -inf).argmax(dim=1)
        idx_n = dist.masked_fill(~neg, inf).argmin(dim=1)
        valid = neg.any(dim=1)
    rows = torch.arange(n, device=dist.device)
    return dist[rows, idx_p], dist[rows, idx_n], idx_p, idx_n, valid


def _triplet_from(d_ap: torch.Tensor, d_an: torch.Tensor, margin: float, soft_margin: bool) -> torch.Tensor:
    if soft_margin:
        return F.softplus(d_ap - d_an)  # log(1 + exp(d_ap − d_an)), overflow-safe
    return F.relu(margin + d_ap - d_an)


def triplet_hard_loss(
    dist: torch.Tensor,
    labels: torch.Tensor,
    margin: float = TRIPLET_MARGIN,
    soft_margin: bool = False,
    mining_dist: torch.Tensor | None = None,
    negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Batch-hard ("TriHard") triplet loss on a distance matrix (Hermans et al., 2017).

    For every anchor ``a`` of a P×K batch: ``d_ap`` = distance to its hardest
    positive, ``d_an`` = distance to its hardest negative; the loss is the mean
    over anchors of ``max(0, margin + d_ap − d_an)`` or, with ``soft_margin``,
    ``log(1 + exp(d_ap − d_an))``. Anchors without a negative are left out.

    With ``mining_dist`` (AlignedReID §3.1), the hard positive and negative are
    *chosen* on ``mining_dist`` (e.g. the global distance) but the loss is taken
    on ``dist`` at those pairs (e.g. the local distance): pass the global matrix
    as both to get the global loss, the local matrix with ``mining_dist=global``
    to get the local one.

    Args:
        dist: N×N distances the loss is computed on (feature units).
        labels: N identity labels.
        margin: hinge margin (0.3 by default); ignored with ``soft_margin``.
        soft_margin: use ``log(1 + exp(d_ap − d_an))`` instead of the hinge.
        mining_dist: N×N distances to mine the hard pairs on; ``None`` = ``dist``.
        negatives: N×N ``bool`` pairs allowed as negatives (:func:`hard_example_mining`); a batch with
            none gives a zero loss.

    Returns:
        0-dim tensor.

    Raises:
        ValueError: wrong shapes, or (without ``negatives``) no anchor has a negative (a single identity).
    """
    if mining_dist is None:
        d_ap, d_an, _, _, valid = hard_example_mining(dist, labels, negatives)
    else:
        if mining_dist.shape != dist.shape:
            raise ValueError(f"mining distances {tuple(mining_dist.shape)} ≠ distances {tuple(dist.shape)}")
        _, _, idx_p, idx_n, valid = hard_example_mining(mining_dist, labels, negatives)
        rows = torch.arange(dist.shape[0], device=dist.device)
        d_ap, d_an = dist[rows, idx_p], dist[rows, idx_n]
    if not bool(valid.any()):
        if negatives is not None:
            return dist.sum() * 0.0
        raise ValueError("triplet loss needs at least two identities in the batch")
    return _triplet_from(d_ap[valid], d_an[valid], margin, soft_margin).mean()


def aligned_triplet_loss(
    global_feat: torch.Tensor,
    local_feat: torch.Tensor,
    labels: torch.Tensor,
    margin: float = TRIPLET_MARGIN,
    soft_margin: bool = False,
    local_distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """AlignedReID global and local batch-hard triplet losses (Zhang et al., 2017, §3.1).

    The hard positive and negative of each anchor are mined on the Euclidean
    distance of the global features; the local loss uses the *same* pairs with
    the aligned local distance (stripe element distance ``tanh(‖f − g‖/2)`` and
    the shortest path through the H×H matrix), computed only for those 2N pairs.

    Args:
        global_feat: N×D global features.
        local_feat: N×H×C local (horizontal stripe) features.
        labels: N identity labels.
        margin: hinge margin of both losses.
        soft_margin: soft-margin variant for both losses.
        local_distance: paired local distance ``(N×H×C, N×H×C) → N``;
            ``None`` = :func:`reid.aligned.local_distance`.

    Returns:
        ``(global_loss, local_loss)``, two 0-dim tensors.

    Raises:
        ValueError: wrong shapes, or a single identity in the batch.
    """
    if local_feat.ndim != 3 or local_feat.shape[0] != global_feat.shape[0]:
        raise ValueError(f"expected N×H×C local features for N={global_feat.shape[0]}, got {tuple(local_feat.shape)}")
    if local_distance is None:
        from reid.aligned import local_distance as _paired

        local_distance = _paired
    g = pairwise_euclidean(global_feat, global_feat)
    d_ap, d_an, idx_p, idx_n, valid = hard_example_mining(g, labels)
    if not bool(valid.any()):
        raise ValueError("triplet loss needs at least two identities in the batch")
    global_loss = _triplet_from(d_ap[valid], d_an[valid], margin, soft_margin).mean()
    l_ap = local_distance(local_feat, local_feat[idx_p])
    l_an = local_distance(local_feat, local_feat[idx_n])
    local_loss = _triplet_from(l_ap[valid], l_an[valid], margin, soft_margin).mean()
    return global_loss, local_loss


def mutual_kl_loss(logits: torch.Tensor, partner_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Deep-mutual-learning KL term of one model (Zhang et al., CVPR 2018; AlignedReID §3.2).

    ``D_KL(p₂ ‖ p₁) = Σ_k p₂,k (log p₂,k − log p₁,k)`` averaged over the batch,
    with ``p₁ = softmax(logits / T)`` this model's and ``p₂ = softmax(partner / T)``
    the partner's class probabilities. The partner is detached: the gradient
    flows only into ``logits`` (swap the arguments for the partner's own term).
    With ``T ≠ 1`` the result is multiplied by ``T²`` to keep gradient scales.

    Args:
        logits: N×K class scores of the model being trained.
        partner_logits: N×K class scores of the peer model (treated as constant).
        temperature: softmax temperature T > 0.

    Returns:
        0-dim tensor (nats), ≥ 0.

    Raises:
        ValueError: shapes differ or T ≤ 0.
    """
    if logits.shape != partner_logits.shape or logits.ndim != 2:
        raise ValueError(f"expected two N×K logits, got {tuple(logits.shape)} and {tuple(partner_logits.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p1 = F.log_softmax(logits / temperature, dim=1)
    log_p2 = F.log_softmax(partner_logits.detach() / temperature, dim=1)
    kl = (log_p2.exp() * (log_p2 - log_p1)).sum(dim=1).mean()
    return kl * temperature**2


def metric_mutual_loss(dist: torch.Tensor, partner_dist: torch.Tensor) -> torch.Tensor:
    """AlignedReID metric mutual loss (§3.2): ``(1/N²) Σ_ij (d¹_ij − ZG(d²_ij))²``.

    ``ZG`` is the zero-gradient function: the partner's batch distance matrix is
    detached, so no gradient reaches the partner through this term.

    Args:
        dist: N×N batch distances of the model being trained.
        partner_dist: N×N batch distances of the peer model on the same batch.

    Returns:
        0-dim tensor (squared feature units).

    Raises:
        ValueError: shapes differ or are not square.
    """
    if dist.shape != partner_dist.shape or dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"expected two N×N distance matrices, got {tuple(dist.shape)} and {tuple(partner_dist.shape)}")
    return ((dist - partner_dist.detach()) ** 2).mean()
