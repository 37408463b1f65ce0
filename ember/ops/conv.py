"""2-D convolution (im2col + one GEMM) and max/average pooling.

Layout: tensors are NCHW to the user, but these ops keep activations channel-major in
memory (C, N, H, W) and hand out NCHW *views* of them. Then the convolution's GEMM output
(C_out, N·H·W) is already the next activation, and the output gradient that pooling hands
back reshapes to (C_out, N·H·W) without a copy. Each op accepts any strides.

im2col writes one contiguous block per kernel offset (i, j): a copy of the padded input's
(C, N, H_out, W_out) window with runs of W_out elements. Rows are ordered (i, j, c), with a
final row of ones that folds the bias into the GEMM. col2im adds the blocks back with
strided slice adds over the k×k offsets (never ``add.at``).
"""

from __future__ import annotations

from ..autograd import Function


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _padded_channel_major(xp, x, padding, fill=0):
    """x (N, C, H, W) -> a fresh (C, N, H+2p, W+2p) array with a constant border."""
    n, c, h, w = x.shape
    xt = x.transpose(1, 0, 2, 3)
    if padding == 0:
        return xp.ascontiguousarray(xt)
    out = xp.empty((c, n, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
    p = padding
    out[:, :, :p, :] = fill
    out[:, :, h + p :, :] = fill
    out[:, :, p : h + p, :p] = fill
    out[:, :, p : h + p, w + p :] = fill
    out[:, :, p : h + p, p : w + p] = xt
    return out


def _window(a, i, j, ho, wo, stride):
    """The (.., .., ho, wo) strided view of ``a`` at kernel offset (i, j)."""
    return a[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]


def _chunk_size(per_sample_bytes: int, n: int, target_bytes: int = 768 * 1024) -> int:
    """Samples per im2col chunk, so a chunk's columns stay in the L2 cache during its GEMM."""
    return max(1, min(n, target_bytes // max(per_sample_bytes, 1)))


def _im2col_chunks(xp, xpad, kh, kw, ho, wo, stride, with_ones):
    """Yield (n0, n1, cols) over batch chunks; cols is (kh·kw·C [+1], (n1-n0)·ho·wo), rows ordered (i, j, c).

    One buffer is reused for every chunk: a chunk is consumed (by a GEMM) before the next
    is written, and backward recomputes the columns instead of keeping them.
    """
    c, n = xpad.shape[0], xpad.shape[1]
    k = kh * kw * c
    nb = _chunk_size((k + with_ones) * ho * wo * xpad.itemsize, n)
    buf = xp.empty((k + with_ones, nb, ho, wo), dtype=xpad.dtype)
    if with_ones:
        buf[k] = 1
    for n0 in range(0, n, nb):
        m = min(nb, n - n0)
        src = xpad[:, n0 : n0 + m]
        sc, sn, sh, sw = src.strides
        windows = xp.lib.stride_tricks.as_strided(
            src, shape=(kh, kw, c, m, ho, wo), strides=(sh, sw, sc, sn, sh * stride, sw * stride)
        )
        buf[:k, :m].reshape(kh, kw, c, m, ho, wo)[...] = windows  # one copy: every (i, j) window at once
        yield n0, n0 + m, buf[:, :m].reshape(k + with_ones, m * ho * wo)


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,) if given.

    Forward and backward walk the batch in chunks whose im2col columns fit in cache; only the
    padded input is saved, and backward recomputes each chunk's columns.
    """

    def forward(ctx, x, weight, *bias, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        o, c_w, kh, kw = weight.shape
        if c_w != c:
            raise ValueError(f"conv2d: input has {c} channels but the weight expects {c_w}")
        ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
        if ho <= 0 or wo <= 0:
            raise ValueError(
                f"conv2d: input {h}x{w} with padding {padding} is smaller than the kernel {kh}x{kw}"
            )
        k = kh * kw * c
        has_bias = bool(bias)
        xpad = _padded_channel_major(xp, x, padding)
        wmat = xp.empty((o, k + has_bias), dtype=weight.dtype)
        wmat[:, :k].reshape(o, kh, kw, c)[...] = weight.transpose(0, 2, 3, 1)
        if has_bias:
            wmat[:, k] = bias[0]
        out = xp.empty((o, n * ho * wo), dtype=x.dtype)
        hw = ho * wo
        for n0, n1, cols in _im2col_chunks(xp, xpad, kh, kw, ho, wo, stride, has_bias):
            xp.matmul(wmat, cols, out=out[:, n0 * hw : n1 * hw])
        ctx.xpad, ctx.wmat, ctx.x_shape, ctx.w_shape = xpad, wmat, x.shape, weight.shape
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, has_bias
        return out.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)

    def backward(ctx, g):
        xp = ctx.xp
        o, c, kh, kw = ctx.w_shape
        n, _, h, w = ctx.x_shape
        k = kh * kw * c
        ho, wo = g.shape[2], g.shape[3]
        hw = ho * wo
        needs = ctx.needs_input_grad
        need_w = needs[1] or (ctx.has_bias and needs[2])
        g2 = g.transpose(1, 0, 2, 3).reshape(o, -1)  # free when g is channel-major in memory
        gfull = xp.zeros((o, k + ctx.has_bias), dtype=g.dtype) if need_w else None
        gxpad = xp.zeros(ctx.xpad.shape, dtype=g.dtype) if needs[0] else None
        w_t = ctx.wmat[:, :k].T
        if need_w:
            for n0, n1, cols in _im2col_chunks(xp, ctx.xpad, kh, kw, ho, wo, ctx.stride, ctx.has_bias):
                gchunk = g2[:, n0 * hw : n1 * hw]
                gfull += gchunk @ cols.T  # weight and bias gradients in one GEMM
                if gxpad is not None:
                    _col2im(w_t @ gchunk, gxpad[:, n0:n1], kh, kw, ho, wo, ctx.stride)
        elif gxpad is not None:
            nb = _chunk_size(k * hw * g.itemsize, n)
            for n0 in range(0, n, nb):
                n1 = min(n, n0 + nb)
                _col2im(w_t @ g2[:, n0 * hw : n1 * hw], gxpad[:, n0:n1], kh, kw, ho, wo, ctx.stride)
        gx = gw = gb = None
        if gxpad is not None:
            p = ctx.padding
            gx = gxpad[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)
        if need_w:
            gw = xp.ascontiguousarray(gfull[:, :k].reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
            if ctx.has_bias:
                gb = gfull[:, k].copy()
        return (gx, gw, gb) if ctx.has_bias else (gx, gw)


def _col2im(gcols, gxpad, kh, kw, ho, wo, stride):
    """Add column gradients (kh·kw·C, m·ho·wo) back onto the padded input chunk (C, m, Hp, Wp)."""
    c, m = gxpad.shape[0], gxpad.shape[1]
    blocks = gcols.reshape(kh, kw, c, m, ho, wo)
    for i in range(kh):
        for j in range(kw):
            _window(gxpad, i, j, ho, wo, stride)[...] += blocks[i, j]


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

    Works on the channel-major (C, N, H, W) view, so every array it touches shares one memory
    order. Non-overlapping windows (stride == kernel, no padding) take a fast path in two
    stages, columns then rows, each a few whole-array ops on strided views; ties keep the
    earlier column, then the earlier row: PyTorch's row-major first maximum. Other
    configurations track the running max over the k·k window offsets.
    """

    def forward(ctx, x, kernel, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        ctx.tiled = stride == kernel and padding == 0 and kernel > 1
        xc = x.transpose(1, 0, 2, 3)  # (C, N, H, W)
        if ctx.tiled:
            k = kernel
            crop = xc[:, :, : ho * k, : wo * k]
            cols_max, ctx.col_idx = _first_max(xp, [crop[..., j::k] for j in range(k)])
            rows = cols_max.reshape(c, n, ho, k, wo)
            out, ctx.row_idx = _first_max(xp, [rows[:, :, :, i] for i in range(k)])
            return out.transpose(1, 0, 2, 3)
        src = _padded_channel_major(xp, x, padding, fill=-xp.inf) if padding else xc
        views = [_window(src, i, j, ho, wo, stride) for i in range(kernel) for j in range(kernel)]
        if len(views) == 1:
            ctx.idx = xp.zeros(views[0].shape, dtype=xp.int8)
            return xp.ascontiguousarray(views[0]).transpose(1, 0, 2, 3)
        out, ctx.idx = _first_max(xp, views)
        return out.transpose(1, 0, 2, 3)

    def backward(ctx, g):
        xp, k, stride, p = ctx.xp, ctx.kernel, ctx.stride, ctx.padding
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2], g.shape[3]
        gc = g.transpose(1, 0, 2, 3)  # (C, N, ho, wo)
        if ctx.tiled:
            exact = h == ho * k and w == wo * k
            gx = (xp.empty if exact else xp.zeros)((c, n, h, w), dtype=g.dtype)
            grows = xp.empty((c, n, ho, k, wo), dtype=g.dtype)
            for i in range(k):
                xp.multiply(gc, ctx.row_idx == i, out=grows[:, :, :, i])
            grows = grows.reshape(c, n, ho * k, wo)
            crop = gx[:, :, : ho * k, : wo * k]
            for j in range(k):
                xp.multiply(grows, ctx.col_idx == j, out=crop[..., j::k])
            return gx.transpose(1, 0, 2, 3)
        gx = xp.zeros((c, n, h + 2 * p, w + 2 * p), dtype=g.dtype)
        t = 0
        for i in range(k):
            for j in range(k):
                _window(gx, i, j, ho, wo, stride)[...] += gc * (ctx.idx == t)
                t += 1
        return gx[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)


class AvgPool2d(Function):
    """Mean over k×k windows (zero padding counted, as PyTorch's default count_include_pad)."""

    def forward(ctx, x, kernel, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
        src = _padded_channel_major(xp, x, padding) if padding else x.transpose(1, 0, 2, 3)
        out = xp.ascontiguousarray(_window(src, 0, 0, ho, wo, stride))
        for i in range(kernel):
            for j in range(kernel):
                if i or j:
                    out += _window(src, i, j, ho, wo, stride)
        out *= 1.0 / (kernel * kernel)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        return out.transpose(1, 0, 2, 3)

    def backward(ctx, g):
        xp, kernel, stride, p = ctx.xp, ctx.kernel, ctx.stride, ctx.padding
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2], g.shape[3]
        share = g.transpose(1, 0, 2, 3) * (1.0 / (kernel * kernel))
        gx = xp.zeros((c, n, h + 2 * p, w + 2 * p), dtype=g.dtype)
        for i in range(kernel):
            for j in range(kernel):
                _window(gx, i, j, ho, wo, stride)[...] += share
        return gx[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)
