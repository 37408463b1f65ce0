"""Op-table rows: attention."""

from __future__ import annotations

import ember.nn.functional as F

from .case import OpCase
from .references import torch_causal_attention

OPS: list[OpCase] = [
    OpCase("causal_self_attention", lambda x: F.causal_self_attention(x, 2),
           lambda T, x: torch_causal_attention(T, x, 2), ((2, 5, 12),)),
    OpCase("causal_self_attention_1head_len1", lambda x: F.causal_self_attention(x, 1),
           lambda T, x: torch_causal_attention(T, x, 1), ((3, 1, 6),)),
    OpCase("causal_self_attention_dropout", lambda x: F.causal_self_attention(x, 2, dropout=0.3),
           None, ((2, 4, 12),), reseed=True),
]
