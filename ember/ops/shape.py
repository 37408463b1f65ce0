"""Shape ops: reshape, permute, expand, indexing (read and write), concat, stack, fill and copy.

Their backward passes only move gradient values back to where they came from; indexing
with integer arrays scatters with ``add.at`` so repeated indices accumulate.
"""

from __future__ import annotations

from ..autograd import Function
from ..indexing import assign, select
from .util import unbroadcast


class Copy(Function):
    """A fresh copy that stays in the graph (``Tensor.clone``)."""

    saves = ()

    def forward(ctx, a):
        return a.copy()

    def backward(ctx, g):
        return g


class Reshape(Function):
    saves = ()
    returns_view = True

    def forward(ctx, a, shape):
        ctx.in_shape = a.shape
        return a.reshape(shape)

    def backward(ctx, g):
        return g.reshape(ctx.in_shape)


class Permute(Function):
    saves = ()
    returns_view = True

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

    saves = ()
    returns_view = True

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

    saves = ()
    returns_view = True

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
    saves = ()

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
    saves = ()

    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return ctx.xp.stack(arrays, axis=axis)

    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        return tuple(
            g[lead + (i,)] if need else None for i, need in enumerate(ctx.needs_input_grad)
        )


class SetItem(Function):
    """``a`` with ``a[index] = value``: the in-place ``x[index] = v`` as recorded in the graph.

    ``value`` is input 1 when it is a tensor (differentiated: it gets the gradient of the elements
    it wrote, summed over broadcasting) or the ``value`` attribute when it is a constant. The
    elements that were overwritten pass no gradient back to ``a``. ``then`` is the second step of
    an index that PyTorch reads in two steps (see ``ember/indexing.py``).
    """

    saves = ()

    def forward(ctx, a, *v, index, then=None, value=None):
        out = a.copy()
        assign(out, index, then, v[0] if v else value)
        ctx.index, ctx.then, ctx.v_shape = index, then, v[0].shape if v else None
        return out

    def backward(ctx, g):
        needs = ctx.needs_input_grad
        ga = None
        if needs[0]:
            ga = g.copy()
            assign(ga, ctx.index, ctx.then, 0)
        if len(needs) == 1:
            return ga
        gv = None
        if needs[1]:
            written = select(g, ctx.index, ctx.then)
            shape = ctx.v_shape
            if written.ndim < len(shape):  # NumPy drops a value's leading size-1 axes when assigning
                written = written.reshape((1,) * (len(shape) - written.ndim) + written.shape)
            gv = unbroadcast(written, shape)
        return ga, gv


class Fill(Function):
    """Every element set to a number (``x.fill_(v)`` in the graph): no gradient reaches the old values."""

    saves = ()

    def forward(ctx, a, value):
        return ctx.xp.full_like(a, value)

    def backward(ctx, g):
        return None


class CopyInto(Function):
    """``b`` broadcast into the shape (and dtype) of ``a`` (``a.copy_(b)`` in the graph)."""

    saves = ()

    def forward(ctx, a, b):
        ctx.b_shape = b.shape
        out = ctx.xp.empty_like(a)
        out[...] = b
        return out

    def backward(ctx, g):
        return None, unbroadcast(g, ctx.b_shape) if ctx.needs_input_grad[1] else None
