"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay."""

from __future__ import annotations

from ..autograd import no_grad
from .optimizer import Optimizer


class SGD(Optimizer):
    """PyTorch's SGD: with weight decay λ, momentum μ and dampening τ,

        g ← g + λ·p;   b ← μ·b + (1 - τ)·g  (b = g on the first step);
        g ← g + μ·b if nesterov else b;   p ← p - lr·g
    """

    persistent_state = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))

    @no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, mu, damp, wd, nesterov = (group[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov"))
            for p, g, state in self._params_with_grad(group):
                if wd:
                    g = g + wd * p.data
                if mu:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.copy()
                    else:
                        buf *= mu
                        buf += (1 - damp) * g if damp else g
                    g = g + mu * buf if nesterov else buf
                p.data -= lr * g
