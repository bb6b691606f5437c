"""Faults in models and devices as a user sees them: one-line errors that name the file and the fix.

Covers ONNX detectors whose input is not an image batch, ReID weights and
training checkpoints that are not plain tensors, ``--device`` values, and the
one fallback rule (warning + CPU) of every backend when the device is missing.
Tiny ONNX models are exported into ``tmp_path``; no model file is committed.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import MOT15
from torch import nn

from pipeline import devices
from pipeline.cli import main
from pipeline.config import DetectorConfig, ReidConfig, load_config
from pipeline.detectors.factory import build_detector
from pipeline.errors import ConfigError, ModelError
from pipeline.onnx_session import error_text, open_session
from pipeline.types import Frame
from reid.checkpoint import load_checkpoint
from reid.factory import build_reid
from reid.weights import build_torch_model

VIDEO = MOT15 / "TUD-Stadtmitte" / "TUD-Stadtmitte.mp4"
SAFETY = "not a plain state dict (only tensors are loaded, for safety)"


ORT_NO_CUDA = "CUDA is not available here (this onnxruntime build has no CUDA provider); running on CPU"

def _export(module: nn.Module, shape: tuple[int, ...], path: Path, dynamic: bool = False) -> Path:
    """Export ``module`` for an input of ``shape`` to ``path`` (batch, H and W dynamic when ``dynamic``)."""
    axes = {"images": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), torch.zeros(shape), str(path), input_names=["images"],
                          dynamic_axes=axes, dynamo=False)
    return path


def _grid_head(channels: int) -> nn.Module:
    """``N×C×64×64`` → ``N×6×64``: a YOLOv8-shaped output (4 box rows, 2 classes) over 64 cells."""
    return nn.Sequential(nn.Conv2d(channels, 6, 8, stride=8), nn.Flatten(2))


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither CUDA (torch, onnxruntime) nor MPS: the real probes where the machine lacks them, else faked.

    torch's own functions are not patched: its compiler (used by ultralytics)
    inspects them.
    """
    real_gpu = (
        torch.cuda.is_available()
        or torch.backends.mps.is_available()
        or "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    )
    if real_gpu:
        monkeypatch.setattr(devices, "_capabilities", lambda backend: (0, 0, False))


def _fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pipeline.devices" and r.levelno == logging.WARNING]


# --- ONNX detector input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "dynamic", "dims"),
    [("", False, "1×1×64×64"), ("yolox:", False, "1×1×64×64"), ("", True, "batch×1×height×width"),
     ("yolov8:", True, "batch×1×height×width")],
)
def test_one_channel_onnx_detector_is_one_line_model_error(
    tmp_path: Path, prefix: str, dynamic: bool, dims: str
) -> None:
    model = _export(_grid_head(1), (1, 1, 64, 64), tmp_path / "gray.onnx", dynamic)
    with pytest.raises(ModelError) as exc:
        build_detector(DetectorConfig(spec=f"{prefix}{model}"), {})
    msg = _one_line(exc)
    assert msg == (
        f"{model}: detector input is {dims} (N×C×H×W); a person detector needs 3 channels (BGR/RGB): "
        "re-export the model with an N×3×H×W input"
    )


def test_onnx_detector_without_image_input(tmp_path: Path) -> None:
    model = _export(nn.Linear(16, 6), (1, 16), tmp_path / "flat.onnx")
    with pytest.raises(ModelError) as exc:
        build_detector(DetectorConfig(spec=f"yolox:{model}"), {})
    msg = _one_line(exc)
    assert msg.startswith(f"{model}: detector input is 1×16 (rank 2)") and "N×3×H×W" in msg


def test_onnxruntime_errors_are_kept_whole(tmp_path: Path) -> None:
    model = _export(_grid_head(3), (1, 3, 64, 64), tmp_path / "rgb.onnx")
    session = open_session(model, "cpu", 1, "test")
    with pytest.raises(Exception) as exc:  # noqa: PT011 - onnxruntime's own untyped error
        session.run(None, {"images": np.zeros((1, 1, 64, 64), np.float32)})
    text = error_text(exc.value)
    assert "\n" not in text and "Got invalid dimensions" in text and "Got: 1 Expected: 3" in text


# --- ReID weights and training checkpoints that are not plain tensors ---------------------------


class _NotATensor:
    """A class a weights-only load must refuse."""


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(512))


def _pickled_object(path: Path) -> None:
    torch.save({"model": _NotATensor(), "epoch": 1}, path)


def _truncated_zip(path: Path) -> None:
    torch.save({"w": torch.zeros(64)}, path)
    path.write_bytes(path.read_bytes()[:200])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


GARBAGE = [_random_bytes, _pickled_object, _truncated_zip, _empty]


def _assert_safe_message(msg: str, path: Path, hint: str) -> None:
    assert str(path) in msg and SAFETY in msg and msg.endswith(hint), msg
    assert "weights_only" not in msg and "safe_globals" not in msg and "trust" not in msg, msg


@pytest.mark.parametrize("make", GARBAGE, ids=lambda f: f.__name__.strip("_"))
def test_garbage_reid_weights_say_not_a_plain_state_dict(tmp_path: Path, make) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.pth"
    make(bad)
    with pytest.raises(ModelError) as exc:
        build_reid(ReidConfig(spec=f"osnet_x0_25:{bad}"))
    msg = _one_line(exc)
    assert msg.startswith(f"cannot read ReID weights {bad}: {SAFETY}")
    _assert_safe_message(msg, bad, "give weights saved with torch.save(model.state_dict())")


@pytest.mark.parametrize("make", GARBAGE, ids=lambda f: f.__name__.strip("_"))
def test_garbage_resume_checkpoint_says_not_a_plain_state_dict(tmp_path: Path, make) -> None:  # noqa: ANN001
    bad = tmp_path / "last.pth"
    make(bad)
    with pytest.raises(ModelError) as exc:
        load_checkpoint(bad)
    msg = _one_line(exc)
    assert msg.startswith(f"cannot read resume checkpoint {bad}: {SAFETY}")
    _assert_safe_message(msg, bad, "resume from a last.pth or best.pth that training wrote")


def test_pickled_object_names_the_refused_class(tmp_path: Path) -> None:
    bad = tmp_path / "obj.pth"
    _pickled_object(bad)
    with pytest.raises(ModelError, match=r"Unsupported global: GLOBAL [\w.]*_NotATensor was not an allowed global"):
        build_reid(ReidConfig(spec=f"osnet_x0_25:{bad}"))


# --- device strings -----------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["detector", "reid"])
@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:-1", "cuda:1.5", "cuda0", "", "tpu"])
def test_bad_device_is_config_error(section: str, device: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(None, {section: {"device": device}})
    msg = _one_line(exc)
    assert f"{section}.device" in msg and repr(device) in msg and "use cpu, cuda, cuda:N or mps" in msg


@pytest.mark.parametrize(
    ("device", "kept"), [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda:0"), ("cuda:12", "cuda:12"),
                         ("mps", "mps"), (" CUDA:1 ", "cuda:1")],
)
def test_good_device_is_accepted(device: str, kept: str) -> None:
    cfg = load_config(None, {"detector": {"device": device}, "reid": {"device": device}})
    assert cfg.detector.device == kept and cfg.reid.device == kept
    assert load_config(None, {"reid": {"device": None}}).reid.device is None


@pytest.mark.parametrize(("device", "name"), [("cuda", "CUDA"), ("cuda:1", "CUDA"), ("mps", "MPS")])
def test_missing_device_warns_and_runs_on_cpu(
    no_gpu: None, caplog: pytest.LogCaptureFixture, device: str, name: str
) -> None:
    for backend in ("torch", "onnxruntime"):
        assert devices.resolve(device, "model M", backend) == "cpu"
    ort_reason = " (this onnxruntime build has no CUDA provider)" if name == "CUDA" else ""
    assert _fallback_warnings(caplog) == [f"model M: {name} is not available here; running on CPU",
                                          f"model M: {name} is not available here{ort_reason}; running on CPU"]


def test_cuda_index_beyond_the_gpus_is_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve("cuda:1", "model M") == "cuda:1"
    with pytest.raises(ModelError) as exc:
        devices.resolve("cuda:2", "model M")
    assert _one_line(exc) == "model M: cuda:2 does not exist: this machine has 2 CUDA device(s); use cuda:0 to cuda:1"


def test_onnx_detector_on_missing_cuda_runs_on_cpu(
    no_gpu: None, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    model = _export(_grid_head(3), (1, 3, 64, 64), tmp_path / "rgb.onnx")
    det = build_detector(DetectorConfig(spec=f"yolov8:{model}", device="cuda"), {})
    assert _fallback_warnings(caplog) == [f"ONNX detector rgb.onnx: {ORT_NO_CUDA}"]
    assert det.session.get_providers() == ["CPUExecutionProvider"]
    image = np.zeros((48, 64, 3), np.uint8)
    assert len(det.detect([Frame("cam", 0, 0.0, image, 64, 48)])) == 1


def test_onnx_reid_on_missing_cuda_runs_on_cpu(no_gpu: None, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = _export(net, (1, 3, 64, 32), tmp_path / "reid.onnx", dynamic=True)
    ex = build_reid(ReidConfig(spec=str(model), device="cuda"))
    assert _fallback_warnings(caplog) == [f"ReID ONNX reid.onnx: {ORT_NO_CUDA}"]
    assert ex.session.get_providers() == ["CPUExecutionProvider"]
    assert ex.embed([np.zeros((64, 32, 3), np.uint8)]).shape == (1, 8)


def test_torch_reid_on_missing_cuda_runs_on_cpu(no_gpu: None, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    weights = tmp_path / "osnet.pth"
    torch.save(build_torch_model("osnet_x0_25", None).state_dict(), weights)
    ex = build_reid(ReidConfig(spec=f"osnet_x0_25:{weights}", device="cuda"))
    assert _fallback_warnings(caplog) == [
        "torch-osnet_x0_25:osnet.pth: CUDA is not available here; running on CPU"
    ]
    assert ex.device.type == "cpu"


def test_ultralytics_on_missing_cuda_runs_on_cpu(
    no_gpu: None, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ultralytics", reason="ultralytics is not installed")
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        # no ultralytics *.pt is available offline; a model definition builds with random weights
        det = build_detector(DetectorConfig(spec="yolo11n.yaml", device="cuda", imgsz=64, threads=1), {})
        assert _fallback_warnings(caplog) == [
            "ultralytics detector yolo11n.yaml: CUDA is not available here; running on CPU"
        ]
        image = np.zeros((48, 64, 3), np.uint8)
        assert len(det.detect([Frame("cam", 0, 0.0, image, 64, 48)])) == 1
        det.close()
    finally:
        torch.set_num_threads(threads)


# --- the CLI ------------------------------------------------------------------------------------


@pytest.mark.skipif(not VIDEO.is_file(), reason="../shared/data/MOT15 is absent; a user's clone does not have it")
def test_cli_one_channel_detector_exits_2_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _export(_grid_head(1), (1, 1, 64, 64), tmp_path / "gray.onnx")
    out = tmp_path / "out"
    code = main(["run", str(VIDEO), "-o", str(out), "--detector", str(model), "--reid", "none"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"mtmc: error: {model}: detector input is 1×1×64×64") and "3 channels" in err
    assert not out.exists()
