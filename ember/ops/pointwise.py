"""Element-wise math beyond the arithmetic of ``elementwise.py``: roots, logs, trigonometric and hyperbolic
functions and their inverses, rounding, the error function, and the binary functions remainder, fmod,
atan2, hypot, lerp and clamp with tensor bounds.

Gradients follow PyTorch's formulas (derivatives.yaml), so they agree with it to rounding: rounding
functions and ``sign`` have a zero gradient, remainder's gradient for the divisor is ``-floor(a / b)``,
fmod's ``-trunc(a / b)``, and clamp sends the gradient to a bound only where that bound is the result.
"""

from __future__ import annotations

import math

from ..autograd import Function
from ..backend import special
from .util import unbroadcast

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# ----------------------------------------------------------------------------- unary with a gradient


class Rsqrt(Function):
    """1 / sqrt(a)."""

    saves = ("out",)

    def forward(ctx, a):
        out = ctx.xp.sqrt(a)
        ctx.xp.reciprocal(out, out=out)
        ctx.out = out
        return out

    def backward(ctx, g):
        out = ctx.out
        return g * (-0.5 * out * out * out)


class Reciprocal(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.reciprocal(a)
        return ctx.out

    def backward(ctx, g):
        out = ctx.out
        return -g * (out * out)


class Square(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return a * a

    def backward(ctx, g):
        return g * (2.0 * ctx.a)


class Erf(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return special(ctx.xp).erf(a)

    def backward(ctx, g):
        a = ctx.a
        return g * (_TWO_OVER_SQRT_PI * ctx.xp.exp(-(a * a)))


class Log2(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.log2(a)

    def backward(ctx, g):
        return g / (ctx.a * _LN2)


class Log10(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.log10(a)

    def backward(ctx, g):
        return g / (ctx.a * _LN10)


class Log1p(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.log1p(a)

    def backward(ctx, g):
        return g / (ctx.a + 1.0)


class Exp2(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.exp2(a)
        return ctx.out

    def backward(ctx, g):
        return g * (ctx.out * _LN2)


class Expm1(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.expm1(a)
        return ctx.out

    def backward(ctx, g):
        return g * (ctx.out + 1.0)


class Tan(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.tan(a)
        return ctx.out

    def backward(ctx, g):
        out = ctx.out
        return g * (1.0 + out * out)


class Sinh(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.sinh(a)

    def backward(ctx, g):
        return g * ctx.xp.cosh(ctx.a)


class Cosh(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.cosh(a)

    def backward(ctx, g):
        return g * ctx.xp.sinh(ctx.a)


class Asinh(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.arcsinh(a)

    def backward(ctx, g):
        a = ctx.a
        return g / ctx.xp.sqrt(a * a + 1.0)


class Acosh(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.arccosh(a)

    def backward(ctx, g):
        a = ctx.a
        return g / ctx.xp.sqrt(a * a - 1.0)


class Atanh(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.arctanh(a)

    def backward(ctx, g):
        a = ctx.a
        return g / (1.0 - a * a)


class Asin(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.arcsin(a)

    def backward(ctx, g):
        a = ctx.a
        return g / ctx.xp.sqrt(1.0 - a * a)


class Acos(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.arccos(a)

    def backward(ctx, g):
        a = ctx.a
        return -g / ctx.xp.sqrt(1.0 - a * a)


class Atan(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.arctan(a)

    def backward(ctx, g):
        a = ctx.a
        return g / (1.0 + a * a)


# ----------------------------------------------------------------------------- piecewise constant (zero gradient)


class _ZeroGradient(Function):
    """A function that is flat almost everywhere: PyTorch defines its gradient as zero everywhere."""

    saves = ()

    def backward(ctx, g):
        return ctx.xp.zeros_like(g)


class Floor(_ZeroGradient):
    def forward(ctx, a):
        return ctx.xp.floor(a)


class Ceil(_ZeroGradient):
    def forward(ctx, a):
        return ctx.xp.ceil(a)


class Trunc(_ZeroGradient):
    def forward(ctx, a):
        return ctx.xp.trunc(a)


class Round(_ZeroGradient):
    """Round half to even, at ``decimals`` decimal places (negative: tens, hundreds, ...), as PyTorch:
    ``rint(a * 10**d) / 10**d``, or ``rint(a / 10**-d) * 10**-d`` for negative ``d``."""

    def forward(ctx, a, decimals):
        xp = ctx.xp
        if decimals == 0:
            return xp.rint(a)
        scale = float(10.0 ** abs(decimals))
        if decimals > 0:
            out = xp.rint(a * scale)
            out /= scale
        else:
            out = xp.rint(a / scale)
            out *= scale
        return out


class Sign(_ZeroGradient):
    """-1, 0 or 1; NaN gives 0 as in PyTorch (``(a > 0) - (a < 0)``)."""

    def forward(ctx, a):
        out = (a > 0).astype(a.dtype)
        out -= a < 0
        return out


# ----------------------------------------------------------------------------- binary


def _shapes(ctx, a, b):
    ctx.shapes = (a.shape, b.shape)


class Remainder(Function):
    """a - floor(a / b) * b: the result takes the sign of b (Python's %). Integer or float."""

    saves = (0, 1)

    def forward(ctx, a, b):
        needs = ctx.needs_input_grad
        ctx.saves = (0, 1) if needs is None or needs[1] else ()  # a and b are read only for b's gradient
        ctx.a, ctx.b = (a, b) if ctx.saves else (None, None)
        _shapes(ctx, a, b)
        return ctx.xp.remainder(a, b)

    def backward(ctx, g):
        (sa, sb), (na, nb) = ctx.shapes, ctx.needs_input_grad
        ga = unbroadcast(g, sa) if na else None
        gb = unbroadcast(-g * ctx.xp.floor_divide(ctx.a, ctx.b), sb) if nb else None
        return ga, gb


class Fmod(Function):
    """C's fmod: a - trunc(a / b) * b, the result takes the sign of a."""

    saves = (0, 1)

    def forward(ctx, a, b):
        needs = ctx.needs_input_grad
        ctx.saves = (0, 1) if needs is None or needs[1] else ()
        ctx.a, ctx.b = (a, b) if ctx.saves else (None, None)
        _shapes(ctx, a, b)
        return ctx.xp.fmod(a, b)

    def backward(ctx, g):
        (sa, sb), (na, nb) = ctx.shapes, ctx.needs_input_grad
        ga = unbroadcast(g, sa) if na else None
        gb = unbroadcast(-g * ctx.xp.trunc(ctx.a / ctx.b), sb) if nb else None
        return ga, gb


class Atan2(Function):
    """The angle of the point (b, a): atan(a / b) in the right quadrant."""

    saves = (0, 1)

    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return ctx.xp.arctan2(a, b)

    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        scale = g / (a * a + b * b)
        ga = unbroadcast(scale * b, a.shape) if na else None
        gb = unbroadcast(-scale * a, b.shape) if nb else None
        return ga, gb


class Hypot(Function):
    """sqrt(a² + b²) without overflow."""

    saves = (0, 1, "out")

    def forward(ctx, a, b):
        out = ctx.xp.hypot(a, b)
        ctx.a, ctx.b, ctx.out = a, b, out
        return out

    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        scale = g / ctx.out
        ga = unbroadcast(scale * a, a.shape) if na else None
        gb = unbroadcast(scale * b, b.shape) if nb else None
        return ga, gb


def _lerp(xp, start, end, weight):
    """PyTorch's two-sided formula: exact at weight 0 and at weight 1."""
    diff = end - start
    low = start + weight * diff
    high = end - diff * (1.0 - weight)
    return xp.where(xp.abs(weight) < 0.5, low, high)


class Lerp(Function):
    """start + weight * (end - start), all three tensors (broadcasting)."""

    saves = (0, 1, 2)

    def forward(ctx, start, end, weight):
        needs = ctx.needs_input_grad
        if needs is not None:  # weight is read for start's and end's gradients, start and end for weight's
            ctx.saves = ((0, 1) if needs[2] else ()) + ((2,) if needs[0] or needs[1] else ())
        ctx.start, ctx.end, ctx.weight = start, end, weight
        return _lerp(ctx.xp, start, end, weight)

    def backward(ctx, g):
        start, end, weight = ctx.start, ctx.end, ctx.weight
        ns, ne, nw = ctx.needs_input_grad
        gs = unbroadcast(g * (1.0 - weight), start.shape) if ns else None
        ge = unbroadcast(g * weight, end.shape) if ne else None
        gw = unbroadcast(g * (end - start), weight.shape) if nw else None
        return gs, ge, gw


class LerpScalar(Function):
    """start + weight * (end - start) for a Python number ``weight``."""

    saves = ()

    def forward(ctx, start, end, weight):
        ctx.shapes, ctx.weight = (start.shape, end.shape), weight
        return _lerp(ctx.xp, start, end, weight)

    def backward(ctx, g):
        (ss, se), w = ctx.shapes, ctx.weight
        ns, ne = ctx.needs_input_grad
        return (unbroadcast(g * (1.0 - w), ss) if ns else None, unbroadcast(g * w, se) if ne else None)


class ClampTensor(Function):
    """min(max(x, lo), hi) with tensor bounds (either may be absent; inputs are x, then lo and/or hi).

    PyTorch's gradient rule: x gets the gradient where lo <= x <= hi (ties go to x); lo where x < lo and
    lo < hi; hi where x > hi or hi < lo (an empty interval gives hi, the result, all of it).
    """

    saves = ("inputs",)

    def forward(ctx, x, *bounds, has_min, has_max):
        xp = ctx.xp
        lo = bounds[0] if has_min else None
        hi = bounds[-1] if has_max else None
        out = x
        if has_min:
            out = xp.maximum(out, lo)
        if has_max:
            out = xp.minimum(out, hi)
        if out is x:  # no bounds: the caller rejects this, but never alias the input
            out = x.copy()
        ctx.x, ctx.lo, ctx.hi = x, lo, hi
        return out

    def backward(ctx, g):
        xp, x, lo, hi = ctx.xp, ctx.x, ctx.lo, ctx.hi
        needs = ctx.needs_input_grad
        zero = g.dtype.type(0)
        grads = []
        if needs[0]:
            inside = True
            if lo is not None:
                inside = x >= lo
            if hi is not None:
                inside = inside & (x <= hi)
            grads.append(unbroadcast(xp.where(inside, g, zero), x.shape))
        else:
            grads.append(None)
        k = 1
        if lo is not None:
            if needs[k]:
                active = x < lo if hi is None else (x < lo) & (lo < hi)
                grads.append(unbroadcast(xp.where(active, g, zero), lo.shape))
            else:
                grads.append(None)
            k += 1
        if hi is not None:
            if needs[k]:
                active = x > hi if lo is None else (x > hi) | (hi < lo)
                grads.append(unbroadcast(xp.where(active, g, zero), hi.shape))
            else:
                grads.append(None)
        return tuple(grads)
