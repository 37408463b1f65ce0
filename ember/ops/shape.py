"""Shape ops: reshape, permute, expand, indexing, concat, stack, pad.

Their backward passes only move gradient values back to where they came from; indexing
with integer arrays scatters with ``add.at`` so repeated indices accumulate.
"""

from __future__ import annotations

from ..autograd import Function
from .util import unbroadcast


class Copy(Function):
    """A fresh copy that stays in the graph (``Tensor.clone``)."""

    def forward(ctx, a):
        return a.copy()

    def backward(ctx, g):
        return g


class Reshape(Function):
    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    def backward(ctx, g):
        return g.reshape(ctx.in_shape)


class Permute(Function):
    def forward(ctx, a, axes):
        ctx.axes = axes
        return a.transpose(axes)

    def backward(ctx, g):
        inverse = [0] * len(ctx.axes)
        for i, ax in enumerate(ctx.axes):
            inverse[ax] = i
        return g.transpose(inverse)


class Expand(Function):
    """Broadcast to a larger shape without copying (a read-only view)."""

    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return ctx.xp.broadcast_to(a, shape)

    def backward(ctx, g):
        return unbroadcast(g, ctx.in_shape)


def _has_integer_array(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any((hasattr(p, "dtype") and p.dtype.kind in "iu") or isinstance(p, list) for p in parts)


class GetItem(Function):
    """a[index] for slices, ints, None, Ellipsis, integer arrays and boolean masks."""

    def forward(ctx, a, index):
        ctx.in_shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return a[index]

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.in_shape, dtype=ctx.dtype)
        if _has_integer_array(ctx.index):
            xp.add.at(grad, ctx.index, g)  # repeated indices accumulate
        else:
            grad[ctx.index] = g
        return grad


class Concat(Function):
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return ctx.xp.concatenate(arrays, axis=axis)

    def backward(ctx, g):
        axis, out, start = ctx.axis, [], 0
        lead = (slice(None),) * axis
        for size, need in zip(ctx.sizes, ctx.needs_input_grad):
            out.append(g[lead + (slice(start, start + size),)] if need else None)
            start += size
        return tuple(out)


class Stack(Function):
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return ctx.xp.stack(arrays, axis=axis)

    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        return tuple(
            g[lead + (i,)] if need else None for i, need in enumerate(ctx.needs_input_grad)
        )


class Pad(Function):
    """Constant padding; ``pad_width`` is NumPy's ((before, after), ...) per axis."""

    def forward(ctx, a, pad_width, value):
        ctx.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, a.shape))
        return ctx.xp.pad(a, pad_width, mode="constant", constant_values=value)

    def backward(ctx, g):
        return g[ctx.slices]
