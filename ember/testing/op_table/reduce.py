"""Op-table rows: reductions."""

from __future__ import annotations

from .case import OpCase

OPS: list[OpCase] = [
    OpCase("sum_all", lambda a: a.sum(), lambda T, a: a.sum(), ((3, 4),)),
    OpCase("sum_axis", lambda a: a.sum(axis=1), lambda T, a: a.sum(dim=1), ((2, 3, 4),)),
    OpCase("sum_axes_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
           lambda T, a: a.sum(dim=(0, 2), keepdim=True), ((2, 3, 4),)),
    OpCase("mean_axis", lambda a: a.mean(axis=-1), lambda T, a: a.mean(dim=-1), ((2, 3, 4),)),
    OpCase("mean_all", lambda a: a.mean(), lambda T, a: a.mean(), ((2, 3, 4),)),
    OpCase("max_axis", lambda a: a.max(axis=1), lambda T, a: T.amax(a, dim=1), ((3, 5),)),
    OpCase("max_all_keepdims", lambda a: a.max(keepdims=True), lambda T, a: T.amax(a, dim=(0, 1), keepdim=True),
           ((3, 5),)),
    OpCase("min_axis_keepdims", lambda a: a.min(axis=0, keepdims=True), lambda T, a: T.amin(a, dim=0, keepdim=True),
           ((3, 5),)),
    OpCase("logsumexp", lambda a: a.logsumexp(axis=-1), lambda T, a: T.logsumexp(a, dim=-1), ((3, 5),)),
    OpCase("var", lambda a: a.var(axis=1), lambda T, a: a.var(dim=1), ((3, 5),)),
    OpCase("std_biased", lambda a: a.std(axis=0, correction=0), lambda T, a: a.std(dim=0, correction=0), ((4, 3),)),
]
