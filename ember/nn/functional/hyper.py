"""Hyper-connections' functional pieces: the Sinkhorn–Knopp projection (``ember/ops/hyper.py``)."""

from __future__ import annotations

import operator

import numpy as np

from ...ops import hyper as H
from ...tensor import Tensor, apply

__all__ = ["rms_project", "sinkhorn", "stream_read", "stream_write"]


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


def stream_read(h: Tensor, x: Tensor) -> Tensor:
    """A hyper-connection's branch input Σ_i h_i X_i: weights h (..., n) or (n,), streams x (..., n, C) -> (..., C)."""
    n = x.shape[-2] if x.ndim >= 2 else None
    if n is None or h.shape[-1:] != (n,):
        raise ValueError(f"stream_read: weights {tuple(h.shape)} do not match streams {tuple(x.shape)} (..., n, C)")
    _same_float("stream_read", h, x)
    return apply(H.StreamRead, h, x)


def stream_write(x: Tensor, y: Tensor, h_post: Tensor, h_res: Tensor | None = None) -> Tensor:
    """The next streams h_res·X + h_postᵀ y (mix the old streams, then add the branch output to each):
    streams x (..., n, C), branch output y (..., C), h_post (..., n) or (n,), h_res (..., n, n), (n, n) or None."""
    if x.ndim < 2 or y.shape[-1:] != x.shape[-1:] or h_post.shape[-1:] != x.shape[-2:-1]:
        raise ValueError(f"stream_write: streams {tuple(x.shape)}, branch output {tuple(y.shape)} and h_post "
                         f"{tuple(h_post.shape)} do not fit (..., n, C), (..., C), (..., n)")
    mix = ()
    if h_res is not None:
        n = x.shape[-2]
        if h_res.shape[-2:] != (n, n):
            raise ValueError(f"stream_write: h_res {tuple(h_res.shape)} is not (..., {n}, {n})")
        mix = (h_res,)
    _same_float("stream_write", x, y, h_post, *mix)
    return apply(H.StreamWrite, x, y, h_post, *mix)


def rms_project(x: Tensor, phi: Tensor, eps: float | None = None) -> Tensor:
    """``rms_norm(x, x.shape[-1]) @ phi`` without the normalised copy of x (see ember/ops/hyper.py); ``eps=None``
    is the machine epsilon of x's dtype, as ``rms_norm``'s."""
    if x.ndim < 1 or phi.ndim != 2 or phi.shape[0] != x.shape[-1]:
        raise ValueError(f"rms_project: x {tuple(x.shape)} and phi {tuple(phi.shape)} do not fit (..., K) @ (K, M)")
    _same_float("rms_project", x, phi)
    eps = float(np.finfo(x.dtype).eps) if eps is None else float(eps)
    return apply(H.RMSProject, x, phi, eps=eps)


def _same_float(name: str, *tensors) -> None:
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
        raise TypeError(f"{name}: expected floating-point operands of one dtype, got {sorted(map(str, dtypes))}")
