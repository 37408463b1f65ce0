"""Training loops and metrics shared by the CLI, the benchmarks and the tests."""

from .classification import EpochStats, evaluate, fit, train_epoch

__all__ = ["EpochStats", "evaluate", "fit", "train_epoch"]
