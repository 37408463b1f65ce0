"""Training loops and metrics shared by the CLI, the benchmarks and the tests."""

from .classification import EpochStats, evaluate, fit, train_epoch
from .guard import NonFiniteGuard, TrainingDiverged
from .lm_eval import LMEvalResult, evaluate_lm

__all__ = ["EpochStats", "LMEvalResult", "NonFiniteGuard", "TrainingDiverged", "evaluate", "evaluate_lm", "fit",
           "train_epoch"]
