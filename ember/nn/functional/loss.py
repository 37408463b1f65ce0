"""Losses (and cosine similarity), with ``torch.nn.functional``'s names, defaults and semantics.

PyTorch's deprecated ``size_average``/``reduce`` arguments are not taken: the options after the
positional ones PyTorch documents are keyword-only here, so a call that relied on PyTorch's
legacy positions fails loudly instead of meaning something else. ``mask=`` is ember's extension
(see ``ember.ops.loss``).
"""

from __future__ import annotations

import numpy as np

from ... import backend
from ...autograd import is_grad_enabled
from ...ops import loss as LS
from ...ops.util import dim_arg
from ...tensor import Tensor, _promote, _tensor_like, apply

__all__ = [
    "cross_entropy",
    "masked_cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "masked_mse_loss",
    "masked_huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "cosine_similarity",
]

KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")


def _check_reduction(reduction: str, name: str, allowed=LS.REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {allowed}, got {reduction!r}")


def _mask_array(mask, like: Tensor):
    if mask is None:
        return None
    arr = mask.data if isinstance(mask, Tensor) else backend.device_of(like.data).xp.asarray(mask)
    return arr


def _class_targets(name: str, target, logits: Tensor):
    """Integer class targets as an array on the logits' device, shaped (N, d...) (or () for (C,) logits)."""
    t = target.data if isinstance(target, Tensor) else backend.device_of(logits.data).xp.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: class targets must be integers, got {t.dtype}")
    expected = () if logits.ndim == 1 else (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(t.shape) != expected:
        raise ValueError(f"{name}: input {logits.shape} needs class targets of shape {expected}, got {t.shape}")
    return t


def _constant_weight(name: str, arg: str, weight, like: Tensor) -> Tensor:
    """A loss weight as a tensor of ``like``'s dtype; like PyTorch, it is a constant (never differentiated)."""
    w = _tensor_like(weight, like)
    if w.requires_grad and is_grad_enabled():
        raise ValueError(f"{name}: {arg} cannot require grad (the loss is not differentiable with respect to it, "
                         f"as in PyTorch); pass {arg}.detach()")
    if w.dtype.kind not in "fc":
        return Tensor(w.data.astype(like.dtype))
    if w.dtype != like.dtype:
        raise TypeError(f"{name}: {arg} is {w.dtype} but the input is {like.dtype}; cast one with .to(dtype) "
                        "(ember never upcasts silently)")
    return w


def _class_weight(name: str, weight, logits: Tensor):
    """Per-class weights (C,) as an array, or None."""
    if weight is None:
        return None
    w = _constant_weight(name, "weight", weight, logits)
    classes = logits.shape[0] if logits.ndim == 1 else logits.shape[1]
    if tuple(w.shape) != (classes,):
        raise ValueError(f"{name}: weight must hold one value per class, shape ({classes},) for input "
                         f"{logits.shape}, got shape {w.shape}")
    return w.data


def _broadcast_weight(name: str, arg: str, weight, like: Tensor):
    """An elementwise constant weight that broadcasts to ``like``'s shape (without enlarging it), as an array."""
    w = _constant_weight(name, arg, weight, like)
    try:
        shape = np.broadcast_shapes(w.shape, like.shape)
    except ValueError:
        shape = None
    if shape != tuple(like.shape):
        raise ValueError(f"{name}: {arg} of shape {w.shape} does not broadcast to the input's shape {like.shape}")
    return w.data


def _check_logits(name: str, logits: Tensor) -> None:
    if logits.ndim == 0:
        raise ValueError(f"{name}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a 0-d tensor")


def cross_entropy(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    weight=None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    mask=None,
) -> Tensor:
    """Softmax cross-entropy from raw logits (one fused, stable op).

    ``input`` (N, C) (or (C,), or (N, C, d...)) logits; ``target`` class indices (N,) (or (), or
    (N, d...)), or class probabilities shaped like ``input``. ``weight`` (C,) rescales each class;
    with class indices 'mean' divides by the summed weights of the counted targets (by their
    number without weights), with probabilities by the number of rows. Targets equal to
    ``ignore_index`` are left out (class indices only).
    """
    _check_reduction(reduction, "cross_entropy")
    _check_logits("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    class_weight = _class_weight("cross_entropy", weight, input)
    attrs = dict(reduction=reduction, label_smoothing=label_smoothing, ignore_index=ignore_index,
                 mask=_mask_array(mask, input))
    if class_weight is not None:
        attrs["weight"] = class_weight
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets {target.shape} must match the input {input.shape}")
        if ignore_index >= 0:
            raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) applies to class-index targets only, "
                             "not to probability targets")
        logits, target = _promote(input, target, LS.CrossEntropy)
        return apply(LS.CrossEntropy, logits, target, target=None, **attrs)
    t = _class_targets("cross_entropy", target, input)
    return apply(LS.CrossEntropy, input, target=t, **attrs)


def masked_cross_entropy(logits: Tensor, target, mask, reduction: str = "mean", label_smoothing: float = 0.0):
    """Cross-entropy counting only the entries where ``mask`` is true (the mean divides by their number)."""
    return cross_entropy(logits, target, reduction=reduction, label_smoothing=label_smoothing, mask=mask)


def nll_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    weight=None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    mask=None,
) -> Tensor:
    """Negative log-likelihood of log-probabilities (e.g. from log_softmax) at the target classes.

    ``weight`` (C,) rescales each class; 'mean' divides by the summed weights of the counted targets.
    """
    _check_reduction(reduction, "nll_loss")
    _check_logits("nll_loss", input)
    t = _class_targets("nll_loss", target, input)
    attrs = dict(reduction=reduction, ignore_index=ignore_index, mask=_mask_array(mask, input))
    class_weight = _class_weight("nll_loss", weight, input)
    if class_weight is not None:
        attrs["weight"] = class_weight
    return apply(LS.NLLLoss, input, target=t, **attrs)


def _pair(pred: Tensor, target, name: str, op):
    """Prediction and target of one shape and one float dtype (``op`` names the loss in a dtype error).

    PyTorch broadcasts mismatched shapes here with a warning that the result is likely wrong;
    ember refuses them instead.
    """
    target = _tensor_like(target, pred)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction {pred.shape} and target {target.shape} must have the same shape")
    return _promote(pred, target, op)


def _weighted_loss(name: str, op, pred: Tensor, target: Tensor, weight, reduction: str, mean_by_count: bool,
                   **attrs) -> Tensor:
    """PyTorch's weighted mse/l1/huber: w·loss, then 'mean' divides by Σw (mse, l1) or the element count (huber).

    A constant weight goes into the fused op; one that requires grad is composed from tensor ops,
    as PyTorch composes it, so it gets its gradient.
    """
    w = _tensor_like(weight, pred)
    if w.shape != pred.shape:
        raise ValueError(f"{name}: weight must have the input's shape {pred.shape}, got {w.shape}")
    if not (w.requires_grad and is_grad_enabled()):
        w = _constant_weight(name, "weight", w, pred)
        return apply(op, pred, target, reduction=reduction, mask=None, weight=w.data, mean_by_count=mean_by_count,
                     **attrs)
    weighted = apply(op, pred, target, reduction="none", mask=None, **attrs) * w
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    return weighted.mean() if mean_by_count else weighted.sum() * (1.0 / w.sum())


def _no_mask_with_weight(name: str, mask, weight) -> None:
    if mask is not None and weight is not None:
        raise ValueError(f"{name}: give mask (ember's) or weight (PyTorch's), not both")


def mse_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    *,
    reduction: str = "mean",
    weight=None,
    mask=None,
) -> Tensor:
    """Mean squared error; ``weight`` (input's shape) weights each element and 'mean' then divides by Σweight."""
    _check_reduction(reduction, "mse_loss")
    _no_mask_with_weight("mse_loss", mask, weight)
    pred, target = _pair(input, target, "mse_loss", LS.MSELoss)
    if weight is not None:
        return _weighted_loss("mse_loss", LS.MSELoss, pred, target, weight, reduction, mean_by_count=False)
    return apply(LS.MSELoss, pred, target, reduction=reduction, mask=_mask_array(mask, pred))


def l1_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    *,
    reduction: str = "mean",
    weight=None,
) -> Tensor:
    """Mean absolute error; ``weight`` (input's shape) weights each element and 'mean' then divides by Σweight."""
    _check_reduction(reduction, "l1_loss")
    pred, target = _pair(input, target, "l1_loss", LS.L1Loss)
    if weight is not None:
        return _weighted_loss("l1_loss", LS.L1Loss, pred, target, weight, reduction, mean_by_count=False)
    return apply(LS.L1Loss, pred, target, reduction=reduction, mask=None)


def smooth_l1_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    *,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5·d²/beta where |d| < beta, else |d| - 0.5·beta; beta = 0 is exactly l1_loss (as PyTorch)."""
    _check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    pred, target = _pair(input, target, "smooth_l1_loss", LS.SmoothL1Loss)
    if beta == 0:
        return apply(LS.L1Loss, pred, target, reduction=reduction, mask=None)
    return apply(LS.SmoothL1Loss, pred, target, reduction=reduction, mask=None, beta=float(beta))


def huber_loss(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    reduction: str = "mean",
    delta: float = 1.0,
    weight=None,
    *,
    mask=None,
) -> Tensor:
    """0.5·d² where |d| <= delta, else delta·(|d| - 0.5·delta); with ``weight``, 'mean' is the mean of w·loss."""
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    _no_mask_with_weight("huber_loss", mask, weight)
    pred, target = _pair(input, target, "huber_loss", LS.HuberLoss)
    if weight is not None:
        return _weighted_loss("huber_loss", LS.HuberLoss, pred, target, weight, reduction, mean_by_count=True,
                              delta=float(delta))
    return apply(LS.HuberLoss, pred, target, reduction=reduction, mask=_mask_array(mask, pred), delta=float(delta))


def masked_mse_loss(pred: Tensor, target, mask, reduction: str = "mean") -> Tensor:
    """MSE over the entries where ``mask`` (broadcastable to pred) is nonzero; 'mean' divides by its sum."""
    return mse_loss(pred, target, reduction=reduction, mask=mask)


def masked_huber_loss(pred: Tensor, target, mask, delta: float = 1.0, reduction: str = "mean") -> Tensor:
    return huber_loss(pred, target, delta=delta, reduction=reduction, mask=mask)


def binary_cross_entropy(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    weight=None,
    *,
    reduction: str = "mean",
) -> Tensor:
    """BCE on probabilities in [0, 1] (values outside are an error); each log is clamped at -100 as PyTorch.

    ``weight`` (broadcast to the input's shape) scales each element; prefer
    ``binary_cross_entropy_with_logits`` on logits, which is stable.
    """
    _check_reduction(reduction, "binary_cross_entropy")
    if not isinstance(target, Tensor):
        target = _tensor_like(target, input)
    if target.shape != input.shape:
        raise ValueError(f"binary_cross_entropy: target {target.shape} must have the input's shape {input.shape}")
    p, y = _promote(input, target, LS.BinaryCrossEntropy)
    w = None if weight is None else _broadcast_weight("binary_cross_entropy", "weight", weight, p)
    return apply(LS.BinaryCrossEntropy, p, y, reduction=reduction, weight=w)


def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    weight=None,
    *,
    reduction: str = "mean",
    pos_weight=None,
    mask=None,
) -> Tensor:
    """BCE on raw logits (stable for any magnitude).

    ``weight`` (broadcast to the input's shape) scales each element; ``pos_weight`` (a number or a
    tensor broadcast against the target, e.g. one value per class on the last axis) up-weights
    the positive term.
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    name = "binary_cross_entropy_with_logits"
    if isinstance(target, Tensor) and target.shape != input.shape:
        raise ValueError(f"{name}: target {target.shape} must have the input's shape {input.shape}")
    logits, target = _pair(input, target, name, LS.BCEWithLogits)
    w = None if weight is None else _broadcast_weight(name, "weight", weight, logits)
    if pos_weight is None or isinstance(pos_weight, (int, float)):
        pw = None if pos_weight is None else float(pos_weight)
    else:
        pw = _broadcast_weight(name, "pos_weight", pos_weight, logits)
    attrs = dict(reduction=reduction, mask=_mask_array(mask, logits), pos_weight=pw)
    if w is not None:
        attrs["weight"] = w
    return apply(LS.BCEWithLogits, logits, target, **attrs)


def kl_div(
    input: Tensor,  # noqa: A002 - PyTorch's name
    target,
    *,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Pointwise KL divergence target·(log target - input), with ``input`` log-probabilities.

    'batchmean' (sum / batch size) is the true KL divergence per sample; 'mean' divides by the
    number of elements (PyTorch's default, which it warns about). ``log_target``: the target is
    given as log-probabilities. Input and target broadcast.
    """
    _check_reduction(reduction, "kl_div", KL_REDUCTIONS)
    target = _tensor_like(target, input)
    try:
        np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"kl_div: input {input.shape} and target {target.shape} do not broadcast") from None
    inp, target = _promote(input, target, LS.KLDiv)
    if inp.dtype.kind != "f":
        raise TypeError(f"kl_div: expected floating-point log-probabilities, got {inp.dtype}")
    return apply(LS.KLDiv, inp, target, reduction=reduction, log_target=bool(log_target))


def cosine_similarity(x1: Tensor, x2, axis: int | None = None, eps: float = 1e-8, *, dim: int | None = None) -> Tensor:
    """Σ x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps)) along ``axis`` (default 1; ``dim=`` is PyTorch's spelling).

    x1 and x2 broadcast; each norm is clamped separately, as PyTorch does.
    """
    axis = dim_arg("cosine_similarity", axis, dim, 1)
    x2 = _tensor_like(x2, x1)
    if x1.dtype.kind != "f" and x2.dtype.kind != "f":
        raise TypeError(f"cosine_similarity: expected floating-point inputs, got {x1.dtype} and {x2.dtype}")
    if eps < 0:
        raise ValueError(f"cosine_similarity: eps must be non-negative, got {eps}")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: x1 {x1.shape} and x2 {x2.shape} do not broadcast") from None
    ndim = max(len(shape), 1)
    if not -ndim <= axis < ndim:
        raise IndexError(f"cosine_similarity: axis {axis} is out of range for inputs broadcast to {shape}")
    a, b = _promote(x1, x2, LS.CosineSimilarity)
    return apply(LS.CosineSimilarity, a, b, axis=axis % ndim, eps=float(eps))
