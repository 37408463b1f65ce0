"""Pooling layers: max, average and adaptive pooling in 1-D and 2-D (PyTorch's arguments and repr)."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
]


class _MaxPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """Max over kh×kw windows; ties go to the first maximum (row-major), which alone gets the gradient.

    Args:
        kernel_size, stride (default: kernel_size), padding (at most half the kernel), dilation: int or (h, w).
        return_indices: also return each maximum's flat position in its H·W input plane.
        ceil_mode: round the output size up.

    Shape: (N, C, H, W) or (C, H, W) -> (…, (H + 2p - d·(kh - 1) - 1)/s + 1, ...), rounded down (up with ceil_mode).
    """

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class MaxPool1d(_MaxPoolNd):
    """Max over windows of (N, C, L) or (C, L) inputs; arguments as ``MaxPool2d`` (ints)."""

    def forward(self, x):
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)


class AvgPool2d(Module):
    """Mean over kh×kw windows.

    Args:
        kernel_size, stride (default: kernel_size), padding (at most half the kernel): int or (h, w).
        ceil_mode: round the output size up.
        count_include_pad: count the zero padding in each window's divisor (default True).
        divisor_override: divide every window's sum by this instead.

    Shape: (N, C, H, W) or (C, H, W) -> (…, (H + 2p - kh)/s + 1, ...), rounded down (up with ceil_mode).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _single(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


class AvgPool1d(Module):
    """Mean over windows of (N, C, L) or (C, L) inputs; arguments as ``AvgPool2d`` (kept as 1-tuples, as PyTorch)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool):
    """Mean over PyTorch's adaptive windows [floor(i·H/oh), ceil((i+1)·H/oh)) to a fixed output size.

    Args:
        output_size: int or (oh, ow); a None entry keeps that input size.

    Shape: (N, C, H, W) or (C, H, W) -> (…, oh, ow).
    """

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveAvgPool1d(_AdaptivePool):
    """Mean over adaptive windows of (N, C, L) or (C, L) inputs to length ``output_size``."""

    def forward(self, x):
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveMaxPool2d(_AdaptivePool):
    """Max over PyTorch's adaptive windows (see ``AdaptiveAvgPool2d``); ``return_indices`` as ``MaxPool2d``."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptivePool):
    """Max over adaptive windows of (N, C, L) or (C, L) inputs."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, x):
        return F.adaptive_max_pool1d(x, self.output_size, self.return_indices)
