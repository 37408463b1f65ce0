"""Scans and products: cumsum, cumprod and prod.

Products need care where the input has zeros: the textbook gradient ``out / a`` divides by zero.
``Cumprod`` and ``Prod`` follow PyTorch's zero-safe backward passes (one O(n) pass each): where a slice
has no zero they use the division (so they agree with PyTorch to rounding), and otherwise they build
the products of the other elements explicitly.
"""

from __future__ import annotations

from ..autograd import Function


def _reversed_cumsum(xp, a, axis):
    """sum_{j >= k} a_j along ``axis``: the adjoint of cumsum."""
    return xp.flip(xp.cumsum(xp.flip(a, axis), axis), axis)


def _along(ndim, axis, index):
    """An index tuple that picks ``index`` (a slice or an int) along ``axis`` and everything elsewhere."""
    return (slice(None),) * axis + (index,)


class Cumsum(Function):
    """Running sum along ``axis`` (the input has at least one dimension)."""

    saves = ()

    def forward(ctx, a, axis):
        ctx.axis = axis
        return ctx.xp.cumsum(a, axis=axis, dtype=a.dtype)  # NumPy would widen small integers

    def backward(ctx, g):
        return _reversed_cumsum(ctx.xp, g, ctx.axis)


class Cumprod(Function):
    """Running product along ``axis`` (the input has at least one dimension)."""

    saves = (0, "out")

    def forward(ctx, a, axis):
        out = ctx.xp.cumprod(a, axis=axis, dtype=a.dtype)
        ctx.a, ctx.out, ctx.axis = a, out, axis
        return out

    def backward(ctx, g):
        xp, a, out, axis = ctx.xp, ctx.a, ctx.out, ctx.axis
        if a.size <= 1 or a.shape[axis] == 1:
            return g
        is_zero = a == 0
        if not is_zero.any():
            return _reversed_cumsum(xp, out * g, axis) / a
        return _cumprod_grad_with_zeros(xp, a, out, g, axis, is_zero)


def _cumprod_grad_with_zeros(xp, a, out, g, axis, is_zero):
    """d/da_k of <g, cumprod(a)> when some slices hold zeros (PyTorch's cumprod_backward).

    With z1 the first zero of a slice and z2 the second (or the end): positions k < z1 get
    sum_{j>=k} g_j out_j / a_k (no division by zero there: a_k != 0, and out_j = 0 from z1 on);
    z1 itself gets prod(a[:z1]) * sum_{z1 <= j < z2} g_j prod(a[z1+1 : j+1]); positions after z1 get 0.
    """
    zero = g.dtype.type(0)
    one = a.dtype.type(1)
    zeros_so_far = xp.cumsum(is_zero, axis=axis, dtype=xp.int32)
    before = zeros_so_far == 0
    w = xp.where(before, out * g, zero)
    grad = xp.where(before, _reversed_cumsum(xp, w, axis) / xp.where(before, a, one), zero)
    first_segment = zeros_so_far == 1  # from the first zero up to (not including) the second
    first_zero = first_segment & is_zero
    after_first = first_segment & ~first_zero
    tail = xp.cumprod(xp.where(after_first, a, one), axis=axis)  # prod(a[z1+1 : j+1]) on [z1, z2)
    segment_sum = (tail * xp.where(first_segment, g, zero)).sum(axis=axis, keepdims=True)
    head = xp.prod(xp.where(before, a, one), axis=axis, keepdims=True)  # prod(a[:z1]), 1 when z1 = 0
    return xp.where(first_zero, segment_sum * head, grad)


class Prod(Function):
    """Product over one axis, or over all elements when ``axis`` is None."""

    saves = (0, "out")

    def forward(ctx, a, axis, keepdims):
        out = ctx.xp.prod(a, axis=axis, keepdims=keepdims, dtype=a.dtype)
        ctx.a, ctx.out, ctx.axis, ctx.keepdims = a, out, axis, keepdims
        return out

    def backward(ctx, g):
        xp, a, out, axis = ctx.xp, ctx.a, ctx.out, ctx.axis
        if a.ndim == 0:
            return g
        if axis is None:
            zeros = int((a == 0).sum())
            if zeros == 0:
                return g * (out / a)
            if zeros > 1:  # every product of the others contains a zero
                return xp.zeros_like(a, dtype=g.dtype)
            flat = _products_of_the_others(xp, a.reshape(-1), 0)
            return (g * flat).reshape(a.shape)
        if not ctx.keepdims:
            g, out = xp.expand_dims(g, axis), xp.expand_dims(out, axis)
        if not (a == 0).any():
            return g * (out / a)
        return g * _products_of_the_others(xp, a, axis)


def _products_of_the_others(xp, a, axis):
    """prod_{j != k} a_j along ``axis`` for every k, without division: exclusive prefix times suffix products."""
    n = a.shape[axis]
    if a.size == 0:
        return xp.ones_like(a)
    ones = xp.ones(a.shape[:axis] + (1,) + a.shape[axis + 1:], dtype=a.dtype)
    prefix = xp.cumprod(xp.concatenate([ones, a[_along(a.ndim, axis, slice(0, n - 1))]], axis=axis), axis=axis)
    rest = xp.flip(a[_along(a.ndim, axis, slice(1, n))], axis)
    suffix = xp.flip(xp.cumprod(xp.concatenate([ones, rest], axis=axis), axis=axis), axis)
    return prefix * suffix
