"""Each rank's share of every epoch: ``DistributedSampler`` (indices) and ``DistributedDataLoader`` (batches).

Every rank draws the same permutation (same seed, same epoch) and keeps every ``size``-th index starting at its
rank, PyTorch's rule. The permutation of epoch e is the e-th one drawn from ``PCG64(seed)``, the generator
ember's DataLoader shuffles with, so with N ranks and batch B each, step k of an epoch sees exactly the samples of
step k of ``DataLoader(dataset, batch_size=N*B, shuffle=True, seed=seed)`` in one process (rank r holds positions
r, r+N, ... of that batch).

Padding (PyTorch's rule): without ``drop_last`` the permutation is extended with its own first indices (cycling
when it is shorter than the gap) to a multiple of ``size``, so every rank gets ``ceil(n / size)`` indices and a
few samples count twice per epoch; with ``drop_last`` its tail is cut to a multiple of ``size`` (``floor(n /
size)`` each). Ranks must take the same number of steps, or the gradient all-reduces would no longer pair up.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..data.loader import DataLoader
from .comm import World, get_world


class DistributedSampler:
    """This rank's indices of a dataset of ``n`` samples (or a dataset: its length), epoch after epoch.

    Args:
        n: the number of samples, or a dataset (``len()`` is taken).
        world: whose rank and size (default: ``init()``'s); or give ``num_replicas`` and ``rank`` (tests).
        shuffle: a new permutation every epoch; else 0..n-1.
        seed: the same on every rank.
        drop_last: cut the tail instead of padding (see the module's docstring).

    Iterating gives the current epoch's indices and moves on to the next epoch (as ember's DataLoader does);
    ``set_epoch(e)`` chooses the epoch explicitly (PyTorch's way; a resumed run calls it).
    """

    def __init__(self, n, world: World | None = None, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 num_replicas: int | None = None, rank: int | None = None):
        n = n if isinstance(n, (int, np.integer)) else len(n)
        if (num_replicas is None) != (rank is None):
            raise ValueError("DistributedSampler: give both num_replicas and rank, or neither (then the world's)")
        if num_replicas is None:
            world = world or get_world()
            num_replicas, rank = world.size, world.rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, num_replicas), got rank {rank} of "
                             f"{num_replicas}")
        if n < 1 or (drop_last and n < num_replicas):
            raise ValueError(f"DistributedSampler: {n} samples cannot be shared by {num_replicas} ranks"
                             + (" with drop_last" if drop_last else ""))
        self.n, self.num_replicas, self.rank = int(n), int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        per_rank = n // num_replicas if drop_last else math.ceil(n / num_replicas)
        self.num_samples = per_rank
        self.total_size = per_rank * num_replicas
        self.epoch = 0
        self._generator = None
        self._drawn = 0  # permutations drawn from self._generator so far

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"DistributedSampler.set_epoch: epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """This rank's indices for ``epoch`` (default: the current one), without moving on."""
        order = self._permutation(self.epoch if epoch is None else epoch)
        if self.total_size > self.n:
            padding = self.total_size - self.n
            order = np.concatenate([order, np.resize(order, padding)])  # np.resize cycles through order
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        shard = self.indices()
        self.epoch += 1
        return iter(shard.tolist())

    def _permutation(self, epoch: int) -> np.ndarray:
        """The epoch-th permutation of PCG64(seed), the DataLoader's sequence (earlier ones are drawn and dropped
        when an epoch is skipped to, from the start when going back)."""
        if not self.shuffle:
            return np.arange(self.n)
        if self._generator is None or self._drawn > epoch:
            self._generator, self._drawn = backend.new_generator(self.seed), 0
        while self._drawn < epoch:
            self._generator.permutation(self.n)
            self._drawn += 1
        self._drawn += 1
        return self._generator.permutation(self.n)


class DistributedDataLoader(DataLoader):
    """ember's DataLoader over this rank's shard (``DistributedSampler``): the same batching, collation and device
    placement, ``len()`` steps per epoch on every rank.

    ``seed`` None takes rank 0's draw from ``ember.manual_seed``'s generator (every rank must shuffle alike).
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, collate_fn=None, device=None, world: World | None = None,
                 sampler: DistributedSampler | None = None):
        world = world or (None if sampler is not None else get_world())
        super().__init__(dataset, batch_size, shuffle=False, drop_last=drop_last, seed=seed, collate_fn=collate_fn,
                         device=device)
        if seed is None and world is not None:
            self.seed = int(world.broadcast(np.array([self.seed], dtype=np.int64))[0])
        self.sampler = sampler or DistributedSampler(len(dataset), world, shuffle=shuffle, seed=self.seed)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = np.fromiter(self.sampler, dtype=np.int64)
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        batched = hasattr(self.dataset, "__getitems__")
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            if batched:
                batch = self.dataset.__getitems__(idx)
            else:
                batch = self.collate_fn([self.dataset[int(i)] for i in idx])
            yield self._to_device(batch)
