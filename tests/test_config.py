"""The typed config: defaults in one place, clear errors for wrong keys and values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from pipeline.config import default_config_dict, load_config
from pipeline.errors import ConfigError


def test_default_yaml_mirrors_the_typed_defaults() -> None:
    on_disk = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert on_disk == default_config_dict()


def test_partial_override(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("tracker:\n  max_age_s: 2.5\n")
    cfg = load_config(f, {"detector": {"conf": 0.3}})
    assert cfg.tracker.max_age_s == 2.5
    assert cfg.detector.conf == 0.3
    assert cfg.tracker.min_hits == load_config().tracker.min_hits


def test_unknown_key_names_the_dotted_key(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("tracker:\n  max_agee_s: 2\n")
    with pytest.raises(ConfigError, match=r"c.yaml: tracker.max_agee_s: unknown key"):
        load_config(f)


def test_bad_value(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("detector:\n  conf: 1.5\n")
    with pytest.raises(ConfigError, match=r"detector.conf: must be at most 1, got 1.5"):
        load_config(f)
    f.write_text("tracker:\n  low_thresh: 0.9\n  high_thresh: 0.5\n")
    with pytest.raises(ConfigError, match="low_thresh"):
        load_config(f)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    f = tmp_path / "c.yaml"
    f.write_text("tracker: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(f)


@pytest.mark.parametrize(("tracker", "message"), [
    ({"type": "sort", "cmc": "ecc"}, "tracker.cmc: not used by tracker.type 'sort' (only by 'fused')"),
    ({"type": "bytetrack", "appearance": True}, "tracker.appearance: not used by tracker.type 'bytetrack'"),
    ({"type": "sort", "low_thresh": 0.2}, "tracker.low_thresh: not used by tracker.type 'sort' (only by 'bytetrack', "
                                          "'fused')"),
])
def test_a_key_the_chosen_tracker_ignores_is_an_error(tracker: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, {"tracker": tracker})


def test_the_full_default_yaml_works_with_every_tracker_type() -> None:
    full = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    for kind in ("sort", "bytetrack", "fused"):
        full["tracker"]["type"] = kind
        assert load_config(None, full).tracker.type == kind  # defaults of other types' keys are fine
