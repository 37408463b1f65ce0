"""Reductions: sum, mean, max, min (axis, keepdims) and logsumexp.

Each forward normalises ``axis`` to a sorted tuple; each backward reshapes the incoming
gradient to the keepdims shape and broadcasts it back over the reduced axes.
"""

from __future__ import annotations

from ..autograd import Function
from .util import keepdims_shape, quiet_float_errors


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


def _centered(xp, a, axes, correction):
    """(a - mean over axes, degrees of freedom N - correction clamped at 0)."""
    n = 1
    for ax in axes:
        n *= a.shape[ax]
    return a - a.mean(axis=axes, keepdims=True), max(n - correction, 0)


class Var(Function):
    """Variance over ``axes`` with N - ``correction`` in the denominator (Bessel's by default).

    As PyTorch: N - correction <= 0 divides by zero (inf, or nan for 0/0) rather than clamping.
    """

    saves = ()

    def forward(ctx, a, axes, correction, keepdims):
        xp = ctx.xp
        c, dof = _centered(xp, a, axes, correction)
        with quiet_float_errors(xp):
            out = (c * c).sum(axis=axes, keepdims=keepdims) / a.dtype.type(dof)
        ctx.c, ctx.dof, ctx.axes = c, dof, axes
        return out

    def backward(ctx, g):
        xp, c = ctx.xp, ctx.c
        g = g.reshape(keepdims_shape(c.shape, ctx.axes))
        with quiet_float_errors(xp):
            if not ctx.dof:  # no degrees of freedom: PyTorch's gradient is inf (nan where x equals the mean)
                return g * xp.where(c == 0, c.dtype.type(xp.nan), c.dtype.type(xp.inf))
            return g * (c * (2.0 / ctx.dof))


class Std(Function):
    """Standard deviation, sqrt(Var); where it is 0 the gradient is 0 (PyTorch's rule), not nan."""

    saves = ("out",)

    def forward(ctx, a, axes, correction, keepdims):
        xp = ctx.xp
        c, dof = _centered(xp, a, axes, correction)
        with quiet_float_errors(xp):
            out = xp.sqrt((c * c).sum(axis=axes, keepdims=keepdims) / a.dtype.type(dof))
        ctx.c, ctx.dof, ctx.axes, ctx.out = c, dof, axes, out
        return out

    def backward(ctx, g):
        xp, c = ctx.xp, ctx.c
        shape = keepdims_shape(c.shape, ctx.axes)
        out = ctx.out.reshape(shape)
        with quiet_float_errors(xp):
            gvar = xp.where(out == 0, g.dtype.type(0), g.reshape(shape) / (2.0 * out))
            return gvar * (c * (2.0 / ctx.dof if ctx.dof else xp.inf))


class SelectAlongAxis(Function):
    """The elements at ``index`` (one position per slice along ``axis``, keepdims-shaped, as argmax gives):
    ``max(dim)``/``min(dim)`` values, whose gradient goes to that one position (PyTorch's rule; amax
    and amin share it among ties instead)."""

    saves = ()

    def forward(ctx, a, index, axis, keepdims):
        ctx.index, ctx.axis, ctx.shape = index, axis, a.shape
        out = ctx.xp.take_along_axis(a, index, axis=axis)
        return out if keepdims else out.squeeze(axis)

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.put_along_axis(grad, ctx.index, g.reshape(ctx.index.shape), axis=ctx.axis)
        return grad
