"""Softmax cross-entropy over class-index targets on the GPU, forward and backward: ``ember.ops.loss``'s CUDA path.

The same case as the numba kernels of ``ember.kernels.loss`` (class indices, no class weights, optional
label smoothing eps) and the same arithmetic: per row of the (N, C) logits z, the max m, the shifted
logits z - m (their mean for smoothing), p = exp(z - m) / s with s the row's sum of exponentials in
float64, and the loss log s - (z[t] - m), or with smoothing (1 - eps)·loss + eps·(log s - mean(z - m));
the gradient is p·c - (1 - eps)·c at the target class - (eps/C)·c, c the row's upstream factor. The
reference is ``CrossEntropy`` in ``ember/ops/loss.py`` (to round-off: there the sums are in the dtype).

Launch layout: the forward runs one block of THREADS per row (threads stride over the classes; the max
and the float64 sums meet in shared-memory trees); the backward one thread per element of p.
"""

from __future__ import annotations

import numpy as np

from . import i64, kernel, launch, launch_rows

VARIANTS = ({"T": np.float32}, {"T": np.float64})

SOURCE = r"""
// NumPy's max: a NaN anywhere wins
__device__ __forceinline__ T nan_max(T a, T b) { return (a != a || a >= b) ? a : b; }

__device__ T block_max(T value, T* scratch) {
    scratch[threadIdx.x] = value;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) scratch[threadIdx.x] = nan_max(scratch[threadIdx.x], scratch[threadIdx.x + half]);
        __syncthreads();
    }
    T best = scratch[0];
    __syncthreads();
    return best;
}

extern "C" __global__ void softmax_cross_entropy(const T* z, const long long* target, T* p, T* loss, long long c,
                                                 T keep, T eps, int smoothing) {
    __shared__ double scratch[THREADS];
    __shared__ T maxima[THREADS];
    const T* row = z + blockIdx.x * c;
    T* prob = p + blockIdx.x * c;
    T m = row[0];
    for (long long j = threadIdx.x; j < c; j += THREADS) m = nan_max(m, row[j]);
    m = block_max(m, maxima);
    double shifted_sum = 0.0, exp_sum = 0.0;
    for (long long j = threadIdx.x; j < c; j += THREADS) {
        T shifted = row[j] - m;
        T e = exp(shifted);
        prob[j] = e;
        shifted_sum += (double)shifted;
        exp_sum += (double)e;
    }
    shifted_sum = block_sum(shifted_sum, scratch);
    exp_sum = block_sum(exp_sum, scratch);
    T s = (T)exp_sum;
    for (long long j = threadIdx.x; j < c; j += THREADS) prob[j] = prob[j] / s;
    if (threadIdx.x == 0) {
        T log_s = (T)log(exp_sum);
        T value = log_s - (row[target[blockIdx.x]] - m);
        if (smoothing) value = keep * value + eps * (log_s - (T)(shifted_sum / c));
        loss[blockIdx.x] = value;
    }
}

extern "C" __global__ void cross_entropy_grad(const T* p, const long long* target, const T* coef, T* grad,
                                              long long count, long long c, T keep, T smooth, int smoothing) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;
    long long i = e / c;
    T factor = coef[i];
    T value = p[e] * factor;
    if (e % c == target[i]) value -= keep * factor;
    if (smoothing) value -= smooth * factor;
    grad[e] = value;
}
"""


def _targets(cupy, t):
    return cupy.ascontiguousarray(t.reshape(-1), dtype=cupy.int64)


def softmax_cross_entropy(z, target, eps: float):
    """(p, loss): the softmax (N, C) and each row's loss for C-contiguous CuPy logits z (N, C), not empty, and
    class indices ``target`` (N,) in [0, C) (the caller checks), with label smoothing ``eps``."""
    import cupy

    n, c = z.shape
    dtype = z.dtype.type
    p = cupy.empty_like(z)
    loss = cupy.empty(n, dtype=z.dtype)
    fn = kernel(SOURCE, "softmax_cross_entropy", T=z.dtype)
    launch_rows(fn, n, (z, _targets(cupy, target), p, loss, i64(c), dtype(1.0 - eps), dtype(eps), np.int32(bool(eps))))
    return p, loss


def cross_entropy_grad(p, target, coef, eps: float, classes: int):
    """The logits' gradient (N, C): p·c - (1 - eps)·c at each row's target - (eps/C)·c, c = ``coef`` (N,)."""
    import cupy

    dtype = p.dtype.type
    grad = cupy.empty_like(p)
    fn = kernel(SOURCE, "cross_entropy_grad", T=p.dtype)
    launch(fn, p.size, (p, _targets(cupy, target), cupy.ascontiguousarray(coef), grad, i64(p.size), i64(p.shape[1]),
                        dtype(1.0 - eps), dtype(eps / classes), np.int32(bool(eps))))
    return grad
