"""Fully connected layer, and the Identity placeholder."""

from __future__ import annotations

import math

import numpy as np

from ... import backend
from .. import functional as F
from .. import init
from ..module import Module, Parameter

__all__ = [
    "Identity",
    "Linear",
]


class Identity(Module):
    """Returns its input unchanged; takes (and ignores) any arguments, so it can stand in for a layer.

    Shape: any -> the same tensor.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """y = x @ Wᵀ + b.

    Args:
        in_features, out_features: sizes of the last axis in and out.
        bias: learn an additive bias (default True).

    Shape: (..., in_features) -> (..., out_features).

    Init (PyTorch's default): W and b ~ U(-1/sqrt(in), 1/sqrt(in)), i.e. kaiming_uniform with a=sqrt(5).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: sizes must be positive, got in={in_features}, out={out_features}")
        self.in_features, self.out_features = in_features, out_features
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dt)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
