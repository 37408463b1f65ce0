"""Under mpirun: a job that goes wrong on purpose. ``raise``: rank 1 raises while rank 0 waits in an all-reduce;
``hang``: rank 1 never joins the all-reduce; ``mismatch``: rank 1 builds a model of other shapes; ``shared-raise``
and ``shared-hang``: the same two while rank 0 waits in the all-reduce of a buffer in shared memory;
``shared-no-room``: rank 1 cannot map its part of a shared buffer."""

import sys
import time

import numpy as np

import ember.distributed as dist
from ember.models import MLP

mode, timeout = sys.argv[1], float(sys.argv[2])
world = dist.init(timeout=timeout)
dist.all_reduce(np.ones(3))  # both ranks are up
if mode == "shared-no-room" and world.rank == 1:
    import ember.distributed.comm as comm

    def no_room(*args):
        raise OSError(28, "No space left on device")

    comm.map_node_buffer = no_room
buffer = world.all_reduce_buffer(3, "float64") if mode.startswith("shared") else np.ones(3)
buffer[...] = 1.0
if mode.endswith("raise") and world.rank == 1:
    raise RuntimeError("rank one broke on purpose")
if mode.endswith("hang") and world.rank == 1:
    time.sleep(10 * timeout)
dist.all_reduce(buffer)
if mode == "mismatch":
    hidden = 16 if world.rank == 0 else 24
    dist.DistributedDataParallel(MLP(sizes=(8, hidden, 3)))
dist.all_reduce(np.ones(3))
print(f"rank {world.rank} reached the end", flush=True)
