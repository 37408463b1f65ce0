"""Datasets: the indexable protocol and an in-memory dataset of aligned arrays."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class Dataset:
    """Anything with ``__len__`` and ``__getitem__(i)``.

    A dataset may also define ``__getitems__(indices)`` returning a whole batch at once;
    the DataLoader then skips the per-sample Python loop.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Aligned arrays (or tensors) indexed along their first axis: ``TensorDataset(images, labels)``."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = [a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays]
        n = len(self.arrays[0])
        lengths = [len(a) for a in self.arrays]
        if any(m != n for m in lengths):
            raise ValueError(f"TensorDataset: arrays have different lengths {lengths}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) for a in self.arrays)

    def __getitems__(self, indices):
        return tuple(Tensor(a[indices]) for a in self.arrays)
