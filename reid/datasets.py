"""Readers for person re-identification benchmarks: items ``(image path, person id, camera id)``.

Layouts (``layout=None`` detects them in this order):

``msmt17``
    ``list_query.txt`` / ``list_gallery.txt`` / ``list_train.txt`` (``relative/path pid`` lines;
    ``list_val.txt`` is ignored) in ROOT; images under ``ROOT/test/`` (``ROOT/train/`` for
    training), ``ROOT/mask_test_v2/`` / ``mask_train_v2/`` (MSMT17_V2) or ``ROOT/`` itself.
    The camera is the third ``_`` field of the file name (``0000_011_01_0303morning_0015_0.jpg`` → 1).
``mars``
    ``bbox_test/PPPP/PPPPCcTttttFfff.jpg`` (and ``bbox_train/``): image sequences (tracklets).
    With ``info/test_name.txt``, ``info/tracks_test_info.mat`` (rows ``start, end, pid, cam``, 1-based
    into the name list) and ``info/query_IDX.mat`` (1-based track rows), the official split is
    used (query tracks out of the gallery). Without them (documented fallback): frames are
    grouped into tracklets by ``(pid, camera, T)``; of each id seen in ≥ 2 cameras the first
    tracklet of its lowest camera is the query, every other tracklet is in the gallery. Junk
    id ``-1`` (``00-1``) is dropped; distractors ``0000`` stay in the gallery.
``market1501`` / ``dukemtmcreid``
    ``query/``, ``bounding_box_test/`` (gallery) and ``bounding_box_train/``; names
    ``PPPP_cCsS_FFFFFF_NN.jpg`` (Market-1501) or ``PPPP_cC_fFFFFFFF.jpg`` (DukeMTMC-reID).
    Junk id ``-1`` is dropped; distractors ``0000`` stay in the gallery.
``cuhk03``
    named crops ``PPPP_KK.jpg`` in ROOT (or ``ROOT/images``): ``KK`` 00–04 are camera view 1
    (query), 05–09 view 2 (gallery).
``generic``
    ``ROOT/<id>/<camera>/*.jpg`` (any folder names; ids and cameras are numbered in sorted
    order), or ``ROOT/query/<id>/<camera>/*.jpg`` + ``ROOT/gallery/<id>/<camera>/*.jpg`` (and
    optional ``ROOT/train/``). Without ``query/``/``gallery/`` the split is: the images of the
    first camera (sorted by name) of each id are queries, those of its other cameras gallery;
    an id seen in one camera only goes entirely to the gallery (a distractor).

Images are ``.jpg``, ``.jpeg``, ``.png`` or ``.bmp``; lists are sorted by path.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError

__all__ = ["LAYOUTS", "ReidDataset", "ReidItem", "detect_layout", "load_dataset"]

IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp")
LAYOUTS = ("market1501", "dukemtmcreid", "msmt17", "cuhk03", "mars", "generic")
"""Layout names accepted by :func:`load_dataset`."""

_EXPECTED = (
    "Market-1501/DukeMTMC-reID (query/ + bounding_box_test/), MSMT17 (list_query.txt + list_gallery.txt), "
    "CUHK03 named crops (PPPP_KK.jpg), MARS (bbox_test/), or generic ROOT/<id>/<camera>/*.jpg "
    "(optionally under query/ and gallery/)"
)
_MARKET = re.compile(r"^(-?\d+)_c(\d+)s\d+_")
_DUKE = re.compile(r"^(-?\d+)_c(\d+)_f?\d+")
_CUHK = re.compile(r"^(\d+)_(\d\d)$")
_MSMT_CAM = re.compile(r"^\d+_\d+_(\d+)_")
_MARS = re.compile(r"^(-?\d+|00-1)C(\d+)T(\d+)F(\d+)$")


@dataclass(frozen=True)
class ReidItem:
    """One query/gallery/train entry.

    Attributes:
        path: the image (for a tracklet, its first frame).
        pid: person id (``0`` may be a distractor; never ``-1``).
        camid: camera id.
        frames: for tracklet datasets (MARS) all frames in order, else ``()``.
    """

    path: Path
    pid: int
    camid: int
    frames: tuple[Path, ...] = ()

    @property
    def images(self) -> tuple[Path, ...]:
        """The frames of a tracklet, or ``(path,)`` for a single image."""
        return self.frames or (self.path,)


@dataclass
class ReidDataset:
    """A re-identification dataset split.

    Attributes:
        root: the dataset folder.
        layout: one of :data:`LAYOUTS`.
        query: query items; gallery: gallery items; train: training items (may be empty).
        tracklet: items are image sequences (MARS) rather than single images.
    """

    root: Path
    layout: str
    query: list[ReidItem] = field(default_factory=list)
    gallery: list[ReidItem] = field(default_factory=list)
    train: list[ReidItem] = field(default_factory=list)
    tracklet: bool = False

    def summary(self) -> str:
        """``'<layout> ROOT: Q query, G gallery, T train (N ids)'``."""
        ids = len({it.pid for it in self.query + self.gallery})
        return (f"{self.layout} {self.root}: {len(self.query)} query, {len(self.gallery)} gallery, "
                f"{len(self.train)} train ({ids} ids)")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXT) \
        if folder.is_dir() else []


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def detect_layout(root: str | Path) -> str:
    """Guess the layout of ``root`` (order and rules in the module docstring).

    Raises:
        InputError: ``root`` is not a folder, or matches no layout (the message names
            the folder and the expected layouts).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"ReID dataset folder not found: {root}")
    if (root / "list_query.txt").is_file() and (root / "list_gallery.txt").is_file():
        return "msmt17"
    if (root / "bbox_test").is_dir():
        return "mars"
    if (root / "query").is_dir() and (root / "bounding_box_test").is_dir():
        names = [p.stem for p in _images(root / "query")[:20] + _images(root / "bounding_box_test")[:20]]
        if names and all(_MARKET.match(n) for n in names):
            return "market1501"
        if names and all(_DUKE.match(n) for n in names):
            return "dukemtmcreid"
    if (root / "query").is_dir() and (root / "gallery").is_dir():
        return "generic"
    for folder in (root, root / "images"):
        imgs = _images(folder)
        if imgs and all(_CUHK.match(p.stem) for p in imgs):
            return "cuhk03"
    ids = _subdirs(root)
    if ids and any(_images(cam) for cam in _subdirs(ids[0])):
        return "generic"
    raise InputError(f"unknown ReID dataset layout in {root}; expected {_EXPECTED}")


def load_dataset(root: str | Path, layout: str | None = None) -> ReidDataset:
    """Read a ReID dataset's query, gallery and train items.

    Args:
        root: the dataset folder.
        layout: one of :data:`LAYOUTS`, or ``None`` to detect it (:func:`detect_layout`).

    Returns:
        A :class:`ReidDataset`.

    Raises:
        InputError: missing folder, unknown layout name, a layout not matching the
            folder (no query or gallery items, unparsable names or list lines).
    """
    root = Path(root).expanduser()
    if layout is None:
        layout = detect_layout(root)
    layout = layout.lower()
    if layout not in LAYOUTS:
        raise InputError(f"unknown ReID dataset layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise InputError(f"ReID dataset folder not found: {root}")
    reader = {
        "market1501": lambda r: _read_market(r, _MARKET, "market1501"),
        "dukemtmcreid": lambda r: _read_market(r, _DUKE, "dukemtmcreid"),
        "msmt17": _read_msmt,
        "cuhk03": _read_cuhk03,
        "mars": _read_mars,
        "generic": _read_generic,
    }[layout]
    ds = reader(root)
    if not ds.query or not ds.gallery:
        raise InputError(
            f"{root}: read as {layout} but found {len(ds.query)} query and {len(ds.gallery)} gallery items; "
            f"expected {_EXPECTED}"
        )
    return ds


# ---------------------------------------------------------------- Market-1501 / DukeMTMC-reID


def _read_market_dir(folder: Path, pattern: re.Pattern[str], layout: str) -> list[ReidItem]:
    items = []
    for p in _images(folder):
        m = pattern.match(p.stem)
        if m is None:
            raise InputError(f"{p}: not a {layout} file name (PPPP_cC…)")
        pid = int(m.group(1))
        if pid == -1:  # junk detections
            continue
        items.append(ReidItem(p, pid, int(m.group(2))))
    return items


def _read_market(root: Path, pattern: re.Pattern[str], layout: str) -> ReidDataset:
    return ReidDataset(
        root, layout,
        query=_read_market_dir(root / "query", pattern, layout),
        gallery=_read_market_dir(root / "bounding_box_test", pattern, layout),
        train=_read_market_dir(root / "bounding_box_train", pattern, layout),
    )


# ---------------------------------------------------------------- MSMT17


def _read_msmt_list(root: Path, name: str, subdirs: tuple[str, ...]) -> list[ReidItem]:
    path = root / name
    if not path.is_file():
        return []
    bases = [root / s for s in subdirs if (root / s).is_dir()] + [root]
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(f"{path}:{n}: expected 'relative/path pid', got {line.strip()!r}")
        m = _MSMT_CAM.match(Path(parts[0]).name)
        if m is None:
            raise InputError(f"{path}:{n}: cannot read the camera from {parts[0]!r} (PPPP_SSS_CC_…)")
        img = next((b / parts[0] for b in bases if (b / parts[0]).is_file()), bases[0] / parts[0])
        items.append(ReidItem(img, int(parts[1]), int(m.group(1))))
    return items


def _read_msmt(root: Path) -> ReidDataset:
    test, train = ("test", "mask_test_v2"), ("train", "mask_train_v2")
    return ReidDataset(
        root, "msmt17",
        query=_read_msmt_list(root, "list_query.txt", test),
        gallery=_read_msmt_list(root, "list_gallery.txt", test),
        train=_read_msmt_list(root, "list_train.txt", train),
    )


# ---------------------------------------------------------------- CUHK03 named crops


def _read_cuhk03(root: Path) -> ReidDataset:
    folder = root if _images(root) else root / "images"
    ds = ReidDataset(root, "cuhk03")
    for p in _images(folder):
        m = _CUHK.match(p.stem)
        if m is None:
            raise InputError(f"{p}: not a CUHK03 crop name (PPPP_KK.jpg)")
        view = 1 if int(m.group(2)) < 5 else 2
        (ds.query if view == 1 else ds.gallery).append(ReidItem(p, int(m.group(1)), view))
    return ds


# ---------------------------------------------------------------- MARS


def _mars_frames(folder: Path) -> dict[tuple[int, int, int], list[Path]]:
    groups: dict[tuple[int, int, int], list[Path]] = defaultdict(list)
    for person in _subdirs(folder):
        for p in _images(person):
            m = _MARS.match(p.stem)
            if m is None:
                raise InputError(f"{p}: not a MARS frame name (PPPPCcTttttFfff.jpg)")
            pid = -1 if m.group(1) == "00-1" else int(m.group(1))
            groups[(pid, int(m.group(2)), int(m.group(3)))].append(p)
    return groups


def _tracklets(groups: dict[tuple[int, int, int], list[Path]]) -> list[ReidItem]:
    return [ReidItem(fr[0], pid, cam, tuple(fr)) for (pid, cam, _), fr in sorted(groups.items()) if pid != -1]


def _read_mars_mat(root: Path) -> ReidDataset | None:
    info = root / "info"
    names_file, tracks_file, query_file = info / "test_name.txt", info / "tracks_test_info.mat", info / "query_IDX.mat"
    if not (names_file.is_file() and tracks_file.is_file() and query_file.is_file()):
        return None
    import numpy as np
    from scipy.io import loadmat

    try:
        tracks = np.asarray(loadmat(tracks_file)["track_test_info"], dtype=np.int64)
        query_idx = np.asarray(loadmat(query_file)["query_IDX"], dtype=np.int64).ravel() - 1
    except (KeyError, ValueError, OSError) as exc:
        raise InputError(f"{info}: cannot read the MARS split files ({exc})") from None
    names = [n.strip() for n in names_file.read_text().splitlines() if n.strip()]
    items: list[ReidItem | None] = []
    for start, end, pid, cam in tracks[:, :4]:
        if pid == -1:
            items.append(None)
            continue
        frames = tuple(root / "bbox_test" / n[:4] / n for n in names[start - 1 : end])
        items.append(ReidItem(frames[0], int(pid), int(cam), frames) if frames else None)
    qset = set(query_idx.tolist())
    ds = ReidDataset(root, "mars", tracklet=True)
    ds.query = [it for i, it in enumerate(items) if i in qset and it is not None]
    ds.gallery = [it for i, it in enumerate(items) if i not in qset and it is not None]
    return ds


def _read_mars(root: Path) -> ReidDataset:
    ds = _read_mars_mat(root)
    if ds is None:  # folder-based fallback (module docstring)
        ds = ReidDataset(root, "mars", tracklet=True)
        by_id: dict[int, list[ReidItem]] = defaultdict(list)
        for it in _tracklets(_mars_frames(root / "bbox_test")):
            by_id[it.pid].append(it)
        for pid, tracks in by_id.items():
            cams = sorted({t.camid for t in tracks})
            if pid == 0 or len(cams) < 2:
                ds.gallery.extend(tracks)
                continue
            q = next(t for t in tracks if t.camid == cams[0])
            ds.query.append(q)
            ds.gallery.extend(t for t in tracks if t is not q)
    ds.train = _tracklets(_mars_frames(root / "bbox_train"))
    return ds


# ---------------------------------------------------------------- generic ROOT/<id>/<camera>/*.jpg


def _generic_tree(root: Path, pid_of: dict[str, int], cam_of: dict[str, int]) -> dict[int, dict[int, list[Path]]]:
    tree: dict[int, dict[int, list[Path]]] = {}
    for person in _subdirs(root):
        pid = pid_of.setdefault(person.name, len(pid_of))
        for cam in _subdirs(person):
            imgs = _images(cam)
            if imgs:
                tree.setdefault(pid, {})[cam_of.setdefault(cam.name, len(cam_of))] = imgs
    return tree


def _flatten(tree: dict[int, dict[int, list[Path]]]) -> list[ReidItem]:
    return [ReidItem(p, pid, cam) for pid, cams in tree.items() for cam, imgs in cams.items() for p in imgs]


def _read_generic(root: Path) -> ReidDataset:
    ds = ReidDataset(root, "generic")
    if (root / "query").is_dir() and (root / "gallery").is_dir():
        names = sorted({p.name for s in ("query", "gallery", "train") for p in _subdirs(root / s)})
        pid_of = {n: i for i, n in enumerate(names)}
        cam_names = sorted({c.name for s in ("query", "gallery", "train") for p in _subdirs(root / s)
                            for c in _subdirs(p)})
        cam_of = {n: i for i, n in enumerate(cam_names)}
        ds.query = _flatten(_generic_tree(root / "query", pid_of, cam_of))
        ds.gallery = _flatten(_generic_tree(root / "gallery", pid_of, cam_of))
        ds.train = _flatten(_generic_tree(root / "train", pid_of, cam_of))
        return ds
    pid_of: dict[str, int] = {}
    cam_of = {n: i for i, n in enumerate(sorted({c.name for p in _subdirs(root) for c in _subdirs(p)}))}
    for pid, cams in _generic_tree(root, pid_of, cam_of).items():
        order = sorted(cams)
        if len(order) < 2:
            ds.gallery.extend(ReidItem(p, pid, order[0]) for p in cams[order[0]])
            continue
        ds.query.extend(ReidItem(p, pid, order[0]) for p in cams[order[0]])
        ds.gallery.extend(ReidItem(p, pid, c) for c in order[1:] for p in cams[c])
    return ds
