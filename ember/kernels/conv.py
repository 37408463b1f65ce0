"""col2im and im2col as one compiled loop each: ``ember.ops.conv``'s fast path.

The NumPy references are ``ConvGeometry.col2im`` (one strided slice add per kernel offset, kh·kw
NumPy calls per chunk of output rows) and ``ConvGeometry.chunks`` (one strided copy of every kernel
offset into the column buffer). Both arrays are batch-last, so every copy or add moves a run of N
contiguous elements, wo·N when the stride along W is 1; the loops here keep that run innermost,
where it vectorises.

Both kernels are exact. im2col only copies. col2im adds each input element's contributions in
the reference's order, kernel offset by kernel offset in row-major (i, j) order, so its sums are
the reference's floating-point sums, bit for bit: a given input row meets each kernel row i in at
most one output row, and a given input column each kernel column j in at most one output column,
so looping over i outside the output rows, and over j outside the output columns, visits an
element's contributions in (i, j) order.

Arrays arrive with the batch folded into the last axis: a batch-last (C, H, W, N) image as
(C, H, W·N), columns as (G, kh, kw, C/G, m, wo·N), G = 1 without groups.
"""

from __future__ import annotations

from . import jit


# The runs are 1-D views starting at their first element, indexed by the loop counter alone: with an
# offset added to one side's index (``row[start + q] += src[q]``) LLVM cannot prove the two ranges
# apart and leaves the loop scalar (measured 2x slower than NumPy's slice add).
@jit
def _add_run(dst, src, length):
    for q in range(length):
        dst[q] += src[q]


@jit
def _copy_run(dst, src, length):
    for q in range(length):
        dst[q] = src[q]


@jit
def _col2im(blocks, target, y0, n, sh, sw, dh, dw):
    """target[g·cg + c, (y0 + y)·sh + i·dh, (x·sw + j·dw)·n + q] += blocks[g, i, j, c, y, x·n + q]."""
    groups, kh, kw, cg, m, run = blocks.shape
    wo = run // n
    for g in range(groups):
        for c in range(cg):
            plane = target[g * cg + c]
            for i in range(kh):
                for y in range(m):
                    row = plane[(y0 + y) * sh + i * dh]
                    for j in range(kw):
                        src = blocks[g, i, j, c, y]
                        if sw == 1:  # the whole output row is one contiguous run in both arrays
                            _add_run(row[j * dw * n :], src, run)
                        else:
                            for x in range(wo):
                                _add_run(row[(x * sw + j * dw) * n :], src[x * n :], n)


@jit
def _im2col(image, cols, y0, n, kh, kw, sh, sw, dh, dw, one):
    """cols[g, (i·kw + j)·cg + c, y, x·n + q] = image[g·cg + c, (y0 + y)·sh + i·dh, (x·sw + j·dw)·n + q],
    and a last row of ``one`` per group when cols has a row more than the kernel's kh·kw·cg."""
    groups, rows, m, run = cols.shape
    cg = image.shape[0] // groups
    wo = run // n
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                for c in range(cg):
                    plane = image[g * cg + c]
                    dst_rows = cols[g, (i * kw + j) * cg + c]
                    for y in range(m):
                        src = plane[(y0 + y) * sh + i * dh]
                        dst = dst_rows[y]
                        if sw == 1:
                            _copy_run(dst, src[j * dw * n :], run)
                        else:
                            for x in range(wo):
                                _copy_run(dst[x * n :], src[(x * sw + j * dw) * n :], n)
        if rows > kh * kw * cg:  # the bias row
            for y in range(m):
                for q in range(run):
                    cols[g, rows - 1, y, q] = one


def col2im(gcols, gxpad, y0: int, m: int, kernel, stride, dilation, groups: int) -> None:
    """``ConvGeometry.col2im`` in one call: add gcols ([G,] k, m·wo·N) onto gxpad (C, Hp, Wp, N) in place."""
    c, hp, wp, n = gxpad.shape
    if gcols.size == 0:  # an empty batch or no channels: nothing to add
        return
    blocks = gcols.reshape(groups, kernel[0], kernel[1], c // groups, m, gcols.shape[-1] // m)
    _col2im(blocks, gxpad.reshape(c, hp, wp * n), y0, n, stride[0], stride[1], dilation[0], dilation[1])


def im2col(xpad, cols, y0: int, kernel, stride, dilation) -> None:
    """One chunk of ``ConvGeometry.chunks``: fill cols (G, k [+1], m, wo·N) from xpad (C, Hp, Wp, N) with
    (group, i, j, channel) rows, and the bias's row of ones when cols has one row more than k."""
    c, hp, wp, n = xpad.shape
    if cols.size == 0:  # an empty batch
        return
    _im2col(xpad.reshape(c, hp, wp * n), cols, y0, n, kernel[0], kernel[1], stride[0], stride[1],
            dilation[0], dilation[1], xpad.dtype.type(1))
