"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d (PyTorch's arguments, names and init)."""

from __future__ import annotations

import math
import operator

import numpy as np

from ... import backend
from .. import functional as F
from .. import init
from ..module import Module, Parameter

__all__ = [
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(name: str, arg: str, value, n: int) -> tuple:
    """PyTorch's ``_single``/``_pair`` with a check: an int or n ints -> an n-tuple."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n:
        raise ValueError(f"{name}: {arg} must be an int or a tuple of {n} ints, got {value!r}")
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise TypeError(f"{name}: {arg} must be an int or a tuple of ints, got {value!r}") from None


class _ConvNd(Module):
    """What every convolution layer shares: argument checks, parameters, PyTorch's init and repr."""

    _spatial = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
                 bias: bool, padding_mode: str, output_padding=0, device=None, dtype=None):
        super().__init__()
        name, n = type(self).__name__, self._spatial
        if min(in_channels, out_channels) <= 0:
            raise ValueError(f"{name}: in_channels and out_channels must be positive, "
                             f"got {in_channels}, {out_channels}")
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        self.kernel_size = _tuple(name, "kernel_size", kernel_size, n)
        self.stride = _tuple(name, "stride", stride, n)
        self.dilation = _tuple(name, "dilation", dilation, n)
        self.output_padding = _tuple(name, "output_padding", output_padding, n)
        for arg in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, arg)) <= 0:
                raise ValueError(f"{name}: {arg} must be positive, got {getattr(self, arg)}")
        self.padding = self._check_padding(name, padding)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: padding_mode={padding_mode!r} is not implemented in ember, only 'zeros'; "
                             "pad the input yourself and use padding=0")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode, self.transposed = padding_mode, self._transposed
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dt)) if bias else None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def _check_padding(self, name: str, padding):
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: invalid padding string {padding!r}, should be 'valid' or 'same'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions "
                                 f"(stride={self.stride})")
            return padding
        pads = _tuple(name, "padding", padding, self._spatial)
        if min(pads) < 0:
            raise ValueError(f"{name}: padding must be >= 0, got {pads}")
        return pads

    def reset_parameters(self) -> None:
        """PyTorch's default: weight kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1.0 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = self._spatial
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D cross-correlation over (N, C, H, W) or (C, H, W) inputs, computed as im2col + one GEMM.

    Args:
        in_channels, out_channels: C and O.
        kernel_size, stride, dilation: int or (h, w).
        padding: int, (h, w), 'valid' (none) or 'same' (output size = input size; stride 1 only).
        groups: split channels into groups convolved separately (groups == in_channels: depthwise).
        bias: learn a per-channel bias.
        padding_mode: 'zeros' only ('reflect', 'replicate', 'circular' raise).

    Shape: (N, C, H, W) -> (N, O, (H + 2p - d·(kh - 1) - 1)//s + 1, ...).

    Parameters: weight (O, C/groups, kh, kw), bias (O,). Init (PyTorch's default): kaiming_uniform
    with a=sqrt(5); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/groups·kh·kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D cross-correlation over (N, C, L) or (C, L) inputs; arguments as ``Conv2d`` with ints (or 1-tuples).

    Shape: (N, C, L) -> (N, O, (L + 2p - d·(k - 1) - 1)//s + 1). Parameters: weight (O, C/groups, k), bias (O,).
    """

    _spatial = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def _check_padding(self, name: str, padding):
        if isinstance(padding, str):
            raise TypeError(f"{name}: padding must be an int or a tuple of ints, got {padding!r}")
        return super()._check_padding(name, padding)

    def _output_padding(self, x, output_size) -> tuple:
        """output_padding that gives ``output_size`` (PyTorch's rule; the layer's own when None)."""
        if output_size is None:
            return self.output_padding
        name, n = type(self).__name__, self._spatial
        output_size = tuple(output_size)
        batch_axes = 2 if x.ndim == n + 2 else 1
        if len(output_size) == batch_axes + n:
            output_size = output_size[batch_axes:]
        if len(output_size) != n:
            raise ValueError(f"{name}: output_size must have {n} or {n + batch_axes} elements for a {x.ndim}-D "
                             f"input, got {output_size}")
        smallest = [(x.shape[batch_axes + a] - 1) * self.stride[a] - 2 * self.padding[a]
                    + self.dilation[a] * (self.kernel_size[a] - 1) + 1 for a in range(n)]
        largest = [m + s - 1 for m, s in zip(smallest, self.stride)]
        if any(not lo <= size <= hi for size, lo, hi in zip(output_size, smallest, largest)):
            raise ValueError(f"{name}: requested an output size of {output_size}, but valid sizes range from "
                             f"{tuple(smallest)} to {tuple(largest)} (for an input of {tuple(x.shape[batch_axes:])})")
        return tuple(size - m for size, m in zip(output_size, smallest))


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution over (N, C_in, H, W) or (C_in, H, W) inputs: the gradient of a Conv2d.

    Args:
        in_channels, out_channels: C_in and C_out.
        kernel_size, stride, padding, dilation: int or (h, w); padding trims each side of the output.
        output_padding: int or (h, w), smaller than the stride or the dilation: rows/columns added at
            the bottom/right (``forward(x, output_size=...)`` picks it from a wanted size).
        groups, bias: as Conv2d. padding_mode: 'zeros' only.

    Shape: H_out = (H - 1)·s - 2p + d·(kh - 1) + output_padding + 1 (likewise W).

    Parameters: weight (C_in, C_out/groups, kh, kw) (PyTorch's layout), bias (C_out,); PyTorch's init,
    fan_in = C_out/groups·kh·kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)

    def forward(self, x, output_size=None):
        output_padding = self._output_padding(x, output_size)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                                  self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution over (N, C_in, L) or (C_in, L) inputs; arguments as ``ConvTranspose2d``."""

    _spatial = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)

    def forward(self, x, output_size=None):
        output_padding = self._output_padding(x, output_size)
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                                  self.dilation)
