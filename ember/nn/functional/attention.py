"""Attention."""

from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...ops import attention as A
from ...tensor import Tensor, apply
from .checks import _same_dtype

__all__ = [
    "causal_self_attention",
    "scaled_dot_product_attention",
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


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """PyTorch's ``F.scaled_dot_product_attention``: softmax(q kᵀ·scale + mask) v, one fused op.

    Shapes: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); batch axes broadcast.
    ``attn_mask`` (broadcastable to (..., L, S)): boolean, True where a query may attend to a key, or a
    float tensor added to the scores (differentiable). ``is_causal``: query i sees keys 0..i (top-left
    aligned). ``scale`` defaults to 1/sqrt(E). A query with no allowed key gets zeros. ``dropout_p`` drops
    attention weights whenever it is positive (as PyTorch: pass 0.0 in evaluation). ``enable_gqa``: key
    and value may have fewer heads (axis -3) than query, each shared by a group of query heads.
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: {name} must be a tensor of shape (..., seq, features), "
                             f"got {getattr(t, 'shape', type(t).__name__)}")
    _same_dtype("scaled_dot_product_attention", query, key, value)
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query {query.shape} and key {key.shape} must have the same "
                         "last (feature) size")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key {key.shape} and value {value.shape} must have the same "
                         "sequence length (axis -2)")
    if attn_mask is not None and is_causal:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal, not both (as in PyTorch)")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}")
    xp = query.device.xp
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    bias_t, masks = None, ()
    if is_causal:
        bias_t = A.causal_mask_t(xp, S, L, dtype=query.dtype)
    elif attn_mask is not None:
        m = attn_mask if isinstance(attn_mask, Tensor) else Tensor(xp.asarray(attn_mask))
        try:
            np.broadcast_shapes(m.shape, (L, S))
        except ValueError:
            raise ValueError(f"scaled_dot_product_attention: attn_mask {m.shape} does not broadcast to (L, S) = "
                             f"({L}, {S})") from None
        if m.dtype == np.bool_:
            bias = xp.where(m.data, query.dtype.type(0), query.dtype.type(-np.inf))
            bias_t = bias.swapaxes(-1, -2)
        elif m.dtype.kind == "f":
            _same_dtype("scaled_dot_product_attention", query, m)
            masks = (m,)
        else:
            raise TypeError(f"scaled_dot_product_attention: attn_mask must be boolean or {query.dtype}, got {m.dtype}")
    q, k, v, lead = query, key, value, None
    if enable_gqa and query.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        q, k, v, masks, bias_t, lead = _group_heads(query, key, value, masks, bias_t)
    gen = backend.generator(query.device) if dropout_p > 0 else None
    out = apply(A.ScaledDotProductAttention, q, k, v, *masks, bias_t=bias_t, scale=scale, dropout=float(dropout_p),
                generator=gen)
    return out if lead is None else out.reshape(lead + out.shape[-2:])


def _group_heads(query, key, value, masks, bias_t):
    """Grouped-query attention by broadcasting: q (..., Hk, G, L, E) against k, v (..., Hk, 1, S, E)."""
    hq, hk = query.shape[-3], key.shape[-3]
    if hk != value.shape[-3] or hq % hk:
        raise ValueError(f"scaled_dot_product_attention: with enable_gqa, query heads ({hq}) must be a multiple of "
                         f"key/value heads ({hk}, {value.shape[-3]})")
    g = hq // hk
    q = query.reshape(query.shape[:-3] + (hk, g) + query.shape[-2:])
    k, v = key.unsqueeze(-3), value.unsqueeze(-3)

    def split(m):
        if m.ndim < 3 or m.shape[-3] == 1:
            return m.reshape(m.shape[:-2] + (1,) + m.shape[-2:]) if m.ndim >= 3 else m
        return m.reshape(m.shape[:-3] + (hk, g) + m.shape[-2:])

    masks = tuple(split(m) for m in masks)
    if bias_t is not None and bias_t.ndim >= 3:
        b = split(Tensor(bias_t.swapaxes(-1, -2))).data
        bias_t = b.swapaxes(-1, -2)
    return q, k, v, masks, bias_t, query.shape[:-2]
