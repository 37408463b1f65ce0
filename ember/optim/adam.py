"""Adam and AdamW, updating parameters in place with one preallocated scratch buffer each."""

from __future__ import annotations

import math

from ..autograd import no_grad
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma and Ba) with PyTorch's conventions; ``weight_decay`` is an L2 term added to g.

        m ← β1·m + (1-β1)·g;   v ← β2·v + (1-β2)·g²
        p ← p - lr/(1-β1ᵗ) · m / (sqrt(v)/sqrt(1-β2ᵗ) + ε)
    """

    persistent_state = ("step", "exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p, g, state in self._params_with_grad(group):
                if not state:
                    xp = p.device.xp
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                if "scratch" not in state:
                    state["scratch"] = p.device.xp.empty_like(p.data)
                state["step"] += 1
                t = state["step"]
                m, v, tmp = state["exp_avg"], state["exp_avg_sq"], state["scratch"]
                xp = p.device.xp
                if wd:
                    if self.decoupled:
                        p.data *= 1.0 - lr * wd
                    else:
                        g = g + wd * p.data
                m *= b1
                xp.multiply(g, 1.0 - b1, out=tmp)
                m += tmp
                v *= b2
                xp.multiply(g, g, out=tmp)
                tmp *= 1.0 - b2
                v += tmp
                bias2 = math.sqrt(1.0 - b2**t)
                xp.sqrt(v, out=tmp)
                tmp *= 1.0 / bias2
                tmp += eps
                xp.divide(m, tmp, out=tmp)
                tmp *= -lr / (1.0 - b1**t)
                p.data += tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p ← p·(1 - lr·λ) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
