"""im2col and col2im on the GPU, one thread per output element each: ``ember.ops.conv``'s CUDA path.

The references are ``ConvGeometry.chunks`` (a strided copy of every kernel offset into the column
buffer) and ``ConvGeometry.col2im`` (one strided slice add per kernel offset, in row-major (i, j)
order); the numba kernels of ``ember.kernels.conv`` compute the same, and these take the same
arguments. Arrays are batch-last: the padded image (C, Hp, Wp, N), columns (G, k [+1], m, wo·N) with
rows ordered (i, j, c) within a group (G = 1 without groups).

- ``im2col``: one thread per column element, (g, row, y, x, q) flattened, reading its image element
  (a copy: bit-equal) or writing the bias row's 1.
- ``col2im``: one thread per element of the padded input rows that the chunk's windows reach,
  (c, yy, xx, q) flattened. Each thread adds its contributions kernel offset by kernel offset in
  row-major (i, j) order onto the element's current value, as the reference's slice adds do (a
  position meets each i in one output row at most, and each j in one output column), so the sums are
  the reference's, bit for bit, and deterministic: no atomics. Adds go through ``exact_add`` (float32
  subnormals kept despite CuPy's -ftz).
"""

from __future__ import annotations

import numpy as np

from . import i64, kernel, launch

VARIANTS = ({"T": np.float32}, {"T": np.float64})  # the element types SOURCE is compiled for

SOURCE = r"""
extern "C" __global__ void im2col(const T* image, T* cols, long long count, long long y0, long long cg,
                                  long long hp, long long wp, long long n, long long kh, long long kw,
                                  long long sh, long long sw, long long dh, long long dw,
                                  long long rows, long long m, long long wo) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;
    long long q = e % n, x = e / n % wo, y = e / (n * wo) % m;
    long long row = e / (n * wo * m) % rows, g = e / (n * wo * m * rows);
    if (row == kh * kw * cg) {  // the bias's row of ones
        cols[e] = (T)1;
        return;
    }
    long long c = row % cg, j = row / cg % kw, i = row / (cg * kw);
    long long yy = (y0 + y) * sh + i * dh, xx = x * sw + j * dw;
    cols[e] = image[(((g * cg + c) * hp + yy) * wp + xx) * n + q];
}

extern "C" __global__ void col2im(const T* blocks, T* target, long long count, long long y0, long long row0,
                                  long long cg, long long hp, long long wp, long long n, long long kh,
                                  long long kw, long long sh, long long sw, long long dh, long long dw,
                                  long long m, long long wo, long long span) {
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= count) return;
    long long q = e % n, xx = e / n % wp, yy = row0 + e / (n * wp) % span, channel = e / (n * wp * span);
    long long g = channel / cg, c = channel % cg;
    long long at = (channel * hp + yy) * wp * n + xx * n + q;
    T acc = target[at];
    for (long long i = 0; i < kh; ++i) {
        long long t = yy - y0 * sh - i * dh;  // (output row y)·sh if this offset reaches yy
        if (t < 0 || t % sh != 0 || t / sh >= m) continue;
        long long y = t / sh;
        for (long long j = 0; j < kw; ++j) {
            long long u = xx - j * dw;
            if (u < 0 || u % sw != 0 || u / sw >= wo) continue;
            long long x = u / sw;
            acc = exact_add(acc, blocks[((((g * kh + i) * kw + j) * cg + c) * m + y) * wo * n + x * n + q]);
        }
    }
    target[at] = acc;
}
"""


def im2col(xpad, cols, y0: int, kernel_size, stride, dilation) -> None:
    """``ember.kernels.conv.im2col`` on the GPU: fill cols (G, k [+1], m, wo·N) from xpad (C, Hp, Wp, N)."""
    c, hp, wp, n = xpad.shape
    groups, rows, m, run = cols.shape
    if cols.size == 0:
        return
    fn = kernel(SOURCE, "im2col", T=xpad.dtype)
    launch(fn, cols.size, (xpad, cols, i64(cols.size), i64(y0), i64(c // groups), i64(hp), i64(wp), i64(n),
                           i64(kernel_size[0]), i64(kernel_size[1]), i64(stride[0]), i64(stride[1]),
                           i64(dilation[0]), i64(dilation[1]), i64(rows), i64(m), i64(run // n)))


def col2im(gcols, gxpad, y0: int, m: int, kernel_size, stride, dilation, groups: int) -> None:
    """``ember.kernels.conv.col2im`` on the GPU: add gcols ([G,] k, m·wo·N) onto gxpad (C, Hp, Wp, N) in place."""
    c, hp, wp, n = gxpad.shape
    if gcols.size == 0:
        return
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    wo = gcols.shape[-1] // (m * n)
    row0 = y0 * sh  # the padded input rows the chunk's windows reach
    span = (m - 1) * sh + (kh - 1) * dh + 1
    count = c * span * wp * n
    fn = kernel(SOURCE, "col2im", T=gxpad.dtype)
    launch(fn, count, (gcols, gxpad, i64(count), i64(y0), i64(row0), i64(c // groups), i64(hp), i64(wp), i64(n),
                       i64(kh), i64(kw), i64(sh), i64(sw), i64(dh), i64(dw), i64(m), i64(wo), i64(span)))
