"""B-spline basis functions on per-input knot vectors, as a fused op with an analytic derivative.

Knots are a (n_inputs, G + 2k + 1) array: G intervals on [lo, hi] plus k extra knots of the
same spacing on each side (the "extended grid" of KAN layers), giving G + k basis functions
B_0..B_{G+k-1} of order k per input. For x in [t_m, t_{m+1}) exactly k+1 bases are nonzero,
B_{m-k}..B_m, so the op works on those ("local" values) and only then scatters them into the
dense (..., n_inputs, G+k) array a GEMM wants:

* uniformly spaced knots (every row its own start and step): the local values are fixed
  polynomials of the fractional position f in the interval, N = P·[1, f, ..., f^k] (P from
  the Cox–de Boor recursion on unit knots, computed once per order);
* any increasing knots: de Boor's triangular recursion on the 2k knots around the interval.

Outside [t_0, t_{G+2k}) every basis is 0, and between t_0 and lo (or hi and t_{G+2k}) only the
tails that start inside remain (the sum is < 1): the Cox–de Boor convention of pykan and
efficient-kan. On [lo, hi] the bases are non-negative and sum to 1. NaN or inf inputs raise.

With numba, the scatter into the dense array and the backward's gather-and-sum each run as one
compiled pass (``ember.kernels.bspline``); the local values stay NumPy's.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import kernels
from ..autograd import Function
from ..kernels import bspline as bspline_kernels
from ..kernels import cuda as cuda_kernels
from ..kernels.cuda import bspline as cuda_bspline_kernels


@functools.cache
def uniform_local_polynomials(k: int) -> np.ndarray:
    """P (k+1, k+1): on unit knots, the r-th nonzero basis of an interval is Σ_d P[r, d]·f^d.

    From the uniform Cox–de Boor recursion N^p_r = ((f + p - r)·N^{p-1}_{r-1} + (r + 1 - f)·N^{p-1}_r)/p.
    """
    polys = [np.array([1.0])]  # N^0_0 = 1, coefficients in increasing powers of f
    for p in range(1, k + 1):
        new = []
        for r in range(p + 1):
            acc = np.zeros(p + 1)
            if r - 1 >= 0:  # (f + p - r) * N^{p-1}_{r-1}
                a = polys[r - 1]
                acc[: a.size] += (p - r) * a
                acc[1 : a.size + 1] += a
            if r < p:  # (r + 1 - f) * N^{p-1}_r
                b = polys[r]
                acc[: b.size] += (r + 1) * b
                acc[1 : b.size + 1] -= b
            new.append(acc / p)
        polys = new
    return np.stack(polys)


def check_finite(xp, x, name: str) -> None:
    if not bool(xp.isfinite(x).all()):
        bad = int((~xp.isfinite(x)).sum())
        raise ValueError(f"{name}: input has {bad} NaN or inf value(s); B-spline bases are undefined there")


def is_uniform(knots, rtol: float = 1e-6) -> bool:
    """True when every row of ``knots`` is evenly spaced (each row may have its own start and step)."""
    d = np.diff(np.asarray(knots, dtype=np.float64), axis=-1)
    return bool(np.allclose(d, d[..., :1], rtol=rtol, atol=0.0))


def local_uniform(xp, x, knots, k: int, derivative: bool = False):
    """Interval index s and local values N (k+1, ...) (and dN/dx) for evenly spaced knots."""
    t0 = knots[:, 0]
    inv_h = 1.0 / (knots[:, 1] - knots[:, 0])
    u = (x - t0) * inv_h
    s = xp.floor(u)
    f = u - s
    powers = xp.empty((k + 1,) + x.shape, dtype=x.dtype)
    powers[0] = 1
    for d in range(1, k + 1):
        xp.multiply(powers[d - 1], f, out=powers[d])
    P = xp.asarray(uniform_local_polynomials(k), dtype=x.dtype)
    flat = powers.reshape(k + 1, -1)
    N = (P @ flat).reshape(powers.shape)
    dN = None
    if derivative:
        dP = P[:, 1:] * xp.arange(1, k + 1, dtype=x.dtype)  # d/df of each polynomial
        dN = (dP @ flat[:k]).reshape(powers.shape) * inv_h
    return s.astype(xp.int64), N, dN


def local_general(xp, x, knots, k: int, derivative: bool = False):
    """Interval index s and local values N (k+1, ...) (and dN/dx) for any increasing knots (de Boor)."""
    n_knots = knots.shape[1]
    s = (x[..., None] >= knots).sum(axis=-1, dtype=xp.int64) - 1  # t_s <= x < t_{s+1}
    cols = xp.arange(knots.shape[0])
    flat_knots = knots.reshape(-1)

    def t(offset):  # knot t_{s+offset} of each element's input row (clamped: unused where out of range)
        idx = xp.clip(s + offset, 0, n_knots - 1)
        return flat_knots[cols * n_knots + idx]

    left = [None] + [x - t(1 - j) for j in range(1, k + 1)]  # left[j] = x - t_{s+1-j}
    right = [None] + [t(j) - x for j in range(1, k + 1)]  # right[j] = t_{s+j} - x
    N = [xp.ones_like(x)]
    prev = N
    for p in range(1, k + 1):
        cur = []
        saved = xp.zeros_like(x)
        for r in range(p):
            denom = right[r + 1] + left[p - r]
            temp = prev[r] / xp.where(denom == 0, 1, denom)
            cur.append(saved + right[r + 1] * temp)
            saved = left[p - r] * temp
        cur.append(saved)
        if p == k - 1:
            lower = cur
        prev = cur
    N = xp.stack(prev)
    dN = None
    if derivative:
        if k == 0:
            dN = xp.zeros_like(N)
        else:
            lower = lower if k > 1 else [xp.ones_like(x)]
            # dB_{i,k}/dx = k·B_{i,k-1}/(t_{i+k} - t_i) - k·B_{i+1,k-1}/(t_{i+k+1} - t_{i+1}), i = s-k+r
            terms = []
            for r in range(k + 1):
                val = xp.zeros_like(x)
                if r >= 1:  # B_{i,k-1} is lower[r-1]; t_{i+k} - t_i = t_{s+r} - t_{s-k+r}
                    span = t(r) - t(r - k)
                    val = val + k * lower[r - 1] / xp.where(span == 0, 1, span)
                if r < k:  # B_{i+1,k-1} is lower[r]; t_{i+k+1} - t_{i+1} = t_{s+r+1} - t_{s-k+r+1}
                    span = t(r + 1) - t(r + 1 - k)
                    val = val - k * lower[r] / xp.where(span == 0, 1, span)
                terms.append(val)
            dN = xp.stack(terms)
    return s, N, dN


def scatter_local(xp, s, N, k: int, n_basis: int, lead: int = 0):
    """Dense (..., lead + n_basis) array with N[r] at column lead + s - k + r (the first ``lead``
    columns left zero for the caller); basis indices outside [0, n_basis) are dropped."""
    if kernels.takes(N):
        return bspline_kernels.scatter_local(s, N, k, n_basis, lead)
    elif cuda_kernels.takes(N):
        return cuda_bspline_kernels.scatter_local(s, N, k, n_basis, lead)
    shape = s.shape
    n, width = s.size, lead + n_basis
    out = xp.zeros(n * width + 1, dtype=N.dtype)  # the last slot swallows dropped writes
    s_flat = s.reshape(-1)
    idx = xp.arange(n, dtype=xp.int64) * width + (lead - k)
    idx += s_flat
    if n == 0 or (int(s_flat.min()) >= k and int(s_flat.max()) < n_basis):  # all k+1 bases inside: no checks
        for r in range(k + 1):
            out[idx] = N[r].reshape(-1)
            idx += 1
    else:
        for r in range(k + 1):
            pos = s_flat + (r - k)
            out[xp.where((pos >= 0) & (pos < n_basis), idx + r, n * width)] = N[r].reshape(-1)
    return out[: n * width].reshape(shape + (width,))


def gather_local(xp, dense, s, k: int):
    """The inverse of scatter_local: (k+1, ...) values of ``dense`` at basis indices s - k + r (0 where dropped)."""
    n_basis = dense.shape[-1]
    flat = dense.reshape(-1)
    n = s.size
    base = xp.arange(n, dtype=xp.int64) * n_basis
    out = xp.empty((k + 1, n), dtype=dense.dtype)
    s_flat = s.reshape(-1)
    for r in range(k + 1):
        pos = s_flat - k + r
        valid = (pos >= 0) & (pos < n_basis)
        out[r] = xp.where(valid, flat[xp.where(valid, base + pos, 0)], 0)
    return out.reshape((k + 1,) + s.shape)


def gather_local_dot(xp, dense, s, dN, k: int):
    """Σ_r dense[..., s - k + r]·dN[r] (dropped basis indices count 0): the input gradient of the dense
    bases ``dense`` (..., n_basis) through the local derivatives dN (k+1, ...)."""
    if kernels.takes(dense, dN):
        return bspline_kernels.gather_local_dot(dense, s, dN, k)
    elif cuda_kernels.takes(dense, dN):
        return cuda_bspline_kernels.gather_local_dot(dense, s, dN, k)
    return (gather_local(xp, dense, s, k) * dN).sum(axis=0)


def local_basis(xp, x, knots, k: int, uniform: bool, derivative: bool = False):
    """(s, N, dN) for x (..., n_inputs): local bases of each element's interval (see module doc)."""
    fn = local_uniform if uniform else local_general
    return fn(xp, x, knots, k, derivative)


def basis_dense(xp, x, knots, k: int, uniform: bool):
    """The dense basis (..., n_inputs, G+k) of x (..., n_inputs)."""
    s, N, _ = local_basis(xp, x, knots, k, uniform)
    return scatter_local(xp, s, N, k, knots.shape[1] - k - 1)


class BSplineBasis(Function):
    """B(x): (..., n_inputs) -> (..., n_inputs, G+k); backward sums g·dB/dx over the bases."""

    saves = (0,)

    def forward(ctx, x, knots, k, uniform):
        xp = ctx.xp
        check_finite(xp, x, "bspline_basis")
        s, N, _ = local_basis(xp, x, knots, k, uniform)
        ctx.x, ctx.knots, ctx.k, ctx.uniform = x, knots, k, uniform
        return scatter_local(xp, s, N, k, knots.shape[1] - k - 1)

    def backward(ctx, g):
        xp, k = ctx.xp, ctx.k
        s, _, dN = local_basis(xp, ctx.x, ctx.knots, k, ctx.uniform, derivative=True)
        return gather_local_dot(xp, g, s, dN, k)
