"""Functional interface (``import ember.nn.functional as F``): thin functions over the ops.

Argument checks live here, once, so the ops stay lean and layers stay declarative.
"""

from __future__ import annotations

from .. import backend
from ..ops import attention as A
from ..ops import bspline as BS
from ..ops import conv as C
from ..ops import elementwise as E
from ..ops import kan as K
from ..ops import linalg as L
from ..ops import loss as LS
from ..ops import nn as N
from ..tensor import Tensor, _promote, _tensor_like, apply

# ----------------------------------------------------------------------------- activations


def relu(x: Tensor) -> Tensor:
    return apply(E.ReLU, x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return x.gelu(approximate)


def silu(x: Tensor) -> Tensor:
    return apply(E.SiLU, x)


def sigmoid(x: Tensor) -> Tensor:
    return apply(E.Sigmoid, x)


def tanh(x: Tensor) -> Tensor:
    return apply(E.Tanh, x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return apply(N.Softmax, x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return apply(N.LogSoftmax, x, axis=axis)


# ----------------------------------------------------------------------------- layers


def _same_dtype(name: str, *tensors) -> None:
    """Layer ops mix an input with parameters: all must share one float dtype (no silent float64)."""
    first = tensors[0].dtype
    for t in tensors[1:]:
        if t is not None and t.dtype != first:
            shapes = ", ".join(f"{tuple(u.shape)} {u.dtype}" for u in tensors if u is not None)
            raise TypeError(f"{name}: dtype mismatch ({shapes}); cast the input or the layer (.to(dtype))")


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weightᵀ + bias, for x of shape (..., in_features)."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input has {x.shape[-1] if x.ndim else 'no'} features (shape {x.shape}) "
            f"but the weight {weight.shape} expects {weight.shape[1]}"
        )
    _same_dtype("linear", x, weight, bias)
    if bias is None:
        return apply(L.Linear, x, weight)
    return apply(L.Linear, x, weight, bias)


def _pair_int(value, name: str) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"{name}: only square values are supported, got {value}")
        value = value[0]
    return int(value)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0) -> Tensor:
    """2-D cross-correlation of x (N, C, H, W) with weight (O, C, kh, kw)."""
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected input of shape (N, C, H, W), got {x.shape}")
    _same_dtype("conv2d", x, weight, bias)
    stride, padding = _pair_int(stride, "conv2d stride"), _pair_int(padding, "conv2d padding")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    args = (x, weight) if bias is None else (x, weight, bias)
    return apply(C.Conv2d, *args, stride=stride, padding=padding)


def _pool_args(x, kernel_size, stride, padding, name):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected input of shape (N, C, H, W), got {x.shape}")
    k = _pair_int(kernel_size, f"{name} kernel_size")
    s = k if stride is None else _pair_int(stride, f"{name} stride")
    p = _pair_int(padding, f"{name} padding")
    if k < 1 or s < 1 or p < 0 or p > k // 2:
        raise ValueError(f"{name}: need kernel >= 1, stride >= 1 and 0 <= padding <= kernel/2, got {k}, {s}, {p}")
    return k, s, p


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    k, s, p = _pool_args(x, kernel_size, stride, padding, "max_pool2d")
    return apply(C.MaxPool2d, x, kernel=k, stride=s, padding=p)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    k, s, p = _pool_args(x, kernel_size, stride, padding, "avg_pool2d")
    return apply(C.AvgPool2d, x, kernel=k, stride=s, padding=p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    if not 0.0 <= p < 1.0:
        if p == 1.0:
            return x * 0.0
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    return apply(N.Dropout, x, p=p, generator=backend.generator(x.device))


def layer_norm(x: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape) :]) != shape:
        raise ValueError(f"layer_norm: input {x.shape} does not end with normalized_shape {shape}")
    _same_dtype("layer_norm", x, weight, bias)
    params = [t for t in (weight, bias) if t is not None]
    return apply(
        N.LayerNorm, x, *params, ndim=len(shape), eps=eps, has_weight=weight is not None, has_bias=bias is not None
    )


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1); updates the running statistics in place when training."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected (N, C, ...) input, got {x.shape}")
    if training and x.size(0) * (x.numel() // (x.size(0) * x.size(1))) <= 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got input {x.shape}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: evaluation needs running statistics")
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias or neither")
    _same_dtype("batch_norm", x, weight, bias)
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and (t.dtype != x.dtype or t.shape != (x.shape[1],)):
            raise TypeError(f"batch_norm: {name} is {t.dtype} {t.shape}, expected {x.dtype} ({x.shape[1]},)")
    params = () if weight is None else (weight, bias)
    return apply(
        N.BatchNorm,
        x,
        *params,
        running_mean=None if running_mean is None else running_mean.data,
        running_var=None if running_var is None else running_var.data,
        training=training,
        momentum=momentum,
        eps=eps,
        has_affine=weight is not None,
    )


def embedding(indices, weight: Tensor) -> Tensor:
    """Rows of ``weight`` at integer ``indices`` (any shape) -> indices.shape + (dim,)."""
    idx = indices.data if isinstance(indices, Tensor) else backend.device_of(weight.data).xp.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= weight.shape[0]):
        raise IndexError(
            f"embedding: index out of range [0, {weight.shape[0]}) (min {int(idx.min())}, max {int(idx.max())})"
        )
    return apply(N.Embedding, weight, indices=idx)


def causal_self_attention(qkv: Tensor, n_head: int, dropout: float = 0.0, training: bool = True) -> Tensor:
    """Causal multi-head attention from the fused projection qkv (B, T, 3C) to merged heads (B, T, C)."""
    if qkv.ndim != 3 or qkv.shape[-1] % 3 or (qkv.shape[-1] // 3) % n_head:
        raise ValueError(f"causal_self_attention: expected qkv (B, T, 3C) with C divisible by n_head={n_head}, "
                         f"got {qkv.shape}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"causal_self_attention: dropout must be in [0, 1), got {dropout}")
    p = dropout if training else 0.0
    gen = backend.generator(qkv.device) if p > 0 else None
    return apply(A.CausalSelfAttention, qkv, n_head=int(n_head), dropout=p, generator=gen)


def bspline_basis(x: Tensor, knots, k: int, uniform: bool | None = None) -> Tensor:
    """B-spline bases of order k: x (..., n_inputs) with knots (n_inputs, G+2k+1) -> (..., n_inputs, G+k).

    Differentiable in x (analytic derivative). ``uniform`` (evenly spaced rows) is detected when None.
    """
    knots_arr = knots.data if isinstance(knots, Tensor) else backend.device_of(x.data).xp.asarray(knots)
    _check_knots(knots_arr, k, x.shape[-1] if x.ndim else 1, "bspline_basis")
    if uniform is None:
        uniform = BS.is_uniform(backend.to_device(knots_arr, backend.CPU))
    return apply(BS.BSplineBasis, x, knots=knots_arr.astype(x.dtype, copy=False), k=int(k), uniform=bool(uniform))


def _check_knots(knots, k, n_inputs, name):
    if k < 1:
        raise ValueError(f"{name}: spline order k must be >= 1, got {k}")
    if knots.ndim != 2 or knots.shape[0] != n_inputs or knots.shape[1] < 2 * k + 2:
        raise ValueError(
            f"{name}: knots must be (n_inputs={n_inputs}, G+2k+1 >= {2 * k + 2}) for order {k}, got {knots.shape}"
        )
    if not bool((knots[:, 1:] > knots[:, :-1]).all()):
        raise ValueError(f"{name}: knots must be strictly increasing along each row")


def kan_linear(x: Tensor, base_weight: Tensor, spline_weight: Tensor, spline_scaler: Tensor | None, knots,
               k: int, uniform: bool | None = None) -> Tensor:
    """The KAN layer y = silu(x) @ w_bᵀ + B(x) @ (c·w_s)ᵀ as one fused op (see ember/ops/kan.py)."""
    _same_dtype("kan_linear", x, base_weight, spline_weight, spline_scaler)
    knots_arr = knots.data if isinstance(knots, Tensor) else knots
    if uniform is None:
        uniform = BS.is_uniform(backend.to_device(knots_arr, backend.CPU))
    args = (x, base_weight, spline_weight) + ((spline_scaler,) if spline_scaler is not None else ())
    return apply(K.KANLinear, *args, knots=knots_arr, k=int(k), uniform=bool(uniform))


# ----------------------------------------------------------------------------- losses


def _check_reduction(reduction: str, name: str) -> None:
    if reduction not in LS.REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {LS.REDUCTIONS}, got {reduction!r}")


def _mask_array(mask, like: Tensor):
    if mask is None:
        return None
    arr = mask.data if isinstance(mask, Tensor) else backend.device_of(like.data).xp.asarray(mask)
    return arr


def cross_entropy(
    logits: Tensor,
    target,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    mask=None,
) -> Tensor:
    """Softmax cross-entropy from raw logits (one fused, stable op).

    ``logits`` (N, C) (or (C,), or (N, C, d...)); ``target`` class indices (N,) (or (N, d...)),
    or class probabilities shaped like ``logits``. 'mean' divides by the number of counted
    targets, so the gradient is scaled by 1/batch.
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    mask_arr = _mask_array(mask, logits)
    attrs = dict(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index, mask=mask_arr)
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability targets {target.shape} must match logits {logits.shape}")
        logits, target = _promote(logits, target, LS.CrossEntropy)
        return apply(LS.CrossEntropy, logits, target, target=None, **attrs)
    t = target.data if isinstance(target, Tensor) else backend.device_of(logits.data).xp.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: class targets must be integers, got {t.dtype}")
    expected = () if logits.ndim == 1 else (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(f"cross_entropy: logits {logits.shape} need class targets of shape {expected}, got {t.shape}")
    return apply(LS.CrossEntropy, logits, target=t, **attrs)


def masked_cross_entropy(logits: Tensor, target, mask, reduction: str = "mean", label_smoothing: float = 0.0):
    """Cross-entropy counting only the entries where ``mask`` is true (the mean divides by their number)."""
    return cross_entropy(logits, target, reduction=reduction, label_smoothing=label_smoothing, mask=mask)


def nll_loss(logp: Tensor, target, reduction: str = "mean", ignore_index: int = -100, mask=None) -> Tensor:
    """Negative log-likelihood of log-probabilities (e.g. from log_softmax) at the target classes."""
    _check_reduction(reduction, "nll_loss")
    t = target.data if isinstance(target, Tensor) else backend.device_of(logp.data).xp.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: targets must be integers, got {t.dtype}")
    return apply(
        LS.NLLLoss, logp, target=t, reduction=reduction, ignore_index=ignore_index, mask=_mask_array(mask, logp)
    )


def _pair(pred: Tensor, target, name: str):
    target = _tensor_like(target, pred)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction {pred.shape} and target {target.shape} must have the same shape")
    return _promote(pred, target, LS.MSELoss)


def mse_loss(pred: Tensor, target, reduction: str = "mean", mask=None) -> Tensor:
    _check_reduction(reduction, "mse_loss")
    pred, target = _pair(pred, target, "mse_loss")
    return apply(LS.MSELoss, pred, target, reduction=reduction, mask=_mask_array(mask, pred))


def huber_loss(pred: Tensor, target, delta: float = 1.0, reduction: str = "mean", mask=None) -> Tensor:
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    pred, target = _pair(pred, target, "huber_loss")
    return apply(LS.HuberLoss, pred, target, reduction=reduction, mask=_mask_array(mask, pred), delta=float(delta))


def masked_mse_loss(pred: Tensor, target, mask, reduction: str = "mean") -> Tensor:
    """MSE over the entries where ``mask`` (broadcastable to pred) is nonzero; 'mean' divides by its sum."""
    return mse_loss(pred, target, reduction=reduction, mask=mask)


def masked_huber_loss(pred: Tensor, target, mask, delta: float = 1.0, reduction: str = "mean") -> Tensor:
    return huber_loss(pred, target, delta=delta, reduction=reduction, mask=mask)


def binary_cross_entropy_with_logits(
    logits: Tensor, target, reduction: str = "mean", pos_weight: float | None = None, mask=None
) -> Tensor:
    """BCE on raw logits (stable for any magnitude); ``pos_weight`` up-weights positives."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    logits, target = _pair(logits, target, "binary_cross_entropy_with_logits")
    pw = None if pos_weight is None else float(pos_weight)
    return apply(
        LS.BCEWithLogits, logits, target, reduction=reduction, mask=_mask_array(mask, logits), pos_weight=pw
    )
