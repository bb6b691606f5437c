"""P×K identity sampler for batch-hard triplet training (Hermans, Beyer and Leibe, 2017, §3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class PKSampler(Sampler[int]):
    """Yield dataset indices so that every ``P·K`` consecutive ones are P identities × K images each.

    Use it with ``DataLoader(dataset, batch_size=p * k, sampler=sampler)`` (or
    :meth:`batches` for the index lists directly): batch ``b`` is items
    ``[b·P·K, (b+1)·P·K)``, identity by identity, K images of each.

    One epoch: the identities are shuffled and cut into ``⌊#ids / P⌋`` groups of
    P distinct identities (the remaining ``#ids mod P`` identities wait for a
    later epoch's shuffle), so an epoch has ``len(sampler) = ⌊#ids / P⌋ · P · K``
    indices and every identity appears at most once per epoch. An identity with
    ≥ K images contributes K different images (drawn without replacement); one
    with fewer than K is sampled with replacement.

    Deterministic: epoch ``e`` draws from ``numpy.random.default_rng((seed, e))``.
    Each ``iter()`` uses the current epoch and then advances it, so a fresh
    sampler with the same seed repeats the same sequence of epochs;
    :meth:`set_epoch` chooses the epoch explicitly (e.g. when resuming).

    Args:
        labels: identity label of every dataset item (hashable, e.g. ``int`` person ids).
        p: identities per batch (P ≥ 1).
        k: images per identity (K ≥ 1).
        seed: random seed.

    Raises:
        ValueError: P or K < 1, or fewer than P identities.
    """

    def __init__(self, labels: Sequence[object], p: int, k: int, seed: int = 0) -> None:
        if p < 1 or k < 1:
            raise ValueError(f"P and K must be ≥ 1, got P={p}, K={k}")
        by_id: dict[object, list[int]] = {}
        for index, label in enumerate(labels):
            by_id.setdefault(label, []).append(index)
        if len(by_id) < p:
            raise ValueError(f"P×K sampling needs at least P={p} identities, the labels have {len(by_id)}")
        self.p = int(p)
        self.k = int(k)
        self.seed = int(seed)
        self.epoch = 0
        self._ids = list(by_id)
        self._items = [np.asarray(by_id[i], dtype=np.int64) for i in self._ids]

    @property
    def batches_per_epoch(self) -> int:
        """``⌊#identities / P⌋``."""
        return len(self._ids) // self.p

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch``."""
        self.epoch = int(epoch)

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """The index lists of one epoch's batches (``epoch`` = :attr:`epoch` when ``None``; no advance).

        Returns:
            :attr:`batches_per_epoch` lists of ``P·K`` dataset indices, K per identity, P distinct identities.
        """
        rng = np.random.default_rng((self.seed, self.epoch if epoch is None else int(epoch)))
        order = rng.permutation(len(self._ids))
        out: list[list[int]] = []
        for b in range(self.batches_per_epoch):
            batch: list[int] = []
            for ident in order[b * self.p : (b + 1) * self.p]:
                items = self._items[ident]
                pick = rng.choice(items, size=self.k, replace=len(items) < self.k)
                batch.extend(int(i) for i in pick)
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[int]:
        batches = self.batches()
        self.epoch += 1
        for batch in batches:
            yield from batch

    def __len__(self) -> int:
        return self.batches_per_epoch * self.p * self.k
