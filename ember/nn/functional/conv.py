"""Convolution and pooling."""

from __future__ import annotations

from ...ops import conv as C
from ...tensor import Tensor, apply
from .checks import _pair_int, _same_dtype

__all__ = [
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw)."""
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected input of shape (N, C, H, W), got {x.shape}")
    _same_dtype("conv2d", x, weight, bias)
    stride, padding = _pair_int(stride, "conv2d stride"), _pair_int(padding, "conv2d padding")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    args = (x, weight) if bias is None else (x, weight, bias)
    return apply(C.Conv2d, *args, stride=stride, padding=padding)


def _pool_args(x, kernel_size, stride, padding, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input of shape (N, C, H, W), got {x.shape}")
    k = _pair_int(kernel_size, f"{name} kernel_size")
    s = k if stride is None else _pair_int(stride, f"{name} stride")
    p = _pair_int(padding, f"{name} padding")
    if k < 1 or s < 1 or p < 0 or p > k // 2:
        raise ValueError(f"{name}: need kernel >= 1, stride >= 1 and 0 <= padding <= kernel/2, got {k}, {s}, {p}")
    return k, s, p


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    k, s, p = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    return apply(C.MaxPool2d, x, kernel=k, stride=s, padding=p)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    k, s, p = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    return apply(C.AvgPool2d, x, kernel=k, stride=s, padding=p)
