"""The attention softmax over keys on the GPU, in place: ``softmax_keys`` of ``ember/ops/attention.py``'s CUDA path.

Scores are key-major, (..., S, L): each query l is a column with stride L. The kernel computes what the
reference computes, column by column: m = max over keys (NaN propagates), with ``safe`` a non-finite m
becomes 0 (a query with every key masked gets zeros, not NaN); e = exp(s - m) in place; the sum of e;
with ``safe`` a zero sum becomes 1; e / sum. The sum adds the keys in order in the scores' dtype, as
NumPy on the CPU reduces over an outer axis (row by row), so float32 results stay close to the CPU's.

Launch layout: one thread per query column (batch index and l flattened); the thread walks the S keys
three times (max, exp and sum, divide). Neighbouring threads hold neighbouring queries, so every read
and write of a warp is one contiguous run of the row.
"""

from __future__ import annotations

import numpy as np

from . import i64, kernel, launch

VARIANTS = ({"T": np.float32}, {"T": np.float64})

SOURCE = r"""
extern "C" __global__ void softmax_keys(T* scores, long long count, long long keys, long long queries, int safe) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;
    T* column = scores + e / queries * keys * queries + e % queries;
    T m = column[0];
    for (long long k = 1; k < keys; ++k) {
        T v = column[k * queries];
        m = (m != m || m >= v) ? m : v;  // NumPy's max: a NaN anywhere wins
    }
    if (safe && !isfinite(m)) m = (T)0;
    T total = (T)0;
    for (long long k = 0; k < keys; ++k) {
        T v = exp(column[k * queries] - m);
        column[k * queries] = v;
        total += v;
    }
    if (safe && total == (T)0) total = (T)1;
    for (long long k = 0; k < keys; ++k) column[k * queries] = column[k * queries] / total;
}
"""


def softmax_keys(st, safe: bool = False):
    """In-place softmax of C-contiguous CuPy key-major scores (..., S, L) over the key axis (-2); returns st."""
    keys, queries = st.shape[-2], st.shape[-1]
    if st.size == 0:
        return st
    count = st.size // keys
    fn = kernel(SOURCE, "softmax_keys", T=st.dtype)
    launch(fn, count, (st, i64(count), i64(keys), i64(queries), np.int32(safe)))
    return st
