"""Evaluate a ReID feature extractor on a query/gallery dataset (CMC, mAP, mINP).

Distances: cosine distance ``1 − cos`` of L2-normalised features (tracklets: the
mean of their frame features, L2-normalised again, MARS-style). Options:

* ``rerank``: k-reciprocal re-ranking (Zhong et al., CVPR 2017) via
  :func:`reid.rerank.rerank_distance` over query + gallery together (``k1``, ``k2``
  capped with :func:`reid.rerank.effective_k`; rows normalised by their maximum as
  in the released code);
* ``local``: AlignedReID (Zhang et al., 2017) local distance, torch backends only.
  The last feature map (``N×C×h×w``) is average-pooled into ``LOCAL_STRIPES``
  horizontal stripes (``N×H×C``), each L2-normalised; the local distance
  (:func:`reid.aligned.local_distance_matrix`, element distance ``tanh(‖f−g‖/2)``,
  shortest path from (1, 1) to (H, H)) is divided by the path length ``2H − 1`` so
  it lies in ``[0, 1)`` like a mean element distance, and the combined distance is
  ``d = d_cos + LOCAL_WEIGHT · d_local / (2H − 1)`` with ``LOCAL_WEIGHT = 1``
  (AlignedReID adds global and local distances at test time).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.errors import InputError, ModelError
from pipeline.vectors import l2_normalize
from reid.datasets import ReidDataset, ReidItem, load_dataset
from reid.extractor import FeatureExtractor
from reid.metrics import evaluate_rank
from reid.rerank import effective_k, rerank_distance

__all__ = ["LOCAL_STRIPES", "LOCAL_WEIGHT", "evaluate_reid", "embed_items"]

LOCAL_STRIPES = 8
"""Horizontal stripes H of the AlignedReID local features."""
LOCAL_WEIGHT = 1.0
"""Weight of the path-length-normalised local distance added to the cosine distance."""


def _read(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise InputError(f"cannot read image {path}")
    return img


@contextlib.contextmanager
def _capture_featuremaps(extractor: FeatureExtractor) -> Iterator[list[Any]]:
    """Record the backbone feature maps of every forward pass of a torch extractor (one pass for both)."""
    model = getattr(extractor, "model", None)
    if model is None or not callable(getattr(model, "featuremaps", None)):
        raise ModelError(
            f"{extractor.name}: --local (AlignedReID local features) needs a torch OSNet/ResNet model "
            "(e.g. --reid osnet_x0_25:weights.pth); an ONNX model gives only the global feature vector"
        )
    import torch.nn.functional as F  # noqa: N812

    maps: list[Any] = []
    original = model.featuremaps

    def hooked(x: Any) -> Any:
        fm = original(x)
        stripes = F.adaptive_avg_pool2d(fm, (LOCAL_STRIPES, 1)).squeeze(-1).transpose(1, 2)  # N×H×C
        maps.append(F.normalize(stripes.float(), dim=-1).cpu())
        return fm

    model.featuremaps = hooked
    try:
        yield maps
    finally:
        del model.featuremaps  # back to the class method


def embed_items(
    extractor: FeatureExtractor,
    items: Sequence[ReidItem],
    batch: int | None = None,
    local: bool = False,
    progress: bool = True,
    desc: str = "embed",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed every image of ``items``; tracklets get the L2-normalised mean of their frames.

    Args:
        extractor: any :class:`~reid.extractor.FeatureExtractor`.
        items: query or gallery items.
        batch: images read and embedded per step (``None`` = ``extractor.batch``).
        local: also return AlignedReID local features (torch extractors only).
        progress: show a tqdm bar (images).
        desc: the bar's label.

    Returns:
        ``(global, local)``: ``len(items)×D`` ``float32`` unit-norm features and, with
        ``local``, ``len(items)×H×C`` ``float32`` stripe features (tracklets: their mean,
        re-normalised), else ``None``.

    Raises:
        InputError: an image cannot be read. ModelError: the model fails, or ``local``
            with a backend without feature maps (ONNX).
    """
    from tqdm import tqdm

    paths = [p for it in items for p in it.images]
    owner = np.repeat(np.arange(len(items)), [len(it.images) for it in items])
    step = max(1, int(batch or extractor.batch))
    feats = np.zeros((len(paths), extractor.dim), np.float32)
    ctx = _capture_featuremaps(extractor) if local else contextlib.nullcontext([])
    with ctx as maps, tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for start in range(0, len(paths), step):
            chunk = paths[start : start + step]
            feats[start : start + len(chunk)] = extractor.embed([_read(p) for p in chunk])
            bar.update(len(chunk))
    glob = _pool(feats, owner, len(items))
    loc = None
    if local:
        lf = np.concatenate([m.numpy() for m in maps], 0) if maps else np.zeros((0, LOCAL_STRIPES, 0), np.float32)
        if len(lf) != len(paths):
            raise ModelError(f"{extractor.name}: feature maps were not captured for every image")
        flat = _pool(lf.reshape(len(lf), -1), owner, len(items), normalize=False).reshape(len(items), *lf.shape[1:])
        loc = l2_normalize(flat)
    return glob, loc


def _pool(x: np.ndarray, owner: np.ndarray, n: int, normalize: bool = True) -> np.ndarray:
    """Mean of the rows of ``x`` per owner index (then L2-normalised)."""
    if len(x) == n and np.array_equal(owner, np.arange(n)):
        out = x
    else:
        out = np.zeros((n, x.shape[1]), np.float64)
        np.add.at(out, owner, x)
        out /= np.maximum(np.bincount(owner, minlength=n), 1)[:, None]
    return l2_normalize(out, dtype=np.float32) if normalize else out.astype(np.float32)


def evaluate_reid(
    dataset: ReidDataset | str | Path,
    extractor: FeatureExtractor,
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_: float = 0.3,
    tracklet: bool | Literal["auto"] = "auto",
    local: bool = False,
    batch: int | None = None,
    layout: str | None = None,
    progress: bool = True,
    max_rank: int = 10,
) -> dict[str, Any]:
    """CMC / mAP / mINP of ``extractor`` on a dataset's query and gallery (module docstring).

    Args:
        dataset: a :class:`~reid.datasets.ReidDataset` or its folder (read with ``layout``).
        extractor: the feature extractor.
        rerank: apply k-reciprocal re-ranking with ``k1``, ``k2``, ``lambda_``.
        k1: k-reciprocal neighbourhood size (≥ 1). k2: query expansion size (≥ 1).
        lambda_: weight of the original distance in [0, 1].
        tracklet: ``True`` average frame features per item; ``False`` use each item's
            first image only; ``'auto'`` = ``dataset.tracklet``.
        local: add the AlignedReID local distance (torch OSNet/ResNet only).
        batch: images per forward step (``None`` = the extractor's batch).
        layout: dataset layout when ``dataset`` is a path (``None`` = detect).
        progress: tqdm progress bars.
        max_rank: CMC length.

    Returns:
        ``{"dataset", "layout", "model", "rerank", "local", "tracklet", "rank1", "rank5",
        "rank10", "mAP", "mINP", "num_query", "num_gallery", "num_skipped", "cmc"}``
        (metrics as fractions in [0, 1]; ``num_query`` counts evaluated queries).

    Raises:
        InputError: dataset folder/layout problems or unreadable images.
        ModelError: model failure, or ``local`` with an ONNX model.
        ValueError: re-ranking parameters out of range.
    """
    ds = dataset if isinstance(dataset, ReidDataset) else load_dataset(dataset, layout)
    use_tracklet = ds.tracklet if tracklet == "auto" else bool(tracklet)
    if local and not callable(getattr(getattr(extractor, "model", None), "featuremaps", None)):
        with _capture_featuremaps(extractor):  # raises the explanatory ModelError
            pass

    def items(xs: list[ReidItem]) -> list[ReidItem]:
        return xs if use_tracklet else [ReidItem(x.path, x.pid, x.camid) for x in xs]

    query, gallery = items(ds.query), items(ds.gallery)
    qf, ql = embed_items(extractor, query, batch, local, progress, "query")
    gf, gl = embed_items(extractor, gallery, batch, local, progress, "gallery")
    nq = len(query)
    if rerank:
        allf = np.concatenate([qf, gf], 0)
        dist = np.clip(1.0 - allf @ allf.T, 0.0, None)
        if local:
            alll = np.concatenate([ql, gl], 0)
            dist = dist + LOCAL_WEIGHT * _local(alll, alll)
        k1e, k2e = effective_k(k1, k2, len(allf))
        dist = rerank_distance(dist, k1=k1e, k2=k2e, lambda_=lambda_, num_query=nq)
    else:
        dist = np.clip(1.0 - qf @ gf.T, 0.0, None)
        if local:
            dist = dist + LOCAL_WEIGHT * _local(ql, gl)
    m = evaluate_rank(
        dist, np.array([x.pid for x in query]), np.array([x.pid for x in gallery]),
        np.array([x.camid for x in query]), np.array([x.camid for x in gallery]), max_rank=max_rank,
    )
    return {
        "dataset": str(ds.root), "layout": ds.layout, "model": extractor.name,
        "rerank": bool(rerank), "local": bool(local), "tracklet": use_tracklet,
        **m.to_dict(), "cmc": [float(c) for c in m.cmc],
    }


def _local(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Path-length-normalised AlignedReID local distance matrix (torch for speed)."""
    import torch

    from reid.aligned import local_distance_matrix

    h = lx.shape[1]
    with torch.inference_mode():
        d = local_distance_matrix(torch.from_numpy(lx), torch.from_numpy(ly), chunk=32).numpy()
    return d / (2 * h - 1)
