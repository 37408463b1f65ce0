"""Adam and AdamW, updating parameters in place: one fused pass per parameter (``ember.kernels.optim``,
numba) or, as the reference, ten whole-array NumPy passes.

The moments are kept scaled, M = m/(1-β1) and V = v/(1-β2), so their updates are
M ← β1·M + g and V ← β2·V + g², two and three passes instead of three and four; every
constant of the step folds into two scalars. ``state_dict`` stores PyTorch's m and v.
(Splitting the update over Python threads was measured and lost: a thread hand-off costs
~70 µs here, a third of the whole update of a 200k-element weight.) The kernel computes the
reference's arithmetic per element, so both give the same bits; arrays it cannot take (CuPy, float16,
strided, mixed dtypes, a gradient not shaped like its parameter) go to the reference.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..autograd import no_grad
from ..kernels import optim as fused
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
    fused.flush_subnormals(M, xp)  # see ember.kernels.optim: dead units' moments would crawl through subnormals
    fused.flush_subnormals(V, xp)
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
            # Python floats: a NumPy float64 (from a schedule, say) would make the float32 passes compute in float64
            lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
            b1, b2 = (float(b) for b in group["betas"])
            constants = {}  # (t, dtype) -> the kernel's constants: a group's parameters usually share them
            for p, g, state in self._params_with_grad(group):
                M, V = self._moments(p, state)
                state["step"] += 1
                t = state["step"]
                # a gradient of another shape would make the kernel read out of bounds (the reference broadcasts it)
                if g.shape == p.data.shape and kernels.takes(p.data, g, M, V):
                    key = (t, p.data.dtype)
                    if key not in constants:
                        constants[key] = self._kernel_constants(p.data.dtype.type, lr, b1, b2, eps, wd, t)
                    fused.adam(p.data, g, M, V, *constants[key])
                    continue
                if "scratch" not in state or state["scratch"].shape != p.data.shape:
                    state["scratch"] = p.device.xp.empty_like(p.data)
                if wd and not self.decoupled:
                    g = g + wd * p.data
                _adam_update(p.data, g, M, V, state["scratch"], b1, b2, *self._step_scalars(lr, b1, b2, eps, wd, t),
                             p.device.xp)

    @staticmethod
    def _moments(p, state) -> tuple:
        """The scaled moments (M, V) of ``p``, zero for a new parameter or one whose shape changed (KAN grid
        extension), whose step count then restarts."""
        if "M" not in state or state["M"].shape != p.data.shape:
            state["step"] = 0
            state["M"] = p.device.xp.zeros_like(p.data)
            state["V"] = p.device.xp.zeros_like(p.data)
        return state["M"], state["V"]

    def _step_scalars(self, lr, b1, b2, eps, wd, t) -> tuple[float, float, float]:
        """(step, eps, decay) of ``_adam_update`` at step ``t``:
        p -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps), rewritten for M and V."""
        s2 = math.sqrt((1.0 - b2) / (1.0 - b2**t))
        step = lr * (1.0 - b1) / ((1.0 - b1**t) * s2)
        decay = 1.0 - lr * wd if (wd and self.decoupled) else 1.0
        return step, eps / s2, decay

    def _kernel_constants(self, dtype, lr, b1, b2, eps, wd, t) -> tuple:
        """``fused.adam``'s (b1, b2, step, eps, decay, wd, tiny) in the parameters' dtype, as NumPy rounds the
        Python floats of the reference passes; wd is the L2 term of plain Adam, 0 for AdamW (whose decay is
        decoupled); tiny the smallest normal number, below which moments become +0."""
        step, eps_t, decay = self._step_scalars(lr, b1, b2, eps, wd, t)
        l2 = 0.0 if self.decoupled else wd
        return (dtype(b1), dtype(b2), dtype(step), dtype(eps_t), dtype(decay), dtype(l2),
                dtype(np.finfo(dtype).tiny))

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
