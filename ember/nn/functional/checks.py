"""Argument checks shared by the functional families."""

from __future__ import annotations


def _same_dtype(name: str, *tensors) -> None:
    """Layer ops mix an input with parameters: all must share one float dtype (no silent float64)."""
    first = tensors[0].dtype
    for t in tensors[1:]:
        if t is not None and t.dtype != first:
            shapes = ", ".join(f"{tuple(u.shape)} {u.dtype}" for u in tensors if u is not None)
            raise TypeError(f"{name}: dtype mismatch ({shapes}); cast the input or the layer (.to(dtype))")


def _pair_int(value, name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"{name}: only square values are supported, got {value}")
        value = value[0]
    return int(value)
