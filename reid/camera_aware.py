"""Losses of tracklet association learning that never push two cameras' tracklets apart.

Li, Zhu and Gong, "Unsupervised Person Re-identification by Deep Learning Tracklet
Association", ECCV 2018 (TAUDL), §3.1, "Per-Camera Tracklet Discrimination": with one
pseudo-identity per tracklet, tracklets of *one* camera are (mostly) different people,
but a tracklet of another camera may well be the same person. So the identity loss is a
softmax per camera — a sample's class competes only with the classes seen by its own
camera — and the metric loss takes its negatives only from the anchor's camera. A
pseudo-identity that spans cameras (joined tracklets) belongs to each of them.

* :func:`per_camera_cross_entropy` — label-smoothed cross-entropy over the classes of the
  sample's camera only (Szegedy et al., CVPR 2016, §7, with ``K`` = those classes).
* :func:`same_camera` / :func:`batch_negatives` — the pairs the metric loss may use as negatives
  (:func:`reid.metric_losses.metric_loss` with ``negatives=``): two classes *of the anchor's
  camera*; positives are the anchor's class from any camera. For the batch-hard triplet
  (Hermans et al., 2017) the hardest negative is then the nearest other tracklet of the
  anchor's own camera. Pairs known to be two people in any case (another camera the
  topology forbids, :func:`known_pairs`) are negatives too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch.nn import functional as F


class CameraBatch(NamedTuple):
    """What the per-camera losses need of one batch.

    Attributes:
        camids: N ``int64`` camera indices.
        cameras: ``C×M`` ``bool`` class-camera table (:func:`class_cameras`).
        negatives: N×N ``bool`` pairs allowed as metric-loss negatives: one camera's, or classes known to
            be two people (:func:`batch_negatives`).
    """

    camids: torch.Tensor
    cameras: torch.Tensor
    negatives: torch.Tensor


def known_pairs(hard_negatives: Mapping[int, Sequence[int]], num_classes: int,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """``C×C`` symmetric ``bool``: classes ``a`` and ``b`` are known to be two people (``hard_negatives``: class
    index → class indices, e.g. one camera at the same time or cameras the topology forbids)."""
    table = torch.zeros((num_classes, num_classes), dtype=torch.bool, device=device)
    for a, bs in hard_negatives.items():
        for b in bs:
            table[a, b] = table[b, a] = True
    return table


def batch_negatives(labels: torch.Tensor, camids: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """N×N ``bool``: pairs of one camera (:func:`same_camera`), or of classes ``known`` (``C×C``) to differ."""
    out = same_camera(camids)
    if known is not None:
        out = out | known[labels][:, labels]
    return out


def class_cameras(labels: list[int], camids: list[int], num_classes: int) -> torch.Tensor:
    """``C×M`` ``bool``: class ``c`` has images from camera ``m`` (``M`` = largest camera id + 1).

    Args:
        labels: class index of every training image (``0..C-1``).
        camids: camera index of every training image (``>= 0``).
        num_classes: ``C``.
    """
    table = torch.zeros((num_classes, max(camids, default=0) + 1), dtype=torch.bool)
    table[torch.as_tensor(labels, dtype=torch.long), torch.as_tensor(camids, dtype=torch.long)] = True
    return table


def per_camera_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor,
                             cameras: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Label-smoothed cross-entropy of each sample over the classes seen by its camera.

    Args:
        logits: ``N×C`` class scores.
        labels: N ``int64`` class indices (each seen by its sample's camera).
        camids: N ``int64`` camera indices.
        cameras: ``C×M`` ``bool`` from :func:`class_cameras` (on the logits' device).
        epsilon: label smoothing ``ε`` (spread over the camera's classes).

    Returns:
        0-dim batch mean.
    """
    allowed = cameras[:, camids].T  # N×C
    logp = F.log_softmax(logits.masked_fill(~allowed, float("-inf")), dim=1)
    nll = -logp.gather(1, labels.unsqueeze(1)).squeeze(1)
    smooth = -logp.masked_fill(~allowed, 0.0).sum(1) / allowed.sum(1).clamp(min=1)
    return ((1.0 - epsilon) * nll + epsilon * smooth).mean()


def same_camera(camids: torch.Tensor) -> torch.Tensor:
    """N×N ``bool``: samples ``i`` and ``j`` come from one camera (the pairs allowed as negatives:
    ``negatives=`` of :func:`reid.metric_losses.metric_loss`).

    Args:
        camids: N camera indices.
    """
    return camids.unsqueeze(0) == camids.unsqueeze(1)
