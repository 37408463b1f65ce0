"""DataLoader: batches from a dataset, shuffled by its own seeded generator."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor


def default_collate(samples):
    """Stack a list of samples (tensors, arrays, numbers, or tuples of them) into batch tensors."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    arrays = [s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]
    return Tensor(backend.array_module(arrays[0]).stack(arrays))


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        batch_size: samples per batch.
        shuffle: draw a new permutation each epoch from the loader's own generator, so the
            order depends only on ``seed`` (or on ``ember.manual_seed`` when seed is None),
            not on how much randomness the model used.
        drop_last: skip a final batch smaller than batch_size.
        collate_fn: turns a list of samples into a batch (used when the dataset has no
            ``__getitems__``).
        device: move each batch's tensors there.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, collate_fn=None, device=None):
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.collate_fn = collate_fn or default_collate
        self.device = None if device is None else backend.device(device)
        if seed is None:
            seed = int(backend.generator(backend.CPU).integers(0, 2**63 - 1))
        self.seed = seed
        self.generator = backend.new_generator(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        batched = hasattr(self.dataset, "__getitems__")
        for start in range(0, stop, self.batch_size):
            idx = order[start : start + self.batch_size]
            if batched:
                batch = self.dataset.__getitems__(idx)
            else:
                batch = self.collate_fn([self.dataset[int(i)] for i in idx])
            yield self._to_device(batch)

    def _to_device(self, batch):
        if self.device is None:
            return batch
        if isinstance(batch, tuple):
            return tuple(t.to(self.device) for t in batch)
        return batch.to(self.device)
