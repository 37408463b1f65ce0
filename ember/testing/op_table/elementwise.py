"""Op-table rows: arithmetic with broadcasting, scalar forms, unary math, clipping and casts."""

from __future__ import annotations

import ember

from .case import WHERE_COND, OpCase, _other_float, _t

OPS: list[OpCase] = [
    OpCase("add", lambda a, b: a + b, lambda T, a, b: a + b, ((3, 4), (3, 4))),
    OpCase("add_broadcast", lambda a, b: a + b, lambda T, a, b: a + b, ((2, 3, 4), (3, 1))),
    OpCase("sub_broadcast", lambda a, b: a - b, lambda T, a, b: a - b, ((3, 1), (1, 4))),
    OpCase("mul_broadcast", lambda a, b: a * b, lambda T, a, b: a * b, ((2, 3, 4), (4,))),
    OpCase("div", lambda a, b: a / b, lambda T, a, b: a / b, ((3, 4), (1, 4)), domain="positive"),
    OpCase("pow_tensor", lambda a, b: a**b, lambda T, a, b: a**b, ((3, 4), (3, 4)), domain="positive"),
    OpCase("neg", lambda a: -a, lambda T, a: -a, ((3, 4),)),
    OpCase("add_scalar", lambda a: a + 2.5, lambda T, a: a + 2.5, ((3, 4),)),
    OpCase("rsub_scalar", lambda a: 1.5 - a, lambda T, a: 1.5 - a, ((3, 4),)),
    OpCase("mul_scalar", lambda a: a * -3.0, lambda T, a: a * -3.0, ((3, 4),)),
    OpCase("div_scalar", lambda a: a / 4.0, lambda T, a: a / 4.0, ((3, 4),)),
    OpCase("rdiv_scalar", lambda a: 2.0 / a, lambda T, a: 2.0 / a, ((3, 4),), domain="positive"),
    OpCase("pow_scalar_2", lambda a: a**2, lambda T, a: a**2, ((3, 4),)),
    OpCase("pow_scalar_frac", lambda a: a**1.5, lambda T, a: a**1.5, ((3, 4),), domain="positive"),
    OpCase("rpow_scalar", lambda a: 2.0**a, lambda T, a: 2.0**a, ((3, 4),)),
    OpCase("maximum", lambda a, b: ember.maximum(a, b), lambda T, a, b: T.maximum(a, b), ((3, 4), (3, 4))),
    OpCase("minimum_broadcast", lambda a, b: ember.minimum(a, b), lambda T, a, b: T.minimum(a, b), ((3, 4), (4,))),
    OpCase(
        "where",
        lambda a, b: ember.where(ember.tensor(WHERE_COND), a, b),
        lambda T, a, b: T.where(_t(T, WHERE_COND), a, b),
        ((3, 4), (3, 4)),
    ),
    OpCase("exp", lambda a: a.exp(), lambda T, a: a.exp(), ((3, 4),)),
    OpCase("log", lambda a: a.log(), lambda T, a: a.log(), ((3, 4),), domain="positive"),
    OpCase("sqrt", lambda a: a.sqrt(), lambda T, a: a.sqrt(), ((3, 4),), domain="positive"),
    OpCase("abs", lambda a: a.abs(), lambda T, a: a.abs(), ((3, 4),), domain="away_from_zero"),
    OpCase("tanh", lambda a: a.tanh(), lambda T, a: a.tanh(), ((3, 4),)),
    OpCase("sin", lambda a: a.sin(), lambda T, a: a.sin(), ((3, 4),)),
    OpCase("cos", lambda a: ember.cos(a), lambda T, a: a.cos(), ((3, 4),)),
    OpCase("clip", lambda a: a.clip(-0.5, 0.7), lambda T, a: a.clamp(-0.5, 0.7), ((4, 5),)),
    OpCase("clip_min", lambda a: a.clip(min=0.2), lambda T, a: a.clamp(min=0.2), ((4, 5),)),
    OpCase("cast_roundtrip", lambda x: x.to(_other_float(x.dtype)).to(x.dtype) * 2.0, None, ((3, 4),), atol=1e-4,
           eps=1e-2),
    OpCase("masked_fill", lambda a: a.masked_fill(ember.tensor(WHERE_COND), -1.5),
           lambda T, a: a.masked_fill(_t(T, WHERE_COND), -1.5), ((3, 4),)),
    OpCase("masked_fill_broadcast_mask", lambda a: a.masked_fill(ember.tensor(WHERE_COND[0]), 2.0),
           lambda T, a: a.masked_fill(_t(T, WHERE_COND[0]), 2.0), ((2, 3, 4),)),
    OpCase("masked_fill_tensor_value", lambda a, v: a.masked_fill(ember.tensor(WHERE_COND), v),
           lambda T, a, v: a.masked_fill(_t(T, WHERE_COND), v), ((3, 4), ())),
    OpCase("tril", lambda a: a.tril(), lambda T, a: a.tril(), ((2, 3, 4),)),
    OpCase("tril_below", lambda a: ember.tril(a, -1), lambda T, a: T.tril(a, -1), ((4, 3),)),
    OpCase("triu_above", lambda a: a.triu(1), lambda T, a: a.triu(1), ((2, 4, 5),)),
    OpCase("triu_negative", lambda a: ember.triu(a, diagonal=-2), lambda T, a: T.triu(a, diagonal=-2), ((5, 3),)),
]
