"""Convolution (im2col + one GEMM per chunk of output rows) and transposed convolution.

Layout: tensors are NCHW to the user, but these ops keep activations **batch-last** in memory,
(C, H, W, N), and hand out NCHW *views* of them. With the batch innermost, every im2col
copy and col2im add moves runs of ``wo·N`` contiguous elements (a whole output row for the
whole batch) instead of rows of ``wo``; the GEMM's output (O, ho·wo·N) is already the next
activation; and the gradient that pooling hands back reshapes to (O, ho·wo·N) without a copy.
Each op still accepts any strides: an input in another layout is copied once.

Groups split the channels into G independent convolutions. im2col rows are ordered
(group, i, j, c) (group, kernel offset, then the group's channel), so the columns of all groups
are one (G, k, positions) array and the G GEMMs are one batched ``matmul``; with G = 1 the arrays
drop the group axis and this is the plain (i, j, c) im2col with 2-d GEMMs. A final row of ones
per group folds the bias into the GEMM. col2im adds the column gradients back with one strided
slice add per kernel offset (never ``add.at``). Both walk the output in chunks of rows sized so
the GEMM is wide enough to be efficient while the columns stay in cache; backward recomputes each
chunk's columns instead of keeping them.

A transposed convolution is the adjoint of a convolution: its forward is the convolution's
input-gradient (GEMM then col2im), its backward the convolution's forward (im2col then GEMM),
so both ops share one ``ConvGeometry``.
"""

from __future__ import annotations

import functools

from .. import kernels
from ..autograd import Function
from ..kernels import conv as conv_kernels
from ..kernels import cuda as cuda_kernels
from ..kernels.cuda import conv as cuda_conv_kernels

# Output rows per chunk are chosen so a chunk's GEMM has about this many columns (ho·wo·N
# positions): measured on LeNet-5's layers (2-core AMD EPYC, 1 MiB L2), 2-6k columns ran
# 1.5-3x faster than unchunked (the columns stay in L2 between the copy and the GEMM).
GEMM_COLUMNS_PER_CHUNK = 4096
# (Measured and rejected: keeping all the columns for backward instead of recomputing them ran
# a LeNet-5 step 12% slower, the columns then coming back from memory instead of from L2; one
# big chunk for backwards that run col2im made no difference beyond the noise.)


def conv_output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """Output length of a convolution along one axis, with ``pad_total`` zeros added on its two sides."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def batch_last(x):
    """The (C, H, W, N) view of an NCHW array (contiguous when x came from these ops)."""
    return x.transpose(1, 2, 3, 0)


def padded_batch_last(xp, x, pads, fill=0.0):
    """x (N, C, H, W) -> (C, top+H+bottom, left+W+right, N); a view of x if it already is batch-last and unpadded.

    ``pads`` is (top, bottom, left, right).
    """
    xl = batch_last(x)
    top, bottom, left, right = pads
    if not (top or bottom or left or right):
        return xl if xl.flags.c_contiguous else xp.ascontiguousarray(xl)
    c, h, w, n = xl.shape
    out = xp.full((c, top + h + bottom, left + w + right, n), fill, dtype=x.dtype)
    out[:, top : top + h, left : left + w] = xl
    return out


def window(a, i, j, ho, wo, stride):
    """The (..., ho, wo, N) strided view of batch-last ``a`` (..., H, W, N) starting at offset (i, j)."""
    sh, sw = stride
    return a[..., i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :]


class ConvGeometry:
    """Shapes of one grouped, strided, dilated convolution, and its im2col/col2im over chunks of output rows.

    ``x_shape`` (N, C, H, W) is the unpadded input, ``w_shape`` (O, C/G, kh, kw) the weight,
    ``pads`` (top, bottom, left, right). ``out_hw`` fixes the output size (a transposed convolution
    knows it; a convolution computes it).
    """

    def __init__(self, x_shape, w_shape, stride, pads, dilation, groups, out_hw=None):
        self.n, self.c, self.h, self.w = x_shape
        self.o, self.cg, self.kh, self.kw = w_shape
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.og = self.o // groups
        # the group axis that grouped arrays carry in front; ungrouped ones (the common case) go without
        # it, so their GEMMs, copies and slice adds are the plain 2-d and 4-d ones
        self.lead = (groups,) if groups > 1 else ()
        if out_hw is None:
            out_hw = (conv_output_size(self.h, self.kh, stride[0], pads[0] + pads[1], dilation[0]),
                      conv_output_size(self.w, self.kw, stride[1], pads[2] + pads[3], dilation[1]))
        self.ho, self.wo = out_hw
        self.k = self.kh * self.kw * self.cg  # im2col rows per group
        self.rows = max(1, min(self.ho, GEMM_COLUMNS_PER_CHUNK // max(self.wo * self.n, 1)))

    def weight_matrix(self, xp, weight, bias=None):
        """([G,] O/G, k [+1]) copy of the weight in im2col row order, with the bias as a last column."""
        g, og, k = self.groups, self.og, self.k
        wmat = xp.empty(self.lead + (og, k + (bias is not None)), dtype=weight.dtype)
        wmat[..., :k].reshape(g, og, self.kh, self.kw, self.cg)[...] = (
            weight.reshape(g, og, self.cg, self.kh, self.kw).transpose(0, 1, 3, 4, 2))
        if bias is not None:
            wmat[..., k] = bias.reshape(self.lead + (og,))
        return wmat

    def weight_from_matrix(self, xp, wmat):
        """Inverse of ``weight_matrix`` (without bias): ([G,] O/G, k) -> a new (O, C/G, kh, kw) array."""
        blocks = wmat.reshape(self.groups, self.og, self.kh, self.kw, self.cg).transpose(0, 1, 4, 2, 3)
        return xp.ascontiguousarray(blocks).reshape(self.o, self.cg, self.kh, self.kw)

    def windows(self, xp, xpad, y0, m):
        """Strided view ([G,] kh, kw, C/G, m, wo, N) of every kernel offset for output rows y0..y0+m."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        sc, s_h, s_w, sn = xpad.strides
        src = xpad[:, y0 * sh :]
        return xp.lib.stride_tricks.as_strided(
            src, shape=self.lead + (self.kh, self.kw, self.cg, m, self.wo, self.n),
            strides=(sc * self.cg,) * len(self.lead) + (s_h * dh, s_w * dw, sc, s_h * sh, s_w * sw, sn),
        )

    def chunks(self, xp, xpad, with_ones):
        """Yield (y0, y1, cols), cols ([G,] k [+1], (y1-y0)·wo·N); one buffer reused by every chunk.

        With numba, ``ember.kernels.conv.im2col`` fills each chunk in one compiled loop (the same copies).
        """
        if kernels.takes(xpad):
            return self._compiled_chunks(xp, xpad, with_ones)
        elif cuda_kernels.takes(xpad):
            return self._compiled_chunks(xp, xpad, with_ones, cuda_conv_kernels.im2col)
        return self._reference_chunks(xp, xpad, with_ones)

    def _compiled_chunks(self, xp, xpad, with_ones, im2col=conv_kernels.im2col):
        """``chunks`` through the kernel (numba's, or the ``im2col`` given: CUDA's). Each chunk's columns are one
        contiguous (G, k [+1], m, wo·N) block at the start of the buffer, so the last, shorter chunk reshapes
        without a copy too."""
        rows, width = self.k + with_ones, self.wo * self.n
        buf = xp.empty(self.groups * rows * self.rows * width, dtype=xpad.dtype)
        for y0 in range(0, self.ho, self.rows):
            m = min(self.rows, self.ho - y0)
            cols = buf[: self.groups * rows * m * width].reshape(self.groups, rows, m, width)
            im2col(xpad, cols, y0, (self.kh, self.kw), self.stride, self.dilation)
            yield y0, y0 + m, cols.reshape(self.lead + (rows, m * width))

    def _reference_chunks(self, xp, xpad, with_ones):
        lead, k, width = self.lead, self.k, self.wo * self.n
        buf = xp.empty(lead + (k + with_ones, self.rows, width), dtype=xpad.dtype)
        if with_ones:
            buf[..., k, :, :] = 1
        for y0 in range(0, self.ho, self.rows):
            m = min(self.rows, self.ho - y0)
            windows = self.windows(xp, xpad, y0, m)
            buf[..., :k, :m, :].reshape(windows.shape)[...] = windows  # one copy for every (g, i, j, c)
            yield y0, y0 + m, buf[..., :m, :].reshape(lead + (k + with_ones, m * width))

    def row_chunks(self):
        """(y0, y1) of the chunks, for loops that need no columns."""
        return [(y0, min(self.ho, y0 + self.rows)) for y0 in range(0, self.ho, self.rows)]

    def col2im(self, gcols, gxpad, y0, m):
        """Add column gradients ([G,] k, m·wo·N) of output rows y0..y0+m back onto the padded input.

        Without groups the arrays lose their group axis: 4-d slice adds are measurably cheaper than
        5-d ones, and LeNet-5's first convolution runs 350 of them per backward. With numba,
        ``ember.kernels.conv.col2im`` does all the adds in one compiled loop, in the same order.
        """
        if kernels.takes(gcols, gxpad):
            conv_kernels.col2im(gcols, gxpad, y0, m, (self.kh, self.kw), self.stride, self.dilation, self.groups)
            return
        elif cuda_kernels.takes(gcols, gxpad):
            cuda_conv_kernels.col2im(gcols, gxpad, y0, m, (self.kh, self.kw), self.stride, self.dilation,
                                     self.groups)
            return
        (sh, sw), (dh, dw) = self.stride, self.dilation
        if self.groups == 1:
            blocks = gcols.reshape(self.kh, self.kw, self.cg, m, self.wo, self.n)
            target = gxpad
        else:
            blocks = gcols.reshape(self.groups, self.kh, self.kw, self.cg, m, self.wo, self.n)
            blocks = blocks.transpose(1, 2, 0, 3, 4, 5, 6)  # (kh, kw, G, C/G, m, wo, N)
            target = gxpad.reshape((self.groups, self.cg) + gxpad.shape[1:])  # a view: gxpad is contiguous
        for i in range(self.kh):
            for j in range(self.kw):
                window(target, y0 * sh + i * dh, j * dw, m, self.wo, (sh, sw))[...] += blocks[i, j]

    def crop(self, xpad):
        """The unpadded (C, H, W, N) part of a padded batch-last array."""
        top, _, left, _ = self.pads
        return xpad[:, top : top + self.h, left : left + self.w]


@functools.lru_cache(maxsize=256)
def conv_geometry(x_shape, w_shape, stride, pads, dilation, groups, out_hw=None) -> ConvGeometry:
    """A shared ``ConvGeometry`` per distinct call (all arguments tuples or ints): shapes repeat every step."""
    return ConvGeometry(x_shape, w_shape, stride, pads, dilation, groups, out_hw)


class Conv2d(Function):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/G, kh, kw), plus bias (O,) if given.

    ``stride`` and ``dilation`` are (h, w) pairs, ``padding`` is (top, bottom, left, right) (PyTorch's
    padding='same' can need one more row or column at the end), ``groups`` divides C and O.
    """

    saves = (0,)  # the batch-last input is a view of x when x already is batch-last and unpadded

    def forward(ctx, x, weight, *bias, stride, padding, dilation=(1, 1), groups=1):
        xp = ctx.xp
        geo = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
        has_bias = bool(bias)
        xpad = padded_batch_last(xp, x, padding)
        wmat = geo.weight_matrix(xp, weight, bias[0] if has_bias else None)
        out = xp.empty((geo.o, geo.ho, geo.wo, geo.n), dtype=x.dtype)
        for y0, y1, cols in geo.chunks(xp, xpad, has_bias):
            xp.matmul(wmat, cols, out=out[:, y0:y1].reshape(geo.lead + (geo.og, -1)))
        ctx.geo, ctx.xpad, ctx.wmat, ctx.has_bias = geo, xpad, wmat, has_bias
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        xp, geo = ctx.xp, ctx.geo
        lead, og, k = geo.lead, geo.og, geo.k
        needs = ctx.needs_input_grad
        need_w = needs[1] or (ctx.has_bias and needs[2])
        g2 = xp.ascontiguousarray(batch_last(g)).reshape(lead + (og, geo.ho, -1))  # free when g is batch-last
        gfull_t = xp.zeros(lead + (k + ctx.has_bias, og), dtype=g.dtype) if need_w else None
        gxpad = xp.zeros(ctx.xpad.shape, dtype=g.dtype) if needs[0] else None
        w_t = ctx.wmat[..., :k].swapaxes(-1, -2)
        if need_w:
            for y0, y1, cols in geo.chunks(xp, ctx.xpad, ctx.has_bias):
                gchunk = g2[..., y0:y1, :].reshape(lead + (og, -1))
                gfull_t += cols @ gchunk.swapaxes(-1, -2)  # weight and bias gradients in one GEMM
                if gxpad is not None:
                    geo.col2im(w_t @ gchunk, gxpad, y0, y1 - y0)
        elif gxpad is not None:
            for y0, y1 in geo.row_chunks():
                geo.col2im(w_t @ g2[..., y0:y1, :].reshape(lead + (og, -1)), gxpad, y0, y1 - y0)
        gx = gw = gb = None
        if gxpad is not None:
            gx = geo.crop(gxpad).transpose(3, 0, 1, 2)
        if need_w:
            gw = geo.weight_from_matrix(xp, gfull_t[..., :k, :].swapaxes(-1, -2))
            if ctx.has_bias:
                gb = gfull_t[..., k, :].reshape(geo.o).copy()
        return (gx, gw, gb) if ctx.has_bias else (gx, gw)


def conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation) -> int:
    """PyTorch's output length of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


class ConvTranspose2d(Function):
    """Transposed convolution of x (N, C_in, H, W) with weight (C_in, C_out/G, kh, kw), plus bias (C_out,).

    The adjoint of ``Conv2d`` with that weight from (N, C_out, Ho, Wo) to x's shape: forward is the
    convolution's col2im, backward its im2col. ``stride``, ``padding``, ``output_padding`` and
    ``dilation`` are (h, w) pairs; output_padding adds rows/columns at the bottom/right only.
    """

    saves = (0,)  # the batch-last input (a view of x when x already is batch-last) feeds the weight gradient

    def forward(ctx, x, weight, *bias, stride, padding, output_padding, dilation, groups):
        xp = ctx.xp
        n, _, h, w = x.shape
        c_out = weight.shape[1] * groups
        size = [conv_transpose_output_size(x.shape[2 + a], weight.shape[2 + a], stride[a], padding[a],
                                           output_padding[a], dilation[a]) for a in (0, 1)]
        pads = (padding[0], padding[0], padding[1], padding[1])
        geo = conv_geometry((n, c_out, size[0], size[1]), weight.shape, stride, pads, dilation, groups, (h, w))
        wmat = geo.weight_matrix(xp, weight)
        xl = xp.ascontiguousarray(batch_last(x)).reshape(geo.lead + (geo.og, h, -1))
        outpad = xp.zeros((c_out, size[0] + 2 * pads[0], size[1] + 2 * pads[2], n), dtype=x.dtype)
        w_t = wmat.swapaxes(-1, -2)
        for y0, y1 in geo.row_chunks():
            geo.col2im(w_t @ xl[..., y0:y1, :].reshape(geo.lead + (geo.og, -1)), outpad, y0, y1 - y0)
        out = geo.crop(outpad)
        if bias:
            out = out + bias[0].reshape(c_out, 1, 1, 1)
        elif out.base is not None:  # cropped: don't keep the padded margins alive
            out = xp.ascontiguousarray(out)
        ctx.geo, ctx.xl, ctx.wmat, ctx.has_bias = geo, xl, wmat, bool(bias)
        return out.transpose(3, 0, 1, 2)

    def backward(ctx, g):
        xp, geo = ctx.xp, ctx.geo
        needs = ctx.needs_input_grad
        lead, og = geo.lead, geo.og
        gx = gw = gb = None
        if needs[0] or needs[1]:
            gpad = padded_batch_last(xp, g, geo.pads)
            gxl = xp.empty(lead + (og, geo.ho, geo.wo * geo.n), dtype=g.dtype) if needs[0] else None
            gwmat = xp.zeros(lead + (og, geo.k), dtype=g.dtype) if needs[1] else None
            for y0, y1, cols in geo.chunks(xp, gpad, False):
                if gxl is not None:
                    xp.matmul(ctx.wmat, cols, out=gxl[..., y0:y1, :].reshape(lead + (og, -1)))
                if gwmat is not None:
                    gwmat += ctx.xl[..., y0:y1, :].reshape(lead + (og, -1)) @ cols.swapaxes(-1, -2)
            if gxl is not None:
                gx = gxl.reshape(geo.o, geo.ho, geo.wo, geo.n).transpose(3, 0, 1, 2)
            if gwmat is not None:
                gw = geo.weight_from_matrix(xp, gwmat)
        if ctx.has_bias and needs[2]:
            gb = g.sum(axis=(0, 2, 3))
        return (gx, gw, gb) if ctx.has_bias else (gx, gw)
