"""Op-table rows: activations, (log-)softmax and dropout."""

from __future__ import annotations

import ember.nn.functional as F

from .case import OpCase

OPS: list[OpCase] = [
    OpCase("sigmoid", lambda a: a.sigmoid(), lambda T, a: a.sigmoid(), ((3, 4),)),
    OpCase("relu", lambda a: a.relu(), lambda T, a: a.relu(), ((3, 4),), domain="away_from_zero"),
    OpCase("gelu", lambda a: F.gelu(a), lambda T, a: T.nn.functional.gelu(a), ((3, 4),)),
    OpCase(
        "gelu_tanh",
        lambda a: F.gelu(a, approximate="tanh"),
        lambda T, a: T.nn.functional.gelu(a, approximate="tanh"),
        ((3, 4),),
    ),
    OpCase("silu", lambda a: F.silu(a), lambda T, a: T.nn.functional.silu(a), ((3, 4),)),
    OpCase("softmax", lambda x: F.softmax(x, axis=1), lambda T, x: T.softmax(x, dim=1), ((3, 4, 2),)),
    OpCase("log_softmax", lambda x: F.log_softmax(x), lambda T, x: T.log_softmax(x, dim=-1), ((3, 5),)),
    OpCase("dropout", lambda x: F.dropout(x, 0.3), None, ((5, 6),), reseed=True),
]
