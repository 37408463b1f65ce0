"""2-D convolution (im2col + one GEMM per chunk) and max/average pooling.

Layout: tensors are NCHW to the user, but these ops keep activations **batch-last** in memory,
(C, H, W, N), and hand out NCHW *views* of them. With the batch innermost, every im2col
copy and col2im add moves runs of ``wo·N`` contiguous elements (a whole output row for the
whole batch) instead of rows of ``wo``; the GEMM's output (O, ho·wo·N) is already the next
activation; and the gradient that pooling hands back reshapes to (O, ho·wo·N) without a copy.
Each op still accepts any strides: an input in another layout is copied once.

im2col rows are ordered (i, j, c) (kernel offset, then channel), with a final row of ones
that folds the bias into the GEMM; col2im adds the column gradients back with one strided
slice add per kernel offset (never ``add.at``). Both walk the output in chunks of rows sized
so the GEMM is wide enough to be efficient while the columns stay in cache; backward
recomputes each chunk's columns instead of keeping all of them.
"""

from __future__ import annotations

from ..autograd import Function

# Output rows per chunk are chosen so a chunk's GEMM has about this many columns (ho·wo·N
# positions): measured on LeNet-5's layers (2-core AMD EPYC, 1 MiB L2), 2-6k columns ran
# 1.5-3x faster than unchunked (the columns stay in L2 between the copy and the GEMM).
GEMM_COLUMNS_PER_CHUNK = 4096
# (Measured and rejected: keeping all the columns for backward instead of recomputing them ran
# a LeNet-5 step 12% slower, the columns then coming back from memory instead of from L2; one
# big chunk for backwards that run col2im made no difference beyond the noise.)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def batch_last(x):
    """The (C, H, W, N) view of an NCHW array (contiguous when x came from these ops)."""
    return x.transpose(1, 2, 3, 0)


def _padded_batch_last(xp, x, padding, fill=0.0):
    """x (N, C, H, W) -> (C, H+2p, W+2p, N); a view of x when it already is batch-last and unpadded."""
    xl = batch_last(x)
    if padding == 0:
        return xl if xl.flags.c_contiguous else xp.ascontiguousarray(xl)
    c, h, w, n = xl.shape
    p = padding
    out = xp.full((c, h + 2 * p, w + 2 * p, n), fill, dtype=x.dtype)
    out[:, p : p + h, p : p + w] = xl
    return out


def _window(a, i, j, ho, wo, stride):
    """The (C, ho, wo, N) strided view of batch-last ``a`` at kernel offset (i, j)."""
    return a[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]


class _Geometry:
    """Shapes of one convolution and the im2col/col2im over chunks of output rows."""

    def __init__(self, x_shape, w_shape, stride, padding):
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        self.stride, self.padding = stride, padding
        self.ho = conv_output_size(self.h, self.kh, stride, padding)
        self.wo = conv_output_size(self.w, self.kw, stride, padding)
        self.k = self.kh * self.kw * self.c
        self.rows = max(1, min(self.ho, GEMM_COLUMNS_PER_CHUNK // max(self.wo * self.n, 1)))

    def windows(self, xp, xpad, y0, m):
        """Strided view (kh, kw, C, m, wo, N) of every kernel offset for output rows y0..y0+m."""
        s = self.stride
        sc, sh, sw, sn = xpad.strides
        src = xpad[:, y0 * s :]
        return xp.lib.stride_tricks.as_strided(
            src, shape=(self.kh, self.kw, self.c, m, self.wo, self.n), strides=(sh, sw, sc, sh * s, sw * s, sn)
        )

    def chunks(self, xp, xpad, with_ones):
        """Yield (y0, y1, cols), cols (k [+1], (y1-y0)·wo·N); one buffer reused by every chunk."""
        k, width = self.k, self.wo * self.n
        buf = xp.empty((k + with_ones, self.rows, width), dtype=xpad.dtype)
        if with_ones:
            buf[k] = 1
        for y0 in range(0, self.ho, self.rows):
            m = min(self.rows, self.ho - y0)
            windows = self.windows(xp, xpad, y0, m)
            buf[:k, :m].reshape(windows.shape)[...] = windows  # one copy for every (i, j, c)
            yield y0, y0 + m, buf[:, :m].reshape(k + with_ones, m * width)

    def col2im(self, gcols, gxpad, y0, m):
        """Add column gradients (k, m·wo·N) of output rows y0..y0+m back onto the padded input."""
        s = self.stride
        blocks = gcols.reshape(self.kh, self.kw, self.c, m, self.wo, self.n)
        for i in range(self.kh):
            for j in range(self.kw):
                _window(gxpad, y0 * s + i, j, m, self.wo, s)[...] += blocks[i, j]


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,) if given."""

    saves = (0,)

    def forward(ctx, x, weight, *bias, stride, padding):
        xp = ctx.xp
        if weight.shape[1] != x.shape[1]:
            raise ValueError(f"conv2d: input has {x.shape[1]} channels but the weight expects {weight.shape[1]}")
        geo = _Geometry(x.shape, weight.shape, stride, padding)
        if geo.ho <= 0 or geo.wo <= 0:
            raise ValueError(
                f"conv2d: input {geo.h}x{geo.w} with padding {padding} is smaller than the kernel {geo.kh}x{geo.kw}"
            )
        has_bias = bool(bias)
        k, o = geo.k, geo.o
        xpad = _padded_batch_last(xp, x, padding)
        wmat = xp.empty((o, k + has_bias), dtype=weight.dtype)
        wmat[:, :k].reshape(o, geo.kh, geo.kw, geo.c)[...] = weight.transpose(0, 2, 3, 1)
        if has_bias:
            wmat[:, k] = bias[0]
        out = xp.empty((o, geo.ho, geo.wo, geo.n), dtype=x.dtype)
        for y0, y1, cols in geo.chunks(xp, xpad, has_bias):
            xp.matmul(wmat, cols, out=out[:, y0:y1].reshape(o, -1))
        ctx.geo, ctx.xpad, ctx.wmat, ctx.has_bias = geo, xpad, wmat, has_bias
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        xp, geo = ctx.xp, ctx.geo
        o, k = geo.o, geo.k
        needs = ctx.needs_input_grad
        need_w = needs[1] or (ctx.has_bias and needs[2])
        g2 = xp.ascontiguousarray(batch_last(g)).reshape(o, geo.ho, -1)  # free when g is batch-last
        gfull_t = xp.zeros((k + ctx.has_bias, o), dtype=g.dtype) if need_w else None
        gxpad = xp.zeros(ctx.xpad.shape, dtype=g.dtype) if needs[0] else None
        w_t = ctx.wmat[:, :k].T
        if need_w:
            for y0, y1, cols in geo.chunks(xp, ctx.xpad, ctx.has_bias):
                gchunk = g2[:, y0:y1].reshape(o, -1)
                gfull_t += cols @ gchunk.T  # weight and bias gradients in one GEMM
                if gxpad is not None:
                    geo.col2im(w_t @ gchunk, gxpad, y0, y1 - y0)
        elif gxpad is not None:
            for y0 in range(0, geo.ho, geo.rows):
                y1 = min(geo.ho, y0 + geo.rows)
                geo.col2im(w_t @ g2[:, y0:y1].reshape(o, -1), gxpad, y0, y1 - y0)
        gx = gw = gb = None
        if gxpad is not None:
            p = geo.padding
            gx = gxpad[:, p : p + geo.h, p : p + geo.w].transpose(3, 0, 1, 2)
        if need_w:
            gw = xp.ascontiguousarray(gfull_t[:k].reshape(geo.kh, geo.kw, geo.c, o).transpose(3, 2, 0, 1))
            if ctx.has_bias:
                gb = gfull_t[k].copy()
        return (gx, gw, gb) if ctx.has_bias else (gx, gw)


def _first_max(xp, views):
    """Running max over strided views, and the index (int8) of the first view that holds it."""
    best = xp.maximum(views[0], views[1])
    idx = (views[1] > views[0]).view(xp.int8)
    for t in range(2, len(views)):
        better = views[t] > best
        xp.maximum(best, views[t], out=best)
        idx[better] = t
    return best, idx


class MaxPool2d(Function):
    """Max over k×k windows with a stride; the gradient goes to the first maximum (row-major) of each window.

    Works on the batch-last (C, H, W, N) view. Non-overlapping windows (stride == kernel, no
    padding) take a fast path in two stages, columns then rows, each a few whole-array ops on
    strided views; ties keep the earlier column, then the earlier row: PyTorch's row-major
    first maximum. Other configurations track the running max over the k·k window offsets.
    """

    saves = ()

    def forward(ctx, x, kernel, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        ctx.tiled = stride == kernel and padding == 0 and kernel > 1
        if ctx.tiled:
            k = kernel
            crop = batch_last(x)[:, : ho * k, : wo * k]
            cols_max, ctx.col_idx = _first_max(xp, [crop[:, :, j::k] for j in range(k)])
            rows = cols_max.reshape(c, ho, k, wo, n)
            out, ctx.row_idx = _first_max(xp, [rows[:, :, i] for i in range(k)])
            return out.transpose(3, 0, 1, 2)
        src = _padded_batch_last(xp, x, padding, fill=-xp.inf) if padding else batch_last(x)
        views = [_window(src, i, j, ho, wo, stride) for i in range(kernel) for j in range(kernel)]
        if len(views) == 1:
            ctx.idx = xp.zeros(views[0].shape, dtype=xp.int8)
            return xp.ascontiguousarray(views[0]).transpose(3, 0, 1, 2)
        out, ctx.idx = _first_max(xp, views)
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        xp, k, stride, p = ctx.xp, ctx.kernel, ctx.stride, ctx.padding
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2], g.shape[3]
        gl = batch_last(g)  # (C, ho, wo, N)
        if ctx.tiled:
            exact = h == ho * k and w == wo * k
            gx = (xp.empty if exact else xp.zeros)((c, h, w, n), dtype=g.dtype)
            grows = xp.empty((c, ho, k, wo, n), dtype=g.dtype)
            for i in range(k):
                xp.multiply(gl, ctx.row_idx == i, out=grows[:, :, i])
            grows = grows.reshape(c, ho * k, wo, n)
            crop = gx[:, : ho * k, : wo * k]
            for j in range(k):
                xp.multiply(grows, ctx.col_idx == j, out=crop[:, :, j::k])
            return gx.transpose(3, 0, 1, 2)
        gx = xp.zeros((c, h + 2 * p, w + 2 * p, n), dtype=g.dtype)
        t = 0
        for i in range(k):
            for j in range(k):
                _window(gx, i, j, ho, wo, stride)[...] += gl * (ctx.idx == t)
                t += 1
        return gx[:, p : p + h, p : p + w].transpose(3, 0, 1, 2)


class AvgPool2d(Function):
    """Mean over k×k windows (zero padding counted, as PyTorch's default count_include_pad)."""

    saves = ()

    def forward(ctx, x, kernel, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
        src = _padded_batch_last(xp, x, padding) if padding else batch_last(x)
        out = xp.ascontiguousarray(_window(src, 0, 0, ho, wo, stride))
        for i in range(kernel):
            for j in range(kernel):
                if i or j:
                    out += _window(src, i, j, ho, wo, stride)
        out *= 1.0 / (kernel * kernel)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        xp, kernel, stride, p = ctx.xp, ctx.kernel, ctx.stride, ctx.padding
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2], g.shape[3]
        share = batch_last(g) * (1.0 / (kernel * kernel))
        gx = xp.zeros((c, h + 2 * p, w + 2 * p, n), dtype=g.dtype)
        for i in range(kernel):
            for j in range(kernel):
                _window(gx, i, j, ho, wo, stride)[...] += share
        return gx[:, p : p + h, p : p + w].transpose(3, 0, 1, 2)
