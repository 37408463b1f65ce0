"""Optimizer updates in one pass over each parameter: Adam/AdamW and SGD (momentum, Nesterov, weight decay).

References, which stay the definition: ``ember.optim.adam._adam_update`` (ten whole-array NumPy passes)
and the body of ``ember.optim.sgd.SGD.step``. Each kernel does the same arithmetic per element, in the
same order and the same dtype (the constants arrive already converted to it, as NumPy converts a
Python float against a float32 array), so its results are bit-for-bit the reference's: tested.
Compiled without fast-math, so LLVM does not contract ``a*b + c`` into a fused multiply-add, which
would round once instead of twice and break the equality.

The kernels take arrays of any shape (parameter, gradient and state of one shape, C-contiguous) and
walk them flat; ``kernels.takes`` checks that before the optimizer calls them.

Moments and momentum buffers that become subnormal (nonzero, below ``tiny``: the dtype's smallest normal
number) are set to +0, in the references too. A unit whose gradient stays zero (a dead ReLU) decays its
first moment by β1 = 0.9 a step into subnormals within about 800 steps, and the CPU computes with those 10-100
times slower: on the MNIST MLP, Adam's step took 0.44-0.52 ms after epoch 2 instead of 0.30. What the update
loses is below 1e-30 of a step: no float32 parameter of ordinary size moves by a bit.
"""

from __future__ import annotations

import numpy as np

from . import jit


def _adam(p, g, M, V, b1, b2, step, eps, decay, wd, tiny):
    """``_adam_update`` fused, with the L2 term of plain Adam (``g + wd·p``, when wd != 0) folded in.

    Per element, in the reference's order: p·decay; M·β1 + g; V·β2 + g·g (each to +0 if subnormal);
    p - (M / (sqrt(V) + eps))·step. ``decay`` is 1 unless AdamW decays the weights; x·1 == x exactly, so it
    needs no branch.
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
        if m != 0 and abs(m) < tiny:
            m = m - m  # +0, in the dtype
        if v != 0 and abs(v) < tiny:
            v = v - v
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


def _sgd_momentum(p, g, buf, lr, wd, mu, damp1, nesterov, first, tiny):
    """SGD with a momentum buffer, as ``SGD.step``: b = d on the ``first`` step, else b·μ + (1-τ)·d
    (``damp1`` = 1-τ, skipped when it is 1 as the reference skips it), +0 if subnormal; then
    p - lr·(d + μ·b or b)."""
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
        if b != 0 and abs(b) < tiny:
            b = b - b
        buf[i] = b
        if nesterov:
            d = d + mu * b
        else:
            d = b
        p[i] = p[i] - lr * d


adam = jit(_adam)
sgd = jit(_sgd)
sgd_momentum = jit(_sgd_momentum)


def flush_subnormals(a, xp) -> None:
    """The references' form of the kernels' flush: nonzero entries of ``a`` below its dtype's smallest normal
    number in magnitude become +0, in place (float32 and float64: the dtypes the kernels take)."""
    if a.dtype in (np.float32, np.float64):
        a[(a != 0) & (xp.abs(a) < np.finfo(a.dtype).tiny)] = 0
