"""Losses as fused ops: cross-entropy from logits, nll, mse, l1, smooth-l1, huber, BCE (on
probabilities and on logits), KL divergence, and cosine similarity.

All take ``reduction`` in {'mean', 'sum', 'none'} (KL also 'batchmean'). 'mean' over nothing
(an empty batch, every target ignored) is NaN, PyTorch's 0/0, with a zero gradient. Several
take ember's ``mask`` extension (weights or booleans broadcastable to the per-element loss):
with a mask, 'mean' divides by the mask's sum, so padded or ignored entries neither count nor
pull the gradient, and a mask that selects nothing gives 0. Loss weights (class weights,
``pos_weight``) are constants, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function
from ..kernels import cuda as cuda_kernels
from ..kernels import loss as loss_kernels
from ..kernels.cuda import loss as cuda_loss_kernels
from .activation import sigmoid_stable, softplus_stable
from .util import unbroadcast

REDUCTIONS = ("mean", "sum", "none")
_NAN = float("nan")
_LOG_FLOOR = -100.0  # PyTorch's clamp of log(p) in binary cross-entropy
_TINY = 1e-44  # below e^-100, so log(max(p, _TINY)) clamps to -100 without log(0) warnings
_BCE_GRAD_EPS = 9.999999960041972e-13  # PyTorch's floor of p·(1 - p) in the BCE gradient: 1e-12 as a float32


def _reduce(loss, weight, reduction, count=None, empty=_NAN):
    """Apply the per-element ``weight`` (or None) and the reduction; return (value, grad scale).

    'mean' divides by ``count`` (default: the weight's sum, else the number of elements); when
    that is 0 the value is ``empty`` (NaN, PyTorch's 0/0; 0 for ember's masks) and the gradient 0.
    """
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss, None
    total = loss.sum()
    if reduction == "sum":
        return total, 1.0
    if count is None:
        count = float(weight.sum()) if weight is not None else loss.size
    if count == 0:
        return empty, 0.0
    scale = 1.0 / count
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


def _empty_value(mask):
    """'mean' over nothing: NaN as PyTorch, but 0 when ember's mask selected nothing."""
    return _NAN if mask is None else 0.0


class CrossEntropy(Function):
    """Softmax cross-entropy from logits, numerically stable, in one pass.

    ``logits``: (C,), (N, C) or (N, C, d1, ...) with classes on axis 1 (PyTorch's layout).
    ``target``: class indices of shape (N, d1, ...) (an attribute, not differentiated), or
    class probabilities with the logits' shape (then an input, differentiated).
    ``label_smoothing`` mixes the target with the uniform distribution;
    targets equal to ``ignore_index`` and entries where ``mask`` is false are left out.
    ``weight`` (C,) rescales each class, as PyTorch: with class indices 'mean' divides by the
    summed weights of the counted targets; with probabilities it divides by the number of rows.
    With numba, class indices without class weights run in ``ember.kernels.loss`` (row passes
    around NumPy's exp), and this NumPy code is its reference.
    """

    def forward(ctx, logits, *soft, target, reduction, label_smoothing, ignore_index, mask, weight=None):
        xp = ctx.xp
        shape = logits.shape
        z, classes = _to_rows(xp, logits)
        if not soft and weight is None and z.size and target.size == len(z) and kernels.takes(z):
            return _class_cross_entropy_compiled(ctx, z, classes, target, reduction, label_smoothing, ignore_index,
                                                 mask, shape)
        elif not soft and weight is None and z.size and target.size == len(z) and cuda_kernels.takes(z):
            return _class_cross_entropy_cuda(ctx, z, classes, target, reduction, label_smoothing, ignore_index, mask,
                                             shape)
        m = z.max(axis=1, keepdims=True) if z.size else xp.zeros((len(z), 1), dtype=z.dtype)
        shifted = z - m
        p = xp.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        p /= s
        log_s = xp.log(s)[:, 0]
        eps = label_smoothing
        empty = _empty_value(mask)
        ctx.class_weight = ctx.class_weight_soft = None
        if soft:
            q = _to_rows(xp, soft[0])[0]
            if eps:
                q = q * (1.0 - eps) + eps / classes
            if weight is not None:
                q = q * weight  # each class's term scaled by its weight
                ctx.class_weight_soft = weight
            q_sum = q.sum(axis=1)
            loss = log_s * q_sum - (q * shifted).sum(axis=1)
            row_weight = None if mask is None else mask.reshape(-1).astype(z.dtype)
            ctx.q, ctx.q_sum = q, q_sum
            ctx.logp = shifted - log_s[:, None]
            value, scale = _reduce(loss, row_weight, reduction, empty=empty)
        else:
            t, valid = _class_targets(xp, "cross_entropy", target, ignore_index, mask, classes)
            rows = xp.arange(t.size)
            ctx.t, ctx.rows = t, rows
            if weight is None:
                loss = log_s - shifted[rows, t]
                if eps:
                    loss = (1.0 - eps) * loss + eps * (log_s - shifted.mean(axis=1))
                row_weight = valid.astype(z.dtype)
                value, scale = _reduce(loss, row_weight, reduction, empty=empty)
            else:
                loss, row_weight, count = _weighted_class_loss(ctx, shifted, log_s, valid, weight, eps, classes)
                value, scale = _reduce(loss, None, reduction, count=count, empty=empty)
        ctx.p, ctx.weight, ctx.scale, ctx.eps, ctx.classes = p, row_weight, scale, eps, classes
        ctx.shape, ctx.soft = shape, bool(soft)
        ctx.saves = (1,) if soft and not eps and weight is None else ()  # unsmoothed soft targets are kept as given
        return _result(xp, value, reduction, z.dtype, _loss_shape(shape))

    def backward(ctx, g):
        xp, p, eps, weight, scale = ctx.xp, ctx.p, ctx.eps, ctx.weight, ctx.scale
        if ctx.class_weight is not None:
            return _weighted_class_grad(ctx, g)
        coef = (g.reshape(-1) if scale is None else g * scale) * (1.0 if weight is None else weight)
        coef = xp.asarray(coef, dtype=p.dtype)
        coef = coef.reshape(-1, 1) if coef.ndim else coef
        if ctx.soft:
            grad = (p * ctx.q_sum[:, None] - ctx.q) * coef
            gq = None
            if ctx.needs_input_grad[1]:
                gq = ctx.logp * (coef * -(1.0 - eps))
                if ctx.class_weight_soft is not None:
                    gq *= ctx.class_weight_soft
                gq = _from_rows(xp, gq, ctx.shape)
            return _from_rows(xp, grad, ctx.shape), gq
        if coef.ndim == 2 and kernels.takes(p, coef):  # one factor per row (always, with class indices)
            grad = np.empty_like(p)
            dtype = p.dtype.type
            loss_kernels.cross_entropy_grad(p, ctx.t, coef.reshape(-1), dtype(1.0 - eps), dtype(eps / ctx.classes),
                                            bool(eps), grad)
            return _from_rows(xp, grad, ctx.shape)
        elif coef.ndim == 2 and cuda_kernels.takes(p, coef):
            grad = cuda_loss_kernels.cross_entropy_grad(p, ctx.t, coef.reshape(-1), eps, ctx.classes)
            return _from_rows(xp, grad, ctx.shape)
        grad = p * coef
        rows, t = ctx.rows, ctx.t
        hit = coef[:, 0] if coef.ndim else coef
        grad[rows, t] -= (1.0 - eps) * hit
        if eps:
            grad -= (eps / ctx.classes) * coef
        return _from_rows(xp, grad, ctx.shape)


def _class_cross_entropy_compiled(ctx, z, classes, target, reduction, eps, ignore_index, mask, shape):
    """``CrossEntropy.forward`` for class-index targets without class weights, with ``ember.kernels.loss``'s row
    passes around NumPy's exp (z: C-contiguous float rows, not empty); saves what the same backward reads."""
    xp, dtype = ctx.xp, z.dtype.type
    t, valid = _class_targets(xp, "cross_entropy", target, ignore_index, mask, classes)
    p = np.empty_like(z)
    row_max = np.empty(len(z), dtype=z.dtype)
    shifted_mean = np.empty(len(z), dtype=z.dtype) if eps else None
    loss_kernels.shift_rows(z, p, row_max, shifted_mean)
    np.exp(p, out=p)
    loss = np.empty(len(z), dtype=z.dtype)
    loss_kernels.softmax_and_loss(p, z, row_max, t, shifted_mean, dtype(1.0 - eps), dtype(eps), loss, dtype)
    return _finish_class_cross_entropy(ctx, p, loss, t, valid, reduction, eps, classes, mask, shape)


def _class_cross_entropy_cuda(ctx, z, classes, target, reduction, eps, ignore_index, mask, shape):
    """``_class_cross_entropy_compiled`` with ``ember.kernels.cuda.loss``'s one-block-per-row kernel (CuPy z)."""
    xp = ctx.xp
    t, valid = _class_targets(xp, "cross_entropy", target, ignore_index, mask, classes)
    p, loss = cuda_loss_kernels.softmax_cross_entropy(z, t, eps)
    return _finish_class_cross_entropy(ctx, p, loss, t, valid, reduction, eps, classes, mask, shape)


def _finish_class_cross_entropy(ctx, p, loss, t, valid, reduction, eps, classes, mask, shape):
    """The compiled paths' common end: reduce the per-row losses and save what ``CrossEntropy.backward`` reads."""
    xp = ctx.xp
    row_weight = valid.astype(p.dtype)
    value, scale = _reduce(loss, row_weight, reduction, empty=_empty_value(mask))
    ctx.t, ctx.rows, ctx.class_weight, ctx.class_weight_soft = t, xp.arange(t.size), None, None
    ctx.p, ctx.weight, ctx.scale, ctx.eps, ctx.classes = p, row_weight, scale, eps, classes
    ctx.shape, ctx.soft, ctx.saves = shape, False, ()
    return _result(xp, value, reduction, p.dtype, _loss_shape(shape))


def _class_targets(xp, name, target, ignore_index, mask, classes):
    """Class-index targets as a flat array, with ignored (or masked-out) rows pointing at class 0, and the
    boolean mask of the counted rows; an IndexError names a class outside [0, classes)."""
    t = target.reshape(-1)
    valid = t != ignore_index
    if mask is not None:
        valid = valid & mask.reshape(-1).astype(bool)
    t = xp.where(valid, t, 0)
    if t.size and (int(t.max()) >= classes or int(t.min()) < 0):
        raise IndexError(f"{name}: target class out of range [0, {classes}) (min {int(t.min())}, max {int(t.max())})")
    return t, valid


def _weighted_class_loss(ctx, shifted, log_s, valid, weight, eps, classes):
    """Per-row loss with class weights w (PyTorch's formula) and the 'mean' denominator.

    loss_i = (1 - eps)·w[t_i]·(-log p_i[t_i]) + (eps/C)·Σ_c w_c·(-log p_i[c]) for counted rows,
    and 'mean' divides by Σ w[t_i] over the counted rows (smoothing term included).
    """
    rows, t = ctx.rows, ctx.t
    w_t = weight[t] * valid  # 0 where ignored
    loss = (log_s - shifted[rows, t]) * w_t
    if eps:
        loss *= 1.0 - eps
        smooth = log_s * weight.sum() - shifted @ weight  # Σ_c w_c·(log s - shifted_c)
        loss += (eps / classes) * (smooth * valid)
    ctx.class_weight, ctx.w_t, ctx.valid = weight, w_t, valid
    return loss, None, float(w_t.sum())


def _weighted_class_grad(ctx, g):
    """d loss_i/d z = (1 - eps)·w[t]·(p - onehot(t)) + (eps/C)·(Σw·p - w), times the upstream factor."""
    xp, p, eps, w = ctx.xp, ctx.p, ctx.eps, ctx.class_weight
    hit = (1.0 - eps) * ctx.w_t
    per_row = hit
    smooth = None
    if eps:
        smooth = (eps / ctx.classes) * ctx.valid.astype(p.dtype)
        per_row = hit + smooth * float(w.sum())
    grad = p * per_row[:, None]
    grad[ctx.rows, ctx.t] -= hit
    if smooth is not None:
        grad -= smooth[:, None] * w
    coef = g.reshape(-1, 1) if ctx.scale is None else g * ctx.scale
    grad *= xp.asarray(coef, dtype=p.dtype)
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
    """Negative log-likelihood of log-probabilities (N, C) (or (C,), or (N, C, d...)) at target classes.

    ``weight`` (C,) rescales each class; 'mean' divides by the summed weights of the counted targets.
    """

    saves = ()

    def forward(ctx, logp, *, target, reduction, ignore_index, mask, weight=None):
        xp = ctx.xp
        z, classes = _to_rows(xp, logp)
        t, valid = _class_targets(xp, "nll_loss", target, ignore_index, mask, classes)
        rows = xp.arange(t.size)
        row_weight = valid.astype(z.dtype)
        if weight is not None:
            row_weight *= weight[t]
        value, scale = _reduce(-z[rows, t], row_weight, reduction, empty=_empty_value(mask))
        ctx.rows, ctx.t, ctx.weight, ctx.scale = rows, t, row_weight, scale
        ctx.shape, ctx.zshape = logp.shape, z.shape
        return _result(xp, value, reduction, z.dtype, _loss_shape(logp.shape))

    def backward(ctx, g):
        xp = ctx.xp
        grad = xp.zeros(ctx.zshape, dtype=ctx.weight.dtype)
        coef = (g.reshape(-1) if ctx.scale is None else g * ctx.scale) * ctx.weight
        grad[ctx.rows, ctx.t] = -coef
        return _from_rows(xp, grad, ctx.shape)


class _ElementwiseLoss(Function):
    """Loss l(pred, target) per element; subclasses give the value and d l / d pred.

    ``weight`` (a constant of the loss's shape, PyTorch's) scales each element; 'mean' then
    divides by its sum, or by the element count with ``mean_by_count`` (PyTorch's huber_loss).
    """

    saves = ()

    def forward(ctx, pred, target, *, reduction, mask, weight=None, mean_by_count=False, **kw):
        loss, dpred = ctx.elementwise(ctx.xp, pred, target, **kw)
        count = None
        if mask is not None:
            weight = ctx.xp.broadcast_to(mask, loss.shape).astype(pred.dtype)
        elif weight is not None and mean_by_count:
            count = loss.size
        value, scale = _reduce(loss, weight, reduction, count=count, empty=_empty_value(mask))
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


class L1Loss(_ElementwiseLoss):
    """|pred - target|; the gradient at 0 is 0 (sign), as PyTorch."""

    @staticmethod
    def elementwise(xp, pred, target):
        d = pred - target
        return xp.abs(d), xp.sign(d)


class SmoothL1Loss(_ElementwiseLoss):
    """0.5·d²/beta where |d| < beta, else |d| - 0.5·beta (beta > 0; beta = 0 is L1Loss)."""

    @staticmethod
    def elementwise(xp, pred, target, beta):
        d = pred - target
        ad = xp.abs(d)
        small = ad < beta
        loss = xp.where(small, 0.5 * d * d / beta, ad - 0.5 * beta)
        return loss, xp.where(small, d / beta, xp.sign(d))


class HuberLoss(_ElementwiseLoss):
    """0.5·d² where |d| <= delta, else delta·(|d| - 0.5·delta) (PyTorch's HuberLoss)."""

    @staticmethod
    def elementwise(xp, pred, target, delta):
        d = pred - target
        ad = xp.abs(d)
        small = ad <= delta
        loss = xp.where(small, 0.5 * d * d, delta * (ad - 0.5 * delta))
        return loss, xp.where(small, d, delta * xp.sign(d))


class BinaryCrossEntropy(Function):
    """-w·(y·log p + (1 - y)·log(1 - p)) on probabilities p in [0, 1], PyTorch's way.

    Each log is clamped at -100, so p = 0 or 1 gives a finite loss; the gradient's denominator
    p·(1 - p) is floored at 1e-12. ``weight`` (a constant, broadcast to p's shape) scales each
    element; 'mean' divides by the number of elements. The target is differentiable too:
    d/dy = w·(log(1 - p) - log p), unclamped (as PyTorch).
    """

    saves = (0,)

    def forward(ctx, p, y, *, reduction, weight):
        xp = ctx.xp
        _check_unit_interval(p, "input")
        _check_unit_interval(y, "target")
        log_p = xp.maximum(xp.log(xp.maximum(p, _TINY)), _LOG_FLOOR)
        one_minus = 1 - p
        log_1mp = xp.maximum(xp.log(xp.maximum(one_minus, _TINY)), _LOG_FLOOR)
        loss = (y - 1) * log_1mp - y * log_p
        if weight is not None:
            loss = loss * weight
        value, scale = _reduce(loss, None, reduction)
        needs_p = bool(ctx.needs_input_grad and ctx.needs_input_grad[0])
        ctx.p, ctx.one_minus, ctx.weight, ctx.scale = p, one_minus, weight, scale
        ctx.y = y if needs_p else None  # read only for p's gradient
        ctx.saves = (0, 1) if needs_p else (0,)
        return _result(xp, value, reduction, p.dtype)

    def backward(ctx, g):
        xp, p, one_minus = ctx.xp, ctx.p, ctx.one_minus
        na, nb = ctx.needs_input_grad
        gp = gy = None
        if na:
            gp = _scaled((p - ctx.y) / xp.maximum(p * one_minus, _BCE_GRAD_EPS), g, ctx.scale, ctx.weight)
        if nb:
            gy = _scaled(xp.log(one_minus) - xp.log(p), g, ctx.scale, ctx.weight)
        return gp, gy


def _check_unit_interval(a, name):
    """PyTorch's binary_cross_entropy refuses values outside [0, 1] (and NaN)."""
    if a.size and not bool(((a >= 0) & (a <= 1)).all()):
        bad = a[~((a >= 0) & (a <= 1))].reshape(-1)[0]
        raise ValueError(f"binary_cross_entropy: all elements of {name} must be between 0 and 1, found {float(bad)}"
                         + (" (pass logits to binary_cross_entropy_with_logits instead)" if name == "input" else ""))


class BCEWithLogits(Function):
    """Binary cross-entropy on logits x with targets y, stable for any |x|.

    loss = w·((1 - y)·x + (1 + (pos_weight - 1)·y)·softplus(-x)), with the constants ``weight``
    (w) and ``pos_weight`` (a number or an array broadcast against y) optional.
    """

    saves = ()

    def forward(ctx, x, y, *, reduction, mask, pos_weight, weight=None):
        xp = ctx.xp
        softplus_neg = softplus_stable(xp, -x)
        if pos_weight is None:
            lw = None
            loss = (1 - y) * x + softplus_neg
        else:
            lw = (pos_weight - 1) * y + 1
            loss = (1 - y) * x + lw * softplus_neg
        if weight is not None:
            loss = loss * weight
        row_weight = None if mask is None else xp.broadcast_to(mask, loss.shape).astype(x.dtype)
        value, scale = _reduce(loss, row_weight, reduction, empty=_empty_value(mask))
        needs = ctx.needs_input_grad
        if needs is not None:
            sig_neg = sigmoid_stable(xp, -x)
            if needs[0]:  # d/dx = (1 - y) - lw·sigmoid(-x)
                ctx.dx = (1 - y) - (sig_neg if lw is None else lw * sig_neg)
            if needs[1]:  # d/dy = -x + (pos_weight - 1)·softplus(-x)
                ctx.dy = -x if lw is None else (pos_weight - 1) * softplus_neg - x
        ctx.weight, ctx.loss_weight, ctx.scale = row_weight, weight, scale
        return _result(xp, value, reduction, x.dtype)

    def backward(ctx, g):
        na, nb = ctx.needs_input_grad
        gx = _loss_weighted(ctx, ctx.dx, g) if na else None
        gy = _loss_weighted(ctx, ctx.dy, g) if nb else None
        return gx, gy


def _loss_weighted(ctx, d, g):
    """``_scaled`` with the loss weight (if any) applied too."""
    out = _scaled(d, g, ctx.scale, ctx.weight)
    if ctx.loss_weight is not None:
        out = out * ctx.loss_weight
    return out


class KLDiv(Function):
    """Pointwise KL divergence target·(log target - input), input being log-probabilities (PyTorch's kl_div).

    ``log_target``: the target is given as log-probabilities, exp(t)·(t - input). Otherwise
    target·log(target) is 0 where target = 0 and NaN where it is negative, and (as PyTorch) the
    gradient for the target is NaN where target = 0. Input and target broadcast; 'mean' divides by
    the number of elements, 'batchmean' by input.shape[0] (the true KL divergence per sample).
    """

    saves = ()

    def forward(ctx, inp, target, *, reduction, log_target):
        xp = ctx.xp
        needs = ctx.needs_input_grad
        if log_target:
            et = xp.exp(target)
            loss = et * (target - inp)
            if needs is not None:
                ctx.d_inp = -et
                ctx.d_target = et * (target - inp + 1) if needs[1] else None
        else:
            zero, nan = target.dtype.type(0), target.dtype.type(_NAN)
            positive = target > 0
            log_t = xp.log(xp.where(positive, target, target.dtype.type(1)))
            xlogx = xp.where(positive, target * log_t, xp.where(target == 0, zero, nan))
            loss = xlogx - target * inp
            if needs is not None:
                ctx.d_inp = -target
                ctx.d_target = xp.where(positive, log_t + 1, nan) - inp if needs[1] else None
        if reduction == "batchmean":
            batch = inp.shape[0] if inp.ndim else 1
            total = loss.sum()
            value, scale = (total / batch, 1.0 / batch) if batch else (_NAN, 0.0)
        else:
            value, scale = _reduce(loss, None, reduction)
        ctx.scale, ctx.shapes = scale, (inp.shape, target.shape, loss.shape)
        return _result(xp, value, "none" if reduction == "none" else "mean", loss.dtype)

    def backward(ctx, g):
        xp = ctx.xp
        na, nb = ctx.needs_input_grad
        s_inp, s_target, s_loss = ctx.shapes
        coef = g if ctx.scale is None else g * ctx.scale
        g_inp = unbroadcast(xp.broadcast_to(ctx.d_inp * coef, s_loss), s_inp) if na else None
        g_target = unbroadcast(xp.broadcast_to(ctx.d_target * coef, s_loss), s_target) if nb else None
        return g_inp, g_target


class CosineSimilarity(Function):
    """Σ x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps)) along ``axis``, x1 and x2 broadcast (PyTorch's formula).

    PyTorch clamps each norm outside autograd, so where a norm is clamped its gradient still
    flows through the unclamped norm: with c = clamped norms and s the output,
    d/dx1 = x2/(c1·c2) - (s/c1)·x1/‖x1‖ (the last factor 0 where ‖x1‖ = 0), and symmetrically.
    """

    saves = (0, 1)

    def forward(ctx, x1, x2, *, axis, eps):
        xp = ctx.xp
        shapes = (x1.shape, x2.shape)
        if x1.ndim == 0 and x2.ndim == 0:  # two scalars along "axis 0": a length-1 vector each
            x1, x2 = x1.reshape(1), x2.reshape(1)
        x1, x2 = xp.broadcast_arrays(x1, x2)  # norms are taken over the broadcast vectors (PyTorch expands first)
        n1 = xp.sqrt((x1 * x1).sum(axis=axis, keepdims=True))
        n2 = xp.sqrt((x2 * x2).sum(axis=axis, keepdims=True))
        c1, c2 = xp.maximum(n1, eps), xp.maximum(n2, eps)
        out = ((x1 / c1) * (x2 / c2)).sum(axis=axis, keepdims=True)
        ctx.x1, ctx.x2, ctx.n1, ctx.n2, ctx.c1, ctx.c2, ctx.out = x1, x2, n1, n2, c1, c2, out
        ctx.axis, ctx.shapes = axis, shapes
        return out.reshape(out.shape[:axis] + out.shape[axis + 1:]).copy()  # the saved ``out`` stays private

    def backward(ctx, g):
        xp, x1, x2, c1, c2, s = ctx.xp, ctx.x1, ctx.x2, ctx.c1, ctx.c2, ctx.out
        gk = xp.expand_dims(g, ctx.axis)
        inv_c12 = 1.0 / (c1 * c2)
        na, nb = ctx.needs_input_grad
        g1 = g2 = None
        if na:
            g1 = unbroadcast(gk * (x2 * inv_c12 - x1 * (s / c1 * _safe_reciprocal(xp, ctx.n1))), ctx.shapes[0])
        if nb:
            g2 = unbroadcast(gk * (x1 * inv_c12 - x2 * (s / c2 * _safe_reciprocal(xp, ctx.n2))), ctx.shapes[1])
        return g1, g2


def _safe_reciprocal(xp, n):
    """1/n, and 0 where n = 0 (the gradient of a norm at the origin, PyTorch's convention)."""
    nonzero = n != 0
    one = n.dtype.type(1)
    return xp.where(nonzero, one / xp.where(nonzero, n, one), n.dtype.type(0))
