"""Fused neural-network ops: softmax, softmin, log_softmax, layer/group/RMS/batch norm, dropout, embedding.

Each is one node with a hand-derived backward, so a layer costs one dispatch rather than a
chain of small ops, and saves only what its backward reads.
"""

from __future__ import annotations

import math

from .. import kernels
from ..autograd import Function
from ..kernels import cuda as cuda_kernels
from ..kernels import norm as norm_kernels
from ..kernels.cuda import norm as cuda_norm_kernels


class Softmax(Function):
    saves = ("out",)

    def forward(ctx, a, axis):
        xp = ctx.xp
        if a.size == 0:  # max over an empty axis has no identity; the result is empty anyway
            ctx.out, ctx.axis = xp.empty_like(a), axis
            return ctx.out
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        ctx.out, ctx.axis = e, axis
        return e

    def backward(ctx, g):
        out = ctx.out
        return out * (g - (g * out).sum(axis=ctx.axis, keepdims=True))


class Softmin(Softmax):
    """softmax(-a) as one node: the softmax of the negated input, whose gradient changes sign."""

    def forward(ctx, a, axis):
        return Softmax.forward(ctx, -a, axis)

    def backward(ctx, g):
        return -Softmax.backward(ctx, g)


class LogSoftmax(Function):
    saves = ("out",)

    def forward(ctx, a, axis):
        xp = ctx.xp
        if a.size == 0:
            ctx.out, ctx.axis = xp.empty_like(a), axis
            return ctx.out
        shifted = a - a.max(axis=axis, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.out, ctx.axis = shifted, axis
        return shifted

    def backward(ctx, g):
        return g - ctx.xp.exp(ctx.out) * g.sum(axis=ctx.axis, keepdims=True)


def _normalized_grad(xhat, gxhat, rstd, axes):
    """d/dx of xhat = (x - mean) * rstd, given d/dxhat, with mean/var taken over ``axes``."""
    mean_g = gxhat.mean(axis=axes, keepdims=True)
    mean_gx = (gxhat * xhat).mean(axis=axes, keepdims=True)
    return rstd * (gxhat - mean_g - xhat * mean_gx)


def _normalize_rows(xp, rows, eps):
    """(x - mean) / sqrt(var + eps) of each row of (R, D), with the row statistics as BLAS
    matrix-vector products with a 1/D vector; returns (xhat, rstd (R, 1), that vector)."""
    d = rows.shape[1]
    inv_d = xp.full(d, 1.0 / d, dtype=rows.dtype)
    xhat = rows - (rows @ inv_d)[:, None]
    var = (xhat * xhat) @ inv_d
    var += eps
    rstd = xp.sqrt(var)
    xp.reciprocal(rstd, out=rstd)
    rstd = rstd[:, None]
    xhat *= rstd
    return xhat, rstd, inv_d


class LayerNorm(Function):
    """Normalise over the last ``ndim`` axes, then scale and shift (either may be absent).

    Inputs are ``x`` followed by the weight and the bias that are present, as
    ``has_weight``/``has_bias`` say. Rows are viewed as (N, D) and their means taken as
    matrix-vector products with a 1/D vector (BLAS), 35-40% faster than ``mean(axis=-1)`` on
    GPT-sized rows of 128. With numba, ``ember.kernels.norm`` does each row's forward (and
    backward) in one pass instead, and this NumPy code is its reference.
    """

    def forward(ctx, x, *params, ndim, eps, has_weight, has_bias):
        xp = ctx.xp
        d = math.prod(x.shape[x.ndim - ndim:])
        rows = x.reshape(-1, d)
        weight = params[0] if has_weight else None
        ctx.has_bias, ctx.param_shape = has_bias, x.shape[x.ndim - ndim:]
        ctx.saves = (1,) if has_weight else ()  # backward reads the weight, if any
        if kernels.takes(rows, *params):
            bias = params[-1].reshape(-1) if has_bias else None
            out, xhat, rstd = norm_kernels.normalize_rows(rows, eps, None if weight is None else weight.reshape(-1),
                                                          bias)
            inv_d = xp.full(d, 1.0 / d, dtype=rows.dtype)  # for the reference backward, should g not suit the kernel
        elif cuda_kernels.takes(rows, *params):
            bias = params[-1].reshape(-1) if has_bias else None
            out, xhat, rstd = cuda_norm_kernels.normalize_rows(
                rows, eps, None if weight is None else weight.reshape(-1), bias)
            inv_d = xp.full(d, 1.0 / d, dtype=rows.dtype)  # for the reference backward, should g not suit the kernel
        else:
            xhat, rstd, inv_d = _normalize_rows(xp, rows, eps)
            out = xhat * weight.reshape(-1) if has_weight else xhat.copy()
            if has_bias:
                out += params[-1].reshape(-1)
        ctx.xhat, ctx.rstd, ctx.weight, ctx.inv_d = xhat, rstd, weight, inv_d
        return out.reshape(x.shape)

    def backward(ctx, g):
        xp, xhat, weight, inv_d = ctx.xp, ctx.xhat, ctx.weight, ctx.inv_d
        needs = ctx.needs_input_grad
        g2 = g.reshape(xhat.shape)
        if kernels.takes(g2, xhat, *(() if weight is None else (weight,))):
            return _layer_norm_grads_compiled(ctx, g2, g.shape)
        elif cuda_kernels.takes(g2, xhat, *(() if weight is None else (weight,))):
            return _layer_norm_grads_compiled(ctx, g2, g.shape, cuda_norm_kernels)
        gxhat = g2 * weight.reshape(-1) if weight is not None else g2
        grads = []
        if needs[0]:  # dx = rstd·(gxhat - mean(gxhat) - xhat·mean(gxhat·xhat))
            dx = xhat * ((gxhat * xhat) @ inv_d)[:, None]
            dx += (gxhat @ inv_d)[:, None]
            xp.subtract(gxhat, dx, out=dx)
            dx *= ctx.rstd
            grads.append(dx.reshape(g.shape))
        else:
            grads.append(None)
        ones = xp.ones(len(g2), dtype=g2.dtype) if (weight is not None or ctx.has_bias) else None
        if weight is not None:
            grads.append((ones @ (g2 * xhat)).reshape(ctx.param_shape) if needs[1] else None)
        if ctx.has_bias:
            grads.append((ones @ g2).reshape(ctx.param_shape) if needs[-1] else None)
        return tuple(grads)


def _layer_norm_grads_compiled(ctx, g2, shape, impl=norm_kernels):
    """LayerNorm's gradients from ``ember.kernels.norm`` (dx and the weight's and bias's column sums in one pass),
    or from ``impl``: its CUDA twin."""
    needs, weight, has_bias = ctx.needs_input_grad, ctx.weight, ctx.has_bias
    dx, dweight, dbias = impl.normalized_rows_grad(
        g2, ctx.xhat, ctx.rstd, None if weight is None else weight.reshape(-1), need_dx=needs[0],
        need_weight=weight is not None and needs[1], need_bias=has_bias and needs[-1])
    grads = [None if dx is None else dx.reshape(shape)]
    if weight is not None:
        grads.append(None if dweight is None else dweight.reshape(ctx.param_shape))
    if has_bias:
        grads.append(None if dbias is None else dbias.reshape(ctx.param_shape))
    return tuple(grads)


class GroupNorm(Function):
    """Normalise each (sample, group of channels) over its channels and positions, then scale and shift
    per channel.

    ``x`` is (N, C, *); the inputs after it are the weight (C,) and the bias (C,) that are present,
    as ``has_weight``/``has_bias`` say. Each (sample, group) is one row of the (N·G, C/G·S) view,
    normalised as LayerNorm normalises its rows (means as BLAS matrix-vector products; with numba,
    the rows' normalisation and its gradient run in ``ember.kernels.norm``).
    """

    def forward(ctx, x, *params, num_groups, eps, has_weight, has_bias):
        xp = ctx.xp
        n, c = x.shape[0], x.shape[1]
        positions = math.prod(x.shape[2:])
        weight = params[0] if has_weight else None
        ctx.weight, ctx.has_bias, ctx.shape3 = weight, has_bias, (n, c, positions)
        ctx.saves = (1,) if has_weight else ()  # backward reads the weight, if any
        if x.size == 0:  # an empty batch (or no positions): nothing to normalise, as PyTorch
            ctx.xhat = None
            return xp.empty_like(x)
        d = c // num_groups * positions
        rows = x.reshape(n * num_groups, d)
        if kernels.takes(rows):  # the rows' normalisation only: the affine below is per channel, not per column
            _, xhat, rstd = norm_kernels.normalize_rows(rows, eps, affine=False)
            inv_d = xp.full(d, 1.0 / d, dtype=rows.dtype)  # for the reference backward, should g not suit the kernel
        elif cuda_kernels.takes(rows):
            _, xhat, rstd = cuda_norm_kernels.normalize_rows(rows, eps, affine=False)
            inv_d = xp.full(d, 1.0 / d, dtype=rows.dtype)  # for the reference backward, should g not suit the kernel
        else:
            xhat, rstd, inv_d = _normalize_rows(xp, rows, eps)
        x3 = xhat.reshape(n, c, positions)
        out = x3 * weight.reshape(c, 1) if has_weight else x3.copy()
        if has_bias:
            out += params[-1].reshape(c, 1)
        ctx.xhat, ctx.rstd, ctx.inv_d = xhat, rstd, inv_d
        return out.reshape(x.shape)

    def backward(ctx, g):
        xp, xhat, weight = ctx.xp, ctx.xhat, ctx.weight
        needs = ctx.needs_input_grad
        n, c, positions = ctx.shape3
        g3 = g.reshape(n, c, positions)
        grads = [None]
        if needs[0]:
            if xhat is None:
                grads[0] = xp.zeros_like(g)
            else:  # dx = rstd·(gxhat - mean(gxhat) - xhat·mean(gxhat·xhat)), per row
                gxhat = (g3 * weight.reshape(c, 1) if weight is not None else g3).reshape(xhat.shape)
                if kernels.takes(gxhat, xhat):
                    dx = norm_kernels.normalized_rows_grad(gxhat, xhat, ctx.rstd)[0]
                elif cuda_kernels.takes(gxhat, xhat):
                    dx = cuda_norm_kernels.normalized_rows_grad(gxhat, xhat, ctx.rstd)[0]
                else:
                    dx = xhat * ((gxhat * xhat) @ ctx.inv_d)[:, None]
                    dx += (gxhat @ ctx.inv_d)[:, None]
                    xp.subtract(gxhat, dx, out=dx)
                    dx *= ctx.rstd
                grads[0] = dx.reshape(g.shape)
        if weight is not None:
            gw = None
            if needs[1]:
                gw = xp.zeros(c, dtype=g.dtype) if xhat is None else (g3 * xhat.reshape(g3.shape)).sum(axis=(0, 2))
            grads.append(gw)
        if ctx.has_bias:
            grads.append(g3.sum(axis=(0, 2)) if needs[-1] else None)
        return tuple(grads)


class RMSNorm(Function):
    """x / sqrt(mean(x²) + eps) over the last ``ndim`` axes, then scaled by the weight (if given).

    Backward: with y = x·r, r = 1/rms, dx = r·(gy - y·mean(gy·y)) where gy = g·weight.
    """

    def forward(ctx, x, *params, ndim, eps, has_weight):
        xp = ctx.xp
        param_shape = x.shape[x.ndim - ndim:]
        weight = params[0] if has_weight else None
        ctx.weight, ctx.param_shape = weight, param_shape
        ctx.saves = (1,) if has_weight else ()  # backward reads the weight, if any
        if x.size == 0:
            ctx.y = None
            return xp.empty_like(x)
        d = math.prod(param_shape)
        x2 = x.reshape(-1, d)
        inv_d = xp.full(d, 1.0 / d, dtype=x.dtype)
        ms = (x2 * x2) @ inv_d
        ms += eps
        rstd = xp.sqrt(ms)
        xp.reciprocal(rstd, out=rstd)
        rstd = rstd[:, None]
        y = x2 * rstd
        out = y * weight.reshape(-1) if has_weight else y.copy()
        ctx.y, ctx.rstd, ctx.inv_d = y, rstd, inv_d
        return out.reshape(x.shape)

    def backward(ctx, g):
        xp, y, weight = ctx.xp, ctx.y, ctx.weight
        needs = ctx.needs_input_grad
        if y is None:
            gx = xp.zeros_like(g) if needs[0] else None
            if weight is None:
                return gx
            return gx, xp.zeros(ctx.param_shape, dtype=g.dtype) if needs[1] else None
        g2 = g.reshape(y.shape)
        gx = None
        if needs[0]:
            gy = g2 * weight.reshape(-1) if weight is not None else g2
            dx = y * ((gy * y) @ ctx.inv_d)[:, None]
            xp.subtract(gy, dx, out=dx)
            dx *= ctx.rstd
            gx = dx.reshape(g.shape)
        if weight is None:
            return gx
        gw = None
        if needs[1]:
            gw = (xp.ones(len(g2), dtype=g2.dtype) @ (g2 * y)).reshape(ctx.param_shape)
        return gx, gw


class BatchNorm(Function):
    """Batch normalisation over every axis but 1 (channels), for (N, C) and (N, C, ...) inputs.

    In training the batch statistics normalise and, when running buffers are given, are
    blended into them in place (unbiased variance, as PyTorch keeps). In evaluation the
    running statistics normalise and the op is an affine map of x.
    """

    def forward(ctx, x, *params, running_mean, running_var, training, momentum, eps, has_affine):
        xp = ctx.xp
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        if training and x.size == 0:  # an empty batch: empty output, running statistics unchanged (PyTorch)
            xc, var = xp.empty_like(x), xp.ones(bshape, dtype=x.dtype)
        elif training:
            mean = x.mean(axis=axes, keepdims=True)
            xc = x - mean
            var = (xc * xc).mean(axis=axes, keepdims=True)
            if running_mean is not None:
                n = x.size // x.shape[1]
                unbiased = var.reshape(-1) * (n / max(n - 1, 1))
                running_mean *= 1 - momentum
                running_mean += momentum * mean.reshape(-1)
                running_var *= 1 - momentum
                running_var += momentum * unbiased
        else:
            xc = x - running_mean.reshape(bshape)
            var = running_var.reshape(bshape)
        rstd = 1.0 / xp.sqrt(var + eps)
        xhat = xc
        xhat *= rstd
        if has_affine:
            weight, bias = params
            out = xhat * weight.reshape(bshape)
            out += bias.reshape(bshape)
        else:
            weight, out = None, xhat.copy()
        ctx.xhat, ctx.rstd, ctx.weight, ctx.axes, ctx.bshape = xhat, rstd, weight, axes, bshape
        ctx.training = training
        ctx.saves = (1,) if has_affine else ()  # backward reads the weight, if any
        return out

    def backward(ctx, g):
        xhat, weight, axes, bshape = ctx.xhat, ctx.weight, ctx.axes, ctx.bshape
        needs = ctx.needs_input_grad
        gxhat = g * weight.reshape(bshape) if weight is not None else g
        gx = None
        if needs[0]:
            if ctx.training and xhat.size:
                gx = _normalized_grad(xhat, gxhat, ctx.rstd, axes)
            else:
                gx = gxhat * ctx.rstd
        if weight is None:
            return gx
        gw = (g * xhat).sum(axis=axes) if needs[1] else None
        gb = g.sum(axis=axes) if needs[2] else None
        return gx, gw, gb


class Dropout(Function):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""

    saves = ()

    def forward(ctx, a, p, generator):
        keep = generator.random(a.shape, dtype=a.dtype) >= p
        mask = keep.astype(a.dtype)
        mask *= 1.0 / (1.0 - p)
        ctx.mask = mask
        return a * mask

    def backward(ctx, g):
        return g * ctx.mask


class Embedding(Function):
    """weight[indices]; the backward sums the gradient rows of each id, so repeated ids accumulate.

    On the CPU the rows are sorted by id and summed with ``add.reduceat`` (3x faster than
    ``add.at`` for a GPT batch here); other backends use ``add.at``.
    """

    saves = ()

    def forward(ctx, weight, indices):
        ctx.indices, ctx.shape, ctx.dtype = indices, weight.shape, weight.dtype
        return weight[indices]

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.shape, dtype=ctx.dtype)
        ids, rows = ctx.indices.reshape(-1), g.reshape(-1, ctx.shape[1])
        if xp.__name__ != "numpy" or ids.size == 0:
            xp.add.at(grad, ids, rows)
            return grad
        order = xp.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = xp.flatnonzero(xp.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
        grad[sorted_ids[starts]] = xp.add.reduceat(rows[order], starts, axis=0)
        return grad
