"""Normalisation layers' functions: layer, group, RMS and batch norm."""

from __future__ import annotations

import operator

import numpy as np

from ...ops import nn as N
from ...tensor import Tensor, apply
from .checks import _same_dtype

__all__ = [
    "layer_norm",
    "group_norm",
    "rms_norm",
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
    if training and _values_per_channel(x.shape) == 1:
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


def _values_per_channel(shape) -> int:
    """N·(spatial size): how many values batch statistics average per channel (0 for an empty batch)."""
    return shape[0] * int(np.prod(shape[2:], dtype=np.int64))


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, *) over each group of C/num_groups channels (and all positions) per sample,
    then scale and shift per channel with ``weight``/``bias`` (C,) when given."""
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected an (N, C, *) input with at least 2 dimensions, got shape {x.shape}")
    channels = x.shape[1]
    num_groups = _positive_int("group_norm", "num_groups", num_groups)
    if channels % num_groups:
        raise ValueError(f"group_norm: the {channels} channels of input {x.shape} are not divisible into "
                         f"num_groups={num_groups} groups")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(f"group_norm: {name} must have shape ({channels},) for input {x.shape}, got {t.shape}")
    if _values_per_channel((x.shape[0] * channels // num_groups, num_groups) + tuple(x.shape[2:])) == 1:
        raise ValueError(f"group_norm: expected more than 1 value per channel (as PyTorch checks), got input "
                         f"{x.shape} with num_groups={num_groups}")
    _same_dtype("group_norm", x, weight, bias)
    params = [t for t in (weight, bias) if t is not None]
    return apply(N.GroupNorm, x, *params, num_groups=num_groups, eps=float(eps),
                 has_weight=weight is not None, has_bias=bias is not None)


def rms_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x²) + eps) over the trailing ``normalized_shape`` axes, times ``weight`` if given.

    ``eps=None`` means the machine epsilon of x's dtype (PyTorch 2.4+).
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape:
        raise ValueError("rms_norm: normalized_shape must name at least one trailing axis, got ()")
    if tuple(x.shape[-len(shape):]) != shape or x.ndim < len(shape):
        raise ValueError(f"rms_norm: input {x.shape} does not end with normalized_shape {shape}")
    if weight is not None and tuple(weight.shape) != shape:
        raise ValueError(f"rms_norm: weight must have the normalized_shape {shape}, got {weight.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"rms_norm: expected a floating-point input, got {x.dtype}")
    _same_dtype("rms_norm", x, weight)
    eps = float(np.finfo(x.dtype).eps) if eps is None else float(eps)
    params = () if weight is None else (weight,)
    return apply(N.RMSNorm, x, *params, ndim=len(shape), eps=eps, has_weight=weight is not None)


def _positive_int(fn: str, name: str, value) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int, got {value!r}") from None
    if value <= 0:
        raise ValueError(f"{fn}: {name} must be positive, got {value}")
    return value
