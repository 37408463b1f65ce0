"""``ember profile MODEL``: where a training step's time and memory go, op by op (``ember.profiler``)."""

from __future__ import annotations

import statistics
import time

import numpy as np

from .common import non_negative_int, positive_int, say

MODELS = ("mlp", "lenet", "kan", "gpt")
# MNIST's batch sizes of `ember train`; the GPT is nanoGPT's CPU recipe (4 layers, 4 heads, n_embd 128, context 64,
# batch 12, 65 characters), on random tokens
DEFAULT_BATCH = {"mlp": 128, "lenet": 64, "kan": 64, "gpt": 12}


def add_parser(sub) -> None:
    from ..profiler import SORT_KEYS

    p = sub.add_parser(
        "profile", help="profile training steps of a model, op by op",
        description="Build a model on random data of the right shape (MNIST images for mlp, lenet and kan; "
                    "nanoGPT's CPU recipe for gpt), run warm-up steps, then profile N training steps (forward, "
                    "loss, backward, optimizer step): a table of every op's forward and backward, the peak memory "
                    "of a step and, with --trace, a Chrome trace (open it in Perfetto or chrome://tracing).",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument("--steps", type=positive_int, default=5, metavar="N", help="profiled training steps (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                   help="default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_BATCH.items()))
    p.add_argument("--trace", default=None, metavar="PATH", help="write the Chrome trace (JSON) here")
    p.add_argument("--sort-by", choices=SORT_KEYS, default="self_cpu_time_total", metavar="KEY",
                   help=f"the table's order, largest first: {', '.join(SORT_KEYS)} (default self_cpu_time_total)")
    p.add_argument("--row-limit", type=positive_int, default=25, metavar="N", help="rows of the table (default 25)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(run=run)


def build_step(kind: str, batch_size: int, seed: int):
    """The model's training step on one fixed random batch: zero_grad, forward + loss, backward, optimizer step."""
    import ember
    import ember.nn.functional as F
    from ember.profiler import record

    from ..models import build

    ember.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(kind)
    if kind == "gpt":
        c = model.config
        ids = rng.integers(0, c.vocab_size, (batch_size, c.block_size + 1))
        x, y = ids[:, :-1], ids[:, 1:]
        opt = model.configure_optimizer(1e-3, 0.1, (0.9, 0.99))

        def loss_of():
            return model(x, y)[1]
    else:
        x = ember.tensor(rng.standard_normal((batch_size, 1, 28, 28)).astype(np.float32))
        y = ember.tensor(rng.integers(0, 10, batch_size))
        opt = ember.optim.Adam(model.parameters(), lr=1e-3)

        def loss_of():
            return F.cross_entropy(model(x), y)

    def step():
        opt.zero_grad()
        with record("forward"):
            loss = loss_of()
        with record("backward"):
            loss.backward()
        opt.step()

    return step


def warm_up(step, max_steps: int = 50) -> None:
    """Unprofiled steps until the first calls' compilation and the optimizer's state are behind, and ember's BLAS
    thread policy (sampled every half second, ``ember/threads.py``) has looked at the machine: at least two steps
    and a little over one sampling interval. (KAN's steps ran 20x slower before it did, on a shared machine.)"""
    from ..threads import INTERVAL_S

    start, steps = time.perf_counter(), 0
    while steps < max_steps and (steps < 2 or time.perf_counter() - start < INTERVAL_S * 1.2):
        step()
        steps += 1


def run(args) -> int:
    from ..profiler import profile

    if args.trace:
        from ..io.atomic import check_destination

        check_destination(args.trace)  # a bad path fails now, not after the profiled steps
    batch = args.batch_size or DEFAULT_BATCH[args.model]
    step = build_step(args.model, batch, args.seed)
    warm_up(step)
    seconds = []
    with profile(record_shapes=True, profile_memory=True) as prof:
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            prof.step()
            seconds.append(time.perf_counter() - start)
    averages = prof.key_averages()
    say(averages.table(sort_by=args.sort_by, row_limit=args.row_limit).rstrip())
    ops_us = sum(r.self_cpu_time_total for r in averages if r.kind in ("forward", "backward"))
    wall_us = sum(seconds) * 1e6
    say(f"{args.model}, batch {batch}: {args.steps} profiled steps, median {statistics.median(seconds) * 1e3:.2f} ms "
        f"per step; ops' own time {ops_us / wall_us:.0%} of it (the rest: Python between ops, the optimizer, the "
        "graph walk)")
    if args.trace:
        prof.export_chrome_trace(args.trace)
        say(f"trace written to {args.trace} (open it in https://ui.perfetto.dev or chrome://tracing)")
    return 0
