"""LayerNorm (and GroupNorm's row normalisation) as one pass per row: ``ember.ops.nn``'s fast path.

The NumPy reference (``_normalize_rows`` and ``LayerNorm`` in ``ember/ops/nn.py``) walks the whole
(R, D) array once per operator: centre, square, scale, weight, bias, each with a temporary. Here
each row is read once into L1 and finished there.

Accuracy. Row sums accumulate in float64: the error of a D-term sum is then about D·2^-53 of the
summed magnitudes, far below one float32 ulp for any row that fits in memory, where the reference's
float32 BLAS dot products carry about √D·2^-24. Sequential float64 adds are latency-bound (a 4-cycle
chain per element), so the sum helpers alone are compiled with LLVM's ``reassoc`` flag: the compiler
may split the sum over vector lanes (any split is as accurate, in float64), and the float32→float64
conversions vectorise with it. float64 then costs what float32 costs (768×128 rows: 14 µs against
11 µs per pass; without ``reassoc`` 50-60 µs). The forward also subtracts the mean in float64 (see
``layer_norm_forward``); scaling, the affine and the gradient's element-wise work run in the input's
dtype, in the reference's order of operations, with the float64 statistics rounded to it (the
``dtype`` argument, ``np.float32`` or ``np.float64``).

The weight's and bias's gradients (column sums over the rows) are fused into the backward pass as
float64 accumulators, one per column. That beats the reference's ``ones @ (g * xhat)`` BLAS
matrix-vector product, which needs the (R, D) product as a temporary (768×128: about 103 µs for the
whole fused backward against 121 µs for the kernel's dx plus the BLAS column sums), and is more
accurate (float64 against OpenBLAS's sequential float32 accumulation over the R rows).
"""

from __future__ import annotations

import numpy as np

from . import jit


@jit(reassoc=True)
def row_sum(row):
    """Σ row in float64 (any order; see the module docstring)."""
    total = 0.0
    for j in range(row.size):
        total += row[j]
    return total


@jit(reassoc=True)
def row_sum_of_squares(row):
    """Σ row² in float64; each square is rounded to the row's dtype first (all terms are positive, so that
    adds at most one rounding of the dtype, relative, to the sum)."""
    total = 0.0
    for j in range(row.size):
        v = row[j]
        total += v * v
    return total


@jit(reassoc=True)
def _gradient_sums(g, weight, xhat):
    """(Σ gxhat, Σ gxhat·xhat) in float64 over one row, with gxhat = g·weight (or g when there is no weight)."""
    sum_g = 0.0
    sum_gx = 0.0
    for j in range(g.size):
        gx = g[j] * weight[j] if weight is not None else g[j]
        sum_g += gx
        sum_gx += gx * xhat[j]
    return sum_g, sum_gx


@jit
def layer_norm_forward(rows, weight, bias, eps, xhat, out, rstd):
    """Fill ``xhat`` = (x - mean)·rstd and ``rstd`` = 1/sqrt(var + eps) (R, 1) for each row of ``rows`` (R, D),
    and ``out`` = xhat·weight + bias (either may be None; ``out`` None skips it: GroupNorm applies its own
    per-channel affine).

    x - mean is taken in float64 and rounded once: the reference rounds the mean to the dtype first, which
    costs up to half an ulp of the mean, i.e. ulp(mean)·rstd in xhat, thousands of ulps when |mean| >> std.

    Reference: ``_normalize_rows`` and ``LayerNorm.forward`` in ``ember/ops/nn.py``.
    """
    n, d = rows.shape
    for i in range(n):
        src, xh = rows[i], xhat[i]
        mean = row_sum(src) / d
        for j in range(d):
            xh[j] = src[j] - mean
        rstd[i, 0] = 1.0 / np.sqrt(row_sum_of_squares(xh) / d + eps)
        r = rstd[i, 0]  # in the dtype, as saved for backward
        if out is None:
            for j in range(d):
                xh[j] *= r
        else:
            dst = out[i]
            for j in range(d):
                h = xh[j] * r
                xh[j] = h
                if weight is not None:
                    h = h * weight[j]
                if bias is not None:
                    h = h + bias[j]
                dst[j] = h


@jit
def layer_norm_backward(g, xhat, rstd, weight, dx, weight_sum, bias_sum, dtype):
    """dx = rstd·(gxhat - (xhat·mean(gxhat·xhat) + mean(gxhat))) per row, gxhat = g·weight (g without a weight);
    and the column sums Σ_rows g·xhat into ``weight_sum`` and Σ_rows g into ``bias_sum`` (float64 (D,),
    zeroed by the caller). Any of ``dx``, ``weight_sum``, ``bias_sum`` may be None (not needed).

    Reference: ``LayerNorm.backward`` in ``ember/ops/nn.py``.
    """
    n, d = g.shape
    for i in range(n):
        gi, xh = g[i], xhat[i]
        if dx is not None:
            sum_g, sum_gx = _gradient_sums(gi, weight, xh)
            mean_g, mean_gx, r = dtype(sum_g / d), dtype(sum_gx / d), rstd[i, 0]
            dst = dx[i]
            for j in range(d):
                gx = gi[j] * weight[j] if weight is not None else gi[j]
                dst[j] = (gx - (xh[j] * mean_gx + mean_g)) * r
        if weight_sum is not None:
            for j in range(d):
                weight_sum[j] += gi[j] * xh[j]
        if bias_sum is not None:
            for j in range(d):
                bias_sum[j] += gi[j]


def normalize_rows(rows, eps, weight=None, bias=None, affine=True):
    """(out, xhat, rstd (R, 1)) for the rows (R, D) of a C-contiguous float array; ``out`` is None without
    ``affine`` (GroupNorm). Allocates the results and runs ``layer_norm_forward``."""
    xhat = np.empty_like(rows)
    rstd = np.empty((rows.shape[0], 1), dtype=rows.dtype)
    out = np.empty_like(rows) if affine else None
    layer_norm_forward(rows, weight, bias, float(eps), xhat, out, rstd)
    return out, xhat, rstd


def normalized_rows_grad(g, xhat, rstd, weight=None, need_dx=True, need_weight=False, need_bias=False):
    """(dx, dweight (D,), dbias (D,)) from ``layer_norm_backward``, each None when not asked for."""
    d = g.shape[1]
    dx = np.empty_like(g) if need_dx else None
    weight_sum = np.zeros(d) if need_weight else None
    bias_sum = np.zeros(d) if need_bias else None
    layer_norm_backward(g, xhat, rstd, weight, dx, weight_sum, bias_sum, g.dtype.type)
    dweight = None if weight_sum is None else weight_sum.astype(g.dtype)
    dbias = None if bias_sum is None else bias_sum.astype(g.dtype)
    return dx, dweight, dbias
