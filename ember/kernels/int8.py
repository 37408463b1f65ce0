"""Float rows times int8 weights, for the decode loop of an int8 GPT (``ember compress --quantize int8``).

A quantized Linear keeps its weight as int8 codes ``q`` (out, in) and one float32 scale per output; its ``weight``
is the dequantized matrix ``q · scale``, a new float32 array at each access. The decode loop used to build those
matrices at every step: one row through the code model's layers took 17.4 ms that way, against 1.9 ms for the
float model's products (and 1.76 ms here: ``benchmarks/bench_decode_gemm.py``).
Here each output is ``scale[o] · Σ_k x[r, k] · q[o, k]``: the codes are read once per step (a quarter of the
float weights' bytes) and converted in registers, so a one-row step reads less memory than the float model's.
One row runs the loop here; 2 rows up to ``MOST_ROWS`` run ``kernels.rows``' blocks of 4 rows x 6 outputs, the
codes converted as they are loaded: 1.14-1.68x the float model's products from 4 to 16 rows, 0.78-0.89x at 32-64
(``benchmarks/bench_decode_gemm.py``), since the codes are a quarter of the bytes to stream. With more rows,
dequantizing once and calling BLAS wins.

The reference, ``x @ (q · scale).T``, stays the definition: the kernel adds the same products in another order
(float32 sums, vectorised over k), so the two agree to float32 rounding (tested). Two cores: the outputs are split
in halves over ``kernels.pair``, each output computed as on one core.
"""

from __future__ import annotations

import numpy as np

from . import jit, pair, rows

MOST_ROWS = 96  # up to this many rows the blocks beat dequantizing once and calling BLAS: a whole forward of the
#                code model's int8 layers 1.75x at 48 rows, 1.28x at 64, 1.17x at 96, 0.88x at 128
SPLIT_WORK = 1 << 21  # multiply-adds (outputs x inputs) of one row from which the outputs are split over two cores


@jit(reassoc=True)
def _int8_row(x, q, scale, lo, hi, out):
    """out[0, o] = scale[o] · Σ_k x[0, k] · q[o, k] for the outputs lo <= o < hi (one row)."""
    k_dim = x.shape[1]
    zero = x.dtype.type(0)  # float32 sums stay float32 (x[0, 0] * 0 would be float64 in numba)
    for o in range(lo, hi):
        s = zero
        for k in range(k_dim):
            s += x[0, k] * q[o, k]
        out[0, o] = s * scale[o]


def applies(x, q, scale) -> bool:
    """Whether the kernel takes these arrays: numba on, float32 rows and scales, C-contiguous int8 codes (NumPy)."""
    return _int8_row is not None and all(type(a) is np.ndarray and a.flags.c_contiguous for a in (x, q, scale)) \
        and x.dtype == np.float32 and scale.dtype == np.float32 and q.dtype == np.int8 and x.ndim == 2 \
        and q.ndim == 2 and x.shape[1] == q.shape[1] and scale.shape == (q.shape[0],) and x.shape[0] > 0


def int8_matmul(x: np.ndarray, q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(R, O) float32: ``x`` (R, K) float32 times the int8 weight ``q`` (O, K) dequantized by ``scale`` (O,), as
    ``x @ (q · scale[:, None]).T``. Check ``applies`` first."""
    if x.shape[0] >= 2:  # a few rows: blocks of 4 rows x 6 outputs (each code loaded serves 4 rows)
        return rows.rows_matmul(x, q, scale)
    out = np.empty((1, q.shape[0]), dtype=np.float32)
    n_out = q.shape[0]
    if n_out < 2 or n_out * q.shape[1] < SPLIT_WORK:
        _int8_row(x, q, scale, 0, n_out, out)
        return out
    half = n_out // 2
    pair.run_both(_int8_row, (x, q, scale, 0, half, out), (x, q, scale, half, n_out, out))
    return out


def reference(x: np.ndarray, q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The definition: the dequantized weight (what ``QuantizedLinear.weight`` is), then the product."""
    w = q.astype(np.float32)
    w *= scale[:, None]
    return x @ w.T
