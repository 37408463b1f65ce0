"""The B-spline basis scatter and its adjoint as one compiled pass each: ``ember.ops.bspline``'s fast path.

References: ``scatter_local`` (zero the dense (n, width) design matrix, then one fancy-indexed
assignment per local basis, with an index mask per basis once any index falls outside the basis
range, which MNIST's pixels at exactly -1 trigger every step) and the backward's
``(gather_local(dense, s, k) * dN).sum(axis=0)`` (k+1 masked gathers, a product and a sum). Here
each element writes its row of the design matrix, or reads its k+1 entries, once.

Both are exact: the scatter only moves values, and the gather's products are summed r = 0..k in
sequence onto +0, as NumPy's sum over the leading axis adds its rows (no fused multiply-add: numba
does not contract without ``fastmath``).
"""

from __future__ import annotations

import numpy as np

from . import jit


@jit
def _scatter_local(s, N, flat, k, lead, n_basis, width, zero):
    """flat[e·width + lead + s[e] - k + r] = N[r, e] over zeros, for the r whose basis index is in [0, n_basis);
    the others go to flat's last slot, past the n·width design matrix (a select, not a branch: a branch
    per basis, or zeroing and filling each row in turn, ran 1.3-2x slower on MNIST-sized batches)."""
    for w in range(flat.size):
        flat[w] = zero
    n = s.size
    dump = n * width
    for e in range(n):
        first = s[e] - k
        base = e * width + lead + first
        for r in range(k + 1):
            pos = first + r
            flat[base + r if (pos >= 0) & (pos < n_basis) else dump] = N[r, e]


@jit
def _gather_local_dot(dense, s, dN, k, zero, out):
    """out[e] = Σ_r dense[e, s[e] - k + r]·dN[r, e] (0 for basis indices outside the row): 0 + term_0 + ... + term_k
    in that order, as NumPy's sum over the leading axis adds them (its start, +0, turns a -0 sum into +0)."""
    n, n_basis = dense.shape
    for e in range(n):
        first = s[e] - k
        total = zero
        for r in range(k + 1):
            pos = first + r
            value = dense[e, pos] if 0 <= pos < n_basis else zero
            total += value * dN[r, e]
        out[e] = total


def scatter_local(s, N, k: int, n_basis: int, lead: int = 0):
    """``ember.ops.bspline.scatter_local`` for C-contiguous N (k+1, ...) of one float dtype: (..., lead + n_basis)."""
    count, width = s.size, lead + n_basis
    flat = np.empty(count * width + 1, dtype=N.dtype)
    _scatter_local(np.ascontiguousarray(s, dtype=np.int64).reshape(-1), N.reshape(k + 1, count), flat, k, lead,
                   n_basis, width, N.dtype.type(0))
    return flat[: count * width].reshape(s.shape + (width,))


def gather_local_dot(dense, s, dN, k: int):
    """``(gather_local(dense, s, k) * dN).sum(axis=0)`` for C-contiguous dense (..., n_basis) and dN (k+1, ...)."""
    count = s.size
    out = np.empty(count, dtype=dense.dtype)
    _gather_local_dot(dense.reshape(count, dense.shape[-1]), np.ascontiguousarray(s, dtype=np.int64).reshape(-1),
                      dN.reshape(k + 1, count), k, dense.dtype.type(0), out)
    return out.reshape(s.shape)
