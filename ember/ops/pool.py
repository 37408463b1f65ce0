"""Max and average pooling over 2-D windows, and adaptive max pooling.

Like the convolutions (``ember.ops.conv``), the window ops work on the batch-last (C, H, W, N)
view of their NCHW input, so each kernel offset is one strided view and each step one
whole-array operation over the batch; they loop over kernel offsets only. Windows that reach
past the input (padding, ``ceil_mode``) read a padded copy: -inf for max, 0 for average.
Maxima keep PyTorch's tie rule: the first maximum of a window in row-major order gets the gradient.
1-D pooling is 2-D pooling with a 1-row kernel. With numba, max pooling's forward and backward run
as one compiled loop each (``ember.kernels.pool``).
"""

from __future__ import annotations

import functools

import numpy as np

from .. import kernels
from ..autograd import Function
from ..kernels import cuda as cuda_kernels
from ..kernels import pool as pool_kernels
from ..kernels.cuda import pool as cuda_pool_kernels
from .conv import batch_last, padded_batch_last, window


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output length; with ``ceil_mode`` a last, partial window is kept only if it
    starts inside the input or its left padding."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class PoolGeometry:
    """Output size of a 2-D pooling, and the padding (top, bottom, left, right) its windows need."""

    def __init__(self, x_shape, kernel, stride, padding, dilation, ceil_mode):
        self.n, self.c, self.h, self.w = x_shape
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.ho, self.wo = (pool_output_size(x_shape[2 + a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
                            for a in (0, 1))
        reach = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip((self.ho, self.wo), stride, dilation, kernel)]
        (ph, pw) = padding
        self.pads = (ph, max(0, reach[0] - ph - self.h), pw, max(0, reach[1] - pw - self.w))

    def source(self, xp, x, fill):
        """The batch-last input, padded with ``fill`` where the windows need it."""
        return padded_batch_last(xp, x, self.pads, fill) if any(self.pads) else batch_last(x)

    def views(self, src):
        """One strided (C, ho, wo, N) view of ``src`` per kernel offset, in row-major order."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return [window(src, i * dh, j * dw, self.ho, self.wo, self.stride) for i in range(kh) for j in range(kw)]

    def padded_zeros(self, xp, dtype):
        top, bottom, left, right = self.pads
        return xp.zeros((self.c, top + self.h + bottom, left + self.w + right, self.n), dtype=dtype)

    def crop(self, a):
        """The input part of a padded batch-last array, as NCHW."""
        top, _, left, _ = self.pads
        return a[:, top : top + self.h, left : left + self.w].transpose(3, 0, 1, 2)


def _lowest(xp, dtype):
    """The padding value that never wins a max: -inf for floats, the minimum for integers."""
    return -xp.inf if dtype.kind == "f" else xp.iinfo(dtype).min


def _compiled(a) -> bool:
    """Whether max pooling's kernels take the NCHW array ``a`` (they copy it batch-last first, so any layout)."""
    return kernels.accepts(a)


def _first_max(xp, views):
    """Running max over strided views, and the index of the first view that holds it (int8 while it fits)."""
    if len(views) == 1:
        return views[0].copy(), xp.zeros(views[0].shape, dtype=xp.int8)
    best = xp.maximum(views[0], views[1])
    later = views[1] > views[0]
    idx = later.view(xp.int8) if len(views) <= 127 else later.astype(xp.int32)
    for t in range(2, len(views)):
        better = views[t] > best
        xp.maximum(best, views[t], out=best)
        idx[better] = t
    return best, idx


class MaxPoolPlan:
    """Forward, backward and argmax positions of one 2-D max pooling.

    Non-overlapping windows (stride == kernel, no padding or dilation, inside the input) take a fast
    path in two stages, columns then rows, each a few whole-array ops on strided views; ties keep
    the earlier column, then the earlier row: PyTorch's row-major first maximum. Other
    configurations track the running max over the kh·kw window offsets.

    The state that backward reads is either the fast path's (col_idx, row_idx) pair or, from the
    running max and from the compiled kernels, each maximum's window offset i·kw + j (C, ho, wo, N).
    The kernels take float NumPy inputs that are C-contiguous either batch-last (what the
    convolutions hand out) or as NCHW, which they first copy to batch-last (measured: still faster).
    """

    def __init__(self, x_shape, kernel, stride, padding, dilation, ceil_mode):
        self.geo = geo = PoolGeometry(x_shape, kernel, stride, padding, dilation, ceil_mode)
        (kh, kw) = kernel
        self.tiled = (tuple(stride) == tuple(kernel) and not any(geo.pads) and tuple(dilation) == (1, 1)
                      and kh * kw > 1)

    def forward(self, xp, x):
        """(C, ho, wo, N) maxima and the state backward and ``flat_indices`` read."""
        geo = self.geo
        if _compiled(x):
            src = xp.ascontiguousarray(geo.source(xp, x, _lowest(xp, x.dtype)))
            return pool_kernels.max_pool_forward(src, geo.kernel, geo.stride, geo.dilation, (geo.ho, geo.wo))
        elif cuda_kernels.accepts(x):
            src = xp.ascontiguousarray(geo.source(xp, x, _lowest(xp, x.dtype)))
            return cuda_pool_kernels.max_pool_forward(src, geo.kernel, geo.stride, geo.dilation, (geo.ho, geo.wo))
        if self.tiled:
            (kh, kw), ho, wo = geo.kernel, geo.ho, geo.wo
            crop = batch_last(x)[:, : ho * kh, : wo * kw]
            cols_max, col_idx = _first_max(xp, [crop[:, :, j::kw] for j in range(kw)])  # (C, ho·kh, wo, N)
            rows = cols_max.reshape(geo.c, ho, kh, wo, geo.n)
            out, row_idx = _first_max(xp, [rows[:, :, i] for i in range(kh)])
            return out, (col_idx, row_idx)
        return _first_max(xp, geo.views(geo.source(xp, x, _lowest(xp, x.dtype))))

    def backward(self, xp, g, state):
        geo = self.geo
        tiled_state = isinstance(state, tuple)
        if not tiled_state and _compiled(g):
            return self._compiled_backward(xp, g, state)
        elif not tiled_state and cuda_kernels.accepts(g):
            return self._compiled_backward(xp, g, state, cuda_pool_kernels)
        gl = batch_last(g)  # (C, ho, wo, N)
        if tiled_state:
            col_idx, row_idx = state
            (kh, kw), ho, wo = geo.kernel, geo.ho, geo.wo
            exact = geo.h == ho * kh and geo.w == wo * kw
            gx = (xp.empty if exact else xp.zeros)((geo.c, geo.h, geo.w, geo.n), dtype=g.dtype)
            grows = xp.empty((geo.c, ho, kh, wo, geo.n), dtype=g.dtype)
            for i in range(kh):
                xp.multiply(gl, row_idx == i, out=grows[:, :, i])
            grows = grows.reshape(geo.c, ho * kh, wo, geo.n)
            crop = gx[:, : ho * kh, : wo * kw]
            for j in range(kw):
                xp.multiply(grows, col_idx == j, out=crop[:, :, j::kw])
            return gx.transpose(3, 0, 1, 2)
        gx = geo.padded_zeros(xp, g.dtype)
        for t, view in enumerate(geo.views(gx)):
            view[...] += gl * (state == t)
        return geo.crop(gx)

    def _compiled_backward(self, xp, g, offsets, impl=pool_kernels):
        """``backward`` through ``ember.kernels.pool`` (or ``impl``: its CUDA twin) from the window offsets of
        the maxima."""
        geo = self.geo
        gl = xp.ascontiguousarray(batch_last(g))
        if self.tiled:  # each input position in one window at most: written once, no zeros needed under windows
            (kh, kw), ho, wo = geo.kernel, geo.ho, geo.wo
            exact = geo.h == ho * kh and geo.w == wo * kw
            gx = (xp.empty if exact else xp.zeros)((geo.c, geo.h, geo.w, geo.n), dtype=g.dtype)
            impl.max_pool_backward_tiled(gl, offsets, gx, geo.kernel)
            return gx.transpose(3, 0, 1, 2)
        gx = geo.padded_zeros(xp, g.dtype)
        impl.max_pool_backward_add(gl, offsets, gx, geo.kernel, geo.stride, geo.dilation)
        return geo.crop(gx)

    def flat_indices(self, xp, state):
        """PyTorch's ``return_indices``: each maximum's position in its (H·W) input plane, (N, C, ho, wo) int64."""
        geo = self.geo
        (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
        ys = xp.arange(geo.ho).reshape(1, -1, 1, 1)
        xs = xp.arange(geo.wo).reshape(1, 1, -1, 1)
        if isinstance(state, tuple):
            col_idx, row_idx = state
            row = ys * kh + row_idx
            col = xs * kw + xp.take_along_axis(col_idx, row, axis=1)
        else:
            t = state.astype(xp.int64)
            row = ys * sh - geo.padding[0] + (t // kw) * dh
            col = xs * sw - geo.padding[1] + (t % kw) * dw
        return xp.ascontiguousarray((row * geo.w + col).transpose(3, 0, 1, 2))


@functools.lru_cache(maxsize=256)
def max_pool_plan(x_shape, kernel, stride, padding, dilation, ceil_mode) -> MaxPoolPlan:
    """A shared ``MaxPoolPlan`` per distinct call (all arguments tuples): shapes repeat every step."""
    return MaxPoolPlan(x_shape, kernel, stride, padding, dilation, ceil_mode)


@functools.lru_cache(maxsize=256)
def pool_geometry(x_shape, kernel, stride, padding, dilation, ceil_mode) -> PoolGeometry:
    return PoolGeometry(x_shape, kernel, stride, padding, dilation, ceil_mode)


class MaxPool2d(Function):
    """Max over kh×kw windows of x (N, C, H, W); ``kernel``, ``stride``, ``padding``, ``dilation`` are (h, w) pairs."""

    saves = ()

    def forward(ctx, x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
        ctx.plan = max_pool_plan(x.shape, kernel, stride, padding, dilation, ceil_mode)
        out, ctx.state = ctx.plan.forward(ctx.xp, x)
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        return ctx.plan.backward(ctx.xp, g, ctx.state)


def max_pool2d_indices(xp, x, kernel, stride, padding, dilation, ceil_mode):
    """The int64 (N, C, ho, wo) argmax positions that ``MaxPool2d`` on array ``x`` routes its gradient to."""
    plan = max_pool_plan(x.shape, kernel, stride, padding, dilation, ceil_mode)
    return plan.flat_indices(xp, plan.forward(xp, x)[1])


def _avg_divisor(geo: PoolGeometry, count_include_pad: bool, divisor_override, dtype):
    """Each window's divisor as PyTorch counts it: a number when all are equal, else an (ho, wo, 1) array.

    A window's size is clipped to the padded input (ceil_mode windows can reach past it);
    without ``count_include_pad`` it is clipped to the input itself. Sizes are separable, so the
    divisor is an outer product of per-axis counts.
    """
    if divisor_override:
        return divisor_override
    counts = []
    for size, out, k, s, p in zip((geo.h, geo.w), (geo.ho, geo.wo), geo.kernel, geo.stride, geo.padding):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        counts.append(np.minimum(end, size) - np.maximum(start, 0) if not count_include_pad else end - start)
    div = counts[0][:, None] * counts[1][None, :]  # (ho, wo), never empty: outputs have at least one position
    if (div == div.flat[0]).all():
        return int(div.flat[0])
    return div.astype(dtype)[:, :, None]


class AvgPool2d(Function):
    """Mean over kh×kw windows of x (N, C, H, W), with PyTorch's padding, ceil_mode and divisor rules."""

    saves = ()

    def forward(ctx, x, kernel, stride, padding, ceil_mode=False, count_include_pad=True, divisor_override=None):
        xp = ctx.xp
        geo = pool_geometry(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
        views = geo.views(geo.source(xp, x, 0))
        out = views[0].copy()
        for view in views[1:]:
            out += view
        divisor = _avg_divisor(geo, count_include_pad, divisor_override, x.dtype)
        if not isinstance(divisor, int):
            divisor = xp.asarray(divisor)
        out /= divisor
        ctx.geo, ctx.divisor = geo, divisor
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        xp, geo = ctx.xp, ctx.geo
        share = batch_last(g) / ctx.divisor
        gx = geo.padded_zeros(xp, g.dtype)
        for view in geo.views(gx):
            view[...] += share
        return geo.crop(gx)


def adaptive_windows(size: int, out: int):
    """PyTorch's adaptive-pooling windows along one axis: [floor(i·size/out), ceil((i+1)·size/out))."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _window_positions(size: int, out: int) -> np.ndarray:
    """(out, longest window) input positions of each adaptive window, its last position repeated to fill."""
    start, end = adaptive_windows(size, out)
    longest = int((end - start).max()) if out else 0
    return np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)


def _adaptive_max(xp, x, output_size):
    """Maxima (N, C, oh, ow) over adaptive windows and their flat (H·W) positions, in two stages.

    Each stage gathers every window's positions along one axis, (…, out, longest window), and
    takes the first argmax (repeated fill positions never win: they equal an earlier one).
    Columns first, then rows: the first maximum in row-major order, as PyTorch picks it.
    """
    n, c, h, w = x.shape
    oh, ow = output_size
    if oh == 0 or ow == 0:
        return xp.empty((n, c, oh, ow), dtype=x.dtype), xp.empty((n, c, oh, ow), dtype=xp.int64)
    pos_h, pos_w = xp.asarray(_window_positions(h, oh)), xp.asarray(_window_positions(w, ow))
    by_col = x[..., pos_w]  # (N, C, H, ow, kw)
    pick_w = by_col.argmax(axis=-1)
    col = pos_w[xp.arange(ow), pick_w]  # (N, C, H, ow) input column of each row's maximum
    row_max = xp.take_along_axis(by_col, pick_w[..., None], axis=-1)[..., 0]
    by_row = row_max[:, :, pos_h]  # (N, C, oh, kh, ow)
    pick_h = by_row.argmax(axis=3)
    row = pos_h[xp.arange(oh)[:, None], pick_h]  # (N, C, oh, ow)
    out = xp.take_along_axis(by_row, pick_h[:, :, :, None], axis=3)[:, :, :, 0]
    return out, row * w + xp.take_along_axis(col, row, axis=2)


class AdaptiveMaxPool2d(Function):
    """Max over PyTorch's adaptive windows of x (N, C, H, W) -> (N, C, oh, ow)."""

    saves = ()

    def forward(ctx, x, output_size):
        out, ctx.flat = _adaptive_max(ctx.xp, x, output_size)
        ctx.x_shape = x.shape
        return out

    def backward(ctx, g):
        xp = ctx.xp
        n, c, h, w = ctx.x_shape
        plane = xp.arange(n * c, dtype=xp.int64).reshape(n, c, 1, 1) * (h * w)
        # overlapping windows can pick the same input: bincount adds their gradients
        gx = xp.bincount((ctx.flat + plane).ravel(), weights=g.ravel(), minlength=n * c * h * w)
        return gx.astype(g.dtype, copy=False).reshape(n, c, h, w)


def adaptive_max_pool2d_indices(xp, x, output_size):
    """The int64 (N, C, oh, ow) flat positions of ``AdaptiveMaxPool2d``'s maxima in array ``x``."""
    return _adaptive_max(xp, x, output_size)[1]
