"""Losses as fused ops: cross-entropy from logits, nll, mse, huber, BCE with logits.

All take ``reduction`` in {'mean', 'sum', 'none'} and an optional ``mask`` (weights or
booleans broadcastable to the per-element loss); with a mask, 'mean' divides by the
mask's sum, so padded or ignored entries neither count nor pull the gradient.
"""

from __future__ import annotations

from ..autograd import Function
from .elementwise import sigmoid

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, weight, reduction):
    """Apply the per-element ``weight`` (or None) and the reduction; return (value, grad scale)."""
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss, None
    total = loss.sum()
    if reduction == "sum":
        return total, 1.0
    count = float(weight.sum()) if weight is not None else loss.size
    scale = 1.0 / count if count > 0 else 0.0
    return total * scale, scale


def _result(xp, value, reduction, dtype, shape=None):
    """The op's output array: the per-element losses, or a 0-d array of the loss's dtype."""
    if reduction == "none":
        return value if shape is None else value.reshape(shape)
    return xp.asarray(value, dtype=dtype)


def _scaled(grad_elem, g, scale, weight):
    """Chain rule for the reduction: multiply by the upstream grad, 1/count and the weight."""
    out = grad_elem * (g if scale is None else g * scale)
    if weight is not None:
        out = out * weight
    return out


class CrossEntropy(Function):
    """Softmax cross-entropy from logits, numerically stable, in one pass.

    ``logits``: (C,), (N, C) or (N, C, d1, ...) with classes on axis 1 (PyTorch's layout).
    ``target``: class indices of shape (N, d1, ...) (an attribute, not differentiated), or
    class probabilities with the logits' shape (then an input, differentiated).
    ``label_smoothing`` mixes the target with the uniform distribution;
    targets equal to ``ignore_index`` and entries where ``mask`` is false are left out.
    """

    def forward(ctx, logits, *soft, target, reduction, label_smoothing, ignore_index, mask):
        xp = ctx.xp
        shape = logits.shape
        z, classes = _to_rows(xp, logits)
        m = z.max(axis=1, keepdims=True)
        shifted = z - m
        p = xp.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        p /= s
        log_s = xp.log(s)[:, 0]
        eps = label_smoothing
        if soft:
            q = _to_rows(xp, soft[0])[0]
            if eps:
                q = q * (1.0 - eps) + eps / classes
            q_sum = q.sum(axis=1)
            loss = log_s * q_sum - (q * shifted).sum(axis=1)
            weight = None if mask is None else mask.reshape(-1).astype(z.dtype)
            ctx.q, ctx.q_sum = q, q_sum
            ctx.logp = shifted - log_s[:, None]
        else:
            t = target.reshape(-1)
            valid = t != ignore_index
            if mask is not None:
                valid = valid & mask.reshape(-1).astype(bool)
            t = xp.where(valid, t, 0)
            if t.size and (int(t.max()) >= classes or int(t.min()) < 0):
                raise IndexError(
                    f"cross_entropy: target class out of range [0, {classes}) "
                    f"(min {int(t.min())}, max {int(t.max())})"
                )
            rows = xp.arange(t.size)
            loss = log_s - shifted[rows, t]
            if eps:
                loss = (1.0 - eps) * loss + eps * (log_s - shifted.mean(axis=1))
            weight = valid.astype(z.dtype)
            ctx.t, ctx.rows = t, rows
        value, scale = _reduce(loss, weight, reduction)
        ctx.p, ctx.weight, ctx.scale, ctx.eps, ctx.classes = p, weight, scale, eps, classes
        ctx.shape, ctx.soft = shape, bool(soft)
        ctx.saves = (1,) if soft and not eps else ()  # unsmoothed soft targets are kept as given
        return _result(xp, value, reduction, z.dtype, _loss_shape(shape))

    def backward(ctx, g):
        xp, p, eps, weight, scale = ctx.xp, ctx.p, ctx.eps, ctx.weight, ctx.scale
        coef = (g.reshape(-1) if scale is None else g * scale) * (1.0 if weight is None else weight)
        coef = xp.asarray(coef, dtype=p.dtype)
        coef = coef.reshape(-1, 1) if coef.ndim else coef
        if ctx.soft:
            grad = (p * ctx.q_sum[:, None] - ctx.q) * coef
            gq = None
            if ctx.needs_input_grad[1]:
                gq = ctx.logp * (coef * -(1.0 - eps))
                gq = _from_rows(xp, gq, ctx.shape)
            return _from_rows(xp, grad, ctx.shape), gq
        grad = p * coef
        rows, t = ctx.rows, ctx.t
        hit = coef[:, 0] if coef.ndim else coef
        grad[rows, t] -= (1.0 - eps) * hit
        if eps:
            grad -= (eps / ctx.classes) * coef
        return _from_rows(xp, grad, ctx.shape)


def _to_rows(xp, a):
    """(C,) -> (1, C); (N, C) as is; (N, C, d...) -> (N*d..., C)."""
    if a.ndim == 1:
        return a[None, :], a.shape[0]
    if a.ndim == 2:
        return a, a.shape[1]
    classes = a.shape[1]
    return xp.moveaxis(a, 1, -1).reshape(-1, classes), classes


def _from_rows(xp, rows, shape):
    if len(shape) <= 2:
        return rows.reshape(shape)
    moved = (shape[0],) + shape[2:] + (shape[1],)
    return xp.moveaxis(rows.reshape(moved), -1, 1)


def _loss_shape(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities (N, C) (or (N, C, d...)) at target classes."""

    saves = ()

    def forward(ctx, logp, *, target, reduction, ignore_index, mask):
        xp = ctx.xp
        z, classes = _to_rows(xp, logp)
        t = target.reshape(-1)
        valid = t != ignore_index
        if mask is not None:
            valid = valid & mask.reshape(-1).astype(bool)
        t = xp.where(valid, t, 0)
        rows = xp.arange(t.size)
        weight = valid.astype(z.dtype)
        value, scale = _reduce(-z[rows, t], weight, reduction)
        ctx.rows, ctx.t, ctx.weight, ctx.scale = rows, t, weight, scale
        ctx.shape, ctx.zshape = logp.shape, z.shape
        return _result(xp, value, reduction, z.dtype, _loss_shape(logp.shape))

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.zshape, dtype=ctx.weight.dtype)
        coef = (g.reshape(-1) if ctx.scale is None else g * ctx.scale) * ctx.weight
        grad[ctx.rows, ctx.t] = -coef
        return _from_rows(xp, grad, ctx.shape)


class _ElementwiseLoss(Function):
    """Loss l(pred, target) per element; subclasses give the value and d l / d pred."""

    saves = ()

    def forward(ctx, pred, target, *, reduction, mask, **kw):
        loss, dpred = ctx.elementwise(ctx.xp, pred, target, **kw)
        weight = None
        if mask is not None:
            weight = ctx.xp.broadcast_to(mask, loss.shape).astype(pred.dtype)
        value, scale = _reduce(loss, weight, reduction)
        ctx.dpred, ctx.weight, ctx.scale = dpred, weight, scale
        return _result(ctx.xp, value, reduction, pred.dtype)

    def backward(ctx, g):
        grad = _scaled(ctx.dpred, g, ctx.scale, ctx.weight)
        na, nb = ctx.needs_input_grad
        return (grad if na else None, -grad if nb else None)


class MSELoss(_ElementwiseLoss):
    @staticmethod
    def elementwise(xp, pred, target):
        d = pred - target
        return d * d, 2.0 * d


class HuberLoss(_ElementwiseLoss):
    """0.5·d² where |d| <= delta, else delta·(|d| - 0.5·delta) (PyTorch's HuberLoss)."""

    @staticmethod
    def elementwise(xp, pred, target, delta):
        d = pred - target
        ad = xp.abs(d)
        small = ad <= delta
        loss = xp.where(small, 0.5 * d * d, delta * (ad - 0.5 * delta))
        return loss, xp.where(small, d, delta * xp.sign(d))


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x with targets y in [0, 1], stable for any |x|.

    loss = (1 - y)·x + (1 + (pos_weight - 1)·y)·softplus(-x)
    """

    saves = ()

    def forward(ctx, x, y, *, reduction, mask, pos_weight):
        xp = ctx.xp
        softplus_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        sig = sigmoid(xp, x)
        if pos_weight is None:
            loss = (1 - y) * x + softplus_neg
            dx = sig - y
            dy = -x
        else:
            lw = 1 + (pos_weight - 1) * y
            loss = (1 - y) * x + lw * softplus_neg
            dx = (1 - y) - lw * (1 - sig)
            dy = -x + (pos_weight - 1) * softplus_neg
        weight = None if mask is None else xp.broadcast_to(mask, loss.shape).astype(x.dtype)
        value, scale = _reduce(loss, weight, reduction)
        ctx.dx, ctx.dy, ctx.weight, ctx.scale = dx, dy, weight, scale
        return _result(xp, value, reduction, x.dtype)

    def backward(ctx, g):
        na, nb = ctx.needs_input_grad
        gx = _scaled(ctx.dx, g, ctx.scale, ctx.weight) if na else None
        gy = _scaled(ctx.dy, g, ctx.scale, ctx.weight) if nb else None
        return gx, gy
