"""Learning-rate schedules: step decay, cosine annealing, linear warmup then cosine.

Each scheduler sets ``group['lr']`` for every parameter group from the group's initial lr
and its own step counter; call ``step()`` once per epoch or per iteration, after
``optimizer.step()``.
"""

from __future__ import annotations

import math

from .optimizer import Optimizer


class LRScheduler:
    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def lr_at(self, base_lr: float, step: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_step)

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_step, self.base_lrs = int(state["last_step"]), list(state["base_lrs"])
        self._apply()


class StepLR(LRScheduler):
    """lr = base · gamma^(step // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min)·(1 + cos(π·step/T_max))/2, held at eta_min after T_max."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 - PyTorch's name
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        ratio = min(step, self.T_max) / self.T_max
        return self.eta_min + (base_lr - self.eta_min) * 0.5 * (1.0 + math.cos(math.pi * ratio))


class WarmupCosineLR(LRScheduler):
    """Linear warmup then cosine decay (nanoGPT's schedule).

    For step < warmup: base·(step+1)/(warmup+1) (never zero at step 0). Then cosine from base
    to min_lr between warmup and decay_steps; min_lr afterwards.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, decay_steps: int, min_lr: float = 0.0):
        if warmup_steps < 0 or decay_steps < warmup_steps:
            raise ValueError(
                f"WarmupCosineLR: need 0 <= warmup_steps <= decay_steps, got {warmup_steps}, {decay_steps}"
            )
        self.warmup_steps, self.decay_steps, self.min_lr = warmup_steps, decay_steps, min_lr
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, step: int) -> float:
        if step < self.warmup_steps:
            return base_lr * (step + 1) / (self.warmup_steps + 1)
        if step >= self.decay_steps:
            return self.min_lr
        ratio = (step - self.warmup_steps) / max(self.decay_steps - self.warmup_steps, 1)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (base_lr - self.min_lr)
