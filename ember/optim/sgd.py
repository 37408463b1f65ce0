"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

Each parameter is updated in one fused pass (``ember.kernels.optim``, numba) when the kernel takes its
arrays, else by the NumPy reference (``_reference_update``), which defines the arithmetic: the kernel does
the same per element, so both give the same bits.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import no_grad
from ..backend import array_module as _array_module
from ..kernels import optim as fused
from .optimizer import Optimizer


def _reference_update(p, g, state, lr, mu, damp, wd, nesterov) -> None:
    """One SGD step on ``p`` in NumPy (or CuPy) passes; the momentum buffer lives in ``state``."""
    if wd:
        g = g + wd * p
    if mu:
        buf = state.get("momentum_buffer")
        if buf is None:  # g itself, into an array like p's (g + wd·p is a NumPy scalar, not an array, for a 0-d p)
            buf = state["momentum_buffer"] = p.copy()
            buf[...] = g
        else:
            buf *= mu
            buf += (1 - damp) * g if damp else g
        fused.flush_subnormals(buf, _array_module(buf))  # see ember.kernels.optim
        g = g + mu * buf if nesterov else buf
    p -= lr * g


def _fused_update(p, g, state, lr, mu, damp, wd, nesterov) -> None:
    """``_reference_update`` in one pass; the constants in ``p``'s dtype, as NumPy rounds the Python floats."""
    dtype = p.dtype.type
    if not mu:
        fused.sgd(p, g, dtype(lr), dtype(wd))
        return
    buf = state.get("momentum_buffer")
    first = buf is None
    if first:  # the kernel writes the first buffer (the gradient itself)
        buf = state["momentum_buffer"] = np.empty_like(p)
    fused.sgd_momentum(p, g, buf, dtype(lr), dtype(wd), dtype(mu), dtype(1 - damp), nesterov, first,
                       dtype(np.finfo(dtype).tiny))


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
            # Python floats: a NumPy float64 (from a schedule, say) would make the float32 passes compute in float64
            hyper = (*(float(group[k]) for k in ("lr", "momentum", "dampening", "weight_decay")), group["nesterov"])
            for p, g, state in self._params_with_grad(group):
                buf = state.get("momentum_buffer")
                if buf is not None and buf.shape != p.data.shape:  # reshaped (KAN grid extension): the momentum
                    del state["momentum_buffer"]                     # starts afresh, as Adam's moments do
                    buf = None
                arrays = (p.data, g) if buf is None else (p.data, g, buf)
                # a gradient of another shape would make the kernel read out of bounds (the reference broadcasts it)
                if g.shape == p.data.shape and kernels.takes(*arrays):
                    _fused_update(p.data, g, state, *hyper)
                else:
                    _reference_update(p.data, g, state, *hyper)
