"""The table of ops and layers that drives the tests and ``ember gradcheck``.

Each row says how to call the op in ember and in PyTorch on the same float inputs. Adding
an op means adding a row; every row then gets a float64 gradient check, a dtype check and a
forward+backward comparison with PyTorch. PyTorch is never imported here: a row's
``torch_fn`` receives the ``torch`` module as its first argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F

_rng = np.random.default_rng(1234)  # fixed constants (targets, indices, masks) shared by both frameworks

TARGETS_4x5 = _rng.integers(0, 5, size=4)
TARGETS_IGNORE = np.array([1, -100, 3, 0])
TARGETS_3D = _rng.integers(0, 4, size=(2, 3))
SOFT_TARGETS = _rng.dirichlet(np.ones(5), size=4)
INDEX_REPEATS = np.array([0, 2, 2, 1, 0])
BOOL_MASK = np.array([[True, False, True, True], [False, True, False, True], [True, True, False, False]])
WHERE_COND = _rng.random((3, 4)) > 0.5
LOSS_MASK = (_rng.random((4, 3)) > 0.4).astype(np.float64)
ROW_MASK = np.array([True, False, True, True])
EMBED_IDS = np.array([[1, 3, 3], [0, 6, 1]])
KNOTS_UNIFORM = np.tile(-2.0 + (np.arange(4 + 2 * 3 + 1) - 3) * 1.0, (3, 1))  # G=4, k=3 on [-2, 2]
KNOTS_GENERAL = np.sort(_rng.uniform(-3.0, 3.0, (3, 10)), axis=1)  # increasing, uneven, per input
BINARY_TARGETS = (_rng.random((4, 3)) > 0.5).astype(np.float64)


@dataclass
class OpCase:
    """One op on float inputs of the given shapes."""

    name: str
    fn: Callable  # (*Tensor) -> Tensor
    torch_fn: Callable | None  # (torch, *torch.Tensor) -> torch.Tensor
    shapes: tuple
    domain: str = "real"  # real | positive | away_from_zero | unit
    atol: float = 1e-6
    rtol: float = 1e-5
    eps: float = 1e-6  # finite-difference step
    reseed: bool = False  # stochastic op: reseed before every call


def make_inputs(case: OpCase, dtype=np.float64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in case.shapes:
        x = rng.standard_normal(shape)
        if case.domain == "positive":
            x = np.abs(x) + 0.5
        elif case.domain == "away_from_zero":
            x = np.sign(x) * (np.abs(x) + 0.1)
        elif case.domain == "unit":
            x = rng.uniform(0.05, 0.95, size=shape)
        out.append(x.astype(dtype))
    return out


def _t(torch, a):
    return torch.from_numpy(np.asarray(a))


def torch_bspline(T, x, knots, k):
    """efficient-kan's Cox–de Boor recursion (PyTorch autograd differentiates it): the reference."""
    grid = T.from_numpy(np.asarray(knots)).to(x.dtype)
    x = x.unsqueeze(-1)
    bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
    for p in range(1, k + 1):
        left = (x - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)]) * bases[..., :-1]
        right = (grid[:, p + 1 :] - x) / (grid[:, p + 1 :] - grid[:, 1:-p]) * bases[..., 1:]
        bases = left + right
    return bases


def torch_kan_linear(T, x, wb, sw, sc, knots, k):
    """The KAN layer equation written directly in PyTorch (efficient-kan style)."""
    n, out_f = x.shape[0], wb.shape[0]
    coef = sw * sc.unsqueeze(-1) if sc is not None else sw
    spline = torch_bspline(T, x, knots, k).reshape(n, -1) @ coef.reshape(out_f, -1).T
    return T.nn.functional.silu(x) @ wb.T + spline


def _other_float(dtype):
    return np.float32 if dtype == np.float64 else np.float64


def torch_causal_attention(T, qkv, n_head):
    """PyTorch's fused attention on the same (B, T, 3C) layout as ember's op."""
    b, t, c3 = qkv.shape
    q, k, v = (z.reshape(b, t, n_head, -1).transpose(1, 2) for z in qkv.split(c3 // 3, dim=2))
    y = T.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(b, t, c3 // 3)


def _masked_mean_torch(torch, loss, mask):
    m = _t(torch, mask).to(loss.dtype)
    return (loss * m).sum() / m.sum()


OPS: list[OpCase] = [
    # arithmetic with broadcasting
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
    # unary
    OpCase("exp", lambda a: a.exp(), lambda T, a: a.exp(), ((3, 4),)),
    OpCase("log", lambda a: a.log(), lambda T, a: a.log(), ((3, 4),), domain="positive"),
    OpCase("sqrt", lambda a: a.sqrt(), lambda T, a: a.sqrt(), ((3, 4),), domain="positive"),
    OpCase("abs", lambda a: a.abs(), lambda T, a: a.abs(), ((3, 4),), domain="away_from_zero"),
    OpCase("tanh", lambda a: a.tanh(), lambda T, a: a.tanh(), ((3, 4),)),
    OpCase("sin", lambda a: a.sin(), lambda T, a: a.sin(), ((3, 4),)),
    OpCase("cos", lambda a: ember.cos(a), lambda T, a: a.cos(), ((3, 4),)),
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
    OpCase("clip", lambda a: a.clip(-0.5, 0.7), lambda T, a: a.clamp(-0.5, 0.7), ((4, 5),)),
    OpCase("clip_min", lambda a: a.clip(min=0.2), lambda T, a: a.clamp(min=0.2), ((4, 5),)),
    # reductions
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
    # shape
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
    # products
    OpCase("matmul_2d", lambda a, b: a @ b, lambda T, a, b: a @ b, ((3, 4), (4, 5))),
    OpCase("matmul_batched", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 3, 4), (2, 4, 5))),
    OpCase("matmul_broadcast_batch", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 1, 3, 4), (3, 4, 2))),
    OpCase("matmul_shared_weight", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 3, 4), (4, 5))),
    OpCase("matmul_vec_mat", lambda a, b: a @ b, lambda T, a, b: a @ b, ((4,), (2, 4, 3))),
    OpCase("matmul_mat_vec", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 3, 4), (4,))),
    OpCase("matmul_dot", lambda a, b: a @ b, lambda T, a, b: a @ b, ((4,), (4,))),
    OpCase("linear", lambda x, w, b: F.linear(x, w, b), lambda T, x, w, b: T.nn.functional.linear(x, w, b),
           ((4, 3), (5, 3), (5,))),
    OpCase("linear_3d_nobias", lambda x, w: F.linear(x, w), lambda T, x, w: T.nn.functional.linear(x, w),
           ((2, 3, 4), (5, 4))),
    # convolution and pooling
    OpCase("conv2d", lambda x, w, b: F.conv2d(x, w, b), lambda T, x, w, b: T.nn.functional.conv2d(x, w, b),
           ((2, 2, 5, 5), (3, 2, 3, 3), (3,))),
    OpCase("conv2d_stride_pad", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
           lambda T, x, w, b: T.nn.functional.conv2d(x, w, b, stride=2, padding=1),
           ((2, 2, 6, 5), (3, 2, 3, 3), (3,))),
    OpCase("conv2d_nobias_k1", lambda x, w: F.conv2d(x, w), lambda T, x, w: T.nn.functional.conv2d(x, w),
           ((2, 3, 4, 4), (2, 3, 1, 1))),
    OpCase("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda T, x: T.nn.functional.max_pool2d(x, 2),
           ((2, 3, 4, 6),)),
    OpCase("max_pool2d_overlap_pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
           lambda T, x: T.nn.functional.max_pool2d(x, 3, stride=2, padding=1), ((2, 2, 5, 5),)),
    OpCase("max_pool2d_odd", lambda x: F.max_pool2d(x, 2), lambda T, x: T.nn.functional.max_pool2d(x, 2),
           ((1, 2, 5, 5),)),
    OpCase("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda T, x: T.nn.functional.avg_pool2d(x, 2),
           ((2, 3, 4, 6),)),
    OpCase("avg_pool2d_pad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
           lambda T, x: T.nn.functional.avg_pool2d(x, 3, stride=2, padding=1), ((1, 2, 5, 5),)),
    # normalisation, softmax, embedding, dropout
    OpCase("softmax", lambda x: F.softmax(x, axis=1), lambda T, x: T.softmax(x, dim=1), ((3, 4, 2),)),
    OpCase("log_softmax", lambda x: F.log_softmax(x), lambda T, x: T.log_softmax(x, dim=-1), ((3, 5),)),
    OpCase("layer_norm", lambda x, w, b: F.layer_norm(x, 5, w, b),
           lambda T, x, w, b: T.nn.functional.layer_norm(x, (5,), w, b), ((2, 3, 5), (5,), (5,))),
    OpCase("layer_norm_nobias_2d", lambda x, w: F.layer_norm(x, (3, 4), w),
           lambda T, x, w: T.nn.functional.layer_norm(x, (3, 4), w), ((2, 3, 4), (3, 4))),
    OpCase("layer_norm_bias_only_2d", lambda x, b: F.layer_norm(x, (3, 4), None, b),
           lambda T, x, b: T.nn.functional.layer_norm(x, (3, 4), None, b), ((2, 3, 4), (3, 4))),
    OpCase("layer_norm_plain", lambda x: F.layer_norm(x, 6),
           lambda T, x: T.nn.functional.layer_norm(x, (6,)), ((4, 6),)),
    OpCase("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           lambda T, x, w, b: T.nn.functional.batch_norm(x, None, None, w, b, training=True),
           ((4, 3, 2, 2), (3,), (3,))),
    OpCase("batch_norm_1d_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           lambda T, x, w, b: T.nn.functional.batch_norm(x, None, None, w, b, training=True),
           ((6, 3), (3,), (3,))),
    OpCase("batch_norm_eval",
           lambda x, w, b: F.batch_norm(x, ember.tensor([0.1, -0.2, 0.3], dtype=x.dtype),
                                        ember.tensor([1.5, 0.5, 2.0], dtype=x.dtype), w, b, training=False),
           lambda T, x, w, b: T.nn.functional.batch_norm(x, _t(T, np.array([0.1, -0.2, 0.3])),
                                                         _t(T, np.array([1.5, 0.5, 2.0])), w, b, training=False),
           ((4, 3, 2, 2), (3,), (3,))),
    OpCase("embedding_repeats", lambda w: F.embedding(ember.tensor(EMBED_IDS), w),
           lambda T, w: T.nn.functional.embedding(_t(T, EMBED_IDS), w), ((7, 3),)),
    OpCase("dropout", lambda x: F.dropout(x, 0.3), None, ((5, 6),), reseed=True),
    # B-splines and KAN
    OpCase("bspline_basis_uniform", lambda x: F.bspline_basis(x, KNOTS_UNIFORM, 3),
           lambda T, x: torch_bspline(T, x, KNOTS_UNIFORM, 3), ((5, 3),)),
    OpCase("bspline_basis_general_k2", lambda x: F.bspline_basis(x, KNOTS_GENERAL, 2),
           lambda T, x: torch_bspline(T, x, KNOTS_GENERAL, 2), ((6, 3),)),
    OpCase("kan_linear", lambda x, wb, sw, sc: F.kan_linear(x, wb, sw, sc, KNOTS_UNIFORM.astype(x.dtype), 3),
           lambda T, x, wb, sw, sc: torch_kan_linear(T, x, wb, sw, sc, KNOTS_UNIFORM, 3),
           ((5, 3), (2, 3), (2, 3, 7), (2, 3))),
    OpCase("kan_linear_no_scaler_general", lambda x, wb, sw: F.kan_linear(x, wb, sw, None,
                                                                          KNOTS_GENERAL.astype(x.dtype), 3),
           lambda T, x, wb, sw: torch_kan_linear(T, x, wb, sw, None, KNOTS_GENERAL, 3),
           ((4, 3), (2, 3), (2, 3, 6))),
    OpCase("cast_roundtrip", lambda x: x.to(_other_float(x.dtype)).to(x.dtype) * 2.0, None, ((3, 4),), atol=1e-4,
           eps=1e-2),
    # losses
    OpCase("causal_self_attention", lambda x: F.causal_self_attention(x, 2),
           lambda T, x: torch_causal_attention(T, x, 2), ((2, 5, 12),)),
    OpCase("causal_self_attention_1head_len1", lambda x: F.causal_self_attention(x, 1),
           lambda T, x: torch_causal_attention(T, x, 1), ((3, 1, 6),)),
    OpCase("causal_self_attention_dropout", lambda x: F.causal_self_attention(x, 2, dropout=0.3),
           None, ((2, 4, 12),), reseed=True),
    OpCase("cross_entropy", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5)), ((4, 5),)),
    OpCase("cross_entropy_sum_smoothing",
           lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5), reduction="sum", label_smoothing=0.1),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), reduction="sum", label_smoothing=0.1),
           ((4, 5),)),
    OpCase("cross_entropy_ignore_index", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_IGNORE)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_IGNORE)), ((4, 5),)),
    OpCase("cross_entropy_none", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5), reduction="none"),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), reduction="none"), ((4, 5),)),
    OpCase("cross_entropy_3d", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_3D), label_smoothing=0.2),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_3D), label_smoothing=0.2), ((2, 4, 3),)),
    OpCase("cross_entropy_soft", lambda x: F.cross_entropy(x, ember.tensor(SOFT_TARGETS, dtype=x.dtype)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, SOFT_TARGETS)), ((4, 5),)),
    OpCase("cross_entropy_soft_target_grad", lambda x, q: F.cross_entropy(x, q.softmax(), label_smoothing=0.1),
           lambda T, x, q: T.nn.functional.cross_entropy(x, q.softmax(-1), label_smoothing=0.1), ((4, 5), (4, 5))),
    OpCase("masked_cross_entropy", lambda x: F.masked_cross_entropy(x, ember.tensor(TARGETS_4x5), ROW_MASK),
           lambda T, x: _masked_mean_torch(
               T, T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), reduction="none"), ROW_MASK),
           ((4, 5),)),
    OpCase("nll_loss", lambda x: F.nll_loss(F.log_softmax(x), ember.tensor(TARGETS_IGNORE)),
           lambda T, x: T.nn.functional.nll_loss(T.log_softmax(x, -1), _t(T, TARGETS_IGNORE)), ((4, 5),)),
    OpCase("mse_loss", lambda x, y: F.mse_loss(x, y), lambda T, x, y: T.nn.functional.mse_loss(x, y),
           ((4, 3), (4, 3))),
    OpCase("mse_loss_sum", lambda x, y: F.mse_loss(x, y, reduction="sum"),
           lambda T, x, y: T.nn.functional.mse_loss(x, y, reduction="sum"), ((4, 3), (4, 3))),
    OpCase("huber_loss", lambda x, y: F.huber_loss(x, y, delta=0.5),
           lambda T, x, y: T.nn.functional.huber_loss(x, y, delta=0.5), ((4, 3), (4, 3))),
    OpCase("masked_mse_loss", lambda x, y: F.masked_mse_loss(x, y, LOSS_MASK),
           lambda T, x, y: _masked_mean_torch(T, (x - y) ** 2, LOSS_MASK), ((4, 3), (4, 3))),
    OpCase("masked_huber_loss", lambda x, y: F.masked_huber_loss(x, y, LOSS_MASK, delta=0.7),
           lambda T, x, y: _masked_mean_torch(
               T, T.nn.functional.huber_loss(x, y, delta=0.7, reduction="none"), LOSS_MASK), ((4, 3), (4, 3))),
    OpCase("bce_with_logits",
           lambda x: F.binary_cross_entropy_with_logits(x, ember.tensor(BINARY_TARGETS, dtype=x.dtype)),
           lambda T, x: T.nn.functional.binary_cross_entropy_with_logits(x, _t(T, BINARY_TARGETS)), ((4, 3),)),
    OpCase("bce_with_logits_soft_pos_weight",
           lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=2.0, reduction="sum"),
           lambda T, x, y: T.nn.functional.binary_cross_entropy_with_logits(
               x, y.sigmoid(), pos_weight=T.tensor(2.0, dtype=x.dtype), reduction="sum"), ((4, 3), (4, 3))),
]


@dataclass
class LayerCase:
    """A layer, its PyTorch twin (with copied parameters) and an input shape."""

    name: str
    build: Callable[[], nn.Module]
    torch_build: Callable | None  # (torch, ember_module) -> torch.nn.Module
    input_shape: tuple
    train: bool = True
    integer_input: int = 0  # >0: inputs are ids below this bound (Embedding)
    extra: dict = field(default_factory=dict)


def copy_params(torch, ember_module, torch_module):
    """Copy parameters and buffers by name into the PyTorch module (dtype float64)."""
    state = {k: torch.from_numpy(np.array(v.numpy(), dtype=np.float64)) for k, v in ember_module.state_dict().items()}
    torch_module.double()
    torch_module.load_state_dict(state, strict=False)
    return torch_module


def _twin(factory):
    return lambda T, m: copy_params(T, m, factory(T))


LAYERS: list[LayerCase] = [
    LayerCase("Linear", lambda: nn.Linear(4, 3), _twin(lambda T: T.nn.Linear(4, 3)), (5, 4)),
    LayerCase("Linear_nobias", lambda: nn.Linear(4, 3, bias=False), _twin(lambda T: T.nn.Linear(4, 3, bias=False)),
              (2, 5, 4)),
    LayerCase("Conv2d", lambda: nn.Conv2d(2, 3, 3, padding=1), _twin(lambda T: T.nn.Conv2d(2, 3, 3, padding=1)),
              (2, 2, 5, 5)),
    LayerCase("Conv2d_stride", lambda: nn.Conv2d(2, 2, 3, stride=2),
              _twin(lambda T: T.nn.Conv2d(2, 2, 3, stride=2)), (1, 2, 7, 7)),
    LayerCase("MaxPool2d", lambda: nn.MaxPool2d(2), _twin(lambda T: T.nn.MaxPool2d(2)), (2, 2, 4, 4)),
    LayerCase("AvgPool2d", lambda: nn.AvgPool2d(2), _twin(lambda T: T.nn.AvgPool2d(2)), (2, 2, 4, 4)),
    LayerCase("Flatten", lambda: nn.Flatten(), _twin(lambda T: T.nn.Flatten()), (2, 2, 3, 3)),
    LayerCase("ReLU", lambda: nn.ReLU(), _twin(lambda T: T.nn.ReLU()), (3, 4)),
    LayerCase("Tanh", lambda: nn.Tanh(), _twin(lambda T: T.nn.Tanh()), (3, 4)),
    LayerCase("Sigmoid", lambda: nn.Sigmoid(), _twin(lambda T: T.nn.Sigmoid()), (3, 4)),
    LayerCase("GELU", lambda: nn.GELU(), _twin(lambda T: T.nn.GELU()), (3, 4)),
    LayerCase("GELU_tanh", lambda: nn.GELU("tanh"), _twin(lambda T: T.nn.GELU("tanh")), (3, 4)),
    LayerCase("SiLU", lambda: nn.SiLU(), _twin(lambda T: T.nn.SiLU()), (3, 4)),
    LayerCase("LayerNorm", lambda: _perturbed(nn.LayerNorm(4)), _twin(lambda T: T.nn.LayerNorm(4)), (2, 3, 4)),
    LayerCase("BatchNorm1d_train", lambda: _perturbed(nn.BatchNorm1d(3)), _twin(lambda T: T.nn.BatchNorm1d(3)),
              (5, 3)),
    LayerCase("BatchNorm2d_train", lambda: _perturbed(nn.BatchNorm2d(3)), _twin(lambda T: T.nn.BatchNorm2d(3)),
              (4, 3, 2, 2)),
    LayerCase("BatchNorm2d_eval", lambda: _perturbed(nn.BatchNorm2d(3)), _twin(lambda T: T.nn.BatchNorm2d(3)),
              (4, 3, 2, 2), train=False),
    LayerCase("Embedding", lambda: nn.Embedding(6, 3), _twin(lambda T: T.nn.Embedding(6, 3)), (2, 4),
              integer_input=6),
    LayerCase("Dropout_eval", lambda: nn.Dropout(0.5), _twin(lambda T: T.nn.Dropout(0.5)), (3, 4), train=False),
    LayerCase("KANLinear", lambda: nn.KANLinear(3, 2, grid_size=4, grid_range=(-2, 2)),
              lambda T, m: _TorchKAN(T, m), (5, 3)),
    LayerCase("Sequential_MLP", lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)),
              _twin(lambda T: T.nn.Sequential(T.nn.Linear(4, 6), T.nn.Tanh(), T.nn.Linear(6, 2))), (3, 4)),
]


def _TorchKAN(T, m):  # noqa: N802 - a factory that stands in for a class
    """A PyTorch module computing the KANLinear equation with m's parameters copied in."""

    class TorchKAN(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.base_weight = T.nn.Parameter(T.from_numpy(np.array(m.base_weight.numpy(), dtype=np.float64)))
            self.spline_weight = T.nn.Parameter(T.from_numpy(np.array(m.spline_weight.numpy(), dtype=np.float64)))
            self.spline_scaler = T.nn.Parameter(T.from_numpy(np.array(m.spline_scaler.numpy(), dtype=np.float64)))
            self.register_buffer("grid", T.from_numpy(np.array(m.grid.numpy(), dtype=np.float64)))
            self.k = m.spline_order

        def forward(self, x):
            knots = self.grid.numpy()
            return torch_kan_linear(T, x, self.base_weight, self.spline_weight, self.spline_scaler, knots, self.k)

    return TorchKAN()


def _perturbed(module: nn.Module) -> nn.Module:
    """Move default-initialised affine parameters (ones/zeros) and running stats off their trivial values."""
    rng = np.random.default_rng(7)
    for t in list(module.parameters()) + list(module.buffers()):
        t.data[...] = t.data + rng.uniform(0.1, 0.5, size=t.shape).astype(t.dtype)
    return module
