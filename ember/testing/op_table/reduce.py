"""Op-table rows: reductions, in NumPy's (axis, keepdims) and PyTorch's (dim, keepdim) spellings."""

from __future__ import annotations

from .case import OpCase

OPS: list[OpCase] = [
    OpCase("sum_all", lambda a: a.sum(), lambda T, a: a.sum(), ((3, 4),)),
    OpCase("sum_axis", lambda a: a.sum(axis=1), lambda T, a: a.sum(dim=1), ((2, 3, 4),)),
    OpCase("sum_axes_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
           lambda T, a: a.sum(dim=(0, 2), keepdim=True), ((2, 3, 4),)),
    OpCase("sum_dim_keepdim_spelling", lambda a: a.sum(dim=-1, keepdim=True),
           lambda T, a: a.sum(dim=-1, keepdim=True), ((2, 3),)),
    OpCase("sum_0d_axis0", lambda a: a.sum(0) * a.sum(-1), lambda T, a: a.sum(0) * a.sum(-1), ((),)),
    OpCase("mean_axis", lambda a: a.mean(axis=-1), lambda T, a: a.mean(dim=-1), ((2, 3, 4),)),
    OpCase("mean_all", lambda a: a.mean(), lambda T, a: a.mean(), ((2, 3, 4),)),
    OpCase("mean_dims_keepdim", lambda a: a.mean(dim=(0, 1), keepdim=True),
           lambda T, a: a.mean(dim=(0, 1), keepdim=True), ((2, 3, 4),)),
    OpCase("amax_axis", lambda a: a.amax(axis=1), lambda T, a: T.amax(a, dim=1), ((3, 5),)),
    OpCase("amax_all_keepdims", lambda a: a.amax(keepdims=True), lambda T, a: T.amax(a, dim=(0, 1), keepdim=True),
           ((3, 5),)),
    OpCase("amin_axis_keepdims", lambda a: a.amin(axis=0, keepdims=True),
           lambda T, a: T.amin(a, dim=0, keepdim=True), ((3, 5),)),
    OpCase("max_dim_values", lambda a: a.max(1)[0], lambda T, a: a.max(1)[0], ((3, 5),)),
    OpCase("min_dim_keepdim", lambda a: a.min(dim=0, keepdim=True).values,
           lambda T, a: a.min(dim=0, keepdim=True).values, ((3, 5),)),
    OpCase("max_0d_dim", lambda a: a.max(0)[0] * 2.0, lambda T, a: a.max(0)[0] * 2.0, ((),)),
    OpCase("logsumexp", lambda a: a.logsumexp(axis=-1), lambda T, a: T.logsumexp(a, dim=-1), ((3, 5),)),
    OpCase("logsumexp_dims", lambda a: a.logsumexp(dim=(0, 2), keepdim=True),
           lambda T, a: T.logsumexp(a, dim=(0, 2), keepdim=True), ((2, 3, 4),)),
    OpCase("var", lambda a: a.var(axis=1), lambda T, a: a.var(dim=1), ((3, 5),)),
    OpCase("var_all_unbiased_false", lambda a: a.var(unbiased=False), lambda T, a: a.var(unbiased=False), ((3, 5),)),
    OpCase("var_correction2_keepdim", lambda a: a.var(dim=(0, 1), correction=2, keepdim=True),
           lambda T, a: a.var(dim=(0, 1), correction=2, keepdim=True), ((3, 4, 2),)),
    OpCase("std_biased", lambda a: a.std(axis=0, correction=0), lambda T, a: a.std(dim=0, correction=0), ((4, 3),)),
    OpCase("std_all", lambda a: a.std(), lambda T, a: a.std(), ((4, 3),)),
]
