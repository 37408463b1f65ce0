"""Training and forward-only solves across processes and machines, on MPI (mpi4py: ``pip install 'ember[mpi]'``).

ember runs on the MPI that HPC sites operate instead of cluster software of its own, as ChainerMN and Horovod do.
Start every process with a launcher and initialise once::

    mpirun -np 4 python train.py            # or: mpirun -np 4 ember train mlp --distributed

    import ember.distributed as dist
    world = dist.init()                                   # rank, size, local_rank from the launcher
    model = dist.DistributedDataParallel(model)           # same start on every rank, gradients averaged
    loader = dist.DistributedDataLoader(train_set, batch_size=64, shuffle=True, seed=0)  # this rank's shard
    ...the usual loop: zero_grad, forward, backward, step...; rank 0 saves (world.is_main)

A process started without a launcher is a world of one (no MPI needed): every collective returns its input.
Collectives wait with a deadline, and a rank that fails ends the job with its message on every rank (see
``comm``). ``forward_only`` sums the ridge statistics of the forward-only learners over the ranks.
"""

from .comm import (
    DistributedError,
    RanksDisagree,
    World,
    get_world,
    init,
    is_initialized,
    launched_by_mpi,
)
from .data_parallel import DistributedDataParallel, check_same_model
from .sampler import DistributedDataLoader, DistributedSampler


def all_reduce(array, op: str = "sum", timeout: float | None = None):
    """``init()``'s world: combine ``array`` over all ranks (sum, mean, max, min), in place."""
    return get_world().all_reduce(array, op, timeout)


def broadcast(array, root: int = 0, timeout: float | None = None):
    """``init()``'s world: rank ``root``'s ``array`` on every rank, in place."""
    return get_world().broadcast(array, root, timeout)


def all_gather(array, timeout: float | None = None):
    """``init()``'s world: every rank's ``array`` stacked along a new first axis."""
    return get_world().all_gather(array, timeout)


def barrier(timeout: float | None = None) -> None:
    """``init()``'s world: wait until every rank gets here."""
    get_world().barrier(timeout)


__all__ = [
    "DistributedDataLoader",
    "DistributedDataParallel",
    "DistributedError",
    "DistributedSampler",
    "RanksDisagree",
    "World",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "check_same_model",
    "get_world",
    "init",
    "is_initialized",
    "launched_by_mpi",
]
