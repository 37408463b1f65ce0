"""Normalisation layers' functions."""

from __future__ import annotations

from ...ops import nn as N
from ...tensor import Tensor, apply
from .checks import _same_dtype

__all__ = [
    "layer_norm",
    "batch_norm",
]


def layer_norm(x: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape) :]) != shape:
        raise ValueError(f"layer_norm: input {x.shape} does not end with normalized_shape {shape}")
    _same_dtype("layer_norm", x, weight, bias)
    params = [t for t in (weight, bias) if t is not None]
    return apply(
        N.LayerNorm, x, *params, ndim=len(shape), eps=eps, has_weight=weight is not None, has_bias=bias is not None
    )


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1); updates the running statistics in place when training."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected (N, C, ...) input, got {x.shape}")
    if training and x.size(0) * (x.numel() // (x.size(0) * x.size(1))) <= 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got input {x.shape}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: evaluation needs running statistics")
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias or neither")
    _same_dtype("batch_norm", x, weight, bias)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and (t.dtype != x.dtype or t.shape != (x.shape[1],)):
            raise TypeError(f"batch_norm: {name} is {t.dtype} {t.shape}, expected {x.dtype} ({x.shape[1]},)")
    params = () if weight is None else (weight, bias)
    return apply(
        N.BatchNorm,
        x,
        *params,
        running_mean=None if running_mean is None else running_mean.data,
        running_var=None if running_var is None else running_var.data,
        training=training,
        momentum=momentum,
        eps=eps,
        has_affine=weight is not None,
    )
