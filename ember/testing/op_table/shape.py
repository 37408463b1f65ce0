"""Op-table rows: shape and indexing."""

from __future__ import annotations

import ember

from .case import BOOL_MASK, INDEX_REPEATS, OpCase, _t

OPS: list[OpCase] = [
    OpCase("reshape", lambda a: a.reshape(4, 6) * 1.0, lambda T, a: a.reshape(4, 6), ((2, 3, 4),)),
    OpCase("permute", lambda a: a.permute(2, 0, 1), lambda T, a: a.permute(2, 0, 1), ((2, 3, 4),)),
    OpCase("transpose", lambda a: a.transpose(0, 2), lambda T, a: a.transpose(0, 2), ((2, 3, 4),)),
    OpCase("expand", lambda a: a.expand(2, 3, 4), lambda T, a: a.expand(2, 3, 4), ((3, 1),)),
    OpCase("getitem_slice", lambda a: a[1:, ::2], lambda T, a: a[1:, ::2], ((3, 4),)),
    OpCase("getitem_int_array_repeats", lambda a: a[INDEX_REPEATS], lambda T, a: a[_t(T, INDEX_REPEATS)],
           ((3, 4),)),
    OpCase("getitem_bool_mask", lambda a: a[BOOL_MASK], lambda T, a: a[_t(T, BOOL_MASK)], ((3, 4),)),
    OpCase("getitem_mixed", lambda a: a[1, INDEX_REPEATS[:3]], lambda T, a: a[1, _t(T, INDEX_REPEATS[:3])],
           ((3, 4),)),
    OpCase("concat", lambda a, b: ember.cat([a, b], axis=1), lambda T, a, b: T.cat([a, b], dim=1),
           ((2, 3), (2, 5))),
    OpCase("stack", lambda a, b: ember.stack([a, b], axis=1), lambda T, a, b: T.stack([a, b], dim=1),
           ((2, 3), (2, 3))),
    OpCase("split", lambda a: a.split([1, 3], axis=1)[1] * a.split(2, axis=1)[0].sum(),
           lambda T, a: T.split(a, [1, 3], dim=1)[1] * T.split(a, 2, dim=1)[0].sum(), ((3, 4),)),
    OpCase("pad", lambda a: ember.pad(a, (1, 2, 0, 1)), lambda T, a: T.nn.functional.pad(a, (1, 2, 0, 1)),
           ((2, 3, 4),)),
]
