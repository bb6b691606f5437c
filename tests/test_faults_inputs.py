"""Bad inputs and bad configs: one-line errors that name the file or key and say what to do."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.errors import ConfigError, InputError
from pipeline.live_reader import parse_source, parse_sources
from pipeline.sources import discover_cameras, sanitize_camera_id

HINT = "(see configs/default.yaml for valid keys and values)"


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # discovery never decodes: an empty file is a camera
    return path


def _ids(inputs: list[Any]) -> list[str]:
    return [s.camera_id for s in discover_cameras(inputs)]


# --- camera ids -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("caméra 北", "caméra_北"),  # letters of any script are kept, the space becomes "_"
    ("北门", "北门"),
    ("कैमरा", "कैमरा"),  # combining vowel signs stay with their letters
    ("ｃａｍ①", "cam1"),  # NFKC: full-width letters, circled digit
    ("cafe\u0301", "café"),  # NFKC composes e + combining acute
    ('a:b*c?d"e<f>g|h', "a_b_c_d_e_f_g_h"),
    ("a\tb\x00c", "a_b_c"),
    ("..hidden", "hidden"),
    ("a__b", "a__b"),  # underscores of the name are kept, not collapsed
])
def test_unicode_camera_ids(name: str, expected: str) -> None:
    assert sanitize_camera_id(name) == expected


def test_long_ids_stay_within_64_characters_and_200_bytes() -> None:
    assert sanitize_camera_id("x" * 100) == "x" * 64
    wide = sanitize_camera_id("\U00020000" * 64)  # 4 UTF-8 bytes each
    assert len(wide) == 50 and len(wide.encode()) == 200


def test_unicode_file_names_keep_distinct_ids(tmp_path: Path) -> None:
    _touch(tmp_path / "caméra 北.mp4")
    _touch(tmp_path / "camèra 北.mp4")  # both were "cam_ra" before
    _touch(tmp_path / "北门.mp4")
    assert sorted(_ids([tmp_path])) == ["camèra_北", "caméra_北", "北门"]


@pytest.mark.parametrize("given_as", ["folder", "file"])
def test_no_camera_id_names_the_file(tmp_path: Path, given_as: str) -> None:
    bad = _touch(tmp_path / "..mp4")
    with pytest.raises(InputError) as e:
        discover_cameras([tmp_path if given_as == "folder" else bad])
    assert str(e.value) == f"cannot derive a camera id from {bad}: rename the file"


def test_colliding_ids_get_a_free_suffix_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, xa, a2 = _touch(tmp_path / "a.mp4"), _touch(tmp_path / "x" / "a.mp4"), _touch(tmp_path / "a_2.mp4")
    with caplog.at_level(logging.WARNING, logger="pipeline.sources"):
        assert _ids([a, xa, a2]) == ["a", "a_3", "a_2"]  # "a_2" is taken by a_2.mp4
    assert caplog.messages == [
        f"camera id 'a' of {xa} clashes with 'a' of {a}: it becomes 'a_3' (rename one to choose its id)"
    ]


def test_ids_differing_only_in_case_collide(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.sources"):
        assert _ids([_touch(tmp_path / "Cam.mp4"), _touch(tmp_path / "x" / "cam.mp4")]) == ["Cam", "cam_2"]
    assert len(caplog.messages) == 1 and "it becomes 'cam_2'" in caplog.messages[0]


# --- the same camera twice ------------------------------------------------------------------------------------

def _twice_direct(tmp_path: Path) -> tuple[list[Any], str]:
    f = _touch(tmp_path / "v" / "a.mp4")
    return [f, f], f"{f.resolve()} is given twice: pass each camera once"


def _twice_via_folder(tmp_path: Path) -> tuple[list[Any], str]:
    f = _touch(tmp_path / "v" / "a.mp4")
    folder = tmp_path / "v"
    return [f, folder], f"{f.resolve()} is given twice (as {f} and {f} in {folder}): pass each camera once"


def _twice_via_link(tmp_path: Path) -> tuple[list[Any], str]:
    f = _touch(tmp_path / "v" / "a.mp4")
    link = tmp_path / "link.mp4"
    os.symlink(f, link)
    return [f, link], f"{f.resolve()} is given twice (as {f} and {link}): pass each camera once"


def _twice_relative(tmp_path: Path) -> tuple[list[Any], str]:
    f = _touch(tmp_path / "v" / "a.mp4")
    return ["v/a.mp4", f], f"{f.resolve()} is given twice (as v/a.mp4 and {f}): pass each camera once"


def _twice_sequence_video(tmp_path: Path) -> tuple[list[Any], str]:
    seq = tmp_path / "S"
    video = _touch(seq / "S.mp4")  # a sequence folder holding one video is that video
    (seq / "seqinfo.ini").write_text("[Sequence]\nframeRate=25\nseqLength=3\nimWidth=64\nimHeight=64\n")
    message = f"{video.resolve()} is given twice (as {seq} in {tmp_path} and {video}): pass each camera once"
    return [tmp_path, video], message


@pytest.mark.parametrize("case", [_twice_direct, _twice_via_folder, _twice_via_link, _twice_relative,
                                  _twice_sequence_video])
def test_same_file_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Any) -> None:
    monkeypatch.chdir(tmp_path)
    inputs, message = case(tmp_path)
    with pytest.raises(InputError) as e:
        discover_cameras(inputs)
    assert str(e.value) == message


# --- config files ---------------------------------------------------------------------------------------------

def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("tracker:\n  max_age_s: 2\n  min_hits: 3: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == (
        f"{f}: not valid YAML at line 3, column 14: mapping values are not allowed here "
        "(fix it there: indent with spaces, put a space after each ':', close quotes and brackets)"
    )


def test_yaml_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_bytes(b"tracker:\n  type: \xff\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: not UTF-8 text (bad byte at offset 17): save the file as UTF-8"


TRACKER_KEYS = (
    "type, high_thresh, low_thresh, new_track_thresh, match_iou, second_match_iou, tentative_match_iou, min_hits, "
    "max_age_s, min_box_area, appearance, gating, appearance_thresh, meas_std, proximity_iou, feature_alpha, "
    "feature_interval_s, cmc, cmc_downscale"
)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("linking:\n  topology:\n    a:\n      b: '5-10'\n",
     "linking.topology.a.b: expected false (never link) or a [min_s, max_s] transit window of two numbers, "
     "got '5-10'"),
    ("linking:\n  topology: {a: {b: [1, x]}}\n",
     "linking.topology.a.b: expected false (never link) or a [min_s, max_s] transit window of two numbers, "
     "got [1, 'x']"),
    ("linking:\n  topology: {a: {b: [9, 1]}}\n",
     "linking.topology.a.b: min_s 9.0 exceeds max_s 1.0: give the window as [min_s, max_s], shortest first"),
    ("detector:\n  conf: abc\n", "detector.conf: expected a number, got 'abc'"),
    ("tracker:\n  min_hits: 2.5\n", "tracker.min_hits: expected a whole number, got 2.5"),
    ("reid:\n  spec: 5\n", "reid.spec: expected a string (quote it), got 5"),
    ("linking:\n  threshold: high\n", "linking.threshold: expected a number or 'auto', got 'high'"),
    ("detector:\n  conf: 1.5\n", "detector.conf: must be at most 1, got 1.5"),
    ("linking:\n  k1: 0\n", "linking.k1: must be at least 1, got 0"),
    ("detector:\n  nms_iou: 0\n", "detector.nms_iou: must be greater than 0, got 0"),
    ("tracker:\n  type: x\n", "tracker.type: must be one of 'sort', 'bytetrack', 'fused', got 'x'"),
    ("tracker:\n  max_agee_s: 2\n",
     f"tracker.max_agee_s: unknown key (did you mean 'max_age_s'? valid keys: {TRACKER_KEYS})"),
    ("trackr: {}\n", "trackr: unknown key (did you mean 'tracker'? valid keys: decode, detector, tracker, reid, "
                     "tracklets, linking, output, live, executor, cameras)"),
    ("tracker: 5\n", "tracker: expected a mapping of keys, got 5"),
    ("tracker:\n  low_thresh: 0.9\n  high_thresh: 0.5\n",
     "tracker.low_thresh (0.9) must not exceed tracker.high_thresh (0.5)"),
])
def test_config_errors_are_plain_sentences(tmp_path: Path, yaml_text: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: {message} {HINT}"


def test_override_errors_name_the_command_line(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("tracker:\n  type: sort\n")
    with pytest.raises(ConfigError) as e:
        load_config(f, {"detector": {"conf": 2.0}})
    assert str(e.value) == f"command line: detector.conf: must be at most 1, got 2.0 {HINT}"


# --- live sources ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("item", "camera"), [
    ("北门=rtsp://user:pw@10.0.0.5/stream", "北门"),
    ("Porte d'entrée=rtsp://h/s", "Porte_d_entrée"),
    ("rtsp://h/%E5%8C%97%E9%97%A8", "北门"),  # the URL path, percent-decoded
    ("caméra 北.mp4", "caméra_北"),
])
def test_live_camera_ids_keep_unicode(item: str, camera: str) -> None:
    assert parse_source(item).camera_id == camera


@pytest.mark.parametrize(("item", "message"), [
    ("...=rtsp://user:pw@h/x",
     "cannot derive a camera id from the name '...' of '...=rtsp://***:***@h/x': use letters or digits in it"),
    ("rtsp://user:pw@h/...", "cannot derive a camera id from 'rtsp://***:***@h/...': name the camera as NAME=URL"),
    ("..mp4", "cannot derive a camera id from ..mp4: rename the file or name it as NAME=FILE"),
])
def test_live_no_camera_id(item: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        parse_source(item)
    assert str(e.value) == message


def test_live_colliding_names_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.sources"):
        ids = [s.camera_id for s in parse_sources(["门=rtsp://u:pw@h/a", "门=rtsp://h/b"])]
    assert ids == ["门", "门_2"]
    assert caplog.messages == [
        "camera id '门' of rtsp://h/b clashes with '门' of rtsp://***:***@h/a: it becomes '门_2' "
        "(rename one to choose its id)"
    ]


# --- through the CLI: exit 2, one line on stderr ----------------------------------------------------------------

def test_cli_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _touch(tmp_path / "in" / "..mp4")
    assert main(["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--reid", "none"]) == 2
    err = capsys.readouterr().err
    assert err == f"mtmc: error: cannot derive a camera id from {bad}: rename the file\n"


def test_cli_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("tracker:\n  type: x\n")
    assert main(["config", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert err == f"mtmc: error: {f}: tracker.type: must be one of 'sort', 'bytetrack', 'fused', got 'x' {HINT}\n"
    assert err.count("\n") == 1
