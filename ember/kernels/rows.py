"""A few rows times a weight stored (out, in): the decode loop's Linear layers with 2 to ``MOST_ROWS`` requests.

With a few rows OpenBLAS packs the large weight into its own layout at every call and then reuses each packed
element only a few times; the packing is most of the work. This kernel reads the weight once, where it lies: for
each block of 6 outputs and 4 rows it keeps 24 sums in registers while it walks the inputs, so each weight element
loaded serves 4 rows and each input element 6 outputs (blocks of 4 x 4 were 6-9% slower at 8 and 16 rows).
Measured on the code model's layers in a whole forward (``benchmarks/bench_decode_gemm.py``): faster than BLAS's
best form up to about 16 rows, slower from 32, and one row stays with BLAS's matrix-vector product.

Each output is ``Σ_k x[r, k] · w[o, k]`` in float32, vectorised over k with FMAs (``reassoc``, ``fma``): the
order of the additions is LLVM's, as BLAS's is its own, so the two agree to float32 rounding (tested against
float64). The outputs split in halves over ``kernels.pair``, each computed as on one core.
"""

from __future__ import annotations

import numpy as np

from . import jit, pair

MOST_ROWS = 16  # up to this many rows the kernel beats BLAS here (bench_decode_gemm); 1 row stays with BLAS
SPLIT_WORK = 1 << 18  # multiply-adds (rows x outputs x inputs) from which the outputs are split over two cores
BLOCK = 6  # outputs per block, as the kernel is written out (with 4 rows: 24 sums, 4 inputs and a weight: 29 of
#            the 32 vector registers)
_NO_SCALE = np.ones(0, dtype=np.float32)


@jit(reassoc=True, fma=True)
def _rows_matmul(x, w, scale, scaled, lo, hi, out):
    """out[r, o] = Σ_k x[r, k] · w[o, k] (times scale[o] if ``scaled``) for the outputs lo <= o < hi, with lo a
    multiple of ``BLOCK`` from the first output. ``w`` float32, or int8 codes converted as they are loaded."""
    rows, k_dim = x.shape
    f = x.dtype.type
    z = f(0)  # float32 sums stay float32 (a bare 0.0 would make them float64 in numba)
    blocks_end = lo + (hi - lo) // 6 * 6
    row_quads_end = rows - rows % 4
    for o in range(lo, blocks_end, 6):
        for r in range(0, row_quads_end, 4):  # 4 rows x 6 outputs: 24 sums in registers
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = z
            d0 = d1 = d2 = d3 = e0 = e1 = e2 = e3 = g0 = g1 = g2 = g3 = z
            for k in range(k_dim):
                x0, x1, x2, x3 = x[r, k], x[r + 1, k], x[r + 2, k], x[r + 3, k]
                v = f(w[o, k])
                a0 += x0 * v
                a1 += x1 * v
                a2 += x2 * v
                a3 += x3 * v
                v = f(w[o + 1, k])
                b0 += x0 * v
                b1 += x1 * v
                b2 += x2 * v
                b3 += x3 * v
                v = f(w[o + 2, k])
                c0 += x0 * v
                c1 += x1 * v
                c2 += x2 * v
                c3 += x3 * v
                v = f(w[o + 3, k])
                d0 += x0 * v
                d1 += x1 * v
                d2 += x2 * v
                d3 += x3 * v
                v = f(w[o + 4, k])
                e0 += x0 * v
                e1 += x1 * v
                e2 += x2 * v
                e3 += x3 * v
                v = f(w[o + 5, k])
                g0 += x0 * v
                g1 += x1 * v
                g2 += x2 * v
                g3 += x3 * v
            out[r, o], out[r + 1, o], out[r + 2, o], out[r + 3, o] = a0, a1, a2, a3
            out[r, o + 1], out[r + 1, o + 1], out[r + 2, o + 1], out[r + 3, o + 1] = b0, b1, b2, b3
            out[r, o + 2], out[r + 1, o + 2], out[r + 2, o + 2], out[r + 3, o + 2] = c0, c1, c2, c3
            out[r, o + 3], out[r + 1, o + 3], out[r + 2, o + 3], out[r + 3, o + 3] = d0, d1, d2, d3
            out[r, o + 4], out[r + 1, o + 4], out[r + 2, o + 4], out[r + 3, o + 4] = e0, e1, e2, e3
            out[r, o + 5], out[r + 1, o + 5], out[r + 2, o + 5], out[r + 3, o + 5] = g0, g1, g2, g3
        for r in range(row_quads_end, rows):  # the rows left over: one at a time, still 6 outputs
            a0 = b0 = c0 = d0 = e0 = g0 = z
            for k in range(k_dim):
                xr = x[r, k]
                a0 += xr * f(w[o, k])
                b0 += xr * f(w[o + 1, k])
                c0 += xr * f(w[o + 2, k])
                d0 += xr * f(w[o + 3, k])
                e0 += xr * f(w[o + 4, k])
                g0 += xr * f(w[o + 5, k])
            out[r, o], out[r, o + 1], out[r, o + 2] = a0, b0, c0
            out[r, o + 3], out[r, o + 4], out[r, o + 5] = d0, e0, g0
    for o in range(blocks_end, hi):  # the outputs left over (fewer than 6)
        for r in range(rows):
            a0 = z
            for k in range(k_dim):
                a0 += x[r, k] * f(w[o, k])
            out[r, o] = a0
    if scaled:
        for r in range(rows):
            for o in range(lo, hi):
                out[r, o] *= scale[o]


def applies(x, w) -> bool:
    """Whether the kernel takes these: numba on, float32 NumPy arrays in C order, 2 to ``MOST_ROWS`` rows of x
    (R, K) against w (O, K)."""
    return _rows_matmul is not None and type(x) is np.ndarray and type(w) is np.ndarray and x.ndim == 2 \
        and 2 <= x.shape[0] <= MOST_ROWS and w.ndim == 2 and x.dtype == np.float32 and w.dtype == np.float32 \
        and x.shape[1] == w.shape[1] and w.shape[0] > 0 and x.flags.c_contiguous and w.flags.c_contiguous


def rows_matmul(x: np.ndarray, w: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """(R, O) float32: ``x @ w.T`` for x (R, K) and w (O, K); or, for int8 codes ``w`` and their per-output
    ``scale`` (``kernels.int8``), ``x @ (w · scale[:, None]).T``. Check ``applies`` (or ``int8.applies``) first."""
    n_out = w.shape[0]
    out = np.empty((x.shape[0], n_out), dtype=np.float32)
    scaled = scale is not None
    scale = scale if scaled else _NO_SCALE
    if n_out < 2 * BLOCK or x.shape[0] * n_out * w.shape[1] < SPLIT_WORK:
        _rows_matmul(x, w, scale, scaled, 0, n_out, out)
        return out
    half = n_out // (2 * BLOCK) * BLOCK  # the first half a whole number of blocks
    pair.run_both(_rows_matmul, (x, w, scale, scaled, 0, half, out), (x, w, scale, scaled, half, n_out, out))
    return out


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The definition: the product."""
    return x @ w.T
