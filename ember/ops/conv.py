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


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,) if given."""

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
        cols = xp.empty((k + has_bias, n, ho, wo), dtype=x.dtype)
        blocks = cols[:k].reshape(kh, kw, c, n, ho, wo)
        for i in range(kh):
            for j in range(kw):
                blocks[i, j] = _window(xpad, i, j, ho, wo, stride)
        wmat = xp.empty((o, k + has_bias), dtype=weight.dtype)
        wmat[:, :k].reshape(o, kh, kw, c)[...] = weight.transpose(0, 2, 3, 1)
        if has_bias:
            cols[k] = 1
            wmat[:, k] = bias[0]
        cols2 = cols.reshape(k + has_bias, -1)
        out = wmat @ cols2  # (O, N·ho·wo)
        ctx.cols, ctx.wmat, ctx.x_shape, ctx.w_shape = cols2, wmat, x.shape, weight.shape
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, has_bias
        return out.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)

    def backward(ctx, g):
        xp = ctx.xp
        o, c, kh, kw = ctx.w_shape
        n, _, h, w = ctx.x_shape
        k = kh * kw * c
        needs = ctx.needs_input_grad
        g2 = g.transpose(1, 0, 2, 3).reshape(o, -1)  # free when g is channel-major in memory
        gx = gw = gb = None
        if needs[1] or (ctx.has_bias and needs[2]):
            gfull = g2 @ ctx.cols.T  # (O, k + bias): weight and bias gradients in one GEMM
            gw = xp.ascontiguousarray(gfull[:, :k].reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
            if ctx.has_bias:
                gb = gfull[:, k].copy()
        if needs[0]:
            gcols = ctx.wmat[:, :k].T @ g2  # (k, N·ho·wo)
            gx = _col2im(xp, gcols, ctx.x_shape, kh, kw, ctx.stride, ctx.padding, g.dtype)
        return (gx, gw, gb) if ctx.has_bias else (gx, gw)


def _col2im(xp, gcols, x_shape, kh, kw, stride, padding, dtype):
    """Sum the column gradients back onto the (padded) input; returns an NCHW view."""
    n, c, h, w = x_shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    blocks = gcols.reshape(kh, kw, c, n, ho, wo)
    gpad = xp.zeros((c, n, h + 2 * padding, w + 2 * padding), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            _window(gpad, i, j, ho, wo, stride)[...] += blocks[i, j]
    p = padding
    return gpad[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)


class MaxPool2d(Function):
    """Max over k×k windows with a stride; the gradient goes to the first maximum of each window.

    The running max and its window position are built over the k·k offsets with whole-array
    ops; backward writes the gradient through the same strided views.
    """

    def forward(ctx, x, kernel, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
        src = x
        if padding:
            src = _padded_channel_major(xp, x, padding, fill=-xp.inf).transpose(1, 0, 2, 3)
        out = _window(src, 0, 0, ho, wo, stride).copy(order="K")  # keeps the memory layout
        best = xp.zeros(out.shape, dtype=xp.int8)
        t = 0
        for i in range(kernel):
            for j in range(kernel):
                if t:
                    win = _window(src, i, j, ho, wo, stride)
                    better = win > out
                    xp.copyto(out, win, where=better)
                    best[better] = t
                t += 1
        ctx.best, ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = best, x.shape, kernel, stride, padding
        return out

    def backward(ctx, g):
        xp, kernel, stride, p = ctx.xp, ctx.kernel, ctx.stride, ctx.padding
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2], g.shape[3]
        gpad = xp.zeros((c, n, h + 2 * p, w + 2 * p), dtype=g.dtype).transpose(1, 0, 2, 3)
        exact_tiling = stride == kernel and p == 0 and h == ho * kernel and w == wo * kernel
        t = 0
        for i in range(kernel):
            for j in range(kernel):
                view = _window(gpad, i, j, ho, wo, stride)
                if exact_tiling:
                    xp.multiply(g, ctx.best == t, out=view)
                else:
                    view += g * (ctx.best == t)
                t += 1
        return gpad[:, :, p : p + h, p : p + w]


class AvgPool2d(Function):
    """Mean over k×k windows (zero padding counted, as PyTorch's default count_include_pad)."""

    def forward(ctx, x, kernel, stride, padding):
        xp = ctx.xp
        n, c, h, w = x.shape
        ho, wo = conv_output_size(h, kernel, stride, padding), conv_output_size(w, kernel, stride, padding)
        src = _padded_channel_major(xp, x, padding).transpose(1, 0, 2, 3) if padding else x
        out = _window(src, 0, 0, ho, wo, stride).copy(order="K")  # keeps the memory layout
        for i in range(kernel):
            for j in range(kernel):
                if i or j:
                    out += _window(src, i, j, ho, wo, stride)
        out *= 1.0 / (kernel * kernel)
        ctx.x_shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, kernel, stride, padding
        return out

    def backward(ctx, g):
        xp, kernel, stride, p = ctx.xp, ctx.kernel, ctx.stride, ctx.padding
        n, c, h, w = ctx.x_shape
        ho, wo = g.shape[2], g.shape[3]
        share = g * (1.0 / (kernel * kernel))
        gpad = xp.zeros((c, n, h + 2 * p, w + 2 * p), dtype=g.dtype).transpose(1, 0, 2, 3)
        for i in range(kernel):
            for j in range(kernel):
                _window(gpad, i, j, ho, wo, stride)[...] += share
        return gpad[:, :, p : p + h, p : p + w]
