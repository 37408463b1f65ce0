"""``--distributed`` on ``ember train``: data-parallel training over the processes of an MPI job.

``mpirun -np N ember train mlp --distributed`` starts N copies of the command; each trains on its shard of every
epoch with ``--batch-size`` samples per step (per process, as PyTorch's DDP: the global batch is N times it),
gradients averaged over the processes. Rank 0 alone prints, shows progress, writes the checkpoint and the logs:
the other ranks run without those options. A rank that fails ends the job with its error on every rank.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import numpy as np

from ..train.guard import NonFiniteGuard, TrainingDiverged
from .common import UsageError, UserError


def add_distributed_arg(parser) -> None:
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the processes of an MPI job: mpirun -np N ember train ... "
                             "--distributed (pip install 'ember[mpi]'); --batch-size is per process, rank 0 prints "
                             "and writes")


@contextlib.contextmanager
def distributed(args):
    """Yields None without ``--distributed``; else this process's World, for the duration of the command: stdout
    silenced and the writing options dropped on ranks other than 0, and an error announced to the other ranks
    (which then stop) before it propagates."""
    from ..distributed import DistributedError, init
    from ..distributed.comm import launcher_size

    if not getattr(args, "distributed", False):
        if (launcher_size() or 1) > 1:
            warnings.warn(f"{launcher_size()} copies of this command were started by an MPI launcher and each trains "
                          "alone, writing the same files: add --distributed to train one model over them",
                          stacklevel=2)
        yield None
        return

    try:
        world = init(require_launcher=True)
    except DistributedError as exc:
        raise UserError(f"--distributed: {exc}") from None
    if not world.is_main:
        drop_writing_options(args)
    quiet = None if world.is_main else open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        with contextlib.redirect_stdout(quiet) if quiet else contextlib.nullcontext():
            yield world
    except BaseException as exc:
        if not getattr(exc, "raised_on_every_rank", False):
            world.fail(describe(exc))
        raise
    finally:
        if quiet is not None:
            quiet.close()


def drop_writing_options(args) -> None:
    """Ranks other than 0 write nothing: no checkpoint, no logs, no plot, no progress bar (the summary and the
    epoch lines are silenced with their stdout)."""
    for name in ("save", "log_dir", "plot"):
        if hasattr(args, name):
            setattr(args, name, None)
    if hasattr(args, "no_progress"):
        args.no_progress = True


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def first_on_rank_zero(world):
    """Rank 0 runs the block first (it may download a dataset into the shared cache), the others after it."""
    return contextlib.nullcontext() if world is None else world.rank_zero_first()


def refuse(args, reason: str) -> None:
    """A run that ``--distributed`` cannot share out (``reason``) is a usage error."""
    if getattr(args, "distributed", False):
        raise UsageError(f"--distributed: {reason}")


def batch_words(batch_size: int, world) -> str:
    """"batch 64", or "batch 64 per process x 2 processes = 128"."""
    if world is None:
        return f"batch {batch_size}"
    return f"batch {batch_size} per process x {world.size} processes = {batch_size * world.size}"


def summary_fields(batch_size: int, world) -> dict:
    """What a distributed run's summary adds: the processes and the global batch."""
    if world is None:
        return {}
    return {"processes": world.size, "global_batch_size": batch_size * world.size}


class DivergedOnEveryRank(TrainingDiverged):
    """Every rank stops together at the same step (they agreed on the loss), so none needs to end the others."""

    raised_on_every_rank = True


class AgreeingGuard(NonFiniteGuard):
    """A NonFiniteGuard that decides on the mean of every rank's value: all ranks skip the same batches (one that
    skipped alone would pair its next gradient all-reduce with the others' current one) and stop at the same step.

    The loss's agreement is postponed (``check_loss`` starts it, ``settle`` decides): every rank runs backward,
    and the loss's all-reduce completes while the gradients' does, so a step waits for the other ranks once, not
    twice. A non-finite loss then costs a backward whose gradients are dropped (``settle`` says skip, or stops)."""

    def __init__(self, policy: str, world):
        super().__init__(policy)
        self.world = world
        self._pending = None  # (the started all-reduce of the loss, where)
        # one number in the ranks' shared memory on one node (collective): starting MPI's all-reduce of one number
        # cost 0.09 ms of every 3.5 ms step of the MNIST MLP
        self._value = world.all_reduce_buffer(1, np.float64)

    def ok(self, value: float, where: str, what: str = "loss") -> bool:
        number = self._value if self._pending is None else np.empty(1)  # (the loss's agreement may hold the buffer)
        number[0] = value
        return self._decide(float(self.world.all_reduce(number, "mean")[0]), where, what)

    def check_loss(self, value: float, where: str) -> bool:
        self._value[0] = value
        self._pending = self.world.all_reduce_start(self._value, "mean"), where
        return True

    def settle(self) -> bool:
        if self._pending is None:
            return True
        (pending, where), self._pending = self._pending, None
        return self._decide(float(self.world.wait(pending)[0]), where, "loss")

    def _decide(self, value: float, where: str, what: str) -> bool:
        try:
            return super().ok(value, where, what)
        except TrainingDiverged as exc:
            raise DivergedOnEveryRank(str(exc)) from None


def nonfinite_policy(policy: str, world):
    """What ``fit``'s ``on_nonfinite`` gets: the policy's name in one process, an AgreeingGuard over ranks."""
    return policy if world is None else AgreeingGuard(policy, world)


def epoch_means(report, world):
    """An ``on_epoch`` that replaces the epoch's training loss and accuracy (this rank's shard) with their mean
    over the ranks (the shards are the same size) before ``report``; every rank calls it at the same point."""
    if world is None:
        return report

    def on_epoch(stats):
        means = world.all_reduce(np.array([stats.loss, stats.train_accuracy], dtype=np.float64), "mean")
        stats.loss, stats.train_accuracy = float(means[0]), float(means[1])
        report(stats)

    return on_epoch
