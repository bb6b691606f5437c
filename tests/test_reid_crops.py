"""scripts/make_reid_crops.py: a ReID dataset cut from a multi-camera scene of real footage."""

from __future__ import annotations

from pathlib import Path

from conftest import MOT15, load_script, requires_shared

from reid.datasets import load_dataset


@requires_shared
def test_crops_split_identities_not_images(tmp_path: Path) -> None:
    load_script("make_multicam").make_multicam(MOT15 / "TUD-Stadtmitte", tmp_path / "scene", max_frames=90)
    counts = load_script("make_reid_crops").make_reid_crops([tmp_path / "scene"], tmp_path / "crops", stride=3,
                                                        test_fraction=0.4)
    ds = load_dataset(tmp_path / "crops")
    assert ds.layout == "generic"
    assert len(ds.train) == counts["train_images"] > 50
    assert len(ds.query) == counts["query_images"] > 0 and len(ds.gallery) == counts["gallery_images"] > 0
    train_ids = {i.pid for i in ds.train}
    test_ids = {i.pid for i in ds.query} | {i.pid for i in ds.gallery}
    assert not train_ids & test_ids  # held-out people are never trained on
    assert len(test_ids) == counts["test_ids"] and len(train_ids) == counts["train_ids"]
    # every query person is in the gallery, seen by another camera
    for q in ds.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery)
