"""Softmax cross-entropy over class-index targets in fused row passes: ``ember.ops.loss.CrossEntropy``'s fast path.

The NumPy reference (``CrossEntropy`` in ``ember/ops/loss.py``) makes a pass over the (N, C) logits
per operator (max, subtract, exp, sum, divide, gather, and in backward multiply, scatter) with a
temporary each. Here the forward is two row passes around NumPy's exp, and the backward one pass:

1. ``shift_rows``: each row's max m, the shifted logits z - m, and (for label smoothing) their mean;
2. ``np.exp`` in place, over the whole array;
3. ``softmax_and_loss``: each row's sum s, p = e/s in place, and the loss log s - (z[t] - m).

Why NumPy's exp in the middle rather than one kernel: numba's ``np.exp`` is a scalar libm call here
(no SVML, see ``ember/kernels/__init__.py``) while NumPy's ufunc is vectorised. Measured on the
(768, 65) float32 logits of the GPT recipe (interleaved, medians): the exp alone takes 25-36 µs in
NumPy and 270 µs in numba; the three steps above take 108 µs, one kernel with numba's exp 315 µs,
more than the whole reference forward (216 µs; the op's forward with these kernels: 145 µs).

Row sums are float64 (the sum helpers of ``ember.kernels.norm``); the rest runs in the logits' dtype in
the reference's order, with its constants (1 - eps, eps, eps/C) passed in that dtype.
"""

from __future__ import annotations

import numpy as np

from . import jit
from .norm import row_sum


@jit
def row_max(row):
    """max(row) over four interleaved running maxima: a single chain is latency-bound, each ``max`` waiting for
    the one before (768 rows of 65: 33 µs against 14 µs with four).

    A NaN may or may not win here (NumPy's max propagates it), but it reaches the row's sum of exponentials
    either way, so the row's probabilities and loss are NaN as in the reference.
    """
    m0 = m1 = m2 = m3 = row[0]
    j, c = 1, row.size
    while j + 4 <= c:
        m0, m1 = max(m0, row[j]), max(m1, row[j + 1])
        m2, m3 = max(m2, row[j + 2]), max(m3, row[j + 3])
        j += 4
    while j < c:
        m0 = max(m0, row[j])
        j += 1
    return max(max(m0, m1), max(m2, m3))


@jit
def shift_rows(z, shifted, row_maxima, shifted_mean):
    """``shifted`` = z - max(z) per row of ``z`` (N, C), ``row_maxima`` (N,) the maxima, and ``shifted_mean`` (N,)
    the rows' means of ``shifted`` (None to skip: only label smoothing reads it).

    Reference: ``m = z.max(axis=1)``, ``shifted = z - m``, ``shifted.mean(axis=1)`` in ``CrossEntropy.forward``.
    """
    n, c = z.shape
    for i in range(n):
        src, dst = z[i], shifted[i]
        m = row_max(src)
        row_maxima[i] = m
        for j in range(c):
            dst[j] = src[j] - m
        if shifted_mean is not None:
            shifted_mean[i] = row_sum(dst) / c


@jit
def softmax_and_loss(p, z, row_maxima, target, shifted_mean, keep, eps, loss, dtype):
    """Normalise ``p`` (N, C), holding exp(z - m) on entry, into the softmax in place, and write each row's loss:
    log s - (z[t] - m), with s the row's sum of exponentials and t its ``target`` class; with label
    smoothing (``shifted_mean`` not None), ``keep``·loss + ``eps``·(log s - mean(z - m)), keep = 1 - eps
    (both of the logits' dtype).

    Reference: ``p /= s``, ``log_s`` and the class-index ``loss`` without class weights in ``CrossEntropy.forward``.
    ``target`` must hold classes in [0, C) (the caller checks: numba does not check bounds).
    """
    n, c = p.shape
    for i in range(n):
        row = p[i]
        total = row_sum(row)
        s = dtype(total)
        for j in range(c):
            row[j] = row[j] / s
        log_s = dtype(np.log(total))
        value = log_s - (z[i, target[i]] - row_maxima[i])
        if shifted_mean is not None:
            value = keep * value + eps * (log_s - shifted_mean[i])
        loss[i] = value


@jit
def cross_entropy_grad(p, target, coef, keep, smooth, smoothing, grad):
    """``grad`` = p·c - keep·c at each row's target class - smooth·c (with ``smoothing``), c = ``coef`` (N,) the
    row's upstream factor, keep = 1 - eps, smooth = eps/C (both of p's dtype).

    Reference: the class-index branch of ``CrossEntropy.backward`` (same operations, same order, so the same bits).
    ``target`` must hold classes in [0, C), as checked in forward.
    """
    n, c = p.shape
    for i in range(n):
        src, dst, factor = p[i], grad[i], coef[i]
        for j in range(c):
            dst[j] = src[j] * factor
        dst[target[i]] -= keep * factor
        if smoothing:
            shift = smooth * factor
            for j in range(c):
                dst[j] -= shift
