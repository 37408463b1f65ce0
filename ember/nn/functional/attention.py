"""Attention."""

from __future__ import annotations

from ... import backend
from ...ops import attention as A
from ...tensor import Tensor, apply

__all__ = [
    "causal_self_attention",
]


def causal_self_attention(qkv: Tensor, n_head: int, dropout: float = 0.0, training: bool = True) -> Tensor:
    """Causal multi-head attention from the fused projection qkv (B, T, 3C) to merged heads (B, T, C)."""
    if qkv.ndim != 3 or qkv.shape[-1] % 3 or (qkv.shape[-1] // 3) % n_head:
        raise ValueError(f"causal_self_attention: expected qkv (B, T, 3C) with C divisible by n_head={n_head}, "
                         f"got {qkv.shape}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"causal_self_attention: dropout must be in [0, 1), got {dropout}")
    p = dropout if training else 0.0
    gen = backend.generator(qkv.device) if p > 0 else None
    return apply(A.CausalSelfAttention, qkv, n_head=int(n_head), dropout=p, generator=gen)
