"""Op-table rows: attention (the GPT's fused causal layer, PyTorch's scaled_dot_product_attention)."""

from __future__ import annotations

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F

from .case import LayerCase, OpCase, _t, copy_params
from .references import torch_causal_attention

_mask_rng = np.random.default_rng(99)
BOOL_MASK_3x5 = _mask_rng.random((3, 5)) > 0.4
BOOL_MASK_3x5[1] = False  # a query that may attend to nothing: PyTorch gives zeros
BOOL_MASK_3x5[0, 0] = True
BOOL_MASK_HEADS = _mask_rng.random((2, 1, 4, 4)) > 0.3  # (B, 1, L, S): per batch, shared by the heads
BOOL_MASK_HEADS[..., 0] = True


def _sdpa(**kwargs):
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kwargs)


def _torch_sdpa(**kwargs):
    return lambda T, q, k, v: T.nn.functional.scaled_dot_product_attention(q, k, v, **kwargs)


def _bool_mask(mask):
    return (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=ember.tensor(mask)),
            lambda T, q, k, v: T.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=_t(T, mask)))


OPS: list[OpCase] = [
    OpCase("causal_self_attention", lambda x: F.causal_self_attention(x, 2),
           lambda T, x: torch_causal_attention(T, x, 2), ((2, 5, 12),)),
    OpCase("causal_self_attention_1head_len1", lambda x: F.causal_self_attention(x, 1),
           lambda T, x: torch_causal_attention(T, x, 1), ((3, 1, 6),)),
    OpCase("causal_self_attention_dropout", lambda x: F.causal_self_attention(x, 2, dropout=0.3),
           None, ((2, 4, 12),), reseed=True),
    OpCase("sdpa", _sdpa(), _torch_sdpa(), ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6))),
    OpCase("sdpa_3d_scale", _sdpa(scale=0.3), _torch_sdpa(scale=0.3), ((2, 4, 3), (2, 6, 3), (2, 6, 2))),
    OpCase("sdpa_causal_fewer_queries", _sdpa(is_causal=True), _torch_sdpa(is_causal=True),
           ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4))),
    OpCase("sdpa_causal_more_queries", _sdpa(is_causal=True), _torch_sdpa(is_causal=True),
           ((2, 5, 4), (2, 3, 4), (2, 3, 4))),
    OpCase("sdpa_bool_mask_with_empty_row", *_bool_mask(BOOL_MASK_3x5), ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3))),
    OpCase("sdpa_bool_mask_per_batch", *_bool_mask(BOOL_MASK_HEADS), ((2, 3, 4, 4), (2, 3, 4, 4), (2, 3, 4, 4))),
    OpCase("sdpa_float_mask_differentiable",
           lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
           lambda T, q, k, v, m: T.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
           ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4), (3, 5))),
    OpCase("sdpa_broadcast_batch", _sdpa(), _torch_sdpa(), ((2, 3, 3, 4), (1, 3, 5, 4), (1, 3, 5, 4))),
    OpCase("sdpa_gqa", _sdpa(enable_gqa=True), _torch_sdpa(enable_gqa=True),
           ((2, 4, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3))),
    OpCase("sdpa_dropout", _sdpa(dropout_p=0.4), None, ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 4)), reseed=True),
]


class _SelfAttention(nn.Module):
    """A MultiheadAttention used as self-attention with a key padding mask: one tensor in, one out."""

    def __init__(self, need_weights: bool, **kwargs):
        super().__init__()
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True, **kwargs)
        self.need_weights = need_weights

    def forward(self, x):
        pad = ember.tensor(PADDING[: x.shape[0], : x.shape[1]])
        out, w = self.attn(x, x, x, key_padding_mask=pad, need_weights=self.need_weights)
        return out if w is None else out + w.sum()


def _torch_self_attention(need_weights: bool, **kwargs):
    def build(T, m):
        class TorchSelfAttention(T.nn.Module):
            def __init__(self):
                super().__init__()
                self.attn = T.nn.MultiheadAttention(6, 2, batch_first=True, **kwargs)

            def forward(self, x):
                pad = T.from_numpy(PADDING[: x.shape[0], : x.shape[1]])
                out, w = self.attn(x, x, x, key_padding_mask=pad, need_weights=need_weights)
                return out if w is None else out + w.sum()

        return copy_params(T, m, TorchSelfAttention())

    return build


PADDING = np.zeros((3, 4), dtype=bool)
PADDING[1, -1] = PADDING[2, -2:] = True

LAYERS: list[LayerCase] = [
    LayerCase("MultiheadAttention_self_padding_weights", lambda: _SelfAttention(True),
              _torch_self_attention(True), (3, 4, 6)),
    LayerCase("MultiheadAttention_fused_bias_kv_zero_attn",
              lambda: _SelfAttention(False, add_bias_kv=True, add_zero_attn=True),
              _torch_self_attention(False, add_bias_kv=True, add_zero_attn=True), (3, 4, 6)),
]
