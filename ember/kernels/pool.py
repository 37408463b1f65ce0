"""2-D max pooling, forward (maxima and argmax) and backward, as one compiled loop each: ``ember.ops.pool``'s
fast path.

The NumPy reference is ``MaxPoolPlan`` (``ember/ops/pool.py``): a running maximum over one strided view
per kernel offset (``_first_max``), or for non-overlapping windows two such stages, columns then rows;
and a backward that routes each gradient to its window's argmax with one masked pass per offset. Here
each output's window is read once, the batch-last layout (C, H, W, N) making the innermost loop a
contiguous run over the batch that vectorises.

What the kernels compute, element for element equal to the reference:

- the maximum: NumPy's ``maximum`` folded over the window in row-major order (NaN propagates; among
  equal values the later one is kept, which only shows in the sign of a zero maximum);
- the argmax ``t`` = i·kw + j: the first maximum in row-major order, PyTorch's rule (``v > best``
  strictly). Windows holding a NaN are the one exception: there the reference's index is wherever
  its running maximum stood when the NaN came (not necessarily the NaN), and its two paths can
  disagree (the non-overlapping one compares row maxima); the kernel follows PyTorch, whose index
  is the window's last NaN (``v > best or v != v``), so the gradient reaches an element that made
  the maximum NaN;
- the gradient: g·[t = offset] for every window position, the reference's product with the 0/1
  mask (so non-argmax positions get g·0: a signed zero, or NaN where g is inf or NaN), added offset
  by offset in row-major order where windows overlap, as the reference adds its passes.
"""

from __future__ import annotations

import numpy as np

from . import jit


# The loops index the 4-d arrays directly, element by element: taking a 1-d view of each window row
# instead (``src[c, y, x]``) costs a reference-counted array object per view, and ran 3x slower.
@jit
def _max_pool_forward(src, out, arg, kh, kw, sh, sw, dh, dw):
    """out[c, y, x] = max over (i, j) of src[c, y·sh + i·dh, x·sw + j·dw], arg[c, y, x] = its offset i·kw + j.

    src (C, Hp, Wp, N) is the (padded) batch-last input; out and arg (C, ho, wo, N).
    """
    channels, ho, wo, n = out.shape
    for c in range(channels):
        for y in range(ho):
            for x in range(wo):
                for q in range(n):
                    out[c, y, x, q] = src[c, y * sh, x * sw, q]
                    arg[c, y, x, q] = 0
                for t in range(1, kh * kw):
                    i = t // kw
                    row, col = y * sh + i * dh, x * sw + (t - i * kw) * dw
                    for q in range(n):
                        best, v = out[c, y, x, q], src[c, row, col, q]
                        if v > best or v != v:
                            arg[c, y, x, q] = t
                        if not (best > v or best != best):  # NumPy's maximum(best, v)
                            out[c, y, x, q] = v


@jit
def _max_pool_backward_tiled(g, arg, gx, kh, kw, zero, one):
    """gx[c, y·kh + i, x·kw + j] = g[c, y, x]·[arg = i·kw + j]: non-overlapping kh×kw windows (stride = kernel, no
    padding or dilation) cover each input position at most once; gx's rows and columns past the last window
    are left as they are (the caller's zeros)."""
    channels, ho, wo, n = g.shape
    for c in range(channels):
        for y in range(ho):
            for i in range(kh):
                for x in range(wo):
                    for j in range(kw):
                        t = i * kw + j
                        for q in range(n):
                            gx[c, y * kh + i, x * kw + j, q] = g[c, y, x, q] * (one if arg[c, y, x, q] == t else zero)


@jit
def _max_pool_backward_add(g, arg, gx, kh, kw, sh, sw, dh, dw, zero, one):
    """gx[c, y·sh + i·dh, x·sw + j·dw] += g[c, y, x]·[arg = i·kw + j], offset by offset in row-major order at
    each position of the (padded) batch-last gx (i outside the output rows and j outside the output
    columns: a position meets each i and each j in one window at most, so this is that order)."""
    channels, ho, wo, n = g.shape
    for c in range(channels):
        for i in range(kh):
            for y in range(ho):
                for j in range(kw):
                    t = i * kw + j
                    for x in range(wo):
                        row, col = y * sh + i * dh, x * sw + j * dw
                        for q in range(n):
                            gx[c, row, col, q] += g[c, y, x, q] * (one if arg[c, y, x, q] == t else zero)


def argmax_dtype(window_size: int):
    """The argmax array's dtype: int8 while the window's offsets fit, as the reference's (``_first_max``)."""
    return np.int8 if window_size <= 127 else np.int32


def max_pool_forward(src, kernel, stride, dilation, out_hw):
    """Maxima (C, ho, wo, N) of the (padded) batch-last C-contiguous src and each one's window offset i·kw + j."""
    c, _, _, n = src.shape
    out = np.empty((c,) + tuple(out_hw) + (n,), dtype=src.dtype)
    arg = np.empty(out.shape, dtype=argmax_dtype(kernel[0] * kernel[1]))
    _max_pool_forward(src, out, arg, kernel[0], kernel[1], stride[0], stride[1], dilation[0], dilation[1])
    return out, arg


def max_pool_backward_tiled(g, arg, gx, kernel) -> None:
    """Write g (C, ho, wo, N) to the argmax positions of non-overlapping windows, and zeros around them, into
    batch-last gx (C, H, W, N)."""
    dtype = g.dtype.type
    _max_pool_backward_tiled(g, arg, gx, kernel[0], kernel[1], dtype(0), dtype(1))


def max_pool_backward_add(g, arg, gx, kernel, stride, dilation) -> None:
    """Add g (C, ho, wo, N) at the argmax positions into the padded batch-last gx (C, Hp, Wp, N), any windows."""
    dtype = g.dtype.type
    _max_pool_backward_add(g, arg, gx, kernel[0], kernel[1], stride[0], stride[1], dilation[0], dilation[1],
                           dtype(0), dtype(1))
