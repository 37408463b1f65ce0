"""Under mpirun: one data-parallel step (SGD) of an MLP (float32 and float64), a LeNet-5 and a tiny GPT, each rank
on its half of a batch of 2B rows, with different initial weights per rank (rank 0's must win) and several bucket
layouts; every rank writes its parameters after the step to <out>/<case>-rank<r>.npz. Then buffers under
broadcast_buffers, and an epoch of ``train_epoch`` in which one rank's batch has a NaN loss (skip-rank<r>.npz), and
the GPT trainer with a NaN loss on rank 1 at one iteration (lm-skip-rank<r>.npz). The buckets lie in shared
memory unless EMBER_DIST_SHARED_MEMORY=0 (<case>-path-rank<r>.txt says which)."""

import sys

import numpy as np

import ember
import ember.distributed as dist
from ember.cli.dist import AgreeingGuard
from ember.models import GPT, MLP, GPTConfig, LeNet5
from ember.nn import functional as F
from ember.train.classification import train_epoch
from ember.train.lm import LMTrainConfig, LMTrainer

out = sys.argv[1]
world = dist.init(timeout=60)
B = 4  # rows per rank


def batch(case: str):
    rng = np.random.default_rng(0)
    if case.startswith("mlp"):
        dtype = "float64" if case.endswith("64") else "float32"
        return rng.standard_normal((2 * B, 12)).astype(dtype), rng.integers(0, 5, 2 * B)
    if case == "lenet":
        return rng.standard_normal((2 * B, 1, 28, 28)).astype("float32"), rng.integers(0, 10, 2 * B)
    return rng.integers(0, 11, (2 * B, 8)), rng.integers(0, 11, (2 * B, 8))


def model_for(case: str):
    ember.manual_seed(100 + world.rank)  # every rank starts from other weights
    if case.startswith("mlp"):
        return MLP(sizes=(12, 16, 8, 5)).to(dtype="float64" if case.endswith("64") else "float32")
    if case == "lenet":
        return LeNet5()
    return GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))


def loss_of(model, case, x, y):
    if case == "gpt":
        return model(ember.Tensor(x), ember.Tensor(y))[1]
    return F.cross_entropy(model(ember.Tensor(x)), ember.Tensor(y))


CASES = [("mlp32", dict(overlap=True)), ("mlp64", dict(overlap=True, bucket_cap_mb=0.0005)),
         ("mlp64-end", dict(overlap=False, bucket_cap_mb=0.0005)), ("lenet", dict(overlap=True, bucket_cap_mb=0.01)),
         ("gpt", dict(overlap=True, bucket_cap_mb=0.001))]
for case, options in CASES:
    kind = case.split("-")[0]
    model = model_for(kind)
    ddp = dist.DistributedDataParallel(model, **options)
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = batch(kind)
    mine = slice(world.rank * B, (world.rank + 1) * B)
    opt.zero_grad()
    loss_of(ddp, kind, x[mine], y[mine]).backward()
    opt.step()
    ddp.close()
    np.savez(f"{out}/{case}-rank{world.rank}.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    with open(f"{out}/{case}-path-rank{world.rank}.txt", "w") as f:  # how the buckets travelled
        f.write(" ".join("shared" if world.in_shared_memory(b.buffer) else "mpi" for b in ddp._buckets))


class Tally(ember.nn.Module):
    """A layer with a buffer it reads at the start of each forward and then moves by a rank-dependent amount (as
    running statistics move by each rank's own shard)."""

    def __init__(self):
        super().__init__()
        self.linear = ember.nn.Linear(3, 2)
        self.register_buffer("count", ember.zeros(2))
        self.seen = []

    def forward(self, x):
        self.seen.append(self.count.numpy().copy())
        self.count.data += world.rank + 1
        return self.linear(x)


for broadcast in (True, False):
    ember.manual_seed(0)
    tally = Tally()
    ddp = dist.DistributedDataParallel(tally, broadcast_buffers=broadcast)
    x = ember.Tensor(np.ones((2, 3), dtype="float32"))
    for _ in range(3):
        ddp(x).sum().backward()
    with ember.no_grad():  # no broadcast outside training: ranks may evaluate alone
        ddp(x)
    ddp.eval()
    ddp(x)
    ddp.close()
    np.save(f"{out}/buffers-{broadcast}-rank{world.rank}.npy", np.array(tally.seen))


# An epoch of 4 steps in which rank 1's third batch is NaN: the ranks agree on the loss while backward runs, and both
# drop the step (skip), so the replicas stay equal and equal one process that never took that batch.
ember.manual_seed(100 + world.rank)
model = MLP(sizes=(12, 16, 8, 5)).to(dtype="float64")
ddp = dist.DistributedDataParallel(model)
opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
rng = np.random.default_rng(1)
x, y = rng.standard_normal((4, 2 * B, 12)), rng.integers(0, 5, (4, 2 * B))
x[2, B:] = np.nan  # rank 1's half of step 2
mine = slice(world.rank * B, (world.rank + 1) * B)
guard = AgreeingGuard("skip", world)
loss, _ = train_epoch(ddp, [(ember.Tensor(x[k, mine]), ember.Tensor(y[k, mine])) for k in range(4)], opt, guard=guard)
ddp.close()
np.savez(f"{out}/skip-rank{world.rank}.npz", skipped=guard.skipped, loss=loss,
         **{k: v.numpy() for k, v in model.state_dict().items()})


# The GPT trainer: rank 1's loss is NaN at its third iteration. The ranks average the loss while backward runs and
# both drop that step, so they stay equal (one rank skipping alone would pair mismatched all-reduces).
corpus = f"{out}/corpus-{world.rank}.txt"
with open(corpus, "w", encoding="utf-8") as f:
    f.write(" ".join(np.random.default_rng(0).choice(["the", "cat", "sat", "on", "a", "mat"], 2000)))
trainer = LMTrainer(LMTrainConfig(data=corpus, n_layer=1, n_head=2, n_embd=8, block_size=8, batch_size=2,
                                  max_iters=5, eval_iters=1, eval_interval=100, log_interval=100, warmup_iters=1,
                                  on_nonfinite="skip", grad_clip=0.0), world=world)  # no norm check to catch it
calls = [0]
forward = trainer.model.forward


def poisoned(*args, **kwargs):
    logits, loss = forward(*args, **kwargs)
    calls[0] += 1
    if world.rank == 1 and calls[0] == 3 and loss is not None:
        loss = loss * float("nan")
    return logits, loss


trainer.model.forward = poisoned
trainer.run(progress=False)
trainer.ddp.close()
np.savez(f"{out}/lm-skip-rank{world.rank}.npz", skipped=trainer.guard.skipped, iters=trainer.iter,
         **{k: v.numpy() for k, v in trainer.model.state_dict().items()})
