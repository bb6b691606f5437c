"""``executor`` config and ``--executor ray`` without Ray: checked before any camera runs (no Ray needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import OSNET_ONNX, YOLOX, requires_shared

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.errors import ConfigError


@pytest.mark.parametrize(("section", "key"), [
    ({"type": "dask"}, "executor.type"),
    ({"num_cpus_per_camera": 0}, "executor.num_cpus_per_camera"),
    ({"num_gpus_per_camera": -1}, "executor.num_gpus_per_camera"),
    ({"ray_address": "host name:6379"}, "executor.ray_address"),
    ({"chunk_frames": 0}, "executor.chunk_frames"),
])
def test_bad_executor_values_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], section: dict,
                                          key: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"executor": section}))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(cfg)
    assert main(["run", str(tmp_path), "-o", str(tmp_path / "out"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0]


def test_flags_set_the_executor_keys() -> None:
    from pipeline.cli import _build_parser, _run_overrides

    args = _build_parser().parse_args(["run", "x", "-o", "y", "--executor", "ray", "--ray-address", "10.0.0.1:6379"])
    cfg = load_config(None, _run_overrides(args))
    assert (cfg.executor.type, cfg.executor.ray_address) == ("ray", "10.0.0.1:6379")
    assert load_config().executor.type == "local"
    implied = _build_parser().parse_args(["run", "x", "-o", "y", "--ray-address", "auto"])
    assert load_config(None, _run_overrides(implied)).executor.type == "ray"


@requires_shared
def test_executor_ray_without_ray_exits_2_with_the_install_command(
        tmp_path: Path, tiny_video: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as when not installed
    rc = main(["run", str(tiny_video), "-o", str(tmp_path / "out"), "--detector", f"yolox:{YOLOX}", "--reid",
               str(OSNET_ONNX), "--no-progress", "--executor", "ray"])
    assert rc == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mtmc: error:")]
    assert len(err) == 1 and 'pip install -e ".[ray]"' in err[0]
    assert not (tmp_path / "out" / "summary.json").exists()


def test_live_executor_ray_without_ray_exits_2_with_the_install_command(
        tmp_path: Path, tiny_video: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    rc = main(["live", str(tiny_video), "-o", str(tmp_path / "out"), "--executor", "ray", "--duration", "5"])
    assert rc == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mtmc: error:")]
    assert len(err) == 1 and 'pip install -e ".[ray]"' in err[0]
    assert not (tmp_path / "out" / "events.jsonl").exists()


@requires_shared
def test_save_crops_with_ray_exits_2_before_touching_the_previous_run(
        tmp_path: Path, tiny_video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # a previous run's output
    rc = main(["run", str(tiny_video), "-o", str(out), "--exist-ok", "--detector", f"yolox:{YOLOX}", "--reid",
               str(OSNET_ONNX), "--no-progress", "--executor", "ray", "--save-crops"])
    assert rc == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mtmc: error:")]
    assert len(err) == 1 and "--save-crops is not supported with --executor ray" in err[0]
    assert (out / "summary.json").read_text() == "{}"
