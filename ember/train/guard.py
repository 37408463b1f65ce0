"""What a training loop does when the loss turns NaN or infinite: stop with a clear error, or skip the batch.

A non-finite loss poisons every weight it updates, and a run that carries on trains a model of NaNs
and reports it as a result. The default is to stop (``TrainingDiverged``, exit status 1 from the
command line). ``"skip"`` drops the offending step instead (no backward pass, no update), for data
with rare bad batches; a run whose steps keep failing still stops, after ``max_consecutive`` in a row.
"""

from __future__ import annotations

import math

POLICIES = ("stop", "skip")


class TrainingDiverged(RuntimeError):
    """The loss (or the gradient norm) became NaN or infinite."""


class NonFiniteGuard:
    """Checks each step's loss; ``ok()`` says whether to apply the step, or raises ``TrainingDiverged``."""

    def __init__(self, policy: str = "stop", max_consecutive: int = 25):
        if policy not in POLICIES:
            raise ValueError(f"on_nonfinite must be one of {POLICIES}, got {policy!r}")
        self.policy, self.max_consecutive = policy, max_consecutive
        self.skipped = 0  # steps dropped so far
        self._in_a_row = 0

    def ok(self, value: float, where: str, what: str = "loss") -> bool:
        """True if ``value`` is finite; else False (skip) or an error (stop, or too many skips in a row)."""
        if math.isfinite(value):
            self._in_a_row = 0
            return True
        if self.policy == "stop":
            raise TrainingDiverged(f"training diverged at {where}: the {what} is {value}. Try a lower learning rate, "
                                   f"gradient clipping, or --skip-nonfinite to drop bad batches")
        self.skipped += 1
        self._in_a_row += 1
        if self._in_a_row >= self.max_consecutive:
            raise TrainingDiverged(f"training diverged at {where}: the {what} was non-finite in {self._in_a_row} steps "
                                   f"in a row ({self.skipped} skipped in all); the model's weights are likely NaN")
        return False

    def check_loss(self, value: float, where: str) -> bool:
        """The loss's check before backward: ``ok(value, where)``. A guard that must agree with other processes
        may only start the agreement here, return True, and decide in ``settle()``: the loop then runs backward
        on every step, and one synchronisation per step serves both the loss and the gradients."""
        return self.ok(value, where)

    def settle(self) -> bool:
        """After backward, before the optimizer's step: False when a check that ``check_loss`` postponed says
        skip the step (or an error, as ``ok``). Nothing is ever postponed here."""
        return True
