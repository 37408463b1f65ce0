"""Under mpirun: a job that goes wrong on purpose. ``raise``: rank 1 raises while rank 0 waits in an all-reduce;
``hang``: rank 1 never joins the all-reduce; ``mismatch``: rank 1 builds a model of other shapes."""

import sys
import time

import numpy as np

import ember.distributed as dist
from ember.models import MLP

mode, timeout = sys.argv[1], float(sys.argv[2])
world = dist.init(timeout=timeout)
dist.all_reduce(np.ones(3))  # both ranks are up
if mode == "raise" and world.rank == 1:
    raise RuntimeError("rank one broke on purpose")
if mode == "hang" and world.rank == 1:
    time.sleep(10 * timeout)
if mode == "mismatch":
    hidden = 16 if world.rank == 0 else 24
    dist.DistributedDataParallel(MLP(sizes=(8, hidden, 3)))
dist.all_reduce(np.ones(3))
print(f"rank {world.rank} reached the end", flush=True)
