"""Function-fitting tasks and a full-batch regression loop (used by ``ember train kan --task``).

Tasks (documented targets, inputs drawn uniformly from their domain):

* ``sinusoid``: f(x) = sin(x) on [-π, π];
* ``exp-sin``: f(x, y) = exp(sin(πx) + y²) on [-1, 1]² (pykan's running example).

One fixed sample is split into train and validation points by a mask; both losses come from
one forward pass through ``masked_mse_loss``, so held-out points never leak into training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..nn import functional as F
from ..optim import AdamW, CosineAnnealingLR, clip_grad_norm_
from ..tensor import Tensor
from .guard import NonFiniteGuard


@dataclass(frozen=True)
class Task:
    name: str
    dims: int
    domain: tuple[float, float]
    fn: Callable[[np.ndarray], np.ndarray]  # (n, dims) -> (n, 1)
    formula: str


TASKS = {
    "sinusoid": Task("sinusoid", 1, (-math.pi, math.pi), lambda x: np.sin(x[:, :1]), "sin(x)"),
    "exp-sin": Task("exp-sin", 2, (-1.0, 1.0), lambda x: np.exp(np.sin(np.pi * x[:, :1]) + x[:, 1:2] ** 2),
                    "exp(sin(pi*x0) + x1^2)"),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name]


def sample(task: Task, n: int, seed: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(*task.domain, size=(n, task.dims))
    return x.astype(dtype), task.fn(x).astype(dtype)


@dataclass
class RegressionResult:
    train_mse: float
    val_mse: float
    test_mse: float
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)


def mse(model, x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of the model on host arrays, computed on the host in float64 whatever the model's device."""
    with no_grad():
        pred = model(Tensor(x).to(model_device(model))).numpy()
    return float(np.mean((pred.astype(np.float64) - y) ** 2))


def fit_regression(model, task: Task, steps: int = 3000, lr: float = 1e-2, weight_decay: float = 0.0,
                   grad_clip: float | None = 1.0, n_samples: int = 1000, val_fraction: float = 0.2,
                   seed: int = 0, grid_schedule: dict[int, int] | None = None, regularization: float = 0.0,
                   on_log: Callable[[dict], None] | None = None, log_every: int = 500,
                   on_nonfinite: str = "stop") -> RegressionResult:
    """Full-batch AdamW with cosine decay on ``task``; ``grid_schedule`` maps a step to a new KAN grid
    size (grid extension: the optimizer is rebuilt, the schedule continues). ``regularization``
    adds λ·(L1 + entropy) of a KAN's edges, sample-based. ``on_nonfinite``: see ``guard.py``.
    The samples are drawn on the host (the same points on every device) and trained on the model's device."""
    guard = NonFiniteGuard(on_nonfinite)
    device = model_device(model)
    x, y = sample(task, n_samples, seed, dtype=model_dtype(model))
    rng = np.random.default_rng(seed + 1)
    host_mask = rng.random(n_samples) >= val_fraction
    train_mask = backend.to_device(host_mask[:, None], device)
    val_mask = backend.to_device(~host_mask[:, None], device)
    xt, yt = Tensor(x).to(device), Tensor(y).to(device)
    grid_schedule = dict(grid_schedule or {})
    make_opt = lambda: AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)  # noqa: E731
    opt = make_opt()
    sched = CosineAnnealingLR(opt, T_max=steps)
    history, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        if step in grid_schedule:  # finer grid: new coefficient shapes, so a new optimizer, same schedule
            model.extend_grid(grid_schedule[step], xt)
            opt = make_opt()
            sched = CosineAnnealingLR(opt, T_max=steps)
            sched.load_state_dict({"last_step": step - 1, "base_lrs": sched.base_lrs})
        opt.zero_grad()
        pred = model(xt)
        loss = F.masked_mse_loss(pred, yt, train_mask)
        total = loss + regularization * model.regularization_loss(x=xt) if regularization else loss
        if not guard.ok(total.item(), f"step {step}"):
            sched.step()
            continue
        total.backward()
        if grad_clip and not guard.ok(float(clip_grad_norm_(model.parameters(), grad_clip)), f"step {step}",
                                      "gradient norm"):
            sched.step()
            continue
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps:
            with no_grad():
                val = F.masked_mse_loss(model(xt), yt, val_mask).item()
            entry = {"step": step, "train_mse": loss.item(), "val_mse": val, "lr": sched.get_last_lr()[0]}
            history.append(entry)
            if on_log:
                on_log(entry)
    with no_grad():
        pred_all = model(xt)
        train_mse = F.masked_mse_loss(pred_all, yt, train_mask).item()
        val_mse = F.masked_mse_loss(pred_all, yt, val_mask).item()
    test_mse = test_mse_on_fresh_points(model, task, seed)
    return RegressionResult(train_mse, val_mse, test_mse, steps, time.perf_counter() - start, history)


TEST_POINTS = 10_000


def test_mse_on_fresh_points(model, task: Task, seed: int) -> float:
    """MSE on 10,000 points the run never trained on: drawn in float64 from seed + 2, fed in the model's dtype.
    ``ember eval`` calls this with the run's seed to reproduce the number the run reported."""
    x, y = sample(task, TEST_POINTS, seed + 2, dtype=np.float64)
    return mse(model, x.astype(model_dtype(model)), y)


def model_device(model) -> backend.Device:
    """Where the model's parameters live (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return backend.CPU


def model_dtype(model):
    for p in model.parameters():
        return p.dtype
    return backend.get_default_dtype()
