"""Op-table rows: gathering, scattering and rearranging elements (gather, scatter, flip, roll, repeat, ...),
sorting, and padding in every mode."""

from __future__ import annotations

import numpy as np

import ember
import ember.nn.functional as F

from .case import LayerCase, OpCase, _t

# fixed integer indices shared by both frameworks (int64, as PyTorch wants)
GATHER_ROWS = np.array([[0, 0, 3], [2, 1, 1], [3, 3, 3]])  # (3, 3) along dim 1 of a (3, 4) input: repeats
GATHER_DIM0 = np.array([[2, 0, 1, 2], [0, 0, 2, 1]])  # (2, 4) along dim 0 of a (3, 4) input
GATHER_3D = np.array([[[1, 0], [1, 1]], [[0, 0], [1, 0]]])  # (2, 2, 2) along dim -3 of a (2, 3, 4) input
SCATTER_UNIQUE = np.array([[3, 0], [1, 2], [0, 3]])  # (3, 2) along dim 1 of (3, 4): distinct per row
SCATTER_REPEATS = np.array([[1, 1, 3], [0, 2, 0]])  # (2, 3) along dim 1 of (3, 4): repeats in each row
SCATTER_DIM0_3D = np.array([[[2, 0, 1]], [[0, 1, 2]]])  # (2, 1, 3) along dim 0 of (3, 2, 4)
SELECT_REPEATS = np.array([3, 0, 3, 1])
TAKE_ALONG = np.array([[[2], [0], [3]]])  # (1, 3, 1) along dim 2 of (2, 3, 4): broadcasts over dim 0
TAKE_FLAT = np.array([[5, 0], [11, 5]])
MASK_ROW = np.array([True, False, True, True])
REPEAT_COUNTS = np.array([2, 0, 1])


def _idx(a):
    return ember.tensor(a)


OPS: list[OpCase] = [
    # ---- gather
    OpCase("gather_dim1_repeats", lambda a: ember.gather(a, 1, _idx(GATHER_ROWS)),
           lambda T, a: T.gather(a, 1, _t(T, GATHER_ROWS)), ((3, 4),)),
    OpCase("gather_dim0_smaller_index", lambda a: ember.gather(a, dim=0, index=_idx(GATHER_DIM0)),
           lambda T, a: T.gather(a, 0, _t(T, GATHER_DIM0)), ((3, 4),)),
    OpCase("gather_neg_dim_3d", lambda a: ember.gather(a, -3, _idx(GATHER_3D)),
           lambda T, a: T.gather(a, -3, _t(T, GATHER_3D)), ((2, 3, 4),)),
    OpCase("take_along_dim_broadcast", lambda a: ember.take_along_dim(a, _idx(TAKE_ALONG), dim=2),
           lambda T, a: T.take_along_dim(a, _t(T, TAKE_ALONG), dim=2), ((2, 3, 4),)),
    OpCase("take_along_dim_flat", lambda a: ember.take_along_dim(a, _idx(TAKE_FLAT)),
           lambda T, a: T.take_along_dim(a, _t(T, TAKE_FLAT)), ((3, 4),)),
    # ---- scatter (no repeated indices: which duplicate wins is undefined) / scatter_add / scatter_reduce
    OpCase("scatter_src", lambda a, s: ember.scatter(a, 1, _idx(SCATTER_UNIQUE), s),
           lambda T, a, s: T.scatter(a, 1, _t(T, SCATTER_UNIQUE), s), ((3, 4), (3, 2))),
    # PyTorch's backward fails when src is larger than index (its gradient has index's shape), so its
    # reference takes the part of src that is used
    OpCase("scatter_src_larger_than_index", lambda a, s: ember.scatter(a, -3, _idx(SCATTER_DIM0_3D), s),
           lambda T, a, s: T.scatter(a, -3, _t(T, SCATTER_DIM0_3D), s[:, :1, :3]), ((3, 2, 4), (2, 2, 4))),
    OpCase("scatter_value", lambda a: ember.scatter(a, 1, _idx(SCATTER_REPEATS), value=0.5),
           lambda T, a: T.scatter(a, 1, _t(T, SCATTER_REPEATS), 0.5), ((3, 4),)),
    OpCase("scatter_add_repeats", lambda a, s: ember.scatter_add(a, 1, _idx(SCATTER_REPEATS), s),
           lambda T, a, s: T.scatter_add(a, 1, _t(T, SCATTER_REPEATS), s[:, :3]), ((3, 4), (2, 4))),
    OpCase("scatter_add_dim0_3d", lambda a, s: ember.scatter_add(a, 0, _idx(SCATTER_DIM0_3D), s),
           lambda T, a, s: T.scatter_add(a, 0, _t(T, SCATTER_DIM0_3D), s), ((3, 2, 4), (2, 1, 3))),
    *[
        OpCase(f"scatter_reduce_{reduce}{'' if include_self else '_exclude_self'}",
               lambda a, s, r=reduce, inc=include_self: ember.scatter_reduce(a, 1, _idx(SCATTER_REPEATS), s, r,
                                                                             include_self=inc),
               lambda T, a, s, r=reduce, inc=include_self: T.scatter_reduce(a, 1, _t(T, SCATTER_REPEATS), s, r,
                                                                            include_self=inc),
               ((3, 4), (2, 3)))
        for reduce in ("sum", "prod", "mean", "amax", "amin")
        for include_self in (True, False)
    ],
    OpCase("scatter_reduce_add_via_scatter", lambda a, s: ember.scatter(a, 1, _idx(SCATTER_REPEATS), s, reduce="add"),
           lambda T, a, s: T.scatter_add(a, 1, _t(T, SCATTER_REPEATS), s), ((3, 4), (2, 3))),
    # ---- index_select / index_add / masked_select
    OpCase("index_select_dim1_repeats", lambda a: ember.index_select(a, 1, _idx(SELECT_REPEATS)),
           lambda T, a: T.index_select(a, 1, _t(T, SELECT_REPEATS)), ((3, 4),)),
    OpCase("index_select_neg_dim_3d", lambda a: ember.index_select(a, -3, _idx(SELECT_REPEATS[:3] % 2)),
           lambda T, a: T.index_select(a, -3, _t(T, SELECT_REPEATS[:3] % 2)), ((2, 3, 4),)),
    OpCase("index_add_repeats_alpha", lambda a, s: ember.index_add(a, 1, _idx(SELECT_REPEATS), s, alpha=-2.0),
           lambda T, a, s: T.index_add(a, 1, _t(T, SELECT_REPEATS), s, alpha=-2.0), ((3, 4), (3, 4))),
    OpCase("index_add_dim0", lambda a, s: ember.index_add(a, 0, _idx(SELECT_REPEATS[:2]), s),
           lambda T, a, s: T.index_add(a, 0, _t(T, SELECT_REPEATS[:2]), s), ((4, 2), (2, 2))),
    OpCase("masked_select_broadcast", lambda a: ember.masked_select(a, ember.tensor(MASK_ROW)),
           lambda T, a: T.masked_select(a, _t(T, MASK_ROW)), ((3, 4),)),
    OpCase("masked_select_input_broadcast", lambda a: ember.masked_select(a, ember.tensor(MASK_ROW[:, None])),
           lambda T, a: T.masked_select(a, _t(T, MASK_ROW[:, None])), ((3,),)),
    # ---- rearranging
    OpCase("flip_one_dim", lambda a: ember.flip(a, 1), lambda T, a: T.flip(a, (1,)), ((3, 4),)),
    OpCase("flip_dims_negative", lambda a: ember.flip(a, (0, -1)), lambda T, a: T.flip(a, (0, -1)), ((2, 3, 4),)),
    OpCase("roll_dims", lambda a: ember.roll(a, (1, -2), (0, 2)), lambda T, a: T.roll(a, (1, -2), (0, 2)),
           ((2, 3, 4),)),
    OpCase("roll_flat", lambda a: ember.roll(a, 5), lambda T, a: T.roll(a, 5), ((3, 4),)),
    OpCase("roll_repeated_dim", lambda a: ember.roll(a, (1, 2), (-1, -1)), lambda T, a: T.roll(a, (1, 2), (-1, -1)),
           ((3, 4),)),
    OpCase("repeat_more_dims", lambda a: ember.repeat(a, 2, 1, 3), lambda T, a: a.repeat(2, 1, 3), ((3, 2),)),
    OpCase("repeat_same_dims", lambda a: ember.repeat(a, (2, 2)), lambda T, a: a.repeat(2, 2), ((3, 2),)),
    OpCase("repeat_interleave_int_dim", lambda a: ember.repeat_interleave(a, 2, dim=1),
           lambda T, a: T.repeat_interleave(a, 2, dim=1), ((3, 2),)),
    OpCase("repeat_interleave_counts_with_zero", lambda a: ember.repeat_interleave(a, _idx(REPEAT_COUNTS), 0),
           lambda T, a: T.repeat_interleave(a, _t(T, REPEAT_COUNTS), 0), ((3, 2),)),
    OpCase("repeat_interleave_flat", lambda a: ember.repeat_interleave(a, 3), lambda T, a: T.repeat_interleave(a, 3),
           ((2, 2),)),
    OpCase("unflatten", lambda a: ember.unflatten(a, 1, (2, -1)) * 1.0, lambda T, a: T.unflatten(a, 1, (2, -1)),
           ((3, 6),)),
    OpCase("narrow_neg_start", lambda a: ember.narrow(a, -1, -3, 2), lambda T, a: T.narrow(a, -1, -3, 2),
           ((3, 4),)),
    OpCase("chunk_uneven", lambda a: ember.chunk(a, 4, 1)[0] * ember.chunk(a, 4, 1)[2],
           lambda T, a: T.chunk(a, 4, 1)[0] * T.chunk(a, 4, 1)[2], ((3, 6),)),
    # ---- sorting (values are differentiable; random inputs have no ties)
    OpCase("sort_values", lambda a: ember.sort(a).values, lambda T, a: T.sort(a).values, ((3, 4),)),
    OpCase("sort_descending_dim0", lambda a: ember.sort(a, dim=0, descending=True)[0],
           lambda T, a: T.sort(a, dim=0, descending=True)[0], ((3, 4),)),
    OpCase("topk_largest", lambda a: ember.topk(a, 2).values, lambda T, a: T.topk(a, 2).values, ((3, 4),)),
    OpCase("topk_smallest_dim0", lambda a: ember.topk(a, 2, dim=0, largest=False)[0],
           lambda T, a: T.topk(a, 2, dim=0, largest=False)[0], ((3, 4),)),
    # ---- padding: each mode on 1, 2 and 3 padded dimensions (batched and unbatched), and cropping
    OpCase("pad_constant_1d_value", lambda a: F.pad(a, (1, 2), value=0.5),
           lambda T, a: T.nn.functional.pad(a, (1, 2), value=0.5), ((2, 3),)),
    OpCase("pad_constant_2d_crop", lambda a: F.pad(a, (1, -1, -2, 1)),
           lambda T, a: T.nn.functional.pad(a, (1, -1, -2, 1)), ((2, 3, 4),)),
    OpCase("pad_constant_3d", lambda a: F.pad(a, (0, 1, 1, 0, 2, 1)),
           lambda T, a: T.nn.functional.pad(a, (0, 1, 1, 0, 2, 1)), ((2, 2, 3),)),
    *[
        OpCase(f"pad_{mode}_{name}", lambda a, m=mode, p=p: F.pad(a, p, mode=m),
               lambda T, a, m=mode, p=p: T.nn.functional.pad(a, p, mode=m), (shape,))
        for mode in ("reflect", "replicate", "circular")
        for name, p, shape in (
            ("1d", (2, 1), (2, 2, 4)),
            ("1d_unbatched", (1, 3), (2, 4)),
            ("2d", (1, 2, 2, 0), (1, 2, 3, 4)),
            ("2d_crop", (-1, 2, 1, -1), (2, 3, 4)),
            ("3d", (1, 0, 0, 2, 1, 1), (1, 1, 2, 3, 3)),
        )
    ],
]
LAYERS: list[LayerCase] = []
