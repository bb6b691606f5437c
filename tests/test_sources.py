"""Camera discovery and decoding: ids, timestamps, and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import MOT15, moving_box_frames, requires_shared, write_video

from pipeline.errors import InputError
from pipeline.sources import (
    CameraError,
    discover_cameras,
    iter_frames,
    mask_credentials,
    mask_text,
    sanitize_camera_id,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cam01", "cam01"),
        ("Lobby Cam #3", "Lobby_Cam_3"),
        ("../../etc/passwd", "etc_passwd"),
        (".hidden", "hidden"),
        ("a/b\\c", "a_b_c"),
    ],
)
def test_sanitize_camera_id(raw: str, expected: str) -> None:
    cid = sanitize_camera_id(raw)
    assert cid == expected
    assert "/" not in cid and not cid.startswith(".")


def test_sanitize_rejects_nothing_left() -> None:
    with pytest.raises(InputError, match="camera id"):
        sanitize_camera_id("...")


def test_mask_credentials() -> None:
    assert mask_credentials("rtsp://admin:s3cret@10.0.0.5:554/live") == "rtsp://***:***@10.0.0.5:554/live"
    assert mask_credentials("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert mask_credentials("/data/cam.mp4") == "/data/cam.mp4"
    assert mask_credentials("rtsp://user:p@ss@10.0.0.5/live") == "rtsp://***:***@10.0.0.5/live"  # '@' in the password
    msg = "Connection to tcp://admin:s3cret@10.0.0.5:554?timeout=0 failed; rtsp://cam2/ok"
    assert mask_text(msg) == "Connection to tcp://***:***@10.0.0.5:554?timeout=0 failed; rtsp://cam2/ok"


def test_video_timestamps_in_seconds(tiny_video: Path) -> None:
    (spec,) = discover_cameras([tiny_video])
    assert spec.camera_id == "cam_a" and spec.kind == "video"
    frames = list(iter_frames(spec))
    assert len(frames) == 30
    assert [f.index for f in frames] == list(range(30))
    assert frames[0].timestamp == 0.0
    assert frames[25].timestamp == pytest.approx(1.0, abs=1e-6)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype.name == "uint8"


def test_folder_of_videos_sorted_and_unique_ids(tmp_path: Path) -> None:
    write_video(tmp_path / "b cam.mp4", moving_box_frames(3))
    write_video(tmp_path / "a.mp4", moving_box_frames(3))
    (tmp_path / "notes.txt").write_text("not a camera")
    ids = [s.camera_id for s in discover_cameras([tmp_path])]
    assert ids == ["a", "b_cam"]
    with pytest.raises(InputError, match="a.mp4 is given twice: pass each camera once"):
        discover_cameras([tmp_path / "a.mp4", tmp_path / "a.mp4"])


def test_missing_path() -> None:
    with pytest.raises(InputError, match="input not found: /no/such/cam.mp4"):
        discover_cameras(["/no/such/cam.mp4"])


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"no cameras in folder {tmp_path}"):
        discover_cameras([tmp_path])


def test_not_a_video(tmp_path: Path) -> None:
    bad = tmp_path / "cam.mp4"
    bad.write_text("this is text, not a video\n" * 20)
    (spec,) = discover_cameras([bad])
    with pytest.raises(CameraError, match="cam: cannot open .*cam.mp4 as a video"):
        list(iter_frames(spec))


def test_truncated_videos(tmp_path: Path) -> None:
    # an mp4 cut in half loses its index (moov atom at the end): it cannot be opened
    data = write_video(tmp_path / "full.mp4", moving_box_frames(60)).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    (spec,) = discover_cameras([tmp_path / "cut.mp4"])
    with pytest.raises(CameraError, match=r"cut: cannot open .*cut.mp4 as a video \(InvalidDataError"):
        list(iter_frames(spec))
    # a cut MPEG-TS stream decodes up to the damage and then ends
    data = write_video(tmp_path / "full.ts", moving_box_frames(60)).read_bytes()
    (tmp_path / "cut.ts").write_bytes(data[: len(data) // 2])
    (spec,) = discover_cameras([tmp_path / "cut.ts"])
    frames = list(iter_frames(spec))
    assert 10 < len(frames) < 60
    assert [f.index for f in frames] == list(range(len(frames)))


def test_zero_frame_video(tmp_path: Path) -> None:
    import av

    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), mode="w") as out:
        s = out.add_stream("mpeg4", rate=25)
        s.width, s.height = 64, 64
        out.start_encoding()
    (spec,) = discover_cameras([empty])
    with pytest.raises(CameraError, match="empty: .*(no video stream|no decodable frames)"):
        list(iter_frames(spec))


@requires_shared
def test_mot_sequence_kinds(tmp_path: Path) -> None:
    kinds = {s.camera_id: s.kind for s in discover_cameras([MOT15])}
    assert kinds["PETS09-S2L1"] == "images"
    assert kinds["TUD-Campus"] == "video"
    assert kinds["ADL-Rundle-6"] == "detonly"
    (pets,) = discover_cameras([MOT15 / "PETS09-S2L1"])
    frames = iter_frames(pets)
    f0, f1 = next(frames), next(frames)
    assert f0.image.shape == (576, 768, 3)
    assert f1.timestamp == pytest.approx(1 / 7)
    (adl,) = discover_cameras([MOT15 / "ADL-Rundle-6"])
    frames = list(iter_frames(adl))
    assert len(frames) == 525 and frames[0].image is None and frames[0].width == 1920
    # a copied sequence folder with an unreadable seqinfo.ini is reported by name
    seq = tmp_path / "BAD-SEQ"
    shutil.copytree(MOT15 / "TUD-Campus" / "gt", seq / "gt")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=BAD\n")
    with pytest.raises(InputError, match="BAD-SEQ/seqinfo.ini: malformed"):
        discover_cameras([seq])
