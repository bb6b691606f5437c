"""Camera bias removal before cross-camera linking (trackers/linking/camera_bias.py, linking.camera_bias)."""

from __future__ import annotations

import numpy as np
import pytest
from test_linking import make_tracklet

from pipeline.config import LinkConfig
from trackers.linking.camera_bias import remove_camera_bias
from trackers.linking.offline import cosine_distance_matrix, link_tracklets

DIM = 32


def _world(seed: int = 0, people: int = 6, bias: float = 1.2) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``people`` identities seen once by each of two cameras; each camera adds its own strong
    offset (a colour cast shared by everyone it sees). Returns features (2P×D), cameras, person ids."""
    rng = np.random.default_rng(seed)
    person = rng.normal(size=(people, DIM)) / np.sqrt(DIM)
    cast = {c: bias * rng.normal(size=DIM) / np.sqrt(DIM) for c in ("a", "b")}
    feats, cams, ids = [], [], []
    for c in ("a", "b"):
        for p in range(people):
            feats.append(person[p] + cast[c] + 0.1 * rng.normal(size=DIM) / np.sqrt(DIM))
            cams.append(c)
            ids.append(p)
    return np.array(feats), cams, np.array(ids)


def _cross_nearest_is_same_person(feats: np.ndarray, cams: list[str], ids: np.ndarray) -> float:
    """Share of tracklets whose nearest other-camera tracklet is the same person."""
    d = cosine_distance_matrix(feats).astype(np.float64)
    c = np.array(cams)
    d[c[:, None] == c[None, :]] = np.inf
    return float(np.mean(ids[np.argmin(d, axis=1)] == ids))


def test_removal_turns_camera_neighbours_into_person_neighbours() -> None:
    feats, cams, ids = _world()
    d = cosine_distance_matrix(feats)
    same_cam = np.equal.outer(np.array(cams), np.array(cams)) & ~np.eye(len(cams), dtype=bool)
    same_person_cross = np.equal.outer(ids, ids) & ~same_cam & ~np.eye(len(cams), dtype=bool)
    # with the cast, two people of one camera are closer than one person across cameras
    assert np.median(d[same_cam]) < np.median(d[same_person_cross])
    out = remove_camera_bias(feats, cams)
    assert out.shape == feats.shape and out.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(out[np.array(cams) == "a"].mean(axis=0) @ out[0], 0.0, atol=0.2)
    assert _cross_nearest_is_same_person(out, cams, ids) == 1.0
    d2 = cosine_distance_matrix(out)
    assert np.median(d2[same_person_cross]) < np.median(d2[same_cam])


def test_linking_with_camera_bias_finds_every_person() -> None:
    feats, cams, ids = _world(seed=3)
    tracklets = [make_tracklet(c, k + 1, 0.0, 2.0, f) for k, (c, f) in enumerate(zip(cams, feats, strict=True))]
    plain = link_tracklets(tracklets, LinkConfig(threshold=0.4, camera_bias=False))
    assert len(set(plain.tolist())) == len(tracklets)  # nobody linked: the casts keep cameras apart
    fixed = link_tracklets(tracklets, LinkConfig(camera_bias=True, threshold=0.6))
    assert len(set(fixed.tolist())) == len(set(ids.tolist()))
    for p in set(ids.tolist()):
        assert len(set(fixed[ids == p].tolist())) == 1, f"person {p} split"


def test_small_cameras_keep_their_features() -> None:
    feats, cams, _ = _world(people=2)
    out = remove_camera_bias(feats, cams, min_tracklets=3)
    np.testing.assert_allclose(out, feats / np.linalg.norm(feats, axis=1, keepdims=True))
    mixed = remove_camera_bias(feats[:3], ["a", "a", "b"], min_tracklets=2)
    np.testing.assert_allclose(mixed[2], feats[2] / np.linalg.norm(feats[2]))
    assert np.abs(mixed[0] @ mixed[1] + 1.0) < 1e-9  # two rows minus their mean point opposite ways


@pytest.mark.parametrize(("args", "match"), [
    ((np.zeros(4), ["a"]), "M×D"),
    ((np.zeros((2, 4)), ["a"]), "1 camera ids for 2 features"),
    ((np.zeros((2, 4)), ["a", "b"], 0), "min_tracklets must be >= 1"),
])
def test_bad_arguments(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        remove_camera_bias(*args)
