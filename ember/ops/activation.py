"""Activation ops beyond the core five (relu, gelu, silu, sigmoid, tanh live in ``elementwise``).

Each is one fused node with a hand-derived backward. Gradients at the kinks follow PyTorch's
conventions exactly (which side of a kink owns the point), since models trained in either
framework should take the same steps; each class docstring says where its kinks go.
Constants are Python floats, so float32 inputs stay float32.
"""

from __future__ import annotations

from ..autograd import Function


def _buffer(xp, a):
    """A new array shaped like ``a`` for a chain of in-place steps (a ufunc given a 0-d array returns
    an immutable NumPy scalar, which ``out=`` cannot take; an explicit 0-d buffer can)."""
    return xp.empty_like(a)


def softplus_stable(xp, z):
    """log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)."""
    out = xp.abs(z, out=_buffer(xp, z))
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    out += xp.maximum(z, 0)
    return out


def sigmoid_stable(xp, z):
    """1/(1 + e^-z), exact to rounding in both tails (e^-|z| never overflows)."""
    e = xp.abs(z, out=_buffer(xp, z))
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    s = e / (1 + e)  # sigmoid(-|z|)
    return xp.where(z >= 0, 1 - s, s)


class LeakyReLU(Function):
    """x if x > 0 else slope·x; at x = 0 the gradient is ``negative_slope`` (PyTorch's side)."""

    saves = (0,)

    def forward(ctx, a, negative_slope):
        ctx.a, ctx.slope = a, negative_slope
        return ctx.xp.where(a > 0, a, a * negative_slope)

    def backward(ctx, g):
        return ctx.xp.where(ctx.a > 0, g, g * ctx.slope)


class ELU(Function):
    """scale·x if x > 0 else alpha·scale·(e^(input_scale·x) - 1): ELU, SELU and CELU in one op.

    PyTorch's parametrisation (``elu(x, alpha, scale, input_scale)``): CELU is
    ``input_scale = 1/alpha``, SELU fixes alpha and scale. At x = 0 the gradient takes the
    exponential side, alpha·scale·input_scale (so ELU's is alpha, not 1).
    """

    saves = (0,)

    def forward(ctx, a, alpha, scale, input_scale):
        xp = ctx.xp
        ctx.a, ctx.alpha, ctx.scale, ctx.input_scale = a, alpha, scale, input_scale
        neg = xp.minimum(a, 0, out=_buffer(xp, a))  # e^(...) of positive x is not used and could overflow
        neg *= input_scale
        xp.expm1(neg, out=neg)
        neg *= alpha * scale
        return xp.where(a > 0, a * scale if scale != 1.0 else a, neg)

    def backward(ctx, g):
        xp, a = ctx.xp, ctx.a
        slope = xp.minimum(a, 0, out=_buffer(xp, a))
        slope *= ctx.input_scale
        xp.exp(slope, out=slope)
        slope *= ctx.alpha * ctx.scale * ctx.input_scale
        return xp.where(a > 0, g * ctx.scale if ctx.scale != 1.0 else g, g * slope)


class Softplus(Function):
    """log(1 + e^(beta·x))/beta, and x itself where beta·x > threshold (PyTorch's linear cut-off)."""

    saves = (0,)

    def forward(ctx, a, beta, threshold):
        xp = ctx.xp
        z = a * beta if beta != 1.0 else a
        soft = softplus_stable(xp, z)
        if beta != 1.0:
            soft /= beta
        ctx.a, ctx.beta, ctx.threshold = a, beta, threshold
        return xp.where(z > threshold, a, soft)

    def backward(ctx, g):
        xp = ctx.xp
        z = ctx.a * ctx.beta if ctx.beta != 1.0 else ctx.a
        return xp.where(z > ctx.threshold, g, g * sigmoid_stable(xp, z))


class Softsign(Function):
    """x / (1 + |x|); gradient 1 / (1 + |x|)², smooth everywhere."""

    saves = ()

    def forward(ctx, a):
        denom = ctx.xp.abs(a, out=_buffer(ctx.xp, a))
        denom += 1
        ctx.denom = denom
        return a / denom

    def backward(ctx, g):
        d = ctx.denom
        return g / (d * d)


class Hardtanh(Function):
    """clamp(x, min_val, max_val); the gradient passes only strictly inside (0 at both bounds, as PyTorch).

    ``relu6`` is ``Hardtanh(0, 6)``: gradient 0 at x = 0 and at x = 6.
    """

    saves = (0,)

    def forward(ctx, a, min_val, max_val):
        ctx.a, ctx.lo, ctx.hi = a, min_val, max_val
        return ctx.xp.clip(a, min_val, max_val)

    def backward(ctx, g):
        a = ctx.a
        return g * ((a > ctx.lo) & (a < ctx.hi))


class Hardswish(Function):
    """x·relu6(x + 3)/6; gradient 0 for x <= -3, x/3 + 1/2 for -3 < x < 3, 1 for x >= 3 (PyTorch's)."""

    saves = (0,)

    def forward(ctx, a):
        r = ctx.xp.clip(a + 3.0, 0.0, 6.0, out=_buffer(ctx.xp, a))
        r *= a
        r /= 6.0
        ctx.a = a
        return r

    def backward(ctx, g):
        xp, a = ctx.xp, ctx.a
        middle = xp.divide(a, 3.0, out=_buffer(xp, g))
        middle += 0.5
        middle *= g
        return xp.where(a <= -3.0, g.dtype.type(0), xp.where(a < 3.0, middle, g))


class Hardsigmoid(Function):
    """relu6(x + 3)/6; gradient 1/6 strictly inside (-3, 3), 0 at and beyond ±3.

    PyTorch's float64 kernel multiplies by 1/6 rounded to float32 (0.16666667163...); ember uses
    the exact 1/6, which differs from it by 3e-8 relative in float64 and not at all in float32.
    """

    saves = (0,)

    def forward(ctx, a):
        r = ctx.xp.clip(a + 3.0, 0.0, 6.0, out=_buffer(ctx.xp, a))
        r /= 6.0
        ctx.a = a
        return r

    def backward(ctx, g):
        a = ctx.a
        return g * ((a > -3.0) & (a < 3.0)) / 6.0


class Mish(Function):
    """x·tanh(softplus(x)); smooth, gradient tanh(sp) + x·sigmoid(x)·(1 - tanh(sp)²)."""

    saves = (0,)

    def forward(ctx, a):
        xp = ctx.xp
        t = softplus_stable(xp, a)
        xp.tanh(t, out=t)
        ctx.a, ctx.t = a, t
        return a * t

    def backward(ctx, g):
        xp, a, t = ctx.xp, ctx.a, ctx.t
        d = xp.multiply(t, t, out=_buffer(xp, t))
        xp.subtract(1, d, out=d)
        d *= sigmoid_stable(xp, a)
        d *= a
        d += t
        d *= g
        return d


class LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), stable in both tails; gradient sigmoid(-x)."""

    saves = ()

    def forward(ctx, a):
        xp = ctx.xp
        e = xp.abs(a, out=_buffer(xp, a))
        xp.negative(e, out=e)
        xp.exp(e, out=e)  # e^-|x|, kept for the backward
        out = xp.log1p(e, out=_buffer(xp, a))
        xp.subtract(xp.minimum(a, 0), out, out=out)
        ctx.e, ctx.negative = e, a < 0
        return out

    def backward(ctx, g):
        e = ctx.e
        s = e / (1 + e)  # sigmoid(-|x|)
        return g * ctx.xp.where(ctx.negative, 1 - s, s)
