"""Losses."""

from __future__ import annotations

from ... import backend
from ...ops import loss as LS
from ...tensor import Tensor, _promote, _tensor_like, apply

__all__ = [
    "cross_entropy",
    "masked_cross_entropy",
    "nll_loss",
    "mse_loss",
    "huber_loss",
    "masked_mse_loss",
    "masked_huber_loss",
    "binary_cross_entropy_with_logits",
]


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
