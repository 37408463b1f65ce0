"""DistributedSampler and DistributedDataLoader with simulated ranks: shards, padding (PyTorch's rule, checked
against torch's DistributedSampler), epochs, and the equivalence with one process's batches."""

from __future__ import annotations

import numpy as np
import pytest

import ember.distributed as dist
from ember.data import DataLoader, TensorDataset
from ember.distributed import DistributedDataLoader, DistributedSampler


def shards(n, replicas, **kwargs) -> list[list[int]]:
    return [list(DistributedSampler(n, num_replicas=replicas, rank=r, **kwargs)) for r in range(replicas)]


@pytest.mark.parametrize("n, replicas", [(10, 2), (10, 3), (7, 4), (3, 5), (1, 2), (64, 8)])
def test_shards_are_disjoint_up_to_the_padding_and_cover_the_epoch(n, replicas):
    parts = shards(n, replicas, seed=3)
    per_rank = -(-n // replicas)
    assert [len(p) for p in parts] == [per_rank] * replicas
    everything = [i for p in parts for i in p]
    assert set(everything) == set(range(n))
    padding = per_rank * replicas - n
    assert len(everything) - len(set(everything)) == padding  # only the padding repeats an index


@pytest.mark.parametrize("n, replicas", [(10, 3), (7, 4), (64, 8)])
def test_drop_last_cuts_the_tail_to_equal_disjoint_shards(n, replicas):
    parts = shards(n, replicas, seed=3, drop_last=True)
    assert [len(p) for p in parts] == [n // replicas] * replicas
    everything = [i for p in parts for i in p]
    assert len(set(everything)) == len(everything) == (n // replicas) * replicas


@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (3, 5, False), (11, 4, False),
                                                    (11, 4, True), (12, 4, False), (2, 7, False)])
def test_the_padding_rule_is_pytorchs(torch, n, replicas, drop_last):
    """Without shuffling the order is 0..n-1 in both, so the shards must match index for index."""
    ours = shards(n, replicas, shuffle=False, drop_last=drop_last)
    theirs = [list(torch.utils.data.DistributedSampler(range(n), num_replicas=replicas, rank=r, shuffle=False,
                                                       drop_last=drop_last)) for r in range(replicas)]
    assert ours == theirs


def test_each_step_of_two_ranks_is_the_step_of_one_process_with_the_doubled_batch():
    """Rank r's batch k holds positions r, r+2, ... of the one-process loader's batch k, epoch after epoch."""
    n, batch = 50, 4
    data = TensorDataset(np.arange(n))
    one = DataLoader(data, batch_size=2 * batch, shuffle=True, seed=11)
    ranks = [DistributedDataLoader(data, batch_size=batch, sampler=DistributedSampler(n, num_replicas=2, rank=r,
                                                                                        seed=11)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(one) == 7
    for _ in range(3):  # epochs: each a new permutation, the same sequence
        single = [b[0].numpy() for b in one]
        split = [[b[0].numpy() for b in loader] for loader in ranks]
        for k, whole in enumerate(single):
            assert split[0][k].tolist() == whole[0::2].tolist()
            assert split[1][k].tolist() == whole[1::2].tolist()


def test_set_epoch_chooses_the_permutation_and_iteration_moves_on():
    sampler = DistributedSampler(30, num_replicas=3, rank=1, seed=4)
    first, second, third = list(sampler), list(sampler), list(sampler)
    assert first != second != third
    assert sampler.epoch == 3
    sampler.set_epoch(1)
    assert list(sampler) == second
    sampler.set_epoch(0)
    assert sampler.indices().tolist() == first  # looking does not move on
    assert list(sampler) == first
    assert sampler.indices(epoch=2).tolist() == third


def test_without_shuffle_every_epoch_is_the_same():
    sampler = DistributedSampler(9, num_replicas=2, rank=0, shuffle=False)
    assert list(sampler) == list(sampler) == [0, 2, 4, 6, 8]


def test_a_dataset_gives_its_length_and_the_world_its_rank(fresh_world):
    dist.init()
    sampler = DistributedSampler(TensorDataset(np.arange(12)), seed=0)
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 12)
    assert sorted(sampler) == list(range(12))


def test_a_loader_without_a_seed_takes_one_from_ember_manual_seed(fresh_world):
    import ember

    dist.init()
    data = TensorDataset(np.arange(20))
    ember.manual_seed(5)
    first = [b[0].tolist() for b in DistributedDataLoader(data, batch_size=4, shuffle=True)]
    ember.manual_seed(5)
    again = [b[0].tolist() for b in DistributedDataLoader(data, batch_size=4, shuffle=True)]
    assert first == again and sorted(i for b in first for i in b) == list(range(20))


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_replicas=2), "give both num_replicas and rank"),
    (dict(num_replicas=2, rank=2), r"rank must be in \[0, num_replicas\), got rank 2 of 2"),
    (dict(num_replicas=0, rank=0), r"rank must be in \[0, num_replicas\)"),
])
def test_sampler_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistributedSampler(10, **kwargs)


def test_too_few_samples_for_drop_last_is_refused():
    with pytest.raises(ValueError, match="3 samples cannot be shared by 4 ranks with drop_last"):
        DistributedSampler(3, num_replicas=4, rank=0, drop_last=True)
    with pytest.raises(ValueError, match=r"set_epoch: epoch must be >= 0, got -1"):
        DistributedSampler(3, num_replicas=1, rank=0).set_epoch(-1)
