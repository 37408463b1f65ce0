"""Separable resampling: interpolation (nearest, nearest-exact, linear/bilinear) and adaptive average pooling.

Each of these is a linear map applied along each spatial axis in turn: along an axis, output
position d is Σ w·input[s] over a few (d, s, w) taps. ``AxisMap`` holds one axis's taps, built
once on the host from PyTorch's index rules, split into groups in which every output position
appears at most once; applying a group is one ``take`` along the axis (times its weights), added
into the output, so the forward pass is a handful of whole-array gathers (one per nearest axis,
two per linear axis) and touches no position outside the taps (a NaN or inf stays where
PyTorch puts it). The backward pass applies the transposed map the same way, which is
PyTorch's scatter-add of the gradient onto the source positions without ``add.at``.
"""

from __future__ import annotations

import functools

import numpy as np

from ..autograd import Function
from .pool import adaptive_windows


class AxisMap:
    """A sparse linear map along one axis: out[d] = Σ w·in[s] over its (d, s, w) taps (host arrays)."""

    def __init__(self, dst, src, weight, out_size: int, in_size: int):
        self.dst, self.src, self.weight = dst, src, weight
        self.out_size, self.in_size = out_size, in_size
        self.groups = self._groups(dst, src, weight, out_size)
        self._transposed = None

    @staticmethod
    def _groups(dst, src, weight, out_size):
        """Split the taps into groups with distinct outputs: the k-th tap of every output goes to group k.

        Each group is (dst or None when it covers every output in order, src, weight or None when all 1).
        """
        if len(dst) == 0:
            return []
        order = np.argsort(dst, kind="stable")
        d, s, w = dst[order], src[order], weight[order]
        pos = np.arange(len(d))
        rank = pos - np.maximum.accumulate(np.where(np.r_[True, d[1:] != d[:-1]], pos, 0))  # k-th tap of its output
        groups = []
        for k in range(int(rank.max()) + 1):
            pick = rank == k
            gd, gs, gw = d[pick], s[pick], w[pick]
            full = len(gd) == out_size  # distinct and sorted, so it is arange(out_size)
            groups.append((None if full else gd, gs, None if (gw == 1).all() else gw))
        return groups

    def transpose(self) -> AxisMap:
        if self._transposed is None:
            self._transposed = AxisMap(self.src, self.dst, self.weight, self.in_size, self.out_size)
        return self._transposed

    def apply(self, xp, x, axis: int):
        """The map along ``axis`` of array ``x``, as a new array."""
        shape = x.shape[:axis] + (self.out_size,) + x.shape[axis + 1 :]
        trailing = (1,) * (x.ndim - axis - 1)
        out = None
        for dst, src, weight in self.groups:
            part = xp.take(x, xp.asarray(src), axis=axis)
            if weight is not None:
                part *= xp.asarray(weight, dtype=x.dtype).reshape((-1,) + trailing)
            if dst is None:
                if out is None:
                    out = part
                else:
                    out += part
            else:
                if out is None:
                    out = xp.zeros(shape, dtype=x.dtype)
                out[(slice(None),) * axis + (xp.asarray(dst),)] += part  # distinct positions: no lost adds
        return xp.zeros(shape, dtype=x.dtype) if out is None else out


def _taps(out_size: int, per_output: list[tuple], in_size: int) -> AxisMap:
    """An AxisMap from per-tap (src, weight) arrays, each of length out_size."""
    dst = np.concatenate([np.arange(out_size)] * len(per_output)) if per_output else np.zeros(0, np.int64)
    src = np.concatenate([s for s, _ in per_output]) if per_output else np.zeros(0, np.int64)
    weight = np.concatenate([w for _, w in per_output]) if per_output else np.zeros(0)
    return AxisMap(dst, src.astype(np.int64), weight, out_size, in_size)


def _fused_multiply_add(a, b, c, dtype):
    """a·b + c rounded once, as the FMA instruction PyTorch's compiled kernels contract such expressions to.

    For float32 the product of two float32 values is exact in float64, so one float64 add and one
    rounding reproduce the fused result; float64 is left to ordinary arithmetic (its differences stay
    far below the tolerances that matter).
    """
    if np.dtype(dtype) == np.float32:
        return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.float64(c)).astype(np.float32)
    return a * b + c


def _scale_f32(in_size: int, out_size: int, scale) -> np.float32:
    """PyTorch's ``compute_scales_value<float>``: 1/scale_factor when one was given, else in/out, in float32."""
    if scale is not None and scale > 0:
        return np.float32(1.0 / scale)
    return np.float32(in_size) / np.float32(out_size)


@functools.lru_cache(maxsize=256)
def nearest_map(in_size: int, out_size: int, scale=None, exact: bool = False, dtype=np.float64,
                one_d: bool = False) -> AxisMap | None:
    """'nearest' (PyTorch's legacy rule, src = floor(dst·scale)) or 'nearest-exact' (floor((dst + 0.5)·scale)).

    The arithmetic is PyTorch's, which differs by kernel: 2-D inputs go through its dedicated
    nearest kernel (float32 scale and product, shortcuts for same and double size); 1-D inputs
    through its generic one (scale and product in the input's precision, rounded to float32 before
    the floor). The two disagree for a few sizes (14 -> 46 in float64). None means the identity.
    """
    dst = np.arange(out_size)
    if one_d and np.dtype(dtype).kind == "f":
        t = np.dtype(dtype).type
        s = t(1.0 / scale) if scale is not None and scale > 0 else t(in_size) / t(out_size)
        d = dst.astype(dtype)
        if exact:  # floorf(area_pixel_compute_source_index(...) + 0.5)
            src = np.floor((_fused_multiply_add(s, d + t(0.5), t(-0.5), dtype) + t(0.5)).astype(np.float32))
        else:
            src = np.floor((s * d).astype(np.float32))
    elif not exact and out_size == in_size:
        return None
    elif not exact and out_size == 2 * in_size:
        src = dst >> 1
    else:
        s = _scale_f32(in_size, out_size, scale)
        if exact:  # floorf((dst + 0.5) * scale): a double product, rounded to float
            src = np.floor(((dst + 0.5) * np.float64(s)).astype(np.float32))
        else:  # floorf(dst * scale): a float product
            src = np.floor(dst.astype(np.float32) * s)
    src = np.minimum(src.astype(np.int64), in_size - 1)
    if out_size == in_size and np.array_equal(src, dst):
        return None
    return _taps(out_size, [(src, np.ones(out_size, dtype=dtype))], in_size)


@functools.lru_cache(maxsize=256)
def linear_map(in_size: int, out_size: int, scale=None, align_corners: bool = False, dtype=np.float64):
    """PyTorch's linear interpolation weights along one axis, computed in ``dtype`` as its kernel does.

    align_corners: src = dst·(in-1)/(out-1). Otherwise src = max((dst + 0.5)·scale - 0.5, 0),
    scale = 1/scale_factor when one was given, else in/out. Two taps: floor(src) and the next
    position (the same one at the last), weighted 1-λ and λ. None means the identity.
    """
    if out_size == in_size:
        return None
    t = np.dtype(dtype).type
    dst = np.arange(out_size).astype(dtype)
    if align_corners:
        s = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
        src = s * dst
    else:
        s = t(1.0 / scale) if scale is not None and scale > 0 else t(in_size) / t(out_size)
        src = np.maximum(_fused_multiply_add(s, dst + t(0.5), t(-0.5), dtype), t(0))
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)  # floorf, as PyTorch
    lam1 = np.clip(src - i0.astype(dtype), t(0), t(1))
    i1 = i0 + (i0 < in_size - 1)
    return _taps(out_size, [(i0, t(1) - lam1), (i1, lam1)], in_size)


@functools.lru_cache(maxsize=256)
def area_map(in_size: int, out_size: int, dtype=np.float64) -> AxisMap | None:
    """Adaptive average pooling along one axis: the mean over PyTorch's adaptive windows."""
    if out_size == in_size:
        return None
    start, end = adaptive_windows(in_size, out_size)
    length = end - start
    dst = np.repeat(np.arange(out_size), length)
    first_tap = np.repeat(np.cumsum(length) - length, length)
    src = np.repeat(start, length) + (np.arange(len(dst)) - first_tap)
    weight = np.repeat(np.dtype(dtype).type(1) / length.astype(dtype), length)
    return AxisMap(dst, src.astype(np.int64), weight, out_size, in_size)


class Resample(Function):
    """x (..., *in) -> (..., *out): one ``AxisMap`` (or None, the identity) per trailing axis, last axis first."""

    saves = ()

    def forward(ctx, x, maps):
        xp = ctx.xp
        out = x
        first = x.ndim - len(maps)
        for k in reversed(range(len(maps))):
            if maps[k] is not None:
                out = maps[k].apply(xp, out, first + k)
        ctx.maps = maps
        return out.copy() if out is x else out

    def backward(ctx, g):
        xp = ctx.xp
        first = g.ndim - len(ctx.maps)
        for k, m in enumerate(ctx.maps):
            if m is not None:
                g = m.transpose().apply(xp, g, first + k)
        return g
