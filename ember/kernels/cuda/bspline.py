"""The B-spline basis scatter and its adjoint on the GPU: ``ember.ops.bspline``'s CUDA path.

The same two operations as the numba kernels of ``ember.kernels.bspline``, with the same arguments:

- ``scatter_local``: the dense (..., lead + n_basis) design matrix with N[r, e] at column lead + s[e] - k + r,
  zeros elsewhere, bases whose index falls outside [0, n_basis) dropped. One thread per element of the
  dense matrix, which finds the one r (if any) that lands on its column: every element is written once,
  and only moved, so the result equals the reference bit for bit.
- ``gather_local_dot``: out[e] = Σ_r dense[e, s[e] - k + r]·dN[r, e] (dropped indices count 0), the products
  added r = 0..k in order onto +0, as NumPy's sum over the leading axis and the numba loop add them (no
  fused multiply-add: the sources compile with ``--fmad=false``). One thread per element e.

References: ``scatter_local`` and ``gather_local_dot`` in ``ember/ops/bspline.py``.
"""

from __future__ import annotations

import numpy as np

from . import i64, kernel, launch

VARIANTS = ({"T": np.float32}, {"T": np.float64})

SOURCE = r"""
extern "C" __global__ void scatter_local(const long long* s, const T* N, T* dense, long long count, long long n,
                                         long long k, long long lead, long long width) {
    long long w = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (w >= count) return;  // count = n·width
    long long e = w / width, column = w % width;
    long long r = column - lead - (s[e] - k);  // which local basis lands here, if any
    dense[w] = (column >= lead && r >= 0 && r <= k) ? N[r * n + e] : (T)0;
}

extern "C" __global__ void gather_local_dot(const T* dense, const long long* s, const T* dN, T* out, long long n,
                                            long long n_basis, long long k) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= n) return;
    long long first = s[e] - k;
    T total = (T)0;
    for (long long r = 0; r <= k; ++r) {
        long long pos = first + r;
        T value = (pos >= 0 && pos < n_basis) ? dense[e * n_basis + pos] : (T)0;
        total += value * dN[r * n + e];
    }
    out[e] = total;
}
"""


def _flat_indices(cupy, s):
    return cupy.ascontiguousarray(s.reshape(-1), dtype=cupy.int64)


def scatter_local(s, N, k: int, n_basis: int, lead: int = 0):
    """``ember.ops.bspline.scatter_local`` for C-contiguous CuPy N (k+1, ...): the dense (..., lead + n_basis)."""
    import cupy

    n, width = s.size, lead + n_basis
    dense = cupy.empty(s.shape + (width,), dtype=N.dtype)
    fn = kernel(SOURCE, "scatter_local", T=N.dtype)
    launch(fn, dense.size, (_flat_indices(cupy, s), N, dense, i64(dense.size), i64(n), i64(k), i64(lead), i64(width)))
    return dense


def gather_local_dot(dense, s, dN, k: int):
    """``(gather_local(dense, s, k) * dN).sum(axis=0)`` for C-contiguous CuPy dense (..., n_basis) and dN (k+1, ...)."""
    import cupy

    n = s.size
    out = cupy.empty(s.shape, dtype=dense.dtype)
    fn = kernel(SOURCE, "gather_local_dot", T=dense.dtype)
    launch(fn, n, (dense, _flat_indices(cupy, s), dN, out, i64(n), i64(dense.shape[-1]), i64(k)))
    return out
