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


# Batch chunking of im2col, measured on LeNet-5's layers (2-core AMD EPYC, 1 MiB L2): columns of
# ~384 KiB stay in L2 between the copy and the GEMM that reads them (conv1 ran 2x faster than
# unchunked), but a GEMM narrower than ~2k columns is inefficient, and chunks that also run
# col2im (25 Python-level adds each) need ~2.5 MiB to amortise that loop.
CHUNK_BYTES = 384 << 10
CHUNK_BYTES_WITH_COL2IM = 5 << 19
MIN_GEMM_COLUMNS = 2048


def _chunk_size(per_sample_bytes: int, per_sample_columns: int, n: int, target_bytes: int) -> int:
    """Samples per im2col chunk: near ``target_bytes`` of columns, but at least MIN_GEMM_COLUMNS wide."""
    by_bytes = target_bytes // max(per_sample_bytes, 1)
    by_width = -(-MIN_GEMM_COLUMNS // max(per_sample_columns, 1))
    return max(1, min(n, max(by_bytes, by_width)))


class _Geometry:
    """Shapes of one convolution, and the layout of its padded input and its im2col columns.

    For stride 1 the columns are "full width": output positions run over (ho, Wp) rather than
    (ho, wo), so each kernel offset (i, j) is one contiguous run of ho·Wp elements of the
    padded image, at flat offset i·Wp + j. The extra Wp - wo columns of each output row are
    computed and dropped; in exchange im2col and col2im move long runs instead of rows of wo.
    The padded buffer has one extra zero row so the last run stays in bounds.
    """

    def __init__(self, x_shape, w_shape, stride, padding):
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        self.stride, self.padding = stride, padding
        self.hp, self.wp = self.h + 2 * padding, self.w + 2 * padding
        self.ho = conv_output_size(self.h, self.kh, stride, padding)
        self.wo = conv_output_size(self.w, self.kw, stride, padding)
        self.k = self.kh * self.kw * self.c
        self.full_width = stride == 1
        self.row = self.wp if self.full_width else self.wo  # output columns computed per output row
        self.extra_rows = 1 if self.full_width else 0

    def padded(self, xp, x):
        """x (N, C, H, W) -> fresh zero-bordered (C, N, Hp [+1], Wp)."""
        p = self.padding
        out = xp.zeros((self.c, self.n, self.hp + self.extra_rows, self.wp), dtype=x.dtype)
        out[:, :, p : p + self.h, p : p + self.w] = x.transpose(1, 0, 2, 3)
        return out

    def windows(self, xp, src):
        """Strided view (kh, kw, C, m, ho·row) of every kernel offset over the padded chunk ``src``."""
        sc, sn, sh, sw = src.strides
        m = src.shape[1]
        if self.full_width:
            return xp.lib.stride_tricks.as_strided(
                src, shape=(self.kh, self.kw, self.c, m, self.ho * self.wp), strides=(sh, sw, sc, sn, sw)
            )
        s = self.stride
        view = xp.lib.stride_tricks.as_strided(
            src, shape=(self.kh, self.kw, self.c, m, self.ho, self.wo), strides=(sh, sw, sc, sn, sh * s, sw * s)
        )
        return view

    def chunks(self, xp, xpad, with_ones, target_bytes=CHUNK_BYTES):
        """Yield (n0, n1, cols) with cols (k [+1], (n1-n0)·ho·row), rows ordered (i, j, c); one reused buffer."""
        length = self.ho * self.row
        nb = _chunk_size((self.k + with_ones) * length * xpad.itemsize, length, self.n, target_bytes)
        buf = xp.empty((self.k + with_ones, nb, length), dtype=xpad.dtype)
        if with_ones:
            buf[self.k] = 1
        for n0 in range(0, self.n, nb):
            m = min(nb, self.n - n0)
            block = buf[: self.k, :m]
            windows = self.windows(xp, xpad[:, n0 : n0 + m])
            block.reshape(windows.shape)[...] = windows  # one strided copy for all (i, j)
            yield n0, n0 + m, buf[:, :m].reshape(self.k + with_ones, m * length)

    def col2im(self, gcols, gxpad_chunk):
        """Add column gradients (k, m·ho·row) back onto a padded input chunk (C, m, Hp [+1], Wp)."""
        c, m = gxpad_chunk.shape[0], gxpad_chunk.shape[1]
        if self.full_width:
            run = self.ho * self.wp
            blocks = gcols.reshape(self.kh, self.kw, c, m, run)
            flat = gxpad_chunk.reshape(c, m, -1)
            for i in range(self.kh):
                for j in range(self.kw):
                    start = i * self.wp + j
                    flat[:, :, start : start + run] += blocks[i, j]
            return
        blocks = gcols.reshape(self.kh, self.kw, c, m, self.ho, self.wo)
        for i in range(self.kh):
            for j in range(self.kw):
                _window(gxpad_chunk, i, j, self.ho, self.wo, self.stride)[...] += blocks[i, j]


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw), plus bias (O,) if given.

    im2col + one GEMM per batch chunk, with the bias folded into the GEMM as a row of ones.
    Only the padded input is saved; backward recomputes each chunk's columns, which is cheaper
    than reading 25x the input back from memory. The output is a channel-major view.
    """

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
        xpad = geo.padded(xp, x)
        wmat = xp.empty((o, k + has_bias), dtype=weight.dtype)
        wmat[:, :k].reshape(o, geo.kh, geo.kw, geo.c)[...] = weight.transpose(0, 2, 3, 1)
        if has_bias:
            wmat[:, k] = bias[0]
        length = geo.ho * geo.row
        out = xp.empty((o, geo.n, length), dtype=x.dtype)
        for n0, n1, cols in geo.chunks(xp, xpad, has_bias):
            xp.matmul(wmat, cols, out=out[:, n0:n1].reshape(o, -1))
        ctx.geo, ctx.xpad, ctx.wmat, ctx.has_bias = geo, xpad, wmat, has_bias
        out = out.reshape(o, geo.n, geo.ho, geo.row)[..., : geo.wo]
        return out.transpose(1, 0, 2, 3)

    def backward(ctx, g):
        xp, geo = ctx.xp, ctx.geo
        o, k, length = geo.o, geo.k, geo.ho * geo.row
        needs = ctx.needs_input_grad
        need_w = needs[1] or (ctx.has_bias and needs[2])
        if geo.full_width:  # zeros in the dropped columns, so they add nothing anywhere
            g2 = xp.zeros((o, geo.n, geo.ho, geo.wp), dtype=g.dtype)
            g2[..., : geo.wo] = g.transpose(1, 0, 2, 3)
            g2 = g2.reshape(o, geo.n, length)
        else:
            g2 = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, geo.n, length)
        gfull_t = xp.zeros((k + ctx.has_bias, o), dtype=g.dtype) if need_w else None
        gxpad = xp.zeros(ctx.xpad.shape, dtype=g.dtype) if needs[0] else None
        w_t = ctx.wmat[:, :k].T
        if need_w:
            target = CHUNK_BYTES if gxpad is None else CHUNK_BYTES_WITH_COL2IM
            for n0, n1, cols in geo.chunks(xp, ctx.xpad, ctx.has_bias, target):
                gchunk = g2[:, n0:n1].reshape(o, -1)
                gfull_t += cols @ gchunk.T  # weight and bias gradients in one GEMM (transposed: faster here)
                if gxpad is not None:
                    geo.col2im(w_t @ gchunk, gxpad[:, n0:n1])
        elif gxpad is not None:
            nb = _chunk_size(k * length * g.itemsize, length, geo.n, CHUNK_BYTES_WITH_COL2IM)
            for n0 in range(0, geo.n, nb):
                n1 = min(geo.n, n0 + nb)
                geo.col2im(w_t @ g2[:, n0:n1].reshape(o, -1), gxpad[:, n0:n1])
        gx = gw = gb = None
        if gxpad is not None:
            p = geo.padding
            gx = gxpad[:, :, p : p + geo.h, p : p + geo.w].transpose(1, 0, 2, 3)
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
