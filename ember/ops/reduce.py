"""Reductions: sum, mean, max, min (axis, keepdims) and logsumexp.

Each forward normalises ``axis`` to a sorted tuple; each backward reshapes the incoming
gradient to the keepdims shape and broadcasts it back over the reduced axes.
"""

from __future__ import annotations

from ..autograd import Function
from .util import keepdims_shape


class Sum(Function):
    saves = ()

    def forward(ctx, a, axes, keepdims):
        ctx.in_shape, ctx.axes = a.shape, axes
        return a.sum(axis=axes, keepdims=keepdims)

    def backward(ctx, g):
        shape = ctx.in_shape
        return ctx.xp.broadcast_to(g.reshape(keepdims_shape(shape, ctx.axes)), shape)


class Mean(Function):
    saves = ()

    def forward(ctx, a, axes, keepdims):
        ctx.in_shape, ctx.axes = a.shape, axes
        count = 1
        for ax in axes:
            count *= a.shape[ax]
        ctx.scale = 1.0 / max(count, 1)
        return a.mean(axis=axes, keepdims=keepdims)

    def backward(ctx, g):
        shape = ctx.in_shape
        return ctx.xp.broadcast_to(g.reshape(keepdims_shape(shape, ctx.axes)) * ctx.scale, shape)


class _Extremum(Function):
    """max/min over axes; ties share the gradient evenly (PyTorch's amax/amin rule)."""

    saves = (0, "out")

    def forward(ctx, a, axes, keepdims):
        kept = ctx.reduce(a, axis=axes, keepdims=True)
        ctx.a, ctx.kept, ctx.axes = a, kept, axes
        return kept if keepdims else kept.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(ctx, g):
        a, kept = ctx.a, ctx.kept
        mask = (a == kept).astype(g.dtype)
        mask /= mask.sum(axis=ctx.axes, keepdims=True)
        return g.reshape(kept.shape) * mask


class Max(_Extremum):
    @staticmethod
    def reduce(a, axis, keepdims):
        return a.max(axis=axis, keepdims=keepdims)


class Min(_Extremum):
    @staticmethod
    def reduce(a, axis, keepdims):
        return a.min(axis=axis, keepdims=keepdims)


class LogSumExp(Function):
    """log(sum(exp(a))) over axes, shifted by the max so it never overflows."""

    saves = (0, "out")

    def forward(ctx, a, axes, keepdims):
        xp = ctx.xp
        m = a.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        ctx.a, ctx.out = a, out
        return out if keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes])

    def backward(ctx, g):
        out = ctx.out
        return g.reshape(out.shape) * ctx.xp.exp(ctx.a - out)
