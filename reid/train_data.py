"""Training data of the ReID trainer: augmentation (BoT recipe) and an image dataset with relabelled ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pipeline.errors import InputError
from reid.datasets import ReidItem
from reid.preprocess import IMAGENET_MEAN, IMAGENET_STD, REID_HW


def build_transform(input_hw: tuple[int, int] = REID_HW, train: bool = True, pad: int = 10) -> Any:
    """torchvision (v2) transform of a PIL RGB image to a normalised ``3×H×W`` ``float32`` tensor.

    Training: resize to ``input_hw``, horizontal flip (p = 0.5), ``pad`` px zero
    padding + random crop back to ``input_hw``, ImageNet normalisation, random
    erasing (p = 0.5, area 2–40 %, aspect 0.3–3.3, value 0 = the mean colour).
    Evaluation: resize + normalise only.
    """
    from torchvision.transforms import v2

    steps: list[Any] = [v2.ToImage(), v2.Resize(input_hw, antialias=True)]
    if train:
        steps += [v2.RandomHorizontalFlip(0.5), v2.Pad(pad), v2.RandomCrop(input_hw)]
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist()),
    ]
    if train:
        steps.append(v2.RandomErasing(p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=0))
    return v2.Compose(steps)


class TrainImageDataset(Dataset):
    """Training images of (path, pid, camid) items, person ids relabelled ``0..C-1``.

    Tracklet items (MARS) contribute every frame as an image of their identity.

    Args:
        items: the dataset's train split (:class:`reid.datasets.ReidItem` or ``(path, pid, camid)`` tuples).
        transform: image → tensor (default :func:`build_transform` for training).

    ``ds[i]`` is ``(image, label, camid)``: ``3×H×W`` ``float32``, ``int`` class index, ``int`` camera.

    Attributes:
        pids: original person id of each class index (sorted).
        labels: class index of every image (what :class:`~reid.sampler.PKSampler` needs).

    Raises:
        InputError: no items; an image cannot be read (on access).
    """

    def __init__(self, items: Sequence[ReidItem | tuple[Any, int, int]], transform: Any = None) -> None:
        entries: list[tuple[Path, int, int]] = []
        for it in items:
            if isinstance(it, ReidItem):
                entries += [(Path(p), int(it.pid), int(it.camid)) for p in it.images]
            else:
                path, pid, camid = it
                entries.append((Path(path), int(pid), int(camid)))
        if not entries:
            raise InputError("the dataset has no training images (empty train split)")
        self.pids = sorted({pid for _, pid, _ in entries})
        relabel = {pid: i for i, pid in enumerate(self.pids)}
        self.entries = entries
        self.labels = [relabel[pid] for _, pid, _ in entries]
        self.transform = transform if transform is not None else build_transform()

    @property
    def num_classes(self) -> int:
        """Number of training identities C."""
        return len(self.pids)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        from PIL import Image

        path, _, camid = self.entries[index]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except OSError as exc:
            raise InputError(f"cannot read training image {path}: {exc}") from None
        return self.transform(img), self.labels[index], camid
