"""Tracklet building: quality filter, embedding policies, MARS-style mean feature."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import TrackletConfig
from pipeline.tracklets import TrackletBuilder, quality_mask
from pipeline.types import Frame, TrackOutput


def _frame(i: int, fps: float = 10.0) -> Frame:
    return Frame("cam", i, i / fps, None, 640, 480)


def _out(tid: int, xyxy: list[float], score: float = 0.9) -> TrackOutput:
    return TrackOutput(0, tid, np.asarray(xyxy, np.float32), score)


def test_quality_mask_rejects_tiny_low_score_cut_and_overlapped_boxes() -> None:
    cfg = TrackletConfig(min_height=50, min_score=0.5, border_margin=2, max_overlap=0.3)
    boxes = np.array([
        [100, 100, 150, 250],   # good
        [300, 100, 320, 130],   # 30 px tall: tiny
        [400, 100, 450, 250],   # low score
        [0, 100, 50, 250],      # touches the left border
        [500, 100, 560, 250],   # overlaps the next one heavily
        [505, 105, 565, 255],
    ], np.float32)
    score = np.array([0.9, 0.9, 0.3, 0.9, 0.9, 0.9])
    assert quality_mask(boxes, score, 640, 480, cfg).tolist() == [True, False, False, False, False, False]


def test_mean_feature_uses_only_good_boxes_and_is_normalised() -> None:
    cfg = TrackletConfig(embed_policy="every", min_height=50)
    b = TrackletBuilder("cam", cfg)
    feats = [np.array([1.0, 0.0, 0.0], np.float32), np.array([0.0, 1.0, 0.0], np.float32),
             np.array([0.0, 0.0, 1.0], np.float32)]
    boxes = [[100, 100, 150, 250], [100, 100, 150, 250], [100, 100, 110, 120]]  # the last one is tiny
    for i, (f, box) in enumerate(zip(feats, boxes, strict=True)):
        outs = [_out(1, box)]
        embed, good = b.select(_frame(i), outs)
        assert embed.tolist() == [True]
        b.add(_frame(i), outs, f[None], embed, good)
    (t,) = b.finish()
    assert t.local_id == 1 and t.camera_id == "cam" and len(t) == 3
    assert t.num_features == 2
    np.testing.assert_allclose(t.feature, [2 ** -0.5, 2 ** -0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(t.timestamps, [0.0, 0.1, 0.2])
    assert t.frames.tolist() == [0, 1, 2] and t.boxes.shape == (3, 4)


def test_tracklet_without_good_crop_keeps_no_feature() -> None:
    b = TrackletBuilder("cam", TrackletConfig(embed_policy="every"))
    outs = [_out(4, [0, 0, 10, 20], 0.9)]  # tiny and on the border
    embed, good = b.select(_frame(0), outs)
    b.add(_frame(0), outs, np.ones((1, 8), np.float32) / 8 ** 0.5, embed, good)
    (t,) = b.finish()
    assert t.feature is None and t.num_features == 0


@pytest.mark.parametrize(("policy", "expected"), [
    ("every", 20),
    ("every_k", 4),     # boxes 0, 5, 10, 15
    ("quality", 3),     # at 0.0, 0.5, 1.0 s (min_interval_s 0.5 at 10 fps), then max_features=3
])
def test_embedding_policies_count(policy: str, expected: int) -> None:
    cfg = TrackletConfig(embed_policy=policy, every_k=5, max_features=3, min_interval_s=0.5, min_height=50)
    b = TrackletBuilder("cam", cfg)
    n_embedded = 0
    for i in range(20):
        outs = [_out(1, [100 + i, 100, 150 + i, 250])]
        embed, good = b.select(_frame(i), outs)
        n_embedded += int(embed.sum())
        feats = np.ones((int(embed.sum()), 4), np.float32) / 2 if embed.any() else None
        b.add(_frame(i), outs, feats, embed, good)
    assert n_embedded == expected


def test_quality_policy_skips_bad_crops() -> None:
    b = TrackletBuilder("cam", TrackletConfig(embed_policy="quality", min_height=50))
    outs = [_out(1, [100, 100, 150, 250], 0.9), _out(2, [300, 100, 320, 120], 0.9)]
    embed, good = b.select(_frame(0), outs)
    assert embed.tolist() == [True, False] and good.tolist() == [True, False]


def test_fallback_gives_a_feature_to_a_track_of_small_crops_only() -> None:
    """A person only ever 30 px tall gets no feature under the filter (min_height 48), but a
    fallback mean of its crops with ``fallback``; a later good crop replaces the fallback."""
    small = [100, 100, 115, 130]  # 30 px tall, not overlapped, inside the frame
    for fallback, expected in ((False, 0), (True, 2)):
        b = TrackletBuilder("cam", TrackletConfig(fallback=fallback, min_height=48, max_features=2, min_interval_s=0.0))
        for i in range(5):
            outs = [_out(1, small)]
            embed, good = b.select(_frame(i), outs)
            assert not good.any()
            b.add(_frame(i), outs, np.ones((int(embed.sum()), 4), np.float32) / 2 if embed.any() else None,
                  embed, good)
        (t,) = b.finish()
        assert t.num_features == expected and (t.feature is None) == (expected == 0)
    b = TrackletBuilder("cam", TrackletConfig(fallback=True, min_height=48, max_features=2, min_interval_s=0.0))
    good_feat, bad_feat = np.array([[1, 0, 0, 0]], np.float32), np.array([[0, 1, 0, 0]], np.float32)
    for i, (box, f) in enumerate([(small, bad_feat), ([100, 100, 150, 250], good_feat)]):
        outs = [_out(1, box)]
        embed, good = b.select(_frame(i), outs)
        assert embed.all()
        b.add(_frame(i), outs, f, embed, good)
    (t,) = b.finish()
    assert t.num_features == 1 and np.allclose(t.feature, [1, 0, 0, 0])  # the good crop only


def test_interpolation_fills_short_gaps_only() -> None:
    b = TrackletBuilder("cam", TrackletConfig(interpolate_s=0.5))
    for i in (0, 1, 4, 5, 20):  # a 3-frame hole (0.3 s at 10 fps) and a 15-frame one (1.5 s)
        outs = [_out(1, [10 * i, 0, 10 * i + 40, 100])]
        embed, good = b.select(_frame(i), outs)
        b.add(_frame(i), outs, None, np.zeros(1, bool), good)
    (t,) = b.finish()
    assert t.frames.tolist() == [0, 1, 2, 3, 4, 5, 20]
    assert np.allclose(t.boxes[2], [20, 0, 60, 100]) and np.allclose(t.timestamps[3], 0.3)
    assert t.boxes.dtype == np.float32 and t.frames.dtype == np.int64


def _feed(b: TrackletBuilder, frames: range, tid: int, scores: list[float]) -> None:
    for i, s in zip(frames, scores, strict=True):
        outs = [_out(tid, [100, 100, 150, 250], s)]
        embed, good = b.select(_frame(i), outs)
        b.add(_frame(i), outs, np.ones((int(embed.sum()), 4), np.float32) / 2, embed, good)


def test_tracks_scoring_low_on_average_are_dropped_and_counted() -> None:
    """A track kept alive by low-score boxes (mean 0.5 < 0.6) is no tracklet; interpolated boxes do not
    count towards the mean (0.9 and 0.3 across a gap average 0.6: kept)."""
    b = TrackletBuilder("cam", TrackletConfig(embed_policy="every", interpolate_s=1.0))
    _feed(b, range(0, 3), 1, [0.9, 0.8, 0.9])
    _feed(b, range(0, 3), 2, [0.7, 0.4, 0.4])
    _feed(b, range(0, 1), 3, [0.9])
    _feed(b, range(5, 6), 3, [0.3])
    ts = b.finish()
    assert [t.local_id for t in ts] == [1, 3] and b.dropped == 1
    assert len(ts[1]) == 6  # 4 interpolated boxes between frames 0 and 5
    keep_all = TrackletBuilder("cam", TrackletConfig(embed_policy="every", min_mean_score=0.0))
    _feed(keep_all, range(0, 3), 2, [0.7, 0.4, 0.4])
    assert [t.local_id for t in keep_all.finish()] == [2] and keep_all.dropped == 0


def test_pop_ended_drops_low_scoring_tracks_too() -> None:
    b = TrackletBuilder("cam", TrackletConfig(embed_policy="every"))
    _feed(b, range(0, 2), 1, [0.9, 0.9])
    _feed(b, range(0, 2), 2, [0.3, 0.3])
    assert [t.local_id for t in b.pop_ended(now=5.0, max_age_s=1.0)] == [1] and b.dropped == 1
    assert b.open_ids == [] and b.finish() == []
