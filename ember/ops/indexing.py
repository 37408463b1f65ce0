"""Gathering, scattering and rearranging elements: gather, scatter (plain, add, reduce), index_select,
index_add, masked_select, flip, roll, tile (PyTorch's repeat), repeat_interleave, narrow and padding.

Integer index arrays come in as op inputs (non-differentiable tensors), not attributes: the ops read
them in backward, so declaring them in ``saves`` makes an in-place change to an index tensor between
forward and backward an error instead of a wrong gradient (PyTorch saves them the same way).

Backward passes move gradient values back to where they came from; where several outputs came from
one input (repeated indices, repeats, padding edges) they accumulate with ``add.at``.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from .util import unbroadcast


def along(xp, index, axis):
    """The index tuple that pairs ``index`` along ``axis`` with each position of ``index`` elsewhere:
    ``a[along(xp, index, axis)]`` is PyTorch's ``gather`` (NumPy's ``take_along_axis`` without broadcasting)."""
    parts = []
    for d, n in enumerate(index.shape):
        if d == axis:
            parts.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = n
            parts.append(xp.arange(n).reshape(shape))
    return tuple(parts)


def leading(index_shape):
    """The slices that cut an array down to ``index_shape`` (scatter's source may be larger than its index)."""
    return tuple(slice(0, n) for n in index_shape)


def _axis_index(axis, index):
    return (slice(None),) * axis + (index,)


# ----------------------------------------------------------------------------- gather / scatter


class Gather(Function):
    """out[i][j][k] = a[i][index[i][j][k]][k] (for axis 1); ``index`` is input 1 and has a's number of axes.

    ``unique=True`` promises that no position is picked twice (a sort order, top-k), so the backward
    pass writes the gradient instead of accumulating it (3x faster than ``add.at``)."""

    saves = (1,)

    def forward(ctx, a, index, axis, unique=False):
        ctx.index, ctx.axis, ctx.shape, ctx.unique = index, axis, a.shape, unique
        return a[along(ctx.xp, index, axis)]

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.shape, dtype=g.dtype)
        where = along(xp, ctx.index, ctx.axis)
        if ctx.unique:
            grad[where] = g
        else:
            xp.add.at(grad, where, g)  # repeated indices accumulate
        return grad, None


class Scatter(Function):
    """A copy of ``a`` with a[i][index[i][j]] = src[i][j] (for axis 1), or ``value`` where no src is given.

    Inputs: a, index and optionally src. The overwritten elements of ``a`` get no gradient, and src gets
    the gradient gathered at ``index`` (PyTorch's formula; with repeated indices only one source element
    lands, the last in row-major order of ``index`` here, but every one of them gets that gradient).
    """

    saves = (1,)

    def forward(ctx, a, index, *src, axis, value=None):
        where = along(ctx.xp, index, axis)
        out = a.copy()
        out[where] = src[0][leading(index.shape)] if src else value
        ctx.index, ctx.axis, ctx.src_shape = index, axis, src[0].shape if src else None
        return out

    def backward(ctx, g):
        xp, needs = ctx.xp, ctx.needs_input_grad
        where = along(xp, ctx.index, ctx.axis)
        ga = None
        if needs[0]:
            ga = g.copy()
            ga[where] = 0
        if ctx.src_shape is None:
            return ga, None
        gs = _source_grad(xp, g[where], ctx.src_shape, ctx.index.shape) if needs[2] else None
        return ga, None, gs


def _source_grad(xp, picked, src_shape, index_shape):
    """The gradient of a scatter's source: the gathered gradient, zero where the source was not used."""
    if tuple(src_shape) == tuple(index_shape):
        return picked
    grad = xp.zeros(src_shape, dtype=picked.dtype)
    grad[leading(index_shape)] = picked
    return grad


class ScatterAdd(Function):
    """A copy of ``a`` with src added at index along ``axis`` (repeated indices accumulate)."""

    saves = (1,)

    def forward(ctx, a, index, src, axis):
        out = a.copy()
        ctx.xp.add.at(out, along(ctx.xp, index, axis), src[leading(index.shape)])
        ctx.index, ctx.axis, ctx.src_shape = index, axis, src.shape
        return out

    def backward(ctx, g):
        xp, needs = ctx.xp, ctx.needs_input_grad
        gs = None
        if needs[2]:
            gs = _source_grad(xp, g[along(xp, ctx.index, ctx.axis)], ctx.src_shape, ctx.index.shape)
        return g if needs[0] else None, None, gs


_IDENTITY = {"sum": 0, "mean": 0, "prod": 1}


class ScatterReduce(Function):
    """PyTorch's ``scatter_reduce``: reduce the src elements scattered to each position ('sum', 'prod',
    'mean', 'amax', 'amin'), together with the element of ``a`` there unless ``include_self`` is False.

    Backward follows PyTorch's formulas: 'amax'/'amin' share the gradient evenly among the elements
    equal to the result, 'prod' divides the result by each factor except where a factor is zero (then
    it recomputes the product of the others), 'mean' divides by the count.
    """

    saves = (0, 1, 2, "out")

    def forward(ctx, a, index, src, axis, reduce, include_self):
        xp = ctx.xp
        where = along(xp, index, axis)
        used = src[leading(index.shape)]
        counts = _counts(xp, a, where, include_self) if reduce == "mean" else None
        out = _scatter_reduce(xp, a, where, used, reduce, include_self, counts)
        ctx.saves = (1,) if reduce in ("sum", "mean") else (0, 1, 2, "out")
        ctx.index, ctx.axis, ctx.reduce, ctx.include_self = index, axis, reduce, include_self
        ctx.src_shape, ctx.counts = src.shape, counts
        if reduce not in ("sum", "mean"):
            ctx.a, ctx.src, ctx.out = a, used, out
        return out

    def backward(ctx, g):
        xp, needs = ctx.xp, ctx.needs_input_grad
        where = along(xp, ctx.index, ctx.axis)
        reduce = ctx.reduce
        if reduce == "sum":
            ga, gs = g, (g[where] if needs[2] else None)
        elif reduce == "mean":
            ga = g / ctx.counts
            gs = ga[where] if needs[2] else None
        elif reduce == "prod":
            ga, gs = _prod_grads(xp, g, ctx, where)
        else:
            ga, gs = _extremum_grads(xp, g, ctx, where)
        if ga is not None and needs[0] and not ctx.include_self:
            ga = ga.copy() if ga is g else ga
            ga[where] = 0
        if gs is not None:
            gs = _source_grad(xp, gs, ctx.src_shape, ctx.index.shape)
        return (ga if needs[0] else None), None, (gs if needs[2] else None)


def _scatter_reduce(xp, a, where, src, reduce, include_self, counts=None):
    """The forward pass on arrays (also used by the 'prod' backward); 'mean' divides by ``counts``."""
    out = a.copy()
    if not include_self:
        if reduce in ("amax", "amin"):
            fill = _lowest(xp, a.dtype) if reduce == "amax" else _highest(xp, a.dtype)
        else:
            fill = _IDENTITY[reduce]
        out[where] = fill
    if reduce in ("sum", "mean"):
        xp.add.at(out, where, src)
    else:
        out = _exact_at(xp, {"prod": "multiply", "amax": "maximum", "amin": "minimum"}[reduce], out, where, src)
    if reduce == "mean":
        if out.dtype.kind in "fc":
            out /= counts
        else:  # PyTorch divides integers with floor rounding
            out = xp.floor_divide(out, counts.astype(out.dtype))
    return out


def _exact_at(xp, ufunc: str, out, where, src):
    """``xp.<ufunc>.at(out, where, src)``, exact on every device.

    On an H200 with CuPy 14, ``cupy.maximum.at``/``minimum.at`` on float64 returned values off by ~1e-8
    relative (not one of the inputs: the extremum went through a lower precision), which then broke the
    backward's ``a == out`` test; ``cupy.multiply.at`` does not exist. Off the CPU these three therefore
    run on a host copy (scatter_reduce 'prod'/'amax'/'amin' are rare; ``add.at`` stays on the device).
    """
    if xp is np:
        getattr(np, ufunc).at(out, where, src)
        return out
    dev = backend.device_of(out)
    host = [backend.to_device(x, backend.CPU) for x in (out, src, *where)]
    result, host_src, host_where = host[0].copy(), host[1], tuple(host[2:])
    getattr(np, ufunc).at(result, host_where, host_src)
    return backend.to_device(result, dev)


def _counts(xp, a, where, include_self):
    """How many values each position of a 'mean' averages (at least 1, so untouched positions keep a)."""
    counts = xp.ones(a.shape, dtype=a.dtype if a.dtype.kind in "fc" else xp.int64)
    if not include_self:
        counts[where] = 0
    xp.add.at(counts, where, 1)
    counts[counts == 0] = 1
    return counts


def _lowest(xp, dtype):
    return -xp.inf if dtype.kind == "f" else xp.iinfo(dtype).min


def _highest(xp, dtype):
    return xp.inf if dtype.kind == "f" else xp.iinfo(dtype).max


def _prod_grads(xp, g, ctx, where):
    """PyTorch's scatter_reduce 'prod' backward (zero factors handled by recomputing without them)."""
    a, src, out = ctx.a, ctx.src, ctx.out
    one = a.dtype.type(1)
    masked_a = xp.where(a == 0, one, a)
    ga = g * _scatter_reduce(xp, masked_a, where, src, "prod", ctx.include_self) / masked_a
    src_zero = src == 0
    zeros_per_position = xp.zeros(a.shape, dtype=xp.int64)
    xp.add.at(zeros_per_position, where, src_zero.astype(xp.int64))
    single_zero = src_zero & (zeros_per_position[where] == 1)
    without_that_zero = _scatter_reduce(xp, a, where, xp.where(single_zero, one, src), "prod", ctx.include_self)
    gs = xp.where(single_zero, (g * without_that_zero)[where], (g * out)[where] / xp.where(src_zero, one, src))
    return ga, gs


def _extremum_grads(xp, g, ctx, where):
    """PyTorch's scatter_reduce 'amax'/'amin' backward: ties share the gradient evenly."""
    a, src, out = ctx.a, ctx.src, ctx.out
    value = out[where]
    a_is_result = (a == out).astype(g.dtype)
    src_is_result = (src == value).astype(g.dtype)
    count = a_is_result.copy()
    xp.add.at(count, where, src_is_result)
    share = g / count
    return a_is_result * share, src_is_result * share[where]


# ----------------------------------------------------------------------------- index_select / index_add


class IndexSelect(Function):
    """The slices of ``a`` at a 1-d ``index`` (input 1) along ``axis``."""

    saves = (1,)

    def forward(ctx, a, index, axis):
        ctx.index, ctx.axis, ctx.shape = index, axis, a.shape
        return ctx.xp.take(a, index, axis=axis)

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.shape, dtype=g.dtype)
        xp.add.at(grad, _axis_index(ctx.axis, ctx.index), g)
        return grad, None


class IndexAdd(Function):
    """A copy of ``a`` with ``alpha * source`` slices added at a 1-d ``index`` along ``axis``."""

    saves = (1,)

    def forward(ctx, a, index, source, axis, alpha):
        out = a.copy()
        ctx.xp.add.at(out, _axis_index(axis, index), source if alpha == 1 else source * alpha)
        ctx.index, ctx.axis, ctx.alpha = index, axis, alpha
        return out

    def backward(ctx, g):
        xp, needs = ctx.xp, ctx.needs_input_grad
        gs = None
        if needs[2]:
            gs = xp.take(g, ctx.index, axis=ctx.axis)
            if ctx.alpha != 1:
                gs *= ctx.alpha
        return g if needs[0] else None, None, gs


class MaskedSelect(Function):
    """The elements of ``a`` where the boolean ``mask`` (input 1) is true, both broadcast to ``shape``, as 1-d."""

    saves = (1,)

    def forward(ctx, a, mask, shape):
        xp = ctx.xp
        ctx.mask, ctx.a_shape, ctx.shape = mask, a.shape, shape
        return xp.broadcast_to(a, shape)[xp.broadcast_to(mask, shape)]

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.shape, dtype=g.dtype)
        grad[xp.broadcast_to(ctx.mask, ctx.shape)] = g
        return unbroadcast(grad, ctx.a_shape), None


# ----------------------------------------------------------------------------- rearranging


class Flip(Function):
    """Reverse the order along ``axes`` (a copy, as in PyTorch)."""

    saves = ()

    def forward(ctx, a, axes):
        ctx.axes = axes
        return ctx.xp.flip(a, axes).copy()

    def backward(ctx, g):
        return ctx.xp.flip(g, ctx.axes)


class Roll(Function):
    """Shift elements cyclically by ``shifts`` along ``axes`` (None: over the flattened array)."""

    saves = ()

    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return ctx.xp.roll(a, shifts, axes)

    def backward(ctx, g):
        shifts = ctx.shifts
        back = -shifts if isinstance(shifts, int) else tuple(-s for s in shifts)
        return ctx.xp.roll(g, back, ctx.axes)


class Tile(Function):
    """PyTorch's ``repeat``: ``a`` tiled ``reps[d]`` times along each axis d (reps may add leading axes)."""

    saves = ()

    def forward(ctx, a, reps):
        shape = (1,) * (len(reps) - a.ndim) + a.shape
        ctx.in_shape, ctx.shape, ctx.reps = a.shape, shape, reps
        return ctx.xp.tile(a.reshape(shape), reps)

    def backward(ctx, g):
        interleaved = []
        for r, n in zip(ctx.reps, ctx.shape):
            interleaved += [r, n]
        summed = g.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(ctx.reps), 2)))
        return summed.reshape(ctx.in_shape)


class RepeatInterleave(Function):
    """Each slice along ``axis`` repeated ``repeats`` times in place (an int, or an int array per slice)."""

    saves = ()

    def forward(ctx, a, repeats, axis):
        xp = ctx.xp
        ctx.axis, ctx.shape = axis, a.shape
        if isinstance(repeats, int):
            ctx.source = None
            return xp.repeat(a, repeats, axis=axis)
        # the input slice each output slice copies: searchsorted works alike in NumPy and CuPy
        ends = xp.cumsum(repeats)
        total = int(ends[-1]) if ends.size else 0
        ctx.source = xp.searchsorted(ends, xp.arange(total), side="right")
        return xp.take(a, ctx.source, axis=axis)

    def backward(ctx, g):
        xp, axis, shape = ctx.xp, ctx.axis, ctx.shape
        if ctx.source is None:  # equal runs of r: sum each run
            r = g.shape[axis] // shape[axis] if shape[axis] else 0
            return g.reshape(shape[:axis] + (shape[axis], r) + shape[axis + 1:]).sum(axis=axis + 1)
        grad = xp.zeros(shape, dtype=g.dtype)
        xp.add.at(grad, _axis_index(axis, ctx.source), g)
        return grad


class Narrow(Function):
    """a[..., start:start + length, ...] along ``axis``: a view."""

    saves = ()
    returns_view = True

    def forward(ctx, a, axis, start, length):
        ctx.where, ctx.shape = _axis_index(axis, slice(start, start + length)), a.shape
        return a[ctx.where]

    def backward(ctx, g):
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        grad[ctx.where] = g
        return grad


# ----------------------------------------------------------------------------- padding


class PadConstant(Function):
    """Constant padding with PyTorch's signed widths: ``widths[d] = (before, after)``, negative crops."""

    saves = ()

    def forward(ctx, a, widths, value):
        crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(widths, a.shape))
        grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
        kept = a[crop]
        ctx.crop, ctx.shape = crop, a.shape
        ctx.inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(grow, kept.shape))
        return ctx.xp.pad(kept, grow, mode="constant", constant_values=value)

    def backward(ctx, g):
        inner = g[ctx.inner]
        if inner.shape == ctx.shape:
            return inner
        grad = ctx.xp.zeros(ctx.shape, dtype=g.dtype)
        grad[ctx.crop] = inner
        return grad


class PadIndexed(Function):
    """Reflect, replicate or circular padding. ``sources`` holds ``(axis, source, before)`` per padded
    axis: output position j along ``axis`` reads input position ``source[j]``, and the input's own
    run starts at output position ``before`` (negative when the padding crops)."""

    saves = ()

    def forward(ctx, a, sources):
        xp = ctx.xp
        ctx.sources, ctx.shapes = sources, []
        out = a
        for axis, source, _ in sources:
            ctx.shapes.append(out.shape)
            out = xp.take(out, source, axis=axis)
        return out

    def backward(ctx, g):
        xp = ctx.xp
        for (axis, source, before), shape in zip(reversed(ctx.sources), reversed(ctx.shapes)):
            g = _take_adjoint(xp, g, axis, source, before, shape)
        return g


def _take_adjoint(xp, g, axis, source, before, shape):
    """Sum ``g`` back onto ``shape`` through ``take(., source, axis)``: the input's own run is one slice
    copy, and only the edge positions (as many as the padding) go through ``add.at``."""
    grad = xp.zeros(shape, dtype=g.dtype)
    n, m = shape[axis], source.shape[0]
    start, stop = max(before, 0), min(before + n, m)
    if stop > start:
        grad[_axis_index(axis, slice(start - before, stop - before))] = g[_axis_index(axis, slice(start, stop))]
    edges = xp.concatenate([xp.arange(0, start), xp.arange(max(stop, start), m)])
    if edges.size:
        xp.add.at(grad, _axis_index(axis, source[edges]), xp.take(g, edges, axis=axis))
    return grad
