"""Hyper-connections' functional pieces: the Sinkhorn–Knopp projection (``ember/ops/hyper.py``)."""

from __future__ import annotations

import operator

from ...ops import hyper as H
from ...tensor import Tensor, apply

__all__ = ["sinkhorn"]


def sinkhorn(logits: Tensor, iters: int = 20) -> Tensor:
    """Doubly stochastic matrices (..., n, n) from logits: ``iters`` column-then-row normalisations of
    ``exp(logits)`` in the log domain; rows sum to 1 exactly, columns to within the residual left after
    ``iters`` iterations (see ember/ops/hyper.py). Differentiable through every iteration."""
    try:
        iters = operator.index(iters)
    except TypeError:
        raise TypeError(f"sinkhorn: iters must be an int, got {iters!r}") from None
    if iters < 1:
        raise ValueError(f"sinkhorn: iters must be at least 1, got {iters}")
    if logits.ndim < 2 or logits.shape[-1] != logits.shape[-2]:
        raise ValueError(f"sinkhorn: expected square matrices (..., n, n), got shape {tuple(logits.shape)}")
    if logits.dtype.kind != "f":
        raise TypeError(f"sinkhorn: expected floating-point logits, got {logits.dtype}")
    return apply(H.Sinkhorn, logits, iters=iters)
