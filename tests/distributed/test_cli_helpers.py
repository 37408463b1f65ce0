"""What ``--distributed`` adds to the training commands, over a simulated second rank: every rank agrees on a NaN
loss (so all skip or stop at the same batch), epoch figures are means over the ranks, rank 1 writes nothing."""

from __future__ import annotations

import argparse

import pytest

from ember.cli.dist import AgreeingGuard, DivergedOnEveryRank, drop_writing_options, epoch_means
from ember.distributed import World
from ember.train import EpochStats, TrainingDiverged


class TwoRanks(World):
    """Rank 0 of two, the other rank holding ``theirs`` in every all-reduce."""

    def __init__(self, theirs: float):
        super().__init__(rank=0, size=2)
        self.theirs = theirs

    def _start_allreduce(self, flat, op):
        flat += self.theirs
        return []


def test_a_nan_on_the_other_rank_makes_this_rank_skip_too():
    guard = AgreeingGuard("skip", TwoRanks(float("nan")))
    assert not guard.ok(0.5, "batch 1")  # finite here, NaN there: both skip
    assert guard.skipped == 1
    assert AgreeingGuard("skip", TwoRanks(0.25)).ok(0.5, "batch 1")


def test_the_loss_check_can_wait_for_backward_and_decides_the_same():
    """check_loss only starts the agreement; settle (after backward) decides as ok would have."""
    nan_there = AgreeingGuard("skip", TwoRanks(float("nan")))
    assert nan_there.check_loss(0.5, "batch 1")  # not decided yet: backward runs
    assert not nan_there.settle() and nan_there.skipped == 1
    assert nan_there.settle()  # nothing pending any more
    fine = AgreeingGuard("skip", TwoRanks(0.25))
    assert fine.check_loss(0.5, "batch 2") and fine.settle() and fine.skipped == 0
    stopping = AgreeingGuard("stop", TwoRanks(float("inf")))
    stopping.check_loss(0.5, "batch 3")
    with pytest.raises(DivergedOnEveryRank, match="batch 3: the loss is inf"):
        stopping.settle()


def test_every_rank_stops_together_without_ending_the_job():
    with pytest.raises(DivergedOnEveryRank, match="training diverged at batch 3: the loss is nan") as caught:
        AgreeingGuard("stop", TwoRanks(float("nan"))).ok(0.5, "batch 3")
    assert isinstance(caught.value, TrainingDiverged) and caught.value.raised_on_every_rank


def test_epoch_figures_become_means_over_the_ranks():
    seen = []
    report = epoch_means(seen.append, TwoRanks(1.0))  # the other rank adds 1.0 to each sum
    report(EpochStats(epoch=1, loss=0.5, train_accuracy=0.75, test_accuracy=0.9, seconds=1.0))
    assert (seen[0].loss, seen[0].train_accuracy, seen[0].test_accuracy) == (0.75, 0.875, 0.9)
    def alone(stats):
        pass

    assert epoch_means(alone, None) is alone  # one process: the reporter unchanged


def test_ranks_other_than_0_drop_every_writing_option():
    args = argparse.Namespace(save="m.safetensors", log_dir="logs", plot="curves.png", no_progress=False, out="run")
    drop_writing_options(args)
    assert (args.save, args.log_dir, args.plot, args.no_progress) == (None, None, None, True)
    assert args.out == "run"  # the GPT's run folder: the trainer itself writes it on rank 0 only
