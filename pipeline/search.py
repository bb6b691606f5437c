"""``mtmc search OUT --query IMG…``: find a person of a finished run from a photo.

The query crops are embedded with the run's own ReID model (the name stored in
``features.npz`` must match), their L2-normalised features averaged (several photos
of one person), and the run's tracklets ranked by cosine distance ``1 - cos`` with an
exact faiss inner-product index. An identity's distance is that of its nearest
tracklet; identities farther than the threshold are not matches, so a query of
somebody the cameras never saw gets "no match".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.config import ReidConfig
from pipeline.errors import InputError, ModelError
from pipeline.feature_store import FeatureStore
from pipeline.report.run_view import RunView, load_run
from pipeline.vectors import l2_normalize

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.24  # cosine distance, chosen leave-one-sequence-out (README "Search")
MIN_QUERY_HEIGHT = 32  # pixels


@dataclass
class Match:
    """One identity of the run, ranked for a query.

    Attributes:
        global_id: the identity. distance: cosine distance of its nearest tracklet to the query (0–2).
        cameras: camera ids it was seen in. seen: camera → ``(first_seen, last_seen)`` s, common clock.
    """

    global_id: int
    distance: float
    cameras: list[str]
    seen: dict[str, tuple[float, float]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``global_id``, ``distance``, ``cameras``, ``seen: {camera: {first_seen, last_seen}}``."""
        return {"global_id": self.global_id, "distance": round(self.distance, 4), "cameras": self.cameras,
                "seen": {c: {"first_seen": round(a, 3), "last_seen": round(b, 3)} for c, (a, b) in self.seen.items()}}


@dataclass
class SearchResult:
    """Matches best-first (within ``threshold``), the best identity even when over it, and the model used."""

    matches: list[Match]
    best: Match | None
    threshold: float
    model: str
    queries: int
    warnings: list[str] = field(default_factory=list)


def read_query(path: str | Path) -> tuple[np.ndarray, str | None]:
    """Read one query photo: an H×W×3 ``uint8`` BGR image and a warning when it does not look like a
    person crop (wider than tall, or under :data:`MIN_QUERY_HEIGHT` px high).

    Raises:
        InputError: the file is missing or is not an image OpenCV can read.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"query image not found: {p}")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read query image {p} (not an image, or corrupt); give a JPEG or PNG person crop")
    h, w = img.shape[:2]
    warn = None
    if h < MIN_QUERY_HEIGHT or w > h:
        warn = (f"query {p} is {w}×{h} px, not a person crop (taller than wide, at least {MIN_QUERY_HEIGHT} px "
                "high): crop the person for better results")
    return img, warn


def query_feature(images: list[np.ndarray], extractor: Any) -> np.ndarray:
    """D ``float32`` unit feature of one person from its photos: mean of their L2-normalised features."""
    feats = extractor.embed(images)
    return l2_normalize(feats.mean(axis=0), dtype=np.float32)


def rank_identities(view: RunView, query: np.ndarray, top: int, threshold: float) -> tuple[list[Match], Match | None]:
    """Identities best-first by the cosine distance of their nearest tracklet to ``query`` (D ``float32``).

    Returns:
        ``(matches, best)``: the ``top`` best identities within ``threshold``, and the best one overall.
    """
    import faiss

    store = view.store
    assert store is not None
    index = faiss.IndexFlatIP(store.features.shape[1])
    index.add(l2_normalize(store.features, dtype=np.float32))
    k = len(store)
    sims, rows = index.search(query[None].astype(np.float32), k)
    ranked: dict[int, float] = {}
    for s, r in zip(sims[0], rows[0], strict=True):
        if r >= 0:
            ranked.setdefault(int(store.global_id[r]), float(1.0 - s))
    idents = {i.global_id: i for i in view.identities}
    order = [Match(g, d, idents[g].cameras, {c: idents[g].seen(c) for c in idents[g].cameras})
             for g, d in ranked.items() if g in idents]
    return [m for m in order if m.distance <= threshold][:top], (order[0] if order else None)


def _check_model(store: FeatureStore, extractor: Any, spec: str) -> None:
    if extractor is None:
        raise ModelError(f"ReID SPEC {spec!r} is 'none': search needs the run's ReID model ({store.model})")
    if extractor.name != store.model:
        raise ModelError(f"the run's features come from {store.model}, but --reid {spec} is {extractor.name}: "
                         "pass the run's own ReID model (features of two models cannot be compared)")
    if store.features.shape[1] != extractor.dim:
        raise ModelError(f"the run's features have {store.features.shape[1]} dimensions, {extractor.name} gives "
                         f"{extractor.dim}: pass the run's own ReID model")


def search(out: str | Path, queries: list[str | Path], top: int = 5, threshold: float = DEFAULT_THRESHOLD,
           reid_spec: str | None = None) -> SearchResult:
    """Rank the identities of the run in ``out`` for the person in ``queries`` (photos of one person).

    Args:
        out: an ``mtmc run`` output folder with ``features.npz``.
        queries: image files of one person (averaged). top: identities returned at most.
        threshold: largest cosine distance that is a match. reid_spec: the ReID model (default:
            the run's ``reid.spec`` from ``summary.json``, relative paths as given to that run).

    Raises:
        InputError: not a run folder, no ``features.npz``, a run without identities, or a query
            image that cannot be read.
        ModelError: the model cannot be loaded or is not the run's.
    """
    from reid.factory import build_reid

    view = load_run(out, need_features=True)
    store = view.store
    assert store is not None
    if len(store) == 0:
        raise InputError(f"{view.out}: the run has no tracklet with a feature (no person found): nothing to search")
    spec = reid_spec or ((view.summary.get("config") or {}).get("reid") or {}).get("spec") or ""
    read = [read_query(q) for q in queries]
    warnings = [w for _, w in read if w]
    for w in warnings:
        log.warning("%s", w)
    try:
        extractor = build_reid(ReidConfig(spec=spec))
    except ModelError as exc:
        hint = "" if reid_spec else " (the run's reid.spec, relative to the folder mtmc run ran in); pass --reid SPEC"
        raise ModelError(f"{exc}{hint}") from None
    _check_model(store, extractor, spec)
    q = query_feature([img for img, _ in read], extractor)
    matches, best = rank_identities(view, q, top, threshold)
    return SearchResult(matches, best, threshold, store.model, len(queries), warnings)


def format_result(res: SearchResult) -> str:
    """A text table of the matches (rank, id, distance, cameras with first–last seen), or the no-match line."""
    if not res.matches:
        best = "" if res.best is None else f"; best: identity {res.best.global_id} at {res.best.distance:.3f}"
        return f"no match: no identity within distance {res.threshold:g}{best}"
    lines = [f"{'rank':>4}  {'id':>5}  {'distance':>8}  seen (s, common clock)", "-" * 60]
    for k, m in enumerate(res.matches, 1):
        seen = ", ".join(f"{c} {a:.1f}-{b:.1f}" for c, (a, b) in m.seen.items())
        lines.append(f"{k:>4}  {m.global_id:>5}  {m.distance:>8.3f}  {seen}")
    return "\n".join(lines)
