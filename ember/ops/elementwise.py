"""Elementwise ops: arithmetic with broadcasting, and the unary functions and activations.

Scalar variants (``AddScalar``, ``MulScalar``, ...) take a Python number as an attribute, so
``x * 2.0`` neither builds a tensor for the constant nor pays for a broadcasting reduction.
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..autograd import Function, crossed_saves
from ..backend import special
from ..kernels import activation as kernel_gelu
from .util import quiet_float_errors, unbroadcast


def sigmoid(xp, a):
    """1/(1 + e^-a) as 0.5·tanh(a/2) + 0.5: stable for any a, and 6x faster than scipy's expit on
    float32 here (NumPy's tanh is vectorised). Values below ~1e-7 lose relative precision, which
    activations and their gradients never notice."""
    if a.ndim == 0:  # NumPy ufuncs return immutable scalars for 0-d input; work on one element
        return sigmoid(xp, a.reshape(1)).reshape(())
    out = xp.multiply(a, 0.5)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# ----------------------------------------------------------------------------- binary


class Add(Function):
    saves = ()

    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None, unbroadcast(g, sb) if nb else None)


class Sub(Function):
    saves = ()

    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g, sa) if na else None, unbroadcast(-g, sb) if nb else None)


class Mul(Function):
    saves = (0, 1)

    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        needs = ctx.needs_input_grad
        if needs is not None:  # keep each input only for the other's gradient
            ctx.saves = crossed_saves(needs)
            ctx.a, ctx.b = (a if needs[1] else None), (b if needs[0] else None)
        return a * b

    def backward(ctx, g):
        (sa, sb), a, b = ctx.shapes, ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        return (unbroadcast(g * b, sa) if na else None, unbroadcast(g * a, sb) if nb else None)


class Div(Function):
    saves = (0, 1)

    def forward(ctx, a, b):
        ctx.a_shape = a.shape
        needs = ctx.needs_input_grad
        if needs is not None:  # b is read for both gradients, a only for b's
            ctx.saves = (0, 1) if needs[1] else (1,)
            ctx.a, ctx.b = (a if needs[1] else None), b
        return a / b

    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        ga = unbroadcast(g / b, ctx.a_shape) if na else None
        gb = unbroadcast(-g * a / (b * b), b.shape) if nb else None
        return ga, gb


class Pow(Function):
    """a ** b with both operands tensors, with PyTorch's gradient conventions at the edges: no
    gradient for a where b == 0, none for b where a == 0 and b >= 0 (elsewhere b's gradient is
    a**b·log(a), nan for negative a)."""

    saves = (0, 1, "out")

    def forward(ctx, a, b):
        with quiet_float_errors(ctx.xp):  # 0 ** -1 is inf, (-8) ** 0.5 nan, silently, as in PyTorch
            out = a**b
        ctx.a, ctx.b, ctx.out = a, b, out
        return out

    def backward(ctx, g):
        xp, a, b, out = ctx.xp, ctx.a, ctx.b, ctx.out
        na, nb = ctx.needs_input_grad
        zero = g.dtype.type(0)
        with quiet_float_errors(xp):
            ga = unbroadcast(xp.where(b == 0, zero, g * b * a ** (b - 1)), a.shape) if na else None
            gb = unbroadcast(xp.where((a == 0) & (b >= 0), zero, g * out * xp.log(a)), b.shape) if nb else None
        return ga, gb



class Maximum(Function):
    """Elementwise max; where the two are equal the gradient is split evenly (as PyTorch does)."""

    saves = (0, 1)

    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return ctx.xp.maximum(a, b)

    def backward(ctx, g):
        return _select_grad(ctx, g, ctx.a > ctx.b)


class Minimum(Function):
    saves = (0, 1)

    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return ctx.xp.minimum(a, b)

    def backward(ctx, g):
        return _select_grad(ctx, g, ctx.a < ctx.b)


def _select_grad(ctx, g, a_wins):
    """Gradient of max/min: to the winner, half to each on ties."""
    a, b = ctx.a, ctx.b
    na, nb = ctx.needs_input_grad
    weight_a = a_wins + 0.5 * (a == b)
    weight_a = weight_a.astype(g.dtype, copy=False)
    ga = unbroadcast(g * weight_a, a.shape) if na else None
    gb = unbroadcast(g * (1 - weight_a), b.shape) if nb else None
    return ga, gb


class Where(Function):
    """cond ? a : b, with ``cond`` a boolean array (not differentiated)."""

    saves = ()

    def forward(ctx, a, b, cond):
        ctx.cond, ctx.shapes = cond, (a.shape, b.shape)
        return ctx.xp.where(cond, a, b)

    def backward(ctx, g):
        cond, (sa, sb) = ctx.cond, ctx.shapes
        na, nb = ctx.needs_input_grad
        zero = g.dtype.type(0)
        ga = unbroadcast(ctx.xp.where(cond, g, zero), sa) if na else None
        gb = unbroadcast(ctx.xp.where(cond, zero, g), sb) if nb else None
        return ga, gb


class MaskedFill(Function):
    """``a`` with ``value`` (a number) where the boolean ``mask`` (broadcastable to ``a``) is true."""

    saves = ()

    def forward(ctx, a, mask, value):
        xp = ctx.xp
        ctx.mask = mask
        return xp.where(mask, xp.asarray(value, dtype=a.dtype), a)

    def backward(ctx, g):
        return ctx.xp.where(ctx.mask, g.dtype.type(0), g)


class Triangle(Function):
    """The lower (``tril``) or upper (``triu``) triangle of the last two axes, from diagonal ``k`` on; the
    rest set to 0. The gradient passes through the kept triangle only."""

    saves = ()

    def forward(ctx, a, k, upper):
        ctx.k, ctx.upper = k, upper
        return _triangle(ctx.xp, a, k, upper)

    def backward(ctx, g):
        return _triangle(ctx.xp, g, ctx.k, ctx.upper)


def _triangle(xp, a, k, upper):
    rows, cols = a.shape[-2:]
    keep = xp.arange(cols)[None, :] - xp.arange(rows)[:, None]  # column minus row: the diagonal index
    keep = keep >= k if upper else keep <= k
    return xp.where(keep, a, a.dtype.type(0))


# ----------------------------------------------------------------------------- with a scalar


class AddScalar(Function):
    saves = ()

    def forward(ctx, a, c):
        return a + c

    def backward(ctx, g):
        return g


class MulScalar(Function):
    saves = ()

    def forward(ctx, a, c):
        ctx.c = c
        return a * c

    def backward(ctx, g):
        return g * ctx.c


class DivScalar(Function):
    saves = ()

    def forward(ctx, a, c):
        ctx.c = c
        return a / c

    def backward(ctx, g):
        return g / ctx.c


class RSubScalar(Function):
    """c - a"""

    saves = ()

    def forward(ctx, a, c):
        return c - a

    def backward(ctx, g):
        return -g


class RDivScalar(Function):
    """c / a"""

    saves = (0, "out")

    def forward(ctx, a, c):
        out = c / a
        ctx.a, ctx.out = a, out
        return out

    def backward(ctx, g):
        return -g * ctx.out / ctx.a


class PowScalar(Function):
    """a ** p for a Python number p."""

    saves = (0,)

    def forward(ctx, a, p):
        ctx.a, ctx.p = a, p
        if p == 2:
            return a * a
        with quiet_float_errors(ctx.xp):
            return a**p

    def backward(ctx, g):
        a, p = ctx.a, ctx.p
        if p == 2:
            return g * (2.0 * a)
        if p == 0:  # PyTorch: a zero gradient through x ** 0, even at x = 0
            return ctx.xp.zeros_like(g)
        with quiet_float_errors(ctx.xp):
            return g * (p * a ** (p - 1))


class RPowScalar(Function):
    """c ** a for a Python number c; as PyTorch, 0 ** a is inf/1/0 and its gradient is 0 where a >= 0,
    a negative c gives real powers for integral a and a nan gradient (log c is not real)."""

    saves = (0, "out")

    def forward(ctx, a, c):
        with quiet_float_errors(ctx.xp):
            out = ctx.xp.power(a.dtype.type(c), a)
        ctx.a, ctx.out, ctx.c = a, out, c
        return out

    def backward(ctx, g):
        xp, c = ctx.xp, ctx.c
        if c > 0:
            return g * ctx.out * math.log(c)
        with quiet_float_errors(xp):
            if c == 0:
                return xp.where(ctx.a >= 0, g.dtype.type(0), g * ctx.out * -math.inf)
            return g * ctx.out * math.nan


# ----------------------------------------------------------------------------- unary


class Neg(Function):
    saves = ()

    def forward(ctx, a):
        return -a

    def backward(ctx, g):
        return -g


class Exp(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.exp(a)
        return ctx.out

    def backward(ctx, g):
        return g * ctx.out


class Log(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.log(a)

    def backward(ctx, g):
        return g / ctx.a


class Sqrt(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.sqrt(a)
        return ctx.out

    def backward(ctx, g):
        return g * 0.5 / ctx.out


class Abs(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.abs(a)

    def backward(ctx, g):
        return g * ctx.xp.sign(ctx.a)


class Sin(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.sin(a)

    def backward(ctx, g):
        return g * ctx.xp.cos(ctx.a)


class Cos(Function):
    saves = (0,)

    def forward(ctx, a):
        ctx.a = a
        return ctx.xp.cos(a)

    def backward(ctx, g):
        return -g * ctx.xp.sin(ctx.a)


class Tanh(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = ctx.xp.tanh(a)
        return ctx.out

    def backward(ctx, g):
        out = ctx.out
        return g * (1 - out * out)


class Sigmoid(Function):
    saves = ("out",)

    def forward(ctx, a):
        ctx.out = sigmoid(ctx.xp, a)
        return ctx.out

    def backward(ctx, g):
        out = ctx.out
        return g * out * (1 - out)


class ReLU(Function):
    saves = ("out",)

    def forward(ctx, a):
        out = ctx.xp.maximum(a, 0)
        ctx.out = out
        return out

    def backward(ctx, g):
        return g * (ctx.out > 0)


class Clip(Function):
    """Clamp to [lo, hi] (either may be None); the gradient passes where lo <= a <= hi."""

    saves = (0,)

    def forward(ctx, a, lo, hi):
        ctx.a, ctx.lo, ctx.hi = a, lo, hi
        return ctx.xp.clip(a, lo, hi)

    def backward(ctx, g):
        a, lo, hi = ctx.a, ctx.lo, ctx.hi
        if lo is not None and hi is not None:
            return g * ((a >= lo) & (a <= hi))
        if lo is not None:
            return g * (a >= lo)
        return g * (a <= hi)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t·poly(t)·exp(-z²), t = 1/(1 + p·z), z >= 0, |error| < 1.5e-7.
# PyTorch's vectorised float32 erf uses the same formula; SciPy's float32 erf goes through the double
# routine one element at a time and took 9 ms for one GPT MLP activation (400k values) here.
_AS_P = 0.3275911
_AS_COEFFS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


_AS_P_HALF = _AS_P * _INV_SQRT_2  # t = 1/(1 + p·|a|/√2), the 1/√2 folded in
_AS_HALF_COEFFS = tuple(-0.5 * c for c in _AS_COEFFS)  # the -½ of Φ(-|a|) = ½·poly·exp, folded in


def normal_cdf_and_density(xp, a):
    """Φ(a) and φ(a) of the standard normal: float32 by A&S 7.1.26 (one exp shared by both), else SciPy.

    21 element-wise passes, constants folded into the coefficients.
    """
    if a.dtype != xp.float32:
        return 0.5 * (1 + special(xp).erf(a * _INV_SQRT_2)), _INV_SQRT_2PI * xp.exp(-0.5 * a * a)
    if a.ndim == 0:  # NumPy ufuncs return immutable scalars for 0-d input; work on one element
        cdf, pdf = normal_cdf_and_density(xp, a.reshape(1))
        return cdf.reshape(()), pdf.reshape(())
    t = xp.abs(a)
    t *= _AS_P_HALF
    t += 1.0
    xp.reciprocal(t, out=t)
    poly = t * _AS_HALF_COEFFS[0]
    for c in _AS_HALF_COEFFS[1:]:
        poly += c
        poly *= t
    e = xp.square(a, out=t)  # t is no longer needed
    e *= -0.5
    xp.exp(e, out=e)  # exp(-a²/2)
    poly *= e  # -Φ(-|a|)
    poly += 0.5  # 0.5 - Φ(-|a|) >= 0
    xp.copysign(poly, a, out=poly)
    poly += 0.5  # Φ(a) = 0.5 + sign(a)·(0.5 - Φ(-|a|)); xp.where took 2 ms of the 3 here
    e *= _INV_SQRT_2PI
    return poly, e


class GELU(Function):
    """x·Φ(x), exact (erf) or with the tanh approximation of GPT-2 (``approximate='tanh'``)."""

    saves = (0,)

    def forward(ctx, a, approximate):
        xp = ctx.xp
        ctx.a, ctx.approximate = a, approximate
        fits = a.dtype == np.float32 and kernels.takes(a)
        ctx.compiled = fits and approximate != "tanh"  # the compiled backward: the exact form's only
        ctx.t = None
        if fits and approximate == "tanh":  # one pass with a rational tanh; backward: the reference's formula
            return kernel_gelu.gelu_tanh_forward(a)
        if ctx.compiled:  # one pass with a rational erf; backward recomputes Φ (ember/kernels/activation.py)
            return kernel_gelu.gelu_forward(a)
        if approximate == "tanh":
            t = xp.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a * a * a))
            ctx.t = t
            return 0.5 * a * (1 + t)
        ctx.cdf, ctx.pdf = normal_cdf_and_density(xp, a)
        return a * ctx.cdf

    def backward(ctx, g):
        a = ctx.a
        if ctx.compiled:
            return kernel_gelu.gelu_backward(a, np.ascontiguousarray(g, dtype=a.dtype))
        if ctx.approximate == "tanh":
            t = ctx.t if ctx.t is not None else ctx.xp.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a * a * a))
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * du)
        dy = a * ctx.pdf
        dy += ctx.cdf
        dy *= g
        return dy


class SiLU(Function):
    """x·sigmoid(x) (swish)."""

    saves = (0,)

    def forward(ctx, a):
        s = sigmoid(ctx.xp, a)
        ctx.a, ctx.s = a, s
        return a * s

    def backward(ctx, g):
        a, s = ctx.a, ctx.s
        return g * (s * (1 + a * (1 - s)))


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""

    saves = ()

    def forward(ctx, a, dtype):
        ctx.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(ctx, g):
        return g.astype(ctx.in_dtype)
