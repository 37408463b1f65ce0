"""Normalisation layers: LayerNorm, GroupNorm, RMSNorm, BatchNorm1d, BatchNorm2d."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...tensor import Tensor
from .. import functional as F
from ..module import Module, Parameter

__all__ = [
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "BatchNorm1d",
    "BatchNorm2d",
]


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes, then scale (weight) and shift (bias).

    ``elementwise_affine=False`` drops both; ``bias=False`` keeps only the scale (nanoGPT's default).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()

        self.register_parameter("weight", Parameter(np.ones(shape, dtype=dt)) if elementwise_affine else None)
        self.register_parameter(
            "bias", Parameter(np.zeros(shape, dtype=dt)) if elementwise_affine and bias else None
        )

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, affine={self.weight is not None}"


class GroupNorm(Module):
    """Group normalisation (Wu & He, 2018): statistics per sample over groups of channels.

    Args:
        num_groups: how many groups the channels are split into (must divide ``num_channels``).
        num_channels: C, the size of axis 1 of the input.
        eps: added to the variance for stability.
        affine: learn a per-channel scale (``weight``, init 1) and shift (``bias``, init 0).
        bias: with ``affine``, whether to learn the shift (keyword-only, as in PyTorch).

    Shape: (N, C, *) -> the same shape.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, dtype=None, *,
                 bias: bool = True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups}), a positive number")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        self.register_parameter("weight", Parameter(np.ones(num_channels, dtype=dt)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_channels, dtype=dt)) if affine and bias else None)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class RMSNorm(Module):
    """Root-mean-square normalisation (Zhang & Sennrich, 2019) over the trailing ``normalized_shape`` axes.

    Args:
        normalized_shape: the trailing shape to normalise over (an int for the last axis).
        eps: added to the mean square; None (default) means the machine epsilon of the input's dtype.
        elementwise_affine: learn a scale ``weight`` (init 1) of ``normalized_shape``.

    Shape: (*, normalized_shape) -> the same shape.
    """

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        self.register_parameter("weight", Parameter(np.ones(shape, dtype=dt)) if elementwise_affine else None)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class _BatchNorm(Module):
    """Per-channel normalisation with batch statistics in training and running ones in eval."""

    expected_ndim: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()

        self.register_parameter("weight", Parameter(np.ones(num_features, dtype=dt)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dt)) if affine else None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dt)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, x):
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}): expected input with {self.expected_ndim} dims "
                f"and {self.num_features} channels on axis 1, got {x.shape}"
            )
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch_stats, momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.weight is not None}"


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L)."""

    expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W)."""

    expected_ndim = (4,)
