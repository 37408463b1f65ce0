"""Sinkhorn–Knopp and the hyper-connection stream read/write as compiled loops: ``ember.ops.hyper``'s fast path.

Sinkhorn. The reference (``Sinkhorn`` in ``ember/ops/hyper.py``) runs 2·iters log-domain normalisations,
each about six NumPy passes over (M, n, n) tiny matrices, plus their reverse: for mHC's per-token
matrices (M = B·T, n = 4) that is ~30 ms a sub-layer, all of it loop overhead. Here each matrix is
done in registers, in the linear domain: K = exp(logits - max) once, then columns and rows divided by
their sums (the same iterates: exp of a log-domain step is the division), in float64 whatever the
input dtype. A batch with a matrix whose logits spread over more than ``LINEAR_SPREAD`` (where exp would
underflow to zero in float64) goes to the log-domain reference instead (``needs_log_domain``). The
backward recomputes the iterates (2·iters n×n matrices, kept per matrix) and walks them in reverse:
for y = x / s with s the column (or row) sums, dx = (dy - Σ dy·y) / s along that axis; finally
dlogits = dK·K.

Stream read and write (``StreamRead``/``StreamWrite``): u = Σ_i h_i X_i and X' = H X + h_post ⊗ y over
(T, n, C) streams, forward and backward each in one pass over the streams, where the reference
composes broadcasts, a batched matmul and reductions (five to ten passes over n·C per token).
Sums over the n streams run in the input's dtype in stream order, as the reference's; the sums
over C (the maps' gradients) accumulate in float64.
"""

from __future__ import annotations

import math

import numpy as np

from . import jit

LINEAR_SPREAD = 600.0  # exp(-600) ≈ 3e-261: no float64 underflow within one matrix's K


@jit
def _linear_iterates(logits, iters, steps, sums):
    """K and its 2·iters normalised iterates of one matrix into ``steps`` (2·iters + 1, n, n), the sums into
    ``sums`` (2·iters, n). Returns False (nothing written) when the logits spread too far for the linear domain."""
    n = logits.shape[0]
    hi = logits[0, 0]
    lo = logits[0, 0]
    for i in range(n):
        for j in range(n):
            v = logits[i, j]
            hi = max(hi, v)
            lo = min(lo, v)
    if hi - lo > LINEAR_SPREAD:
        return False
    for i in range(n):
        for j in range(n):
            steps[0, i, j] = math.exp(float(logits[i, j]) - float(hi))
    for t in range(2 * iters):
        src = steps[t]
        dst = steps[t + 1]
        if t % 2 == 0:  # columns
            for j in range(n):
                s = 0.0
                for i in range(n):
                    s += src[i, j]
                sums[t, j] = s
                for i in range(n):
                    dst[i, j] = src[i, j] / s
        else:  # rows
            for i in range(n):
                s = 0.0
                for j in range(n):
                    s += src[i, j]
                sums[t, i] = s
                for j in range(n):
                    dst[i, j] = src[i, j] / s
    return True


@jit
def sinkhorn_forward(logits, iters, out):
    """``Sinkhorn.forward`` for (M, n, n) logits into ``out`` (same shape and dtype)."""
    M, n = logits.shape[0], logits.shape[1]
    steps = np.empty((2 * iters + 1, n, n))
    sums = np.empty((2 * iters, n))
    for k in range(M):
        if _linear_iterates(logits[k], iters, steps, sums):
            last = steps[2 * iters]
            for i in range(n):
                for j in range(n):
                    out[k, i, j] = last[i, j]
        else:  # never here: the op sends such batches to the reference (``needs_log_domain``)
            for i in range(n):
                for j in range(n):
                    out[k, i, j] = np.nan


@jit
def sinkhorn_backward(logits, g, iters, out):
    """``Sinkhorn.backward``: the gradient for (M, n, n) logits from the output's gradient ``g``, into ``out``.

    Matrices spread over more than LINEAR_SPREAD get NaN here, as forward: the caller sends those batches to
    the reference (``needs_log_domain``)."""
    M, n = logits.shape[0], logits.shape[1]
    steps = np.empty((2 * iters + 1, n, n))
    sums = np.empty((2 * iters, n))
    d = np.empty((n, n))
    for k in range(M):
        if not _linear_iterates(logits[k], iters, steps, sums):
            for i in range(n):
                for j in range(n):
                    out[k, i, j] = np.nan
            continue
        for i in range(n):
            for j in range(n):
                d[i, j] = g[k, i, j]
        for t in range(2 * iters - 1, -1, -1):
            y = steps[t + 1]
            if t % 2 == 0:  # y = x / colsum(x)
                for j in range(n):
                    dot = 0.0
                    for i in range(n):
                        dot += d[i, j] * y[i, j]
                    for i in range(n):
                        d[i, j] = (d[i, j] - dot) / sums[t, j]
            else:
                for i in range(n):
                    dot = 0.0
                    for j in range(n):
                        dot += d[i, j] * y[i, j]
                    for j in range(n):
                        d[i, j] = (d[i, j] - dot) / sums[t, i]
        K = steps[0]
        for i in range(n):
            for j in range(n):
                out[k, i, j] = d[i, j] * K[i, j]


@jit
def needs_log_domain(logits) -> bool:
    """Whether any (n, n) matrix of (M, n, n) logits spreads over more than LINEAR_SPREAD."""
    for k in range(logits.shape[0]):
        m = logits[k]
        if m.max() - m.min() > LINEAR_SPREAD:
            return True
    return False


# ----------------------------------------------------------------------------- stream read / write
# Shapes: T tokens (leading axes flattened), n streams, C channels; every array C-contiguous, one dtype.


@jit(reassoc=True)
def _dot(a, b):
    """Σ a·b over two rows, in float64 (any order: the sum vectorises, as ``kernels.norm``'s row sums)."""
    total = 0.0
    for c in range(a.size):
        total += float(a[c]) * float(b[c])
    return total


@jit
def read_forward(h, x, u):
    """u[t] = Σ_i h[t, i] · x[t, i] (the sum in stream order, in the dtype)."""
    T, n, C = x.shape
    for t in range(T):
        for c in range(C):
            u[t, c] = h[t, 0] * x[t, 0, c]
        for i in range(1, n):
            w = h[t, i]
            for c in range(C):
                u[t, c] += w * x[t, i, c]


@jit
def read_backward(h, x, du, dh, dx):
    """dx[t, i] = h[t, i] · du[t]; dh[t, i] = Σ_c x[t, i, c] · du[t, c] (float64 sums)."""
    T, n, C = x.shape
    for t in range(T):
        for i in range(n):
            w = h[t, i]
            for c in range(C):
                dx[t, i, c] = w * du[t, c]
            dh[t, i] = _dot(x[t, i], du[t])


@jit
def write_forward(x, y, hp, H, out):
    """out[t, i] = Σ_j H[t, i, j] · x[t, j] + hp[t, i] · y[t]."""
    T, n, C = x.shape
    for t in range(T):
        for i in range(n):
            w = H[t, i, 0]
            for c in range(C):
                out[t, i, c] = w * x[t, 0, c]
            for j in range(1, n):
                w = H[t, i, j]
                for c in range(C):
                    out[t, i, c] += w * x[t, j, c]
            w = hp[t, i]
            for c in range(C):
                out[t, i, c] += w * y[t, c]


@jit
def write_backward(x, y, hp, H, g, dx, dy, dhp, dH):
    """The gradients of ``write_forward``: dx = Hᵀ g, dy = Σ_i hp_i g_i, dhp_i = g_i · y, dH_ij = g_i · x_j."""
    T, n, C = x.shape
    for t in range(T):
        for j in range(n):
            w = H[t, 0, j]
            for c in range(C):
                dx[t, j, c] = w * g[t, 0, c]
            for i in range(1, n):
                w = H[t, i, j]
                for c in range(C):
                    dx[t, j, c] += w * g[t, i, c]
        w = hp[t, 0]
        for c in range(C):
            dy[t, c] = w * g[t, 0, c]
        for i in range(1, n):
            w = hp[t, i]
            for c in range(C):
                dy[t, c] += w * g[t, i, c]
        for i in range(n):
            dhp[t, i] = _dot(g[t, i], y[t])
            for j in range(n):
                dH[t, i, j] = _dot(g[t, i], x[t, j])
