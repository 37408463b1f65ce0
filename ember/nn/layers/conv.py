"""2-D convolution layer."""

from __future__ import annotations

import math

import numpy as np

from ... import backend
from .. import functional as F
from .. import init
from ..module import Module, Parameter

__all__ = [
    "Conv2d",
]


class Conv2d(Module):
    """2-D cross-correlation over (N, C, H, W) inputs, computed as im2col + one GEMM.

    Args:
        in_channels, out_channels: C and O.
        kernel_size: k (square kernels).
        stride, padding: as in PyTorch (square).
        bias: learn a per-channel bias.

    Shape: (N, C, H, W) -> (N, O, (H + 2p - k)//s + 1, (W + 2p - k)//s + 1).

    Init (PyTorch's default): kaiming_uniform with a=sqrt(5); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, dtype=None):
        super().__init__()
        if min(in_channels, out_channels, kernel_size, stride) <= 0 or padding < 0:
            raise ValueError(
                f"Conv2d: channels, kernel_size and stride must be positive and padding >= 0, got "
                f"in={in_channels}, out={out_channels}, k={kernel_size}, stride={stride}, padding={padding}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=dt))
        self.register_parameter("bias", Parameter(np.empty(out_channels, dtype=dt)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding:
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s
