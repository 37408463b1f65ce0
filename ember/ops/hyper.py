"""Sinkhorn–Knopp projection onto doubly stochastic matrices, for mHC's residual mixing.

``Sinkhorn`` maps logits (..., n, n) to M = lim T_row(T_col(exp(logits))): columns normalised, then rows,
``iters`` times, in the log domain (each step subtracts a logsumexp, so no exp overflows). Rows are
normalised last, so each row of the result sums to 1 exactly (to rounding) at any ``iters``; columns
converge geometrically (20 iterations leave ~1e-3 on logits spread over 1-2, 200 reach 1e-6).

The backward is the exact derivative of the unrolled iterations, derived by hand: a step
``L' = L - logsumexp(L, axis)`` has the Jacobian-vector product ``dL = dL' - exp(L') · sum(dL', axis)``
(``exp(L')`` is that step's softmax), so backward walks the saved ``L'`` of every step in reverse.
The shift by the maximum needs no term: the result is invariant to adding a constant to all logits,
so the gradient it would carry sums to zero.

With numba, ``ember.kernels.hyper`` computes the same iterates per matrix in the linear domain (divisions
by column and row sums, in float64): ~30 ms of NumPy loop overhead per mHC sub-layer become well under one.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from ..kernels import hyper as hyper_kernels
from .util import unbroadcast


def _log_normalize(xp, L, axis):
    """L - logsumexp(L, axis), in place of a new array."""
    m = L.max(axis=axis, keepdims=True)
    return L - (m + xp.log(xp.exp(L - m).sum(axis=axis, keepdims=True)))


class Sinkhorn(Function):
    """Doubly stochastic matrices (..., n, n) from logits by ``iters`` column-then-row normalisations."""

    saves = ("out",)

    def forward(ctx, logits, iters):
        ctx.iters = iters
        n = logits.shape[-1]
        ctx.compiled = kernels.takes(logits) and logits.size > 0 and \
            not hyper_kernels.needs_log_domain(logits.reshape(-1, n, n))
        if ctx.compiled:  # per matrix in registers (ember/kernels/hyper.py); backward recomputes from the logits
            ctx.saves, ctx.logits = (0,), logits
            out = np.empty_like(logits)
            hyper_kernels.sinkhorn_forward(logits.reshape(-1, n, n), iters, out.reshape(-1, n, n))
            return out
        xp = ctx.xp
        L = logits - logits.max(axis=(-2, -1), keepdims=True)
        steps = []
        for _ in range(iters):
            L = _log_normalize(xp, L, -2)
            steps.append((L, -2))
            L = _log_normalize(xp, L, -1)
            steps.append((L, -1))
        out = xp.exp(L)
        ctx.steps = steps if ctx.needs_input_grad else None
        ctx.out = out
        return out

    def backward(ctx, g):
        if ctx.compiled:
            n = g.shape[-1]
            grad = np.empty(g.shape, dtype=g.dtype)
            hyper_kernels.sinkhorn_backward(ctx.logits.reshape(-1, n, n), np.ascontiguousarray(g).reshape(-1, n, n),
                                            ctx.iters, grad.reshape(-1, n, n))
            return grad
        xp = ctx.xp
        d = g * ctx.out  # through exp
        for L, axis in reversed(ctx.steps):
            d = d - xp.exp(L) * d.sum(axis=axis, keepdims=True)
        return d


# ----------------------------------------------------------------------------- reading and writing the streams


def _tokens(*arrays, lead):
    """Each array broadcast over the leading axes ``lead``, flattened to (T, ...), C-contiguous (kernel layout)."""
    flat = []
    for a, tail in arrays:
        full = np.broadcast_to(a, lead + tail)
        flat.append(np.ascontiguousarray(full).reshape((-1,) + tail))
    return flat


class StreamRead(Function):
    """A hyper-connection's branch input u = Σ_i h_i X_i: h (..., n) or (n,), streams X (..., n, C) -> (..., C)."""

    saves = (0, 1)

    def forward(ctx, h, x):
        ctx.h, ctx.x = h, x
        ctx.compiled = kernels.accepts(h, x) and x.size > 0
        if ctx.compiled:
            lead, (n, c) = x.shape[:-2], x.shape[-2:]
            hf, xf = _tokens((h, (n,)), (x, (n, c)), lead=lead)
            u = np.empty((len(xf), c), dtype=x.dtype)
            hyper_kernels.read_forward(hf, xf, u)
            return u.reshape(lead + (c,))
        return (h[..., None] * x).sum(axis=-2)

    def backward(ctx, g):
        h, x = ctx.h, ctx.x
        if ctx.compiled:
            lead, (n, c) = x.shape[:-2], x.shape[-2:]
            hf, xf, gf = _tokens((h, (n,)), (x, (n, c)), (g, (c,)), lead=lead)
            dh, dx = np.empty(hf.shape, dtype=h.dtype), np.empty(xf.shape, dtype=x.dtype)
            hyper_kernels.read_backward(hf, xf, gf, dh, dx)
            return unbroadcast(dh.reshape(lead + (n,)), h.shape), dx.reshape(x.shape)
        dx = h[..., None] * g[..., None, :]
        dh = (x * g[..., None, :]).sum(axis=-1)
        return unbroadcast(dh, h.shape), unbroadcast(dx, x.shape)


class StreamWrite(Function):
    """The next streams H X + h_post ⊗ y: streams X (..., n, C), branch output y (..., C), h_post (..., n) or (n,),
    H (..., n, n) or (n, n), or no H (the identity)."""

    saves = ("inputs",)

    def forward(ctx, x, y, h_post, *mix):
        ctx.x, ctx.y, ctx.h_post, ctx.H = x, y, h_post, (mix[0] if mix else None)
        ctx.compiled = bool(mix) and kernels.accepts(x, y, h_post, mix[0]) and x.size > 0
        if ctx.compiled:
            lead, (n, c) = x.shape[:-2], x.shape[-2:]
            xf, yf, hf, Hf = _tokens((x, (n, c)), (y, (c,)), (h_post, (n,)), (mix[0], (n, n)), lead=lead)
            out = np.empty(xf.shape, dtype=x.dtype)
            hyper_kernels.write_forward(xf, yf, hf, Hf, out)
            return out.reshape(x.shape)
        mixed = mix[0] @ x if mix else x
        return mixed + h_post[..., None] * y[..., None, :]

    def backward(ctx, g):
        x, y, h_post, H = ctx.x, ctx.y, ctx.h_post, ctx.H
        if ctx.compiled:
            lead, (n, c) = x.shape[:-2], x.shape[-2:]
            xf, yf, hf, Hf, gf = _tokens((x, (n, c)), (y, (c,)), (h_post, (n,)), (H, (n, n)), (g, (n, c)), lead=lead)
            dx, dy = np.empty(xf.shape, dtype=x.dtype), np.empty(yf.shape, dtype=x.dtype)
            dh, dH = np.empty(hf.shape, dtype=x.dtype), np.empty(Hf.shape, dtype=x.dtype)
            hyper_kernels.write_backward(xf, yf, hf, Hf, gf, dx, dy, dh, dH)
            return (dx.reshape(x.shape), unbroadcast(dy.reshape(lead + (c,)), y.shape),
                    unbroadcast(dh.reshape(lead + (n,)), h_post.shape), unbroadcast(dH.reshape(lead + (n, n)), H.shape))
        dx = g if H is None else H.swapaxes(-1, -2) @ g
        dy = (h_post[..., None] * g).sum(axis=-2)
        dh = (g * y[..., None, :]).sum(axis=-1)
        grads = (unbroadcast(dx, x.shape), unbroadcast(dy, y.shape), unbroadcast(dh, h_post.shape))
        if H is None:
            return grads
        return grads + (unbroadcast(g @ x.swapaxes(-1, -2), H.shape),)


class RMSProject(Function):
    """(x / rms(x)) @ phi without the normalised x: the projection mHC reads its maps from.

    rms(x) = sqrt(mean(x², last axis) + eps). The division moves after the matmul (the mHC paper's own
    reordering), so the (..., K) normalised copy is never made: forward is one GEMM and one sum of squares,
    backward two GEMMs and one pass, with d = out, g its gradient and r = rms(x):
    dphi = (x/r)ᵀ g = xᵀ (g/r) and dx = (g/r) phiᵀ - x · Σ_k g_k d_k / (K r²).
    """

    def forward(ctx, x, phi, eps):
        xp = ctx.xp
        k = x.shape[-1]
        sq = xp.einsum("...k,...k->...", x, x)[..., None]  # one pass, no squared copy (K terms of one sign)
        r = xp.sqrt(sq / x.dtype.type(k) + x.dtype.type(eps))
        out = (x @ phi) / r
        ctx.x, ctx.phi, ctx.out, ctx.r, ctx.k = x, phi, out, r, k
        return out

    def backward(ctx, g):
        x, phi, d, r, k = ctx.x, ctx.phi, ctx.out, ctx.r, ctx.k
        xp = ctx.xp
        gr = g / r
        lead = x.shape[:-1]
        dphi = x.reshape(-1, k).T @ gr.reshape(-1, gr.shape[-1])
        dx = gr @ phi.T
        scale = xp.einsum("...m,...m->...", g, d)[..., None] / (x.dtype.type(k) * r * r)
        dx -= xp.multiply(x, scale, out=xp.empty_like(x))
        return dx.reshape(lead + (k,)), dphi
