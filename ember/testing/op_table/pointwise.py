"""Op-table rows: math functions applied element by element, scans and products, sums, clamp, lerp and einsum.

Products with zeros: a row's inputs are random normals, so zeros are brought in by multiplying with a
fixed 0/1 mask (the gradients of the other elements then depend on the zero-safe formulas); the
gradient *at* a zero input is checked in tests/ops/test_pointwise.py, where the zeros are the leaves.
"""

from __future__ import annotations

import numpy as np

import ember

from .case import LayerCase, OpCase

# 0/1 masks that put zeros into products: one zero per row, two in a row, and a row with none
ONE_ZERO_PER_ROW = np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
SEVERAL_ZEROS = np.array([[1.0, 0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0, 0.0]])
SINGLE_ZERO = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])


def _mask(a, m):
    """``a`` with zeros where the fixed 0/1 mask is 0 (``where``, which keeps nothing of ``a`` for backward)."""
    return ember.where(ember.tensor(m > 0), a, a * 0.0)


def _tmask(T, a, m):
    return T.where(T.from_numpy(m > 0), a, a * 0.0)


def _unary(name, fn, torch_name=None, domain="real", shapes=((3, 4),), **kw):
    torch_name = torch_name or name
    return OpCase(name, fn, lambda T, a: getattr(T, torch_name)(a), shapes, domain=domain, **kw)


OPS: list[OpCase] = [
    # ---- unary math
    _unary("rsqrt", ember.rsqrt, domain="positive"),
    _unary("reciprocal", ember.reciprocal, domain="away_from_zero"),
    _unary("square", ember.square),
    _unary("erf", ember.erf),
    _unary("log2", ember.log2, domain="positive"),
    _unary("log10", ember.log10, domain="positive"),
    _unary("log1p", ember.log1p, domain="positive"),
    _unary("exp2", ember.exp2),
    _unary("expm1", ember.expm1),
    _unary("tan", ember.tan, domain="unit"),
    _unary("sinh", ember.sinh),
    _unary("cosh", ember.cosh),
    _unary("asinh", ember.asinh),
    OpCase("acosh", lambda a: ember.acosh(a + 1.0), lambda T, a: T.acosh(a + 1.0), ((3, 4),), domain="positive"),
    _unary("atanh", ember.atanh, domain="unit"),
    _unary("asin", ember.asin, domain="unit"),
    _unary("acos", ember.acos, domain="unit"),
    _unary("atan", ember.atan),
    _unary("atan_0d", ember.atan, torch_name="atan", shapes=((),)),
    # ---- piecewise constant: zero gradient (the inputs are scaled so that values land on both sides)
    OpCase("sign", lambda a: ember.sign(a) * a, lambda T, a: T.sign(a) * a, ((3, 4),)),
    OpCase("floor", lambda a: ember.floor(a * 3.0) + a, lambda T, a: T.floor(a * 3.0) + a, ((3, 4),)),
    OpCase("ceil", lambda a: ember.ceil(a * 3.0) * a, lambda T, a: T.ceil(a * 3.0) * a, ((3, 4),)),
    OpCase("trunc", lambda a: ember.trunc(a * 3.0) * a, lambda T, a: T.trunc(a * 3.0) * a, ((3, 4),)),
    OpCase("round", lambda a: ember.round(a * 3.0) * a, lambda T, a: T.round(a * 3.0) * a, ((3, 4),)),
    OpCase("round_decimals_2", lambda a: ember.round(a, decimals=2), lambda T, a: T.round(a, decimals=2), ((3, 4),)),
    OpCase("round_decimals_neg1", lambda a: ember.round(a * 37.0, decimals=-1) * a,
           lambda T, a: T.round(a * 37.0, decimals=-1) * a, ((3, 4),)),
    # ---- binary math
    OpCase("atan2_broadcast", ember.atan2, lambda T, a, b: T.atan2(a, b), ((3, 4), (4,))),
    OpCase("hypot_broadcast", ember.hypot, lambda T, a, b: T.hypot(a, b), ((3, 1), (1, 4))),
    OpCase("remainder", ember.remainder, lambda T, a, b: T.remainder(a, b), ((3, 4), (3, 4)),
           domain="away_from_zero"),
    OpCase("remainder_broadcast", ember.remainder, lambda T, a, b: T.remainder(a, b), ((2, 3, 4), (4,)),
           domain="away_from_zero"),
    OpCase("remainder_scalar_divisor", lambda a: ember.remainder(a * 4.0, -1.5),
           lambda T, a: T.remainder(a * 4.0, -1.5), ((3, 4),)),
    # PyTorch has no gradient for remainder(number, tensor); its tensor form gives the reference
    OpCase("remainder_scalar_dividend", lambda b: ember.remainder(2.5, b),
           lambda T, b: T.remainder(T.full_like(b, 2.5), b), ((3, 4),), domain="away_from_zero"),
    OpCase("fmod", ember.fmod, lambda T, a, b: T.fmod(a, b), ((3, 4), (3, 1)), domain="away_from_zero"),
    OpCase("fmod_scalar", lambda a: ember.fmod(a * 4.0, 1.5), lambda T, a: T.fmod(a * 4.0, 1.5), ((3, 4),)),
    OpCase("lerp_scalar_weight", lambda a, b: ember.lerp(a, b, 0.3), lambda T, a, b: T.lerp(a, b, 0.3),
           ((3, 4), (4,))),
    OpCase("lerp_scalar_weight_high", lambda a, b: ember.lerp(a, b, 0.8), lambda T, a, b: T.lerp(a, b, 0.8),
           ((3, 4), (3, 4))),
    OpCase("lerp_tensor_weight_broadcast", ember.lerp, lambda T, a, b, w: T.lerp(a, b, w), ((3, 4), (4,), (3, 1))),
    # ---- clamp: number bounds, tensor bounds (broadcasting; random bounds include min > max)
    OpCase("clamp_numbers", lambda a: ember.clamp(a, -0.5, 0.6), lambda T, a: T.clamp(a, -0.5, 0.6), ((3, 4),)),
    OpCase("clamp_number_max", lambda a: ember.clamp(a, max=0.2), lambda T, a: T.clamp(a, max=0.2), ((3, 4),)),
    OpCase("clamp_tensors", ember.clamp, lambda T, a, lo, hi: T.clamp(a, lo, hi), ((3, 4), (4,), (3, 1))),
    OpCase("clamp_tensor_min", lambda a, lo: ember.clamp(a, min=lo), lambda T, a, lo: T.clamp(a, min=lo),
           ((3, 4), (3, 4))),
    OpCase("clamp_tensor_max_broadcast_input", lambda a, hi: ember.clamp(a, max=hi),
           lambda T, a, hi: T.clamp(a, max=hi), ((4,), (3, 4))),
    OpCase("clamp_tie_with_input", lambda a, b: ember.clamp(a, min=ember.maximum(a, b)),
           lambda T, a, b: T.clamp(a, min=T.maximum(a, b)), ((3, 4), (3, 4))),
    # ---- scans
    OpCase("cumsum_dim1", lambda a: ember.cumsum(a, 1), lambda T, a: T.cumsum(a, 1), ((3, 4),)),
    OpCase("cumsum_neg_dim_3d", lambda a: ember.cumsum(a, dim=-3), lambda T, a: T.cumsum(a, dim=-3), ((3, 2, 4),)),
    OpCase("cumsum_0d", lambda a: ember.cumsum(a, 0), lambda T, a: T.cumsum(a, 0), ((),)),
    OpCase("cumprod_dim1", lambda a: ember.cumprod(a, 1), lambda T, a: T.cumprod(a, 1), ((3, 4),)),
    OpCase("cumprod_neg_dim_3d", lambda a: ember.cumprod(a, dim=-2), lambda T, a: T.cumprod(a, dim=-2),
           ((2, 4, 3),)),
    OpCase("cumprod_one_zero_per_row", lambda a: ember.cumprod(_mask(a, ONE_ZERO_PER_ROW), 1),
           lambda T, a: T.cumprod(_tmask(T, a, ONE_ZERO_PER_ROW), 1), ((3, 4),)),
    OpCase("cumprod_several_zeros", lambda a: ember.cumprod(_mask(a, SEVERAL_ZEROS), -1),
           lambda T, a: T.cumprod(_tmask(T, a, SEVERAL_ZEROS), -1), ((3, 5),)),
    OpCase("cumprod_size1_dim", lambda a: ember.cumprod(a, 0), lambda T, a: T.cumprod(a, 0), ((1, 4),)),
    # ---- products
    OpCase("prod_all", ember.prod, lambda T, a: T.prod(a), ((3, 4),)),
    OpCase("prod_dim", lambda a: ember.prod(a, 1), lambda T, a: T.prod(a, 1), ((3, 4),)),
    OpCase("prod_neg_dim_keepdim", lambda a: ember.prod(a, dim=-2, keepdim=True),
           lambda T, a: T.prod(a, dim=-2, keepdim=True), ((2, 3, 4),)),
    OpCase("prod_dim_one_zero_per_row", lambda a: ember.prod(_mask(a, ONE_ZERO_PER_ROW), 1),
           lambda T, a: T.prod(_tmask(T, a, ONE_ZERO_PER_ROW), 1), ((3, 4),)),
    OpCase("prod_dim_several_zeros", lambda a: ember.prod(_mask(a, SEVERAL_ZEROS), 1),
           lambda T, a: T.prod(_tmask(T, a, SEVERAL_ZEROS), 1), ((3, 5),)),
    OpCase("prod_all_single_zero", lambda a: ember.prod(_mask(a, SINGLE_ZERO)),
           lambda T, a: T.prod(_tmask(T, a, SINGLE_ZERO)), ((3, 4),)),
    OpCase("prod_all_several_zeros", lambda a: ember.prod(_mask(a, SEVERAL_ZEROS)),
           lambda T, a: T.prod(_tmask(T, a, SEVERAL_ZEROS)), ((3, 5),)),
    # ---- sums
    OpCase("sum_all", ember.sum, lambda T, a: T.sum(a), ((3, 4),)),
    OpCase("sum_dims_keepdim", lambda a: ember.sum(a, dim=(0, -1), keepdim=True),
           lambda T, a: T.sum(a, dim=(0, -1), keepdim=True), ((2, 3, 4),)),
    OpCase("sum_neg_dim", lambda a: ember.sum(a, -2), lambda T, a: T.sum(a, -2), ((2, 3, 4),)),
    # ---- einsum
    OpCase("einsum_matmul", lambda a, b: ember.einsum("ij,jk->ik", a, b),
           lambda T, a, b: T.einsum("ij,jk->ik", a, b), ((3, 4), (4, 5))),
    OpCase("einsum_batched_broadcast", lambda a, b: ember.einsum("bij,bjk->bik", a, b),
           lambda T, a, b: T.einsum("bij,bjk->bik", a, b), ((1, 3, 4), (2, 4, 5))),
    OpCase("einsum_implicit", lambda a, b: ember.einsum("ij,jk", [a, b]), lambda T, a, b: T.einsum("ij,jk", a, b),
           ((3, 4), (4, 2))),
    OpCase("einsum_implicit_transpose", lambda a: ember.einsum("ba", a), lambda T, a: T.einsum("ba", a), ((3, 4),)),
    OpCase("einsum_permute", lambda a: ember.einsum("ijk->kij", a), lambda T, a: T.einsum("ijk->kij", a),
           ((2, 3, 4),)),
    OpCase("einsum_trace", lambda a: ember.einsum("ii", a), lambda T, a: T.einsum("ii", a), ((4, 4),)),
    OpCase("einsum_diagonal", lambda a: ember.einsum("ii->i", a), lambda T, a: T.einsum("ii->i", a), ((4, 4),)),
    OpCase("einsum_repeated_with_other", lambda a, b: ember.einsum("iij,jk->ik", a, b),
           lambda T, a, b: T.einsum("iij,jk->ik", a, b), ((3, 3, 4), (4, 2))),
    OpCase("einsum_outer", lambda a, b: ember.einsum("i,j->ij", a, b), lambda T, a, b: T.einsum("i,j->ij", a, b),
           ((3,), (4,))),
    OpCase("einsum_dot_broadcast", lambda a, b: ember.einsum("i,i", a, b), lambda T, a, b: T.einsum("i,i", a, b),
           ((3,), (1,))),
    OpCase("einsum_sum_out", lambda a, b: ember.einsum("ij,k->j", a, b), lambda T, a, b: T.einsum("ij,k->j", a, b),
           ((3, 4), (2,))),
    OpCase("einsum_ellipsis_broadcast", lambda a, b: ember.einsum("...ij,...jk->...ik", a, b),
           lambda T, a, b: T.einsum("...ij,...jk->...ik", a, b), ((2, 1, 3, 4), (5, 4, 2))),
    OpCase("einsum_ellipsis_summed", lambda a: ember.einsum("ij...->j", a), lambda T, a: T.einsum("ij...->j", a),
           ((3, 4, 2),)),
    OpCase("einsum_size1_broadcast", lambda a, b: ember.einsum("ij,ij->ij", a, b),
           lambda T, a, b: T.einsum("ij,ij->ij", a, b), ((3, 1), (3, 4))),
    OpCase("einsum_three_operands", lambda a, b, c: ember.einsum("ij,jk,kl->il", a, b, c),
           lambda T, a, b, c: T.einsum("ij,jk,kl->il", a, b, c), ((2, 3), (3, 4), (4, 2))),
    OpCase("einsum_uppercase_spaces", lambda a, b: ember.einsum("A b , b c -> c A", a, b),
           lambda T, a, b: T.einsum("A b , b c -> c A", a, b), ((2, 3), (3, 4))),
]
LAYERS: list[LayerCase] = []
