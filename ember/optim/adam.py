"""Adam and AdamW, updating parameters in place in ten whole-array passes.

The moments are kept scaled, M = m/(1-β1) and V = v/(1-β2), so their updates are
M ← β1·M + g and V ← β2·V + g², two and three passes instead of three and four; every
constant of the step folds into two scalars. ``state_dict`` stores PyTorch's m and v.
(Splitting the update over Python threads was measured and lost: a thread hand-off costs
~70 µs here, a third of the whole update of a 200k-element weight.)
"""

from __future__ import annotations

import math

from ..autograd import no_grad
from .optimizer import Optimizer


def _adam_update(p, g, M, V, tmp, b1, b2, step, eps, decay, xp):
    """One Adam step on matching (slices of) arrays; ``decay`` < 1 applies decoupled weight decay."""
    if decay != 1.0:
        p *= decay
    M *= b1
    M += g
    V *= b2
    xp.multiply(g, g, out=tmp)
    V += tmp
    xp.sqrt(V, out=tmp)
    tmp += eps
    xp.divide(M, tmp, out=tmp)
    tmp *= step
    p -= tmp


class Adam(Optimizer):
    """Adam (Kingma and Ba) with PyTorch's conventions; ``weight_decay`` is an L2 term added to g.

        m ← β1·m + (1-β1)·g;   v ← β2·v + (1-β2)·g²
        p ← p - lr/(1-β1ᵗ) · m / (sqrt(v)/sqrt(1-β2ᵗ) + ε)
    """

    # M and V are saved beside PyTorch's m and v: m·(1-β1)/(1-β1) does not round-trip in floating point,
    # and a resumed run must continue bit for bit. A state dict with only m and v (PyTorch's) loads too.
    persistent_state = ("step", "exp_avg", "exp_avg_sq", "M", "V")
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
                xp = p.device.xp
                if "M" not in state or state["M"].shape != p.data.shape:  # new, or reshaped (KAN grid extension)
                    state["step"] = 0
                    state["M"] = xp.zeros_like(p.data)
                    state["V"] = xp.zeros_like(p.data)
                if "scratch" not in state or state["scratch"].shape != p.data.shape:
                    state["scratch"] = xp.empty_like(p.data)
                state["step"] += 1
                t = state["step"]
                if wd and not self.decoupled:
                    g = g + wd * p.data
                # p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps), rewritten for M and V:
                s2 = math.sqrt((1.0 - b2) / (1.0 - b2**t))
                step = lr * (1.0 - b1) / ((1.0 - b1**t) * s2)
                decay = 1.0 - lr * wd if (wd and self.decoupled) else 1.0
                _adam_update(p.data, g, state["M"], state["V"], state["scratch"], b1, b2, step, eps / s2, decay, xp)

    # PyTorch's m and v in the saved state, the scaled moments inside
    def state_dict(self) -> dict:
        for state in self.state.values():
            if "M" in state:
                b1, b2 = self._betas_of(state)
                state["exp_avg"] = state["M"] * (1.0 - b1)
                state["exp_avg_sq"] = state["V"] * (1.0 - b2)
        out = super().state_dict()
        for state in self.state.values():
            state.pop("exp_avg", None)
            state.pop("exp_avg_sq", None)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for state in self.state.values():
            exp_avg, exp_avg_sq = state.pop("exp_avg", None), state.pop("exp_avg_sq", None)
            if exp_avg is not None and "M" not in state:
                b1, b2 = self._betas_of(state)
                state["M"] = exp_avg / (1.0 - b1)
                state["V"] = exp_avg_sq / (1.0 - b2)

    def _betas_of(self, state) -> tuple[float, float]:
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(id(p)) is state:
                    return group["betas"]
        return self.defaults["betas"]


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p ← p·(1 - lr·λ) before the Adam step."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
