"""Under mpirun: buffers from ``all_reduce_buffer`` reduced round after round with every op and dtype, each rank's
data drawn from (round, rank) seeds so the test can recompute every rank's part; the same data through a plain
array (MPI's all-reduce) beside it. Each rank writes <out>/rank<r>.npz."""

import os
import sys

import numpy as np

import ember
import ember.distributed as dist

out = sys.argv[1]
world = dist.init(timeout=20)
SIZES = (1, 17, 1000, 100_003)
DTYPES = ("float32", "float64", "int64")
ROUNDS = 6

got = {}
for dtype in DTYPES:
    for size in SIZES:
        buffer = world.all_reduce_buffer(size, dtype)
        plain = np.empty(size, dtype)
        got[f"shared-{dtype}-{size}"] = np.array(world.in_shared_memory(buffer))
        ops = ["sum", "max", "min"] + (["mean"] if dtype != "int64" else [])
        for i in range(ROUNDS):
            op = ops[i % len(ops)]
            rng = np.random.default_rng([size, i, world.rank])
            part = rng.standard_normal(size) * 100 if dtype != "int64" else rng.integers(-1000, 1000, size)
            buffer[...] = part
            plain[...] = part
            result = world.all_reduce(buffer, op)
            assert result is buffer
            world.all_reduce(plain, op)
            got[f"{dtype}-{size}-{i}-{op}"] = buffer.copy()
            got[f"mpi-{dtype}-{size}-{i}-{op}"] = plain.copy()

# as a Tensor: reduced in place, its version bumped (an autograd graph that saved it would notice)
tensor = ember.Tensor(world.all_reduce_buffer(5, "float32"))
tensor.data[...] = world.rank + 1
version = tensor._version
world.all_reduce(tensor)
got["tensor"] = tensor.numpy()
got["tensor_version_bumped"] = np.array(tensor._version > version)
# a part of the buffer is not the buffer: MPI reduces it, the rest stays
buffer = world.all_reduce_buffer(64, "float64")
buffer[...] = world.rank + 1
world.all_reduce(buffer[:10])
got["part"] = buffer.copy()
# started, then left to the wait with another collective in flight beside it
first, second = world.all_reduce_buffer(40, "float32"), np.full(3, float(world.rank))
first[...] = world.rank + 1
pendings = [world.all_reduce_start(first), world.all_reduce_start(second, "max")]
world.progress(pendings)
world.wait_all(pendings)
got["beside_shared"], got["beside_mpi"] = first.copy(), second.copy()
# a rank waiting in another collective still does its part of a shared all-reduce it started: rank 0 starts one
# and waits in a barrier, rank 1 waits for that all-reduce before it reaches the barrier (else: both wait forever)
crossed = world.all_reduce_buffer(33, "float64")
crossed[...] = world.rank + 1
pending = world.all_reduce_start(crossed)
if world.rank == 0:
    world.barrier()
    world.wait(pending)
else:
    world.wait(pending)
    world.barrier()
got["crossed"] = crossed.copy()
# ranks that ask for buffers of different sizes are told so, on every rank
try:
    world.all_reduce_buffer(10 + world.rank, "float32")
    got["disagree"] = np.array("")
except dist.RanksDisagree as e:
    got["disagree"] = np.array(str(e))
# ranks launched with different EMBER_DIST_SHARED_MEMORY are told so, instead of one waiting in a window alone
os.environ["EMBER_DIST_SHARED_MEMORY"] = "0" if world.rank == 1 else "1"
try:
    world.all_reduce_buffer(8, "float32")
    got["env_disagree"] = np.array("")
except dist.RanksDisagree as e:
    got["env_disagree"] = np.array(str(e))
del os.environ["EMBER_DIST_SHARED_MEMORY"]
np.savez(f"{out}/rank{world.rank}.npz", **got)
