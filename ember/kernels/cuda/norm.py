"""Layer normalisation of rows on the GPU, forward and backward: ``ember.ops.nn``'s CUDA path (LayerNorm, and
GroupNorm's row normalisation).

The kernels compute what the numba kernels of ``ember.kernels.norm`` compute, with the same arguments and
results (``normalize_rows`` -> (out, xhat, rstd (R, 1)); ``normalized_rows_grad`` -> (dx, dweight, dbias)),
which in turn equal the reference ``_normalize_rows`` / ``LayerNorm`` in ``ember/ops/nn.py`` to round-off:
row sums in float64, x - mean taken in float64 and rounded once, rstd = 1/sqrt(var + eps) rounded to the
dtype, the affine and the gradient's element-wise work in the input's dtype in the reference's order.

Launch layout:

- ``layer_norm_forward`` and ``layer_norm_backward``: one block of THREADS per row; each thread strides over
  the row's columns (j = thread, thread + THREADS, ...), and the row sums meet in ``block_sum``'s
  shared-memory tree. A thread only rereads the elements it wrote itself.
- ``layer_norm_column_sums`` (the weight's and bias's gradients): one thread per column, adding the rows in
  order into float64, as the numba kernel does (the same sums, deterministic: no atomics).
"""

from __future__ import annotations

import numpy as np

from . import i64, kernel, launch, launch_rows

VARIANTS = ({"T": np.float32}, {"T": np.float64})

SOURCE = r"""
extern "C" __global__ void layer_norm_forward(const T* rows, const T* weight, const T* bias, T* xhat, T* out,
                                              T* rstd, long long d, double eps, int has_weight, int has_bias,
                                              int affine) {
    __shared__ double scratch[THREADS];
    const T* src = rows + blockIdx.x * d;
    T* xh = xhat + blockIdx.x * d;
    double sum = 0.0;
    for (long long j = threadIdx.x; j < d; j += THREADS) sum += (double)src[j];
    double mean = block_sum(sum, scratch) / d;
    double squares = 0.0;
    for (long long j = threadIdx.x; j < d; j += THREADS) {
        T centred = (T)((double)src[j] - mean);
        xh[j] = centred;
        T square = centred * centred;  // rounded to the dtype, as the numba kernel's
        squares += (double)square;
    }
    T r = (T)(1.0 / sqrt(block_sum(squares, scratch) / d + eps));
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
    for (long long j = threadIdx.x; j < d; j += THREADS) {
        T h = xh[j] * r;
        xh[j] = h;
        if (affine) {
            if (has_weight) h = h * weight[j];
            if (has_bias) h = h + bias[j];
            out[blockIdx.x * d + j] = h;
        }
    }
}

extern "C" __global__ void layer_norm_backward(const T* g, const T* xhat, const T* rstd, const T* weight, T* dx,
                                               long long d, int has_weight) {
    __shared__ double scratch[THREADS];
    const T* gi = g + blockIdx.x * d;
    const T* xh = xhat + blockIdx.x * d;
    double sum_g = 0.0, sum_gx = 0.0;
    for (long long j = threadIdx.x; j < d; j += THREADS) {
        T gx = has_weight ? gi[j] * weight[j] : gi[j];
        T product = gx * xh[j];
        sum_g += (double)gx;
        sum_gx += (double)product;
    }
    T mean_g = (T)(block_sum(sum_g, scratch) / d);
    T mean_gx = (T)(block_sum(sum_gx, scratch) / d);
    T r = rstd[blockIdx.x];
    for (long long j = threadIdx.x; j < d; j += THREADS) {
        T gx = has_weight ? gi[j] * weight[j] : gi[j];
        T centred = xh[j] * mean_gx + mean_g;
        dx[blockIdx.x * d + j] = (gx - centred) * r;
    }
}

extern "C" __global__ void layer_norm_column_sums(const T* g, const T* xhat, double* weight_sum, double* bias_sum,
                                                  long long rows, long long d, int need_weight, int need_bias) {
    long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (j >= d) return;
    double ws = 0.0, bs = 0.0;
    for (long long i = 0; i < rows; ++i) {
        T gij = g[i * d + j];
        T product = gij * xhat[i * d + j];
        ws += (double)product;
        bs += (double)gij;
    }
    if (need_weight) weight_sum[j] = ws;
    if (need_bias) bias_sum[j] = bs;
}
"""


def normalize_rows(rows, eps, weight=None, bias=None, affine=True):
    """``ember.kernels.norm.normalize_rows`` on the GPU: (out or None, xhat, rstd (R, 1)) for CuPy rows (R, D)."""
    import cupy

    r, d = rows.shape
    xhat = cupy.empty_like(rows)
    rstd = cupy.empty((r, 1), dtype=rows.dtype)
    out = cupy.empty_like(rows) if affine else None
    fn = kernel(SOURCE, "layer_norm_forward", T=rows.dtype)
    launch_rows(fn, r, (rows, rows if weight is None else weight, rows if bias is None else bias, xhat,
                        xhat if out is None else out, rstd, i64(d), np.float64(eps), np.int32(weight is not None),
                        np.int32(bias is not None), np.int32(affine)))
    return out, xhat, rstd


def normalized_rows_grad(g, xhat, rstd, weight=None, need_dx=True, need_weight=False, need_bias=False):
    """``ember.kernels.norm.normalized_rows_grad`` on the GPU: (dx, dweight (D,), dbias (D,)), None where not asked."""
    import cupy

    r, d = g.shape
    dx = cupy.empty_like(g) if need_dx else None
    if dx is not None:
        fn = kernel(SOURCE, "layer_norm_backward", T=g.dtype)
        launch_rows(fn, r, (g, xhat, rstd, g if weight is None else weight, dx, i64(d), np.int32(weight is not None)))
    dweight = dbias = None
    if need_weight or need_bias:
        weight_sum, bias_sum = cupy.zeros(d), cupy.zeros(d)
        fn = kernel(SOURCE, "layer_norm_column_sums", T=g.dtype)
        launch(fn, d, (g, xhat, weight_sum, bias_sum, i64(r), i64(d), np.int32(need_weight), np.int32(need_bias)))
        dweight = weight_sum.astype(g.dtype) if need_weight else None
        dbias = bias_sum.astype(g.dtype) if need_bias else None
    return dx, dweight, dbias
