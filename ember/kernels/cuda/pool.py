"""2-D max pooling on the GPU, forward (maxima and argmax) and backward: ``ember.ops.pool``'s CUDA path.

The kernels compute exactly what the numba kernels of ``ember.kernels.pool`` compute (that module's
docstring lists the rules), with the same arguments, so that the argmax is identical to the CPU's:

- the maximum is NumPy's ``maximum`` folded over the window in row-major order (NaN propagates);
- the argmax t = i·kw + j is the first maximum in row-major order (``v > best`` strictly, PyTorch's
  tie rule: all-equal windows, ReLU zeros), or the window's last NaN (``v > best or v != v``);
- the gradient is g·[t = offset] at every window position, added offset by offset in row-major order
  where windows overlap.

Launch layout: one thread per element, flattened in the arrays' batch-last order (C, ·, ·, N):

- ``max_pool_forward``: per output (c, y, x, q), reading its kh·kw window of the (padded) input;
- ``max_pool_backward_tiled`` (stride = kernel, no padding or dilation): per input position covered by
  a window, (c, y·kh + i, x·kw + j, q), writing g or a signed zero once;
- ``max_pool_backward_add``: per element of the padded input gradient, summing the windows that contain
  it in (i, j) order onto its current value (deterministic: no atomics).

Comparisons, products and adds go through the prelude's ``greater``, ``exact_mul`` and ``exact_add``, so
float32 subnormals compare and add as on the CPU despite CuPy's -ftz. The argmax array is int8 while the
window's offsets fit (as the reference's), else int32; the kernels are compiled for both.
"""

from __future__ import annotations

import numpy as np

from ..pool import argmax_dtype
from . import i64, kernel, launch

# the element types SOURCE is compiled for: values T, argmax offsets A
VARIANTS = tuple({"T": t, "A": a} for t in (np.float32, np.float64) for a in (np.int8, np.int32))

SOURCE = r"""
extern "C" __global__ void max_pool_forward(const T* src, T* out, A* arg, long long count, long long hp,
                                            long long wp, long long ho, long long wo, long long n,
                                            long long kh, long long kw, long long sh, long long sw,
                                            long long dh, long long dw) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;
    long long q = e % n, x = e / n % wo, y = e / (n * wo) % ho, c = e / (n * wo * ho);
    const T* plane = src + c * hp * wp * n + q;
    T best = plane[(y * sh * wp + x * sw) * n];
    long long best_at = 0;
    for (long long t = 1; t < kh * kw; ++t) {
        long long i = t / kw, j = t % kw;
        T v = plane[((y * sh + i * dh) * wp + x * sw + j * dw) * n];
        bool take_index = greater(v, best) || v != v;
        if (!(greater(best, v) || best != best)) best = v;  // NumPy's maximum(best, v)
        if (take_index) best_at = t;
    }
    out[e] = best;
    arg[e] = (A)best_at;
}

extern "C" __global__ void max_pool_backward_tiled(const T* g, const A* arg, T* gx, long long count,
                                                   long long h, long long w, long long ho, long long wo,
                                                   long long n, long long kh, long long kw) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;  // count = C·(ho·kh)·(wo·kw)·N: the positions under a window
    long long q = e % n, col = e / n % (wo * kw), row = e / (n * wo * kw) % (ho * kh);
    long long c = e / (n * wo * kw * ho * kh);
    long long y = row / kh, x = col / kw, t = (row % kh) * kw + col % kw;
    long long out_at = ((c * ho + y) * wo + x) * n + q;
    gx[((c * h + row) * w + col) * n + q] = exact_mul(g[out_at], arg[out_at] == t ? (T)1 : (T)0);
}

extern "C" __global__ void max_pool_backward_add(const T* g, const A* arg, T* gx, long long count,
                                                 long long hp, long long wp, long long ho, long long wo,
                                                 long long n, long long kh, long long kw, long long sh,
                                                 long long sw, long long dh, long long dw) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;
    long long q = e % n, col = e / n % wp, row = e / (n * wp) % hp, c = e / (n * wp * hp);
    T acc = gx[e];
    for (long long i = 0; i < kh; ++i) {
        long long a = row - i * dh;  // y·sh if window row y holds this position at kernel row i
        if (a < 0 || a % sh != 0 || a / sh >= ho) continue;
        long long y = a / sh;
        for (long long j = 0; j < kw; ++j) {
            long long b = col - j * dw;
            if (b < 0 || b % sw != 0 || b / sw >= wo) continue;
            long long out_at = ((c * ho + y) * wo + b / sw) * n + q;
            acc = exact_add(acc, exact_mul(g[out_at], arg[out_at] == i * kw + j ? (T)1 : (T)0));
        }
    }
    gx[e] = acc;
}
"""


def max_pool_forward(src, kernel_size, stride, dilation, out_hw):
    """Maxima (C, ho, wo, N) of the (padded) batch-last C-contiguous CuPy src and each one's window offset."""
    import cupy

    c, hp, wp, n = src.shape
    ho, wo = out_hw
    out = cupy.empty((c, ho, wo, n), dtype=src.dtype)
    arg = cupy.empty(out.shape, dtype=argmax_dtype(kernel_size[0] * kernel_size[1]))
    fn = kernel(SOURCE, "max_pool_forward", T=src.dtype, A=arg.dtype)
    launch(fn, out.size, (src, out, arg, i64(out.size), i64(hp), i64(wp), i64(ho), i64(wo), i64(n),
                          i64(kernel_size[0]), i64(kernel_size[1]), i64(stride[0]), i64(stride[1]),
                          i64(dilation[0]), i64(dilation[1])))
    return out, arg


def max_pool_backward_tiled(g, arg, gx, kernel_size) -> None:
    """Write g (C, ho, wo, N) to the argmax positions of non-overlapping windows, and zeros around them, into
    batch-last gx (C, H, W, N); positions past the last window are left as they are."""
    c, ho, wo, n = g.shape
    _, h, w, _ = gx.shape
    kh, kw = kernel_size
    count = c * ho * kh * wo * kw * n
    fn = kernel(SOURCE, "max_pool_backward_tiled", T=g.dtype, A=arg.dtype)
    launch(fn, count, (g, arg, gx, i64(count), i64(h), i64(w), i64(ho), i64(wo), i64(n), i64(kh), i64(kw)))


def max_pool_backward_add(g, arg, gx, kernel_size, stride, dilation) -> None:
    """Add g (C, ho, wo, N) at the argmax positions into the padded batch-last gx (C, Hp, Wp, N), any windows."""
    c, ho, wo, n = g.shape
    _, hp, wp, _ = gx.shape
    fn = kernel(SOURCE, "max_pool_backward_add", T=g.dtype, A=arg.dtype)
    launch(fn, gx.size, (g, arg, gx, i64(gx.size), i64(hp), i64(wp), i64(ho), i64(wo), i64(n),
                         i64(kernel_size[0]), i64(kernel_size[1]), i64(stride[0]), i64(stride[1]),
                         i64(dilation[0]), i64(dilation[1])))
