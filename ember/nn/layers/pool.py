"""Pooling layers."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = [
    "MaxPool2d",
    "AvgPool2d",
]


class _Pool2d(Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over k×k windows. Shape: (N, C, H, W) -> (N, C, (H + 2p - k)//s + 1, ...)."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over k×k windows (zero padding counts toward the mean)."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
