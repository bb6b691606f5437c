"""Download of known ReID checkpoints (torchreid's model zoo) into a local cache.

Known-model URLs are torchreid's model zoo (K. Zhou, ``deep-person-reid``,
``docs/MODEL_ZOO.md``, "Same-domain ReID" table; the same Google Drive file ids
are in boxmot's ``reid_model_factory.py``). They are Google Drive files: a plain
``drive.google.com/uc?id=…`` request answers a small file directly but a web page
for some files (virus-scan notice) or when the quota is exceeded, so the
download uses Drive's direct endpoint with ``confirm=t``, follows the page's
download form once if a page still comes back, and accepts only a torch
checkpoint (zip or pickle magic bytes, and the SHA-256 where known).
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ModelError, first_line

CACHE_DIR = Path.home() / ".cache" / "mtmc" / "reid"
"""Where known models are downloaded to (``<name>.pth``)."""

LOCAL_OPTIONS = "--reid path/to/model.onnx, --reid osnet_x0_25:path/to/weights.pth, or --reid none"
"""The offline alternatives named by every download failure."""

DOWNLOAD_TIMEOUT_S = 60.0
"""Socket timeout of one download request (s)."""


@dataclass(frozen=True)
class KnownModel:
    """A downloadable torchreid model-zoo checkpoint.

    Attributes:
        arch: key of :data:`ARCHS` the weights fit.
        url: where the file is published (a Google Drive ``uc?id=`` link).
        dataset: training set (``market1501``, ``dukemtmcreid``, ``msmt17``).
        sha256: hex digest of the file when known (checked after download), else ``None``.
    """

    arch: str
    url: str
    dataset: str
    sha256: str | None = None


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?id={file_id}"


# torchreid docs/MODEL_ZOO.md, "Same-domain ReID": softmax loss, 256×128, trained on one dataset each.
KNOWN_MODELS: dict[str, KnownModel] = {
    "osnet_x1_0_market1501": KnownModel("osnet_x1_0", _drive("1vduhq5DpN2q1g4fYEZfPI17MJeh9qyrA"), "market1501"),
    "osnet_x1_0_dukemtmcreid": KnownModel("osnet_x1_0", _drive("1QZO_4sNf4hdOKKKzKc-TZU9WW1v6zQbq"), "dukemtmcreid"),
    "osnet_x1_0_msmt17": KnownModel("osnet_x1_0", _drive("112EMUfBPYeYg70w-syK6V6Mx8-Qb9Q1M"), "msmt17"),
    "osnet_x0_75_market1501": KnownModel("osnet_x0_75", _drive("1ozRaDSQw_EQ8_93OUmjDbvLXw9TnfPer"), "market1501"),
    "osnet_x0_75_dukemtmcreid": KnownModel("osnet_x0_75", _drive("1IE3KRaTPp4OUa6PGTFL_d5_KQSJbP0Or"), "dukemtmcreid"),
    "osnet_x0_75_msmt17": KnownModel("osnet_x0_75", _drive("1QEGO6WnJ-BmUzVPd3q9NoaO_GsPNlmWc"), "msmt17"),
    "osnet_x0_5_market1501": KnownModel("osnet_x0_5", _drive("1PLB9rgqrUM7blWrg4QlprCuPT7ILYGKT"), "market1501"),
    "osnet_x0_5_dukemtmcreid": KnownModel("osnet_x0_5", _drive("1KoUVqmiST175hnkALg9XuTi1oYpqcyTu"), "dukemtmcreid"),
    "osnet_x0_5_msmt17": KnownModel("osnet_x0_5", _drive("1UT3AxIaDvS2PdxzZmbkLmjtiqq7AIKCv"), "msmt17"),
    "osnet_x0_25_market1501": KnownModel("osnet_x0_25", _drive("1z1UghYvOTtjx7kEoRfmqSMu-z62J6MAj"), "market1501"),
    "osnet_x0_25_dukemtmcreid": KnownModel("osnet_x0_25", _drive("1eumrtiXT4NOspjyEV4j8cHmlOaaCGk5l"), "dukemtmcreid"),
    "osnet_x0_25_msmt17": KnownModel(
        "osnet_x0_25",
        _drive("1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF"),
        "msmt17",
        # the digest a public download script pins for this Drive id; also that of
        # ../shared/models/osnet_x0_25_msmt17_torchreid.pth
        sha256="6f57607fed9f502b9efed546108132ee715df5a5b6e6932c6269bacb47f59f99",
    ),
}
"""Known model name → its torchreid model-zoo checkpoint."""

def _direct_url(url: str) -> str:
    """A Drive ``uc?id=`` / ``file/d/ID`` link → Drive's direct download endpoint; other URLs unchanged."""
    parsed = urllib.parse.urlparse(url)
    if parsed.netloc not in ("drive.google.com", "docs.google.com"):
        return url
    file_id = urllib.parse.parse_qs(parsed.query).get("id", [None])[0]
    if file_id is None:
        m = re.search(r"/file/d/([\w-]+)", parsed.path)
        file_id = m.group(1) if m else None
    if file_id is None:
        return url
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


def _is_checkpoint(head: bytes) -> bool:
    """Magic bytes of torch's zip format (≥ 1.6) or of a legacy pickle."""
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _confirm_url(page: str) -> str | None:
    """The URL behind a Drive warning page's download form (``action`` + hidden inputs), if any."""
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"', page) or re.search(
        r'<form[^>]*action="([^"]+)"', page
    )
    if form is None:
        return None
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    action = html.unescape(form.group(1))
    return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(fields) if fields else action


def _fetch(url: str, dest: Path, timeout: float) -> None:
    """Download ``url`` to ``dest`` and make sure it is a torch checkpoint.

    Raises:
        OSError: network failure (``urllib.error.URLError`` is one).
        ValueError: the server answered something that is not a checkpoint.
    """
    target = _direct_url(url)
    for _attempt in range(2):
        req = urllib.request.Request(target, headers={"User-Agent": "mtmc"})
        with urllib.request.urlopen(req, timeout=timeout) as resp, dest.open("wb") as f:
            shutil.copyfileobj(resp, f)
        with dest.open("rb") as f:
            head = f.read(4)
        if _is_checkpoint(head):
            return
        page = dest.read_bytes()[:1_000_000].decode("utf-8", errors="replace")
        follow = _confirm_url(page) if "<html" in page.lower() else None
        if follow is None:
            break
        target = urllib.parse.urljoin(target, follow)
    raise ValueError("the server answered a web page, not a checkpoint (Drive quota exceeded or link moved)")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_weights(name: str, cache_dir: Path | None = None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Path of known model ``name``'s checkpoint, downloading it once into the cache.

    The file is ``<cache_dir>/<name>.pth``; it is written to a ``.part`` file
    first and renamed only when complete (and its SHA-256 matches, where known).

    Args:
        name: key of :data:`KNOWN_MODELS`.
        cache_dir: default :data:`CACHE_DIR` (``~/.cache/mtmc/reid``).
        timeout: socket timeout per request (s).

    Raises:
        ModelError: unknown name, or the download fails (offline, server error,
            wrong content); the one-line message names the local alternatives
            (:data:`LOCAL_OPTIONS`) and where the file may be put by hand.
    """
    if name not in KNOWN_MODELS:
        raise ModelError(f"unknown ReID model name {name!r}; known: {', '.join(KNOWN_MODELS)}")
    entry = KNOWN_MODELS[name]
    dest = Path(cache_dir if cache_dir is not None else CACHE_DIR).expanduser() / f"{name}.pth"
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(entry.url, part, timeout)
        if entry.sha256 is not None and _sha256(part) != entry.sha256:
            raise ValueError("SHA-256 mismatch")
        part.replace(dest)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are OSErrors
        part.unlink(missing_ok=True)
        text = first_line(getattr(exc, "reason", None) or exc) or type(exc).__name__
        raise ModelError(
            f"cannot download ReID model {name!r} from {entry.url} ({text}); offline, use a local model: "
            f"{LOCAL_OPTIONS} (or put the checkpoint at {dest})"
        ) from None
    return dest
