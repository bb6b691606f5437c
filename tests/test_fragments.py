"""same_camera: fragments (trackers/linking/fragments.py): a track broken for a moment is joined again, with
a same-camera bar calibrated on the run's own pairs of people seen at once."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import LinkConfig
from pipeline.types import Tracklet
from trackers.linking.fragments import fragment_pairs
from trackers.linking.offline import link_tracklets_detailed


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _track(cam: str, lid: int, t0: float, t1: float, feature: np.ndarray, fps: float = 10.0) -> Tracklet:
    ts = np.arange(t0, t1 + 1e-9, 1.0 / fps)
    boxes = np.tile(np.array([[100, 100, 160, 280]], np.float32), (len(ts), 1))
    return Tracklet(cam, lid, np.round(ts * fps).astype(np.int64), ts, boxes, np.full(len(ts), 0.9, np.float32),
                    _unit(feature), 1)


def _scene(spread: float, seed: int = 0) -> tuple[list[Tracklet], np.ndarray]:
    """Camera A: person 0's track breaks at 5 s and goes on at 6 s (two tracklets); seven other people
    seen at the same time (21+ known negatives), looks ``spread`` apart around a common mean; camera B sees
    person 0 throughout. Returns the tracklets and the people's looks."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=64)
    looks = common + spread * rng.normal(size=(8, 64))
    ts = [_track("A", 1, 0.0, 5.0, looks[0] + 0.05 * rng.normal(size=64)),
          _track("A", 2, 6.0, 12.0, looks[0] + 0.05 * rng.normal(size=64))]
    ts += [_track("A", 10 + k, 0.5 + k * 0.2, 11.0, looks[k]) for k in range(1, 8)]
    ts.append(_track("B", 1, 0.0, 12.0, looks[0] + 0.05 * rng.normal(size=64)))
    return ts, looks


def test_a_track_broken_for_a_second_is_joined_again() -> None:
    ts, _ = _scene(spread=1.5)
    res = link_tracklets_detailed(ts, LinkConfig())  # the defaults: fragments, camera bias removed
    assert ts[0].global_id == ts[1].global_id == ts[-1].global_id
    assert res.same_camera_links == 1
    assert len({t.global_id for t in ts[2:-1]}) == 7  # the others keep their own identities
    assert res.fragments is not None and res.fragments.negatives >= 21 and len(res.fragments.i) == 1
    never = link_tracklets_detailed(ts, LinkConfig(same_camera="never"))
    assert never.same_camera_links == 0 and ts[0].global_id != ts[1].global_id


def test_features_of_any_norm_give_cosine_distances() -> None:
    """Without camera bias removal the linker passes tracklet means as they are (not unit length): the bar
    and the grant are those of the unit features."""
    ts, _ = _scene(spread=1.5)
    f = np.stack([t.feature for t in ts]).astype(np.float64)
    scaled = f * np.linspace(0.3, 3.0, len(f))[:, None]
    unit, other = fragment_pairs(ts, f, LinkConfig()), fragment_pairs(ts, scaled, LinkConfig())
    assert other.threshold == pytest.approx(unit.threshold)
    assert (other.i.tolist(), other.j.tolist()) == (unit.i.tolist(), unit.j.tolist()) == ([0], [1])
    for t, row in zip(ts, scaled, strict=True):
        t.feature = row.astype(np.float32)
    res = link_tracklets_detailed(ts, LinkConfig(camera_bias=False))
    assert ts[0].global_id == ts[1].global_id and res.same_camera_links == 1


def test_the_bar_is_the_quantile_of_same_camera_pairs_seen_at_once() -> None:
    ts, _ = _scene(spread=1.5)
    f = np.stack([t.feature for t in ts]).astype(np.float64)
    grant = fragment_pairs(ts, f, LinkConfig(same_camera_fmr=0.05))
    a_rows = [k for k, t in enumerate(ts) if t.camera_id == "A"]
    neg = [1 - f[i] @ f[j] for x, i in enumerate(a_rows) for j in a_rows[x + 1:]
           if ts[i].start_time <= ts[j].end_time and ts[j].start_time <= ts[i].end_time]
    assert grant.negatives == len(neg)
    assert grant.threshold == pytest.approx(float(np.quantile(neg, 0.05)))
    assert (grant.i.tolist(), grant.j.tolist()) == ([0], [1])


def test_no_grant_beyond_the_gap_or_without_enough_negatives() -> None:
    ts, _ = _scene(spread=1.5)
    f = np.stack([t.feature for t in ts]).astype(np.float64)
    assert len(fragment_pairs(ts, f, LinkConfig(same_camera_gap_s=0.5)).i) == 0  # 1 s apart: not a fragment
    few = fragment_pairs(ts, f, LinkConfig(auto_min_negatives=1000))
    assert few.threshold is None and len(few.i) == 0 and "too few" in few.describe(0.01, 2.0)


def test_where_people_look_alike_the_bar_drops_and_a_look_alike_is_not_joined() -> None:
    """The same scene, but the fragment after the break is another person, 0.25 (cosine) from the first.
    Among distinct people (spread 1.5, pairs seen at once 0.56–0.94 apart) 0.25 is under every such pair,
    so it is granted; among look-alikes (spread 0.3, pairs 0.08–0.12 apart) it is not."""
    for spread, granted in ((1.5, True), (0.3, False)):
        ts, looks = _scene(spread)
        u = _unit(looks[0]).astype(np.float64)
        w = np.random.default_rng(5).normal(size=64)
        w = _unit(w - (w @ u) * u).astype(np.float64)
        ts[1] = _track("A", 2, 6.0, 12.0, 0.75 * u + np.sqrt(1 - 0.75**2) * w)  # cosine distance 0.25 to u
        f = np.stack([t.feature for t in ts]).astype(np.float64)
        grant = fragment_pairs(ts, f, LinkConfig())
        assert (len(grant.i) == 1) is granted, (spread, grant.threshold)
