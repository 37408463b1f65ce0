"""Under mpirun: every collective on arrays and objects, and a DistributedDataLoader's epochs; each rank writes
what it got to <out>/rank<r>.json for the test to check."""

import json
import sys

import numpy as np

import ember.distributed as dist
from ember.data import TensorDataset

out = sys.argv[1]
world = dist.init(timeout=60)
r, n = world.rank, world.size
got = {"rank": r, "size": n, "local_rank": world.local_rank, "local_size": world.local_size}

a = np.arange(6, dtype=np.float32).reshape(2, 3) * (r + 1)
got["sum"] = dist.all_reduce(a).tolist()
b = np.full(4, float(r + 1))
got["mean"] = dist.all_reduce(b, "mean").tolist()
got["max"] = dist.all_reduce(np.array([r, -r], dtype=np.int64), "max").tolist()
got["min"] = dist.all_reduce(np.array([r, -r], dtype=np.int64), "min").tolist()
strided = np.ones((3, 4))[:, ::2] * (r + 1)  # not contiguous: reduced through a copy, written back
dist.all_reduce(strided)
got["strided"] = strided.tolist()
c = np.arange(5) * (r + 10)
got["broadcast_from_last"] = dist.broadcast(c, root=n - 1).tolist()
got["all_gather"] = dist.all_gather(np.array([r, 10 * r], dtype=np.int32)).tolist()
reduced = np.full(3, float(r + 1))
world.reduce(reduced, root=0)
got["reduce"] = reduced.tolist()
got["objects"] = world.all_gather_object({"rank": r, "word": "abc" * r})
got["object_from_0"] = world.broadcast_object({"from": r} if r == 0 else None)
big = np.full(3_000_001, 1.0, dtype=np.float32)  # several MiB in one call
dist.all_reduce(big)
got["big_sum_min_max"] = [float(big.min()), float(big.max())]
dist.barrier()

dataset = TensorDataset(np.arange(103), np.arange(103) % 7)
loader = dist.DistributedDataLoader(dataset, batch_size=8, shuffle=True, seed=5)
got["batches_per_epoch"] = len(loader)
got["epochs"] = [[batch[0].numpy().tolist() for batch in loader] for _ in range(2)]

with open(f"{out}/rank{r}.json", "w") as f:
    json.dump(got, f)
