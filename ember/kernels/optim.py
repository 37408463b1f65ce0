"""Optimizer updates in one pass over each parameter: Adam/AdamW and SGD (momentum, Nesterov, weight decay).

References, which stay the definition: ``ember.optim.adam._adam_update`` (ten whole-array NumPy passes)
and the body of ``ember.optim.sgd.SGD.step``. Each kernel does the same arithmetic per element, in the
same order and the same dtype (the constants arrive already converted to it, as NumPy converts a
Python float against a float32 array), so its results are bit-for-bit the reference's: tested.
Compiled without fast-math, so LLVM does not contract ``a*b + c`` into a fused multiply-add, which
would round once instead of twice and break the equality.

The kernels take arrays of any shape (parameter, gradient and state of one shape, C-contiguous) and
walk them flat; ``kernels.takes`` checks that before the optimizer calls them.
"""

from __future__ import annotations

import numpy as np

from . import jit


def _adam(p, g, M, V, b1, b2, step, eps, decay, wd):
    """``_adam_update`` fused, with the L2 term of plain Adam (``g + wd·p``, when wd != 0) folded in.

    Per element, in the reference's order: p·decay; M·β1 + g; V·β2 + g·g; p - (M / (sqrt(V) + eps))·step.
    ``decay`` is 1 unless AdamW decays the weights; x·1 == x exactly, so it needs no branch.
    """
    p, g, M, V = p.reshape(p.size), g.reshape(g.size), M.reshape(M.size), V.reshape(V.size)
    coupled = wd != 0
    for i in range(p.size):
        pi = p[i]
        gi = g[i]
        if coupled:
            gi = gi + wd * pi
        pi = pi * decay
        m = M[i] * b1 + gi
        v = V[i] * b2 + gi * gi
        M[i] = m
        V[i] = v
        p[i] = pi - m / (np.sqrt(v) + eps) * step


def _sgd(p, g, lr, wd):
    """Plain SGD (no momentum): p - lr·(g + wd·p), the L2 term only when wd != 0."""
    p, g = p.reshape(p.size), g.reshape(g.size)
    coupled = wd != 0
    for i in range(p.size):
        gi = g[i]
        if coupled:
            gi = gi + wd * p[i]
        p[i] = p[i] - lr * gi


def _sgd_momentum(p, g, buf, lr, wd, mu, damp1, nesterov, first):
    """SGD with a momentum buffer, as ``SGD.step``: b = d on the ``first`` step, else b·μ + (1-τ)·d
    (``damp1`` = 1-τ, skipped when it is 1 as the reference skips it); then p - lr·(d + μ·b or b)."""
    p, g, buf = p.reshape(p.size), g.reshape(g.size), buf.reshape(buf.size)
    coupled = wd != 0
    damped = damp1 != 1
    for i in range(p.size):
        d = g[i]
        if coupled:
            d = d + wd * p[i]
        if first:
            b = d
        elif damped:
            b = buf[i] * mu + damp1 * d
        else:
            b = buf[i] * mu + d
        buf[i] = b
        if nesterov:
            d = d + mu * b
        else:
            d = b
        p[i] = p[i] - lr * d


adam = jit(_adam)
sgd = jit(_sgd)
sgd_momentum = jit(_sgd_momentum)
