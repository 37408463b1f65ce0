"""Matrix products: batched ``matmul`` with broadcasting, and the fused ``linear`` (x @ Wᵀ + b)."""

from __future__ import annotations

from ..autograd import Function, crossed_saves
from .util import unbroadcast

_NOWHERE: dict = {}


def _swap(a):
    return a.swapaxes(-1, -2)


class MatMul(Function):
    """a @ b with NumPy semantics: 1-D operands are promoted and batch dims broadcast."""

    saves = (0, 1)

    def forward(ctx, a, b):
        ctx.a_shape, ctx.b_shape = a.shape, b.shape
        needs = ctx.needs_input_grad
        if needs is not None:  # keep each operand only for the other's gradient
            ctx.saves = crossed_saves(needs)
            ctx.a, ctx.b = (a if needs[1] else None), (b if needs[0] else None)
        return a @ b

    def backward(ctx, g):
        a, b, a_shape, b_shape = ctx.a, ctx.b, ctx.a_shape, ctx.b_shape
        na, nb = ctx.needs_input_grad
        a_nd, b_nd = len(a_shape), len(b_shape)
        if a_nd == 1 and b_nd == 1:  # dot product
            return (g * b if na else None, g * a if nb else None)
        if a_nd == 1:  # (n,) @ (..., n, m) -> (..., m)
            ga = unbroadcast((b @ g[..., None])[..., 0], a_shape) if na else None
            gb = (a[:, None] * g[..., None, :]) if nb else None
            return ga, gb
        if b_nd == 1:  # (..., n, m) @ (m,) -> (..., n)
            ga = (g[..., None] * b) if na else None
            gb = unbroadcast((_swap(a) @ g[..., None])[..., 0], b_shape) if nb else None
            return ga, gb
        ga = gb = None
        if na:
            ga = unbroadcast(g @ _swap(b), a_shape)
        if nb:
            if b_nd == 2 and a_nd > 2:  # shared weight: fold the batch into one GEMM
                k = a_shape[-1]
                gb = a.reshape(-1, k).T @ g.reshape(-1, g.shape[-1])
            else:
                gb = unbroadcast(_swap(a) @ g, b_shape)
        return ga, gb


class Linear(Function):
    """y = x @ Wᵀ + b for x of shape (..., in), W (out, in), b (out,) or absent.

    Leading dims are folded into one GEMM; the bias is added in place into the GEMM's
    fresh output; no input gradient is computed when x does not need one (first layer). The
    weight's and the bias's gradients can be written where a walk watcher asks (``land``).
    """

    saves = (0, 1)
    lands = frozenset({1, 2})

    def forward(ctx, x, weight, bias=None):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        out = x2 @ weight.T
        if bias is not None:
            out += bias
        ctx.x_shape, ctx.has_bias = x.shape, bias is not None
        needs = ctx.needs_input_grad
        if needs is not None:  # x only for the weight's gradient, the weight only for x's
            ctx.saves = crossed_saves(needs)
            ctx.x2, ctx.weight = (x2 if needs[1] else None), (weight if needs[0] else None)
        return out.reshape(lead + (weight.shape[0],)) if x.ndim != 2 else out

    def backward(ctx, g):
        x2, weight = ctx.x2, ctx.weight
        needs = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        gx = (g2 @ weight).reshape(ctx.x_shape) if needs[0] else None
        into = ctx.land or _NOWHERE
        gw = (ctx.xp.matmul(g2.T, x2, out=into[1]) if 1 in into else g2.T @ x2) if needs[1] else None
        if not ctx.has_bias:
            return gx, gw
        gb = (g2.sum(axis=0, out=into[2]) if 2 in into else g2.sum(axis=0)) if needs[2] else None
        return gx, gw, gb
