"""Convolution, pooling and resampling, with PyTorch's signatures, defaults and argument rules.

The checks and the ``int | tuple`` normalisation live here; the ops (``ember.ops.conv``,
``ember.ops.pool``, ``ember.ops.resample``) receive normalised pairs. 1-D functions run the 2-D
op with a kernel one row high; unbatched inputs (no N axis) get a batch of one and lose it again.
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from ... import backend
from ...ops import conv as C
from ...ops import pool as P
from ...ops import resample as R
from ...tensor import Tensor, apply
from .checks import _same_dtype

__all__ = [
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "interpolate",
]


# ----------------------------------------------------------------------------- argument helpers


def _index(name: str, arg: str, value) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: {arg} must be an int or a tuple of ints, got {value!r} "
                        f"({type(value).__name__})") from None


def _ints(name: str, arg: str, value, n: int) -> tuple:
    """PyTorch's ``_single``/``_pair``: an int, or a sequence of 1 or ``n`` ints, as an n-tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, n):
            raise ValueError(f"{name}: {arg} must be an int or a tuple of {n} ints, got {value!r}")
        ints = tuple(_index(name, arg, v) for v in value)
        return ints * n if len(ints) == 1 else ints
    return (_index(name, arg, value),) * n


def _positive(name: str, arg: str, values: tuple) -> None:
    if min(values) < 1:
        raise ValueError(f"{name}: {arg} must be positive, got {values}")


def _non_negative(name: str, arg: str, values: tuple) -> None:
    if min(values) < 0:
        raise ValueError(f"{name}: {arg} must be >= 0, got {values}")


def _batched(name: str, x: Tensor, spatial: int, what: str):
    """(x with a batch axis, whether one was added): PyTorch accepts unbatched (C, *spatial) inputs too."""
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return x.reshape((1,) + tuple(x.shape)), True
    raise ValueError(f"{name}: expected an input of shape {what} or, unbatched, without N; got {tuple(x.shape)}")


def _to_2d(x: Tensor) -> Tensor:
    """(N, C, L) -> (N, C, 1, L): 1-D ops run the 2-D op on one row."""
    n, c, length = x.shape
    return x.reshape(n, c, 1, length)


def _from_2d(y: Tensor) -> Tensor:
    n, c, _, length = y.shape
    return y.reshape(n, c, length)


def _unbatch(y: Tensor, added: bool) -> Tensor:
    return y.reshape(tuple(y.shape[1:])) if added else y


def _xp(t: Tensor):
    return backend.array_module(t.data)


def _floating(name: str, *tensors) -> None:
    """These ops compute in floating point; PyTorch's integer convolution and average pooling are not offered."""
    for t in tensors:
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{name}: expected floating-point tensors, got {t.dtype} of shape {tuple(t.shape)}; "
                            "convert it with .float()")


def _check_output_size(name: str, sizes: tuple, out: tuple, advice: str, **settings) -> None:
    """Refuse a convolution or pooling whose output would have a size below 1 on some axis.

    The one check behind every op of this module (PyTorch: "Output size is too small" / "Kernel size
    can't be greater than actual input size"); the message names the input size, every setting and
    the computed output size.
    """
    if min(out) < 1:
        shown = ", ".join(f"{key} {value}" for key, value in settings.items())
        raise ValueError(f"{name}: input of size {sizes} gives an output of size {out} with {shown}; "
                         f"the output size is too small ({advice})")


def _shown_pads(pads: tuple) -> tuple:
    """Per-axis (before, after) padding as the user wrote it: one number where both sides are equal."""
    return tuple(a if a == b else (a, b) for a, b in pads)


def _memo(check):
    """Cache a pure argument check by its arguments (shapes and settings), which repeat every training step.

    The key is the arguments' repr: one C-level call, and it tells 1 from 1.0 and from a NumPy integer
    (a hash key would let 1.0 hit the entry of 1). A check that raises is not cached; the results are
    shared, so callers must not change them.
    """
    cache: dict = {}

    @functools.wraps(check)
    def call(*args):
        key = repr(args)
        result = cache.get(key)
        if result is None:
            result = check(*args)
            if len(cache) >= 512:
                cache.clear()
            cache[key] = result
        return result

    return call


# ----------------------------------------------------------------------------- convolution

_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)"}
_WEIGHTS = {1: "(out_channels, in_channels/groups, k)", 2: "(out_channels, in_channels/groups, kh, kw)"}


def _conv_padding(name: str, padding, stride: tuple, dilation: tuple, kernel: tuple) -> tuple:
    """Per-axis (before, after) zero padding from an int, a tuple, 'valid' or 'same'.

    'same' pads d·(k-1) in total, the odd one at the end (bottom/right), as PyTorch does.
    """
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride}); use stride 1 or give the padding as numbers")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            return tuple((t // 2, t - t // 2) for t in totals)
        raise ValueError(f"{name}: invalid padding string {padding!r}; use 'valid', 'same', an int or a tuple")
    pads = _ints(name, "padding", padding, n)
    _non_negative(name, "padding", pads)
    return tuple((p, p) for p in pads)


@_memo
def _conv_attrs(name, x_shape, w_shape, bias_shape, stride, padding, dilation, groups, spatial: int) -> dict:
    """The 2-D op's attributes for a convolution of these shapes, checked as PyTorch checks them."""
    if len(w_shape) != spatial + 2:
        raise ValueError(f"{name}: weight must be {_WEIGHTS[spatial]}, got shape {w_shape}")
    stride = _ints(name, "stride", stride, spatial)
    dilation = _ints(name, "dilation", dilation, spatial)
    groups = _index(name, "groups", groups)
    _positive(name, "stride", stride)
    _positive(name, "dilation", dilation)
    _positive(name, "groups", (groups,))
    out_channels, group_channels = w_shape[:2]
    kernel = w_shape[2:]
    if out_channels % groups:
        raise ValueError(f"{name}: the weight's {out_channels} output channels (shape {w_shape}) "
                         f"are not divisible by groups={groups}")
    if x_shape[1] != group_channels * groups:
        raise ValueError(f"{name}: input {x_shape} has {x_shape[1]} channels but the weight "
                         f"{w_shape} with groups={groups} expects {group_channels * groups} channels")
    if bias_shape is not None and bias_shape != (out_channels,):
        raise ValueError(f"{name}: bias must have shape ({out_channels},) for weight {w_shape}, got {bias_shape}")
    pads = _conv_padding(name, padding, stride, dilation, kernel)
    sizes = x_shape[2:]
    out = tuple(C.conv_output_size(n, k, st, a + b, d) for n, k, st, (a, b), d in zip(sizes, kernel, stride, pads,
                                                                                      dilation))
    _check_output_size(name, sizes, out, "the padded input is smaller than the kernel; pad the input or use a "
                       "smaller kernel", kernel=kernel, stride=stride, padding=_shown_pads(pads), dilation=dilation)
    if spatial == 1:
        stride, dilation, pads = (1,) + stride, (1,) + dilation, ((0, 0),) + pads
    return {"stride": stride, "padding": pads[0] + pads[1], "dilation": dilation, "groups": groups}


def _shape_of(t: Tensor | None):
    return None if t is None else tuple(t.shape)


def _conv(name, x, weight, bias, stride, padding, dilation, groups, spatial: int) -> Tensor:
    def attrs(x_shape):
        return _conv_attrs(name, x_shape, tuple(weight.shape), _shape_of(bias), stride, padding, dilation, groups,
                           spatial)

    return _convolve(name, C.Conv2d, x, weight, bias, spatial, attrs)


def _convolve(name, op, x, weight, bias, spatial: int, attrs_for) -> Tensor:
    """Run a 2-D convolution op (1-D inputs as height-1 images, unbatched inputs as a batch of one)."""
    x, added = _batched(name, x, spatial, _LAYOUTS[spatial])
    attrs = attrs_for(tuple(x.shape))
    _floating(name, x, weight, bias)
    _same_dtype(name, x, weight, bias)
    if spatial == 1:
        x, weight = _to_2d(x), weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2])
    args = (x, weight) if bias is None else (x, weight, bias)
    out = apply(op, *args, **attrs)
    return _unbatch(_from_2d(out) if spatial == 1 else out, added)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation of input (N, C, H, W) or (C, H, W) with weight (O, C/groups, kh, kw), as PyTorch's.

    Args:
        stride, dilation: int or (h, w).
        padding: int, (h, w), 'valid' (none) or 'same' (output size = input size; stride 1 only).
        groups: convolve ``groups`` slices of the channels separately (groups == C: depthwise).

    Shape: (N, C, H, W) -> (N, O, (H + 2p - d·(kh-1) - 1)//s + 1, ...).
    """
    return _conv("conv2d", input, weight, bias, stride, padding, dilation, groups, spatial=2)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation of input (N, C, L) or (C, L) with weight (O, C/groups, k); arguments as ``conv2d``."""
    return _conv("conv1d", input, weight, bias, stride, padding, dilation, groups, spatial=1)


@_memo
def _conv_transpose_attrs(name, x_shape, w_shape, bias_shape, stride, padding, output_padding, groups, dilation,
                          spatial: int) -> dict:
    """The 2-D op's attributes for a transposed convolution of these shapes, checked as PyTorch checks them."""
    if len(w_shape) != spatial + 2:
        raise ValueError(f"{name}: weight must be (in_channels, out_channels/groups, "
                         f"{'k' if spatial == 1 else 'kh, kw'}), got shape {w_shape}")
    if isinstance(padding, str):
        raise TypeError(f"{name}: padding must be an int or a tuple of ints, got {padding!r} "
                        "('valid'/'same' exist for convolutions only)")
    stride, padding, output_padding, dilation = (
        _ints(name, arg, v, spatial) for arg, v in
        (("stride", stride), ("padding", padding), ("output_padding", output_padding), ("dilation", dilation)))
    groups = _index(name, "groups", groups)
    _positive(name, "stride", stride)
    _positive(name, "dilation", dilation)
    _positive(name, "groups", (groups,))
    _non_negative(name, "padding", padding)
    _non_negative(name, "output_padding", output_padding)
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{name}: output_padding {output_padding} must be smaller than either the stride {stride} "
                         f"or the dilation {dilation}")
    in_channels, group_out = w_shape[:2]
    kernel = w_shape[2:]
    if in_channels % groups:
        raise ValueError(f"{name}: the weight's {in_channels} input channels (shape {w_shape}) "
                         f"are not divisible by groups={groups}")
    if x_shape[1] != in_channels:
        raise ValueError(f"{name}: input {x_shape} has {x_shape[1]} channels but the weight "
                         f"{w_shape} expects {in_channels} channels (its first axis)")
    out_channels = group_out * groups
    if bias_shape is not None and bias_shape != (out_channels,):
        raise ValueError(f"{name}: bias must have shape ({out_channels},) for weight {w_shape} "
                         f"and groups={groups}, got {bias_shape}")
    sizes = x_shape[2:]
    out = tuple(C.conv_transpose_output_size(*a) for a in zip(sizes, kernel, stride, padding, output_padding, dilation))
    _check_output_size(name, sizes, out, "reduce the padding", kernel=kernel, stride=stride, padding=padding,
                       dilation=dilation, output_padding=output_padding)
    if spatial == 1:
        stride, padding, output_padding, dilation = ((1,) + stride, (0,) + padding, (0,) + output_padding,
                                                     (1,) + dilation)
    return {"stride": stride, "padding": padding, "output_padding": output_padding, "dilation": dilation,
            "groups": groups}


def _conv_transpose(name, x, weight, bias, stride, padding, output_padding, groups, dilation, spatial: int) -> Tensor:
    def attrs(x_shape):
        return _conv_transpose_attrs(name, x_shape, tuple(weight.shape), _shape_of(bias), stride, padding,
                                     output_padding, groups, dilation, spatial)

    return _convolve(name, C.ConvTranspose2d, x, weight, bias, spatial, attrs)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution ("deconvolution") of input (N, C_in, H, W) or (C_in, H, W), as PyTorch's.

    The gradient of ``conv2d`` with respect to its input, for weight (C_in, C_out/groups, kh, kw)
    (PyTorch's layout). ``padding`` trims rows/columns from each side of the full output;
    ``output_padding`` (smaller than the stride or the dilation) adds rows/columns at the bottom/right,
    choosing among the input sizes that a strided conv2d maps to the same output size.

    Shape: H_out = (H - 1)·s - 2p + d·(kh - 1) + output_padding + 1 (likewise W).
    """
    return _conv_transpose("conv_transpose2d", input, weight, bias, stride, padding, output_padding, groups,
                           dilation, spatial=2)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution of input (N, C_in, L) or (C_in, L) with weight (C_in, C_out/groups, k)."""
    return _conv_transpose("conv_transpose1d", input, weight, bias, stride, padding, output_padding, groups,
                           dilation, spatial=1)


# ----------------------------------------------------------------------------- pooling


def _pool_input(name: str, x: Tensor, spatial: int):
    """(N, C, H, W) version of a pooling input and whether a batch axis was added; PyTorch's emptiness rule."""
    x, added = _batched(name, x, spatial, _LAYOUTS[spatial])
    if 0 in tuple(x.shape[1:]):
        raise ValueError(f"{name}: the input {tuple(x.shape)} is empty outside the batch axis; pooling needs at "
                         "least one channel and one position")
    return (_to_2d(x) if spatial == 1 else x), added


def _pool_window(name, x4, kernel_size, stride, padding, dilation, ceil_mode, spatial: int):
    """Normalised (kernel, stride, padding, dilation) pairs for the 2-D op, checked as PyTorch checks them."""
    return _pool_window_of(name, tuple(x4.shape[2:]), kernel_size, stride, padding, dilation, bool(ceil_mode), spatial)


@_memo
def _pool_window_of(name, sizes, kernel_size, stride, padding, dilation, ceil_mode, spatial: int):
    kernel = _ints(name, "kernel_size", kernel_size, spatial)
    empty_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty_stride else _ints(name, "stride", stride, spatial)
    padding = _ints(name, "padding", padding, spatial)
    dilation = _ints(name, "dilation", dilation, spatial)
    _positive(name, "kernel_size", kernel)
    _positive(name, "stride", stride)
    _positive(name, "dilation", dilation)
    _non_negative(name, "padding", padding)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{name}: padding {padding} must be at most half the kernel size {kernel}")
    if spatial == 1:
        kernel, stride, padding, dilation = (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation
    out = tuple(P.pool_output_size(*a, ceil_mode) for a in zip(sizes, kernel, stride, padding, dilation))
    last = slice(-spatial, None)  # the user's axes, without the row that 1-D pooling adds
    advice = "use a smaller kernel or more padding" + ("" if ceil_mode else ", or ceil_mode=True")
    _check_output_size(name, sizes[last], out[last], advice,
                       kernel=kernel[last], stride=stride[last], padding=padding[last], dilation=dilation[last],
                       ceil_mode=ceil_mode)
    return kernel, stride, padding, dilation


def _finish_pool(out: Tensor, spatial: int, added: bool) -> Tensor:
    return _unbatch(_from_2d(out) if spatial == 1 else out, added)


def _max_pool(name, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, spatial: int):
    if spatial == 1:  # PyTorch max-pools integers in 2-D only
        _floating(name, x)
    x4, added = _pool_input(name, x, spatial)
    window = _pool_window(name, x4, kernel_size, stride, padding, dilation, ceil_mode, spatial)
    ceil_mode = bool(ceil_mode)
    kernel, stride, padding, dilation = window
    out = apply(P.MaxPool2d, x4, kernel=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    out = _finish_pool(out, spatial, added)
    if not return_indices:
        return out
    indices = Tensor(P.max_pool2d_indices(_xp(x4), x4.data, *window, ceil_mode))
    return out, _finish_pool(indices, spatial, added)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over kh×kw windows of input (N, C, H, W) or (C, H, W), as PyTorch's.

    Args:
        kernel_size, stride (default: kernel_size), padding (at most half the kernel; pads with -inf),
        dilation: int or (h, w).
        ceil_mode: round the output size up (a last, partial window that starts inside the input).
        return_indices: also return each maximum's flat position in its H·W input plane (int64).
    Ties go to the first maximum in row-major order, which alone gets the gradient.
    """
    return _max_pool("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """Max over windows of input (N, C, L) or (C, L); arguments as ``max_pool2d`` (indices into L)."""
    return _max_pool("max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def _avg_pool(name, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, spatial: int):
    _floating(name, x)
    x4, added = _pool_input(name, x, spatial)
    kernel, stride, padding, _ = _pool_window(name, x4, kernel_size, stride, padding, 1, ceil_mode, spatial)
    if divisor_override is not None:
        divisor_override = _index(name, "divisor_override", divisor_override)
        if divisor_override == 0:
            raise ValueError(f"{name}: divisor_override must not be zero; pass None to divide by the window size")
    out = apply(P.AvgPool2d, x4, kernel=kernel, stride=stride, padding=padding, ceil_mode=bool(ceil_mode),
                count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
    return _finish_pool(out, spatial, added)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over kh×kw windows of input (N, C, H, W) or (C, H, W), as PyTorch's.

    Args:
        kernel_size, stride (default: kernel_size), padding (at most half the kernel): int or (h, w).
        ceil_mode: round the output size up (a last, partial window that starts inside the input).
        count_include_pad: count the zero padding in the divisor (never the part of a ceil_mode window
            beyond the padding).
        divisor_override: divide every window's sum by this instead.
    """
    return _avg_pool("avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over windows of input (N, C, L) or (C, L); arguments as ``avg_pool2d``."""
    return _avg_pool("avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def _adaptive_size(name: str, output_size, in_sizes: tuple) -> tuple:
    """An int or tuple of ints (None: keep the input's size) -> a tuple of output sizes."""
    n = len(in_sizes)
    if output_size is None:
        raise TypeError(f"{name}: output_size must be an int or a tuple of {n} (ints or None), got None")
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != n:
            raise ValueError(f"{name}: output_size must be an int or a tuple of {n}, got {output_size!r}")
        values = tuple(output_size)
    else:
        values = (output_size,) * n
    sizes = tuple(size if v is None else _index(name, "output_size", v) for size, v in zip(in_sizes, values))
    _non_negative(name, "output_size", sizes)
    return sizes


def _adaptive_input(name: str, x: Tensor, spatial: int) -> None:
    _floating(name, x)
    if x.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(f"{name}: expected an input of shape {_LAYOUTS[spatial]} or, unbatched, without N; "
                         f"got {tuple(x.shape)}")
    if 0 in tuple(x.shape[-spatial:]) or (x.ndim == spatial + 2 and x.shape[1] == 0):
        raise ValueError(f"{name}: the input {tuple(x.shape)} is empty outside the batch axis")


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Mean over PyTorch's adaptive windows, [floor(i·H/oh), ceil((i+1)·H/oh)), to (…, oh, ow).

    ``output_size``: int or (oh, ow), a None entry keeping that input size. Input (N, C, H, W) or (C, H, W).
    """
    _adaptive_input("adaptive_avg_pool2d", input, 2)
    h, w = input.shape[-2:]
    oh, ow = _adaptive_size("adaptive_avg_pool2d", output_size, (h, w))
    dtype = np.dtype(input.dtype)
    return apply(R.Resample, input, maps=(R.area_map(h, oh, dtype), R.area_map(w, ow, dtype)))


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Mean over adaptive windows of input (N, C, L) or (C, L) to length ``output_size``."""
    _adaptive_input("adaptive_avg_pool1d", input, 1)
    length = input.shape[-1]
    (out,) = _adaptive_size("adaptive_avg_pool1d", output_size, (length,))
    return apply(R.Resample, input, maps=(R.area_map(length, out, np.dtype(input.dtype)),))


def _adaptive_max(name, x, output_size, return_indices, spatial: int):
    _adaptive_input(name, x, spatial)
    sizes = _adaptive_size(name, output_size, tuple(x.shape[-spatial:]))
    x4, added = _batched(name, x, spatial, _LAYOUTS[spatial])
    if spatial == 1:
        x4, sizes = _to_2d(x4), (1,) + sizes
    out = _finish_pool(apply(P.AdaptiveMaxPool2d, x4, output_size=sizes), spatial, added)
    if not return_indices:
        return out
    indices = Tensor(P.adaptive_max_pool2d_indices(_xp(x4), x4.data, sizes))
    return out, _finish_pool(indices, spatial, added)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max over PyTorch's adaptive windows (as ``adaptive_avg_pool2d``); the first maximum gets the gradient."""
    return _adaptive_max("adaptive_max_pool2d", input, output_size, return_indices, 2)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max over adaptive windows of input (N, C, L) or (C, L)."""
    return _adaptive_max("adaptive_max_pool1d", input, output_size, return_indices, 1)


# ----------------------------------------------------------------------------- interpolation

_MODE_DIMS = {"nearest": (1, 2), "nearest-exact": (1, 2), "linear": (1,), "bilinear": (2,), "area": (1, 2)}


def _interpolate_sizes(x: Tensor, size, scale_factor, recompute_scale_factor, dims: int):
    """(output sizes, scale factors handed to the kernels or Nones), by PyTorch's rules."""
    in_sizes = tuple(x.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("interpolate: either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
        if isinstance(size, (tuple, list)) and len(size) != dims:
            raise ValueError(f"interpolate: size {size!r} must have one entry per spatial axis of the input "
                             f"{tuple(x.shape)} ({dims})")
        out = tuple(_index("interpolate", "size", s) for s in size) if isinstance(size, (tuple, list)) \
            else (_index("interpolate", "size", size),) * dims
        scales = (None,) * dims
    else:
        if isinstance(scale_factor, (tuple, list)):
            if len(scale_factor) != dims:
                raise ValueError(f"interpolate: scale_factor {scale_factor!r} must have one entry per spatial axis "
                                 f"of the input {tuple(x.shape)} ({dims})")
            scales = tuple(float(s) for s in scale_factor)
        else:
            scales = (float(scale_factor),) * dims
        out = tuple(math.floor(n * s) for n, s in zip(in_sizes, scales))
        if recompute_scale_factor:
            scales = (None,) * dims
    if min(in_sizes) <= 0 or min(out) <= 0:
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, got input {in_sizes} "
                         f"and output {out}")
    return out, scales


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial axes of input (N, C, L) or (N, C, H, W), as ``torch.nn.functional.interpolate``.

    Args:
        size: output size (int or one per spatial axis); or
        scale_factor: output size = floor(input size · scale_factor), and the kernels sample with
            1/scale_factor (PyTorch's rule) unless ``recompute_scale_factor`` is True.
        mode: 'nearest' (PyTorch's legacy rule: source = floor(dst·scale)), 'nearest-exact'
            (floor((dst + 0.5)·scale)), 'linear' (3-D), 'bilinear' (4-D) or 'area' (adaptive average pooling).
        align_corners: linear modes only: map the corner pixels' centres onto each other (True) or
            the corners' edges (False, the default).
    """
    if mode not in _MODE_DIMS:
        raise ValueError(f"interpolate: mode {mode!r} is not supported; use one of {sorted(_MODE_DIMS)}")
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                             f"linear | bilinear (got mode={mode!r}); leave it None")
    else:
        align_corners = bool(align_corners)
    dims = input.ndim - 2
    if dims not in _MODE_DIMS[mode]:
        wanted = " or ".join(f"{d + 2}-D" for d in _MODE_DIMS[mode])
        raise ValueError(f"interpolate: mode {mode!r} needs a {wanted} input (N, C, ...), "
                         f"got shape {tuple(input.shape)}")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported by ember")
    _floating("interpolate", input)
    out, scales = _interpolate_sizes(input, size, scale_factor, recompute_scale_factor, dims)
    in_sizes = tuple(input.shape[2:])
    if mode == "area":
        return adaptive_avg_pool2d(input, out) if dims == 2 else adaptive_avg_pool1d(input, out)
    dtype = np.dtype(input.dtype)
    if mode == "nearest" or mode == "nearest-exact":
        exact = mode == "nearest-exact"
        maps = tuple(R.nearest_map(n, o, s, exact, dtype, dims == 1) for n, o, s in zip(in_sizes, out, scales))
    else:
        maps = tuple(R.linear_map(n, o, s, align_corners, dtype) for n, o, s in zip(in_sizes, out, scales))
    return apply(R.Resample, input, maps=maps)
