"""Dense maps (linear), embedding lookups and dropout."""

from __future__ import annotations

from ... import backend
from ...ops import linalg as L
from ...ops import nn as N
from ...tensor import Tensor, apply
from .checks import _same_dtype

__all__ = [
    "linear",
    "dropout",
    "embedding",
]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weightᵀ + bias, for x of shape (..., in_features)."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input has {x.shape[-1] if x.ndim else 'no'} features (shape {x.shape}) "
            f"but the weight {weight.shape} expects {weight.shape[1]}"
        )
    _same_dtype("linear", x, weight, bias)
    if bias is None:
        return apply(L.Linear, x, weight)
    return apply(L.Linear, x, weight, bias)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    if not 0.0 <= p < 1.0:
        if p == 1.0:
            return x * 0.0
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return apply(N.Dropout, x, p=p, generator=backend.generator(x.device))


def embedding(indices, weight: Tensor) -> Tensor:
    """Rows of ``weight`` at integer ``indices`` (any shape) -> indices.shape + (dim,)."""
    idx = indices.data if isinstance(indices, Tensor) else backend.device_of(weight.data).xp.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= weight.shape[0]):
        raise IndexError(
            f"embedding: index out of range [0, {weight.shape[0]}) (min {int(idx.min())}, max {int(idx.max())})"
        )
    return apply(N.Embedding, weight, indices=idx)
