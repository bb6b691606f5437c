"""Choose and build the ReID feature extractor named by ``ReidConfig.spec``.

SPEC forms:

* ``'none'``: no ReID (:func:`build_reid` returns ``None``);
* ``'path/to/model.onnx'``: :class:`~reid.onnx_backend.OnnxReidExtractor`;
* ``'ARCH:path/to/weights.pth'`` with ARCH one of :data:`reid.weights.ARCHS`
  (``osnet_x1_0``, ``osnet_x0_75``, ``osnet_x0_5``, ``osnet_x0_25``, ``resnet50``):
  the torch model of that architecture with the state dict loaded, run by
  :class:`~reid.torch_backend.TorchReidExtractor`;
* a known model name (:data:`reid.download.KNOWN_MODELS`, e.g. ``'osnet_x0_25_msmt17'``):
  the torchreid model-zoo weights, downloaded once (:func:`reid.download.download_weights`).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ReidConfig
from pipeline.errors import ModelError
from reid.download import KNOWN_MODELS, download_weights
from reid.extractor import FeatureExtractor
from reid.weights import ARCHS, build_torch_model, load_state_dict_file

SPEC_HELP = (
    "'none', 'model.onnx', 'ARCH:weights.pth' with ARCH one of " + ", ".join(ARCHS) + ", or a known model name ("
    + ", ".join(KNOWN_MODELS) + ")"
)


def _torch_extractor(arch: str, weights: Path, label: str, cfg: ReidConfig, device: str) -> FeatureExtractor:
    from reid.torch_backend import TorchReidExtractor

    model = build_torch_model(arch, load_state_dict_file(weights), str(weights))
    return TorchReidExtractor(
        model, name=f"torch-{arch}:{label}", batch=cfg.batch, device=device, threads=cfg.threads
    )


def build_reid(cfg: ReidConfig, default_device: str = "cpu") -> FeatureExtractor | None:
    """Build the ReID feature extractor for ``cfg.spec`` (forms in the module docstring).

    Args:
        cfg: ``spec``, ``batch``, ``device`` (``None`` → ``default_device``) and
            ``threads`` (0 = all cores).
        default_device: the detector's device, used when ``cfg.device`` is ``None``.

    Returns:
        A :class:`~reid.extractor.FeatureExtractor`, or ``None`` for ``'none'``.

    Raises:
        ModelError: unknown SPEC (the message lists the valid forms), a missing
            model or weights file (named), weights that do not fit the
            architecture, or a known model that cannot be downloaded (the message
            names the local options).
    """
    spec = cfg.spec.strip()
    device = cfg.device or default_device
    lower = spec.lower()
    if lower == "none":
        return None
    if lower.endswith(".onnx"):
        from reid.onnx_backend import OnnxReidExtractor

        return OnnxReidExtractor(spec, batch=cfg.batch, device=device, threads=cfg.threads)
    head, sep, tail = spec.partition(":")
    if sep and head.lower() in ARCHS:
        arch = head.lower()
        if not tail.strip():
            raise ModelError(f"ReID SPEC {spec!r}: give the weights file after the colon, e.g. {arch}:weights.pth")
        weights = Path(tail.strip()).expanduser()
        if not weights.is_file():
            raise ModelError(f"ReID weights not found: {weights}")
        return _torch_extractor(arch, weights, weights.name, cfg, device)
    name = lower.removesuffix(".pth").removesuffix(".pt")
    if name in KNOWN_MODELS:  # 'osnet_x0_25_msmt17', or a local 'osnet_x0_25_msmt17.pt' file
        local = Path(spec).expanduser()
        path = local if name != lower and local.is_file() else download_weights(name)
        return _torch_extractor(KNOWN_MODELS[name].arch, path, path.name, cfg, device)
    if lower.endswith((".pth", ".pt")):
        raise ModelError(
            f"ReID SPEC {spec!r}: a torch state dict needs its architecture, e.g. osnet_x0_25:{spec} "
            f"(architectures: {', '.join(ARCHS)})"
        )
    raise ModelError(f"unknown ReID SPEC {spec!r}: use {SPEC_HELP}")
