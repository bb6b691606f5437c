"""P×K identity sampler for batch-hard triplet training (Hermans, Beyer and Leibe, 2017, §3)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

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

    With ``neighbours`` (hard negatives: label → labels of identities easily confused with
    it, e.g. tracklets seen by one camera at the same time), each batch starts from the next
    unused identity of the shuffle and takes up to ``P // 2`` of its unused neighbours
    before filling up from the shuffle, so confusable identities meet in one batch.

    Args:
        labels: identity label of every dataset item (hashable, e.g. ``int`` person ids).
        p: identities per batch (P ≥ 1).
        k: images per identity (K ≥ 1).
        seed: random seed.
        neighbours: optional hard negatives per label (labels absent from ``labels`` are ignored).

    Raises:
        ValueError: P or K < 1, or fewer than P identities.
    """

    def __init__(self, labels: Sequence[object], p: int, k: int, seed: int = 0,
                 neighbours: Mapping[object, Sequence[object]] | None = None) -> None:
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
        pos = {label: i for i, label in enumerate(self._ids)}
        self._neighbours = None if neighbours is None else [
            [pos[n] for n in neighbours.get(label, ()) if n in pos and n != label] for label in self._ids]

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
        if self._neighbours is not None:
            order = self._neighbour_order(order, rng)
        out: list[list[int]] = []
        for b in range(self.batches_per_epoch):
            batch: list[int] = []
            for ident in order[b * self.p : (b + 1) * self.p]:
                items = self._items[ident]
                pick = rng.choice(items, size=self.k, replace=len(items) < self.k)
                batch.extend(int(i) for i in pick)
            out.append(batch)
        return out

    def _neighbour_order(self, order: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``order`` regrouped so that each run of P identities holds a seed and up to P // 2 of its neighbours."""
        assert self._neighbours is not None
        used = np.zeros(len(order), bool)
        out: list[int] = []
        queue = iter(order.tolist())
        while len(out) < self.batches_per_epoch * self.p:
            seed = next(i for i in queue if not used[i])
            group = [seed]
            used[seed] = True
            near = [n for n in rng.permutation(self._neighbours[seed]).tolist() if not used[n]]
            for n in near[: self.p // 2]:
                group.append(n)
                used[n] = True
            rest = [i for i in order.tolist() if not used[i]][: self.p - len(group)]
            for i in rest:
                used[i] = True
            out += group + rest
        return np.asarray(out, np.int64)

    def __iter__(self) -> Iterator[int]:
        batches = self.batches()
        self.epoch += 1
        for batch in batches:
            yield from batch

    def __len__(self) -> int:
        return self.batches_per_epoch * self.p * self.k
