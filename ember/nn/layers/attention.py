"""Multi-head attention as PyTorch's ``nn.MultiheadAttention``: same parameters, names, masks and outputs."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...functions import cat, pad
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module, Parameter
from .linear import Linear

__all__ = [
    "MultiheadAttention",
]


class MultiheadAttention(Module):
    """Attention from ``num_heads`` heads over projected queries, keys and values, then an output projection.

    Args:
        embed_dim: E, the query (and output) size; split into ``num_heads`` heads of E / num_heads.
        num_heads: number of heads.
        dropout: dropout on the attention weights, in training mode.
        bias: biases on the input and output projections.
        add_bias_kv: learn one more key and value (``bias_k``, ``bias_v``) appended to the sequence.
        add_zero_attn: append a zero key and value to the sequence.
        kdim, vdim: key and value sizes (default E); when they differ from E the input projections are
            three matrices ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` instead of one
            ``in_proj_weight`` (3E, E), as in PyTorch.
        batch_first: inputs and outputs are (N, L, E) instead of (L, N, E).

    Shape: query (L, N, E), key (S, N, kdim), value (S, N, vdim) (or unbatched (L, E), ...) ->
    (output (L, N, E), weights (N, L, S) averaged over heads, or (N, H, L, S), or None).

    Masks, as PyTorch's: ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N·H, L, S) are either
    boolean, True where attention is *not* allowed, or float, added to the scores.

    Init (PyTorch's): xavier_uniform input projections, zero input and output biases, xavier_normal
    ``bias_k``/``bias_v``; the output projection keeps Linear's init.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, got {embed_dim}, "
                             f"{num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first, self.add_zero_attn = batch_first, add_zero_attn
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dt))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype=dt))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype=dt))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype=dt))
        self.register_parameter("in_proj_bias", Parameter(np.empty(3 * embed_dim, dtype=dt)) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dt)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), dtype=dt))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), dtype=dt))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query, key and value must all be 3-d (batched) or 2-d, got "
                             f"{query.shape}, {key.shape}, {value.shape}")
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal is a hint that attn_mask is the causal mask; pass the "
                             "mask too (as PyTorch requires)")
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _as_tensor(key_padding_mask, query).unsqueeze(0)
        elif self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        out, weights = self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                                    average_attn_weights)
        if not batched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        return (out.transpose(0, 1) if self.batch_first else out), weights

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights):
        """PyTorch's multi_head_attention_forward on (L, N, E) / (S, N, kdim|vdim) inputs."""
        L, N, E = query.shape
        H, hd = self.num_heads, self.head_dim
        if E != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(f"MultiheadAttention: expected feature sizes ({self.embed_dim}, {self.kdim}, "
                             f"{self.vdim}), got {query.shape}, {key.shape}, {value.shape}")
        if key.shape[:2] != value.shape[:2] or key.shape[1] != N:
            raise ValueError(f"MultiheadAttention: key {key.shape} and value {value.shape} must share (S, N) with "
                             f"the batch of query {query.shape}")
        q, k, v = self._project_inputs(query, key, value)
        attn_mask = _additive_mask(attn_mask, query, "attn_mask")
        key_padding_mask = _additive_mask(key_padding_mask, query, "key_padding_mask")
        if self.bias_k is not None:
            k = cat([k, self.bias_k.expand(1, N, E)])
            v = cat([v, self.bias_v.expand(1, N, E)])
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
        q = q.reshape(L, N * H, hd).transpose(0, 1)  # (N·H, L, hd)
        k = k.reshape(k.shape[0], N * H, hd).transpose(0, 1)  # (N·H, S, hd)
        v = v.reshape(v.shape[0], N * H, hd).transpose(0, 1)
        if self.add_zero_attn:
            zeros = Tensor(q.device.xp.zeros((N * H, 1, hd), dtype=q.dtype))
            k, v = cat([k, zeros], 1), cat([v, zeros], 1)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
        S = k.shape[1]
        mask = _merged_mask(attn_mask, key_padding_mask, N, H, L, S)
        p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * (1.0 / hd**0.5)) @ k.transpose(1, 2)  # (N·H, L, S)
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(-1)
            if p > 0:
                weights = F.dropout(weights, p)
            out = weights @ v  # (N·H, L, hd)
            weights = weights.reshape(N, H, L, S)
            weights = weights.mean(dim=1) if average_attn_weights else weights
        else:
            if mask is not None and mask.ndim == 3:
                mask = mask.reshape(N, H, mask.shape[1], S)
            out = F.scaled_dot_product_attention(q.reshape(N, H, L, hd), k.reshape(N, H, S, hd),
                                                 v.reshape(N, H, S, hd), attn_mask=mask, dropout_p=p)
            out, weights = out.reshape(N * H, L, hd), None
        out = out.transpose(0, 1).reshape(L, N, E)
        return self.out_proj(out), weights

    def _project_inputs(self, query, key, value):
        E = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:E], w[E : 2 * E], w[2 * E :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def extra_repr(self) -> str:
        s = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.batch_first:
            s += ", batch_first=True"
        return s


def _as_tensor(mask, like: Tensor) -> Tensor:
    return mask if isinstance(mask, Tensor) else Tensor(like.device.xp.asarray(mask))


def _additive_mask(mask, like: Tensor, name: str):
    """PyTorch's canonical mask: boolean True (not allowed) -> -inf, float kept, as ``like``'s dtype."""
    if mask is None:
        return None
    mask = _as_tensor(mask, like)
    if mask.dtype == np.bool_:
        xp = like.device.xp
        return Tensor(xp.where(mask.data, like.dtype.type(-np.inf), like.dtype.type(0)))
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {name} must be boolean or floating, got {mask.dtype}")
    if mask.dtype != like.dtype:
        raise TypeError(f"MultiheadAttention: {name} is {mask.dtype} but the query is {like.dtype}")
    return mask


def _pad_last(mask):
    """A mask extended by one allowed (0) key at the end, for an appended bias or zero key."""
    if mask is None:
        return None
    return pad(mask, (0, 1))


def _merged_mask(attn_mask, key_padding_mask, N, H, L, S):
    """attn_mask (L, S) or (N·H, L, S) plus key_padding_mask (N, S) -> an additive mask for the scores."""
    if attn_mask is not None:
        if attn_mask.shape not in ((L, S), (N * H, L, S)):
            raise ValueError(f"MultiheadAttention: attn_mask must be (L, S) = ({L}, {S}) or (N·H, L, S) = "
                             f"({N * H}, {L}, {S}), got {attn_mask.shape}")
    if key_padding_mask is not None:
        if key_padding_mask.shape != (N, S):
            raise ValueError(f"MultiheadAttention: key_padding_mask must be (N, S) = ({N}, {S}), got "
                             f"{key_padding_mask.shape}")
        kpm = key_padding_mask.reshape(N, 1, 1, S).expand(N, H, 1, S).reshape(N * H, 1, S)
        return kpm if attn_mask is None else attn_mask + kpm
    return attn_mask
