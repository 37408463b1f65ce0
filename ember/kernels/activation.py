"""GELU in one pass per direction, float32: Eigen's rational erf (and, for the tanh form, Eigen's rational tanh)
instead of a chain of NumPy passes.

Reference: ``ops.elementwise.GELU`` with ``normal_cdf_and_density`` (Abramowitz & Stegun 7.1.26,
21 NumPy passes sharing one ``exp``). Here Φ(x) = ½(1 + erf(x/√2)) with Eigen's float32
``generic_fast_erf_float``: a 13th-order odd rational polynomial on x clamped to [-4, 4], pure
arithmetic, so the loop vectorises (no ``exp``, which numba can only call per element here). Its
error is float32 round-off (|Δerf| < 4e-7, a few ulp, over the whole range), the accuracy PyTorch's
float32 GELU has; unlike A&S it does not keep relative accuracy in the far negative tail, where
GELU's value is below 1e-6 in magnitude. The backward needs φ(x) = exp(-x²/2)/√(2π), computed in the
same pass from a table of e^(-k/8) and a short polynomial (``_exp_neg``), not libm's scalar exp.

GPT-2's tanh form, 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), has a compiled forward (what decoding runs),
with tanh from Eigen's float32 ``generic_fast_tanh_float``: an odd degree-13 over even degree-6 rational on the
argument clamped to ±7.9053 (where tanh is 1 in float32), the argument itself below 4e-4. Its error is at most
3.4e-7 against float64 (about 6 ulp near ±1; NumPy's float32 tanh: 6e-8), so GELU's stays within 4e-7·max(1, |x|);
tested. Its backward stays on the reference: the derivative's 1 - tanh² would turn that error into 4e-6 near
|x| = 5, against 1e-7 with NumPy's tanh.

float64 stays on the reference (SciPy's erf, NumPy's tanh), which the float64 gradchecks test.
"""

from __future__ import annotations

import math

import numpy as np

from . import jit

_f = np.float32
# Eigen (Eigen/src/Core/arch/Default/GenericPacketMathFunctions.h, generic_fast_erf_float):
# erf(x) ≈ x·P(x²)/Q(x²) for |x| <= 4, ±1 beyond (erf(4) = 1 - 1.5e-8, below float32's half-ulp of 1).
_ALPHA = (_f(-2.72614225801306e-10), _f(2.77068142495902e-08), _f(-2.10102402082508e-06), _f(-5.69250639462346e-05),
          _f(-7.34990630326855e-04), _f(-2.95459980854025e-03), _f(-1.60960333262415e-02))
_BETA = (_f(-1.45660718464996e-05), _f(-2.13374055278905e-04), _f(-1.68282697438203e-03), _f(-7.37332916720468e-03),
         _f(-1.42647390514189e-02))
_CLAMP = _f(4.0)
_HALF, _ONE = _f(0.5), _f(1.0)
_INV_SQRT_2 = _f(1.0 / math.sqrt(2.0))
_INV_SQRT_2PI = _f(1.0 / math.sqrt(2.0 * math.pi))


def _erf(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _ALPHA[0] + _ALPHA[1]
    p = x2 * p + _ALPHA[2]
    p = x2 * p + _ALPHA[3]
    p = x2 * p + _ALPHA[4]
    p = x2 * p + _ALPHA[5]
    p = x2 * p + _ALPHA[6]
    q = x2 * _BETA[0] + _BETA[1]
    q = x2 * q + _BETA[2]
    q = x2 * q + _BETA[3]
    q = x2 * q + _BETA[4]
    return x * p / q


def _odd_rational(x: np.ndarray, alpha: tuple, beta: tuple) -> np.ndarray:
    """x·P(x²)/Q(x²) by Horner's rule in NumPy passes, in the kernels' order of operations."""
    x2 = x * x
    p = x2 * alpha[0] + alpha[1]
    for a in alpha[2:]:
        p = x2 * p + a
    q = x2 * beta[0] + beta[1]
    for b in beta[2:]:
        q = x2 * q + b
    return x * p / q


def erf_reference(x: np.ndarray) -> np.ndarray:
    """The same rational erf in NumPy passes (float32 throughout), to test the kernel's arithmetic exactly."""
    return _odd_rational(np.clip(x, -_CLAMP, _CLAMP), _ALPHA, _BETA)


_erf_kernel = jit(_erf)

# exp(-t) for t >= 0 without libm (numba's exp is a scalar call here): e^(-k/8) from a table times a degree-5
# Taylor polynomial of e^(-r), r = t - k/8 in [0, 1/8) (truncation 5e-9 relative); 0 from t = 18 on, where
# x·φ(x) < 4e-8. Absolute error < 1e-7 against float64, the float32 round-off of t = x²/2 itself.
_EXP_TABLE = np.exp(-np.arange(144, dtype=np.float64) / 8).astype(np.float32)
_EXP_STEPS, _EXP_STEP, _EXP_END = _f(8.0), _f(0.125), _f(18.0)
_EXP_TAYLOR = tuple(_f((-1) ** n / math.factorial(n)) for n in range(6))


def _exp_neg(t):
    if not t < _EXP_END:  # also NaN, which must not reach the table index (the caller's x·φ keeps the NaN)
        return _f(0.0)
    k = int(t * _EXP_STEPS)
    r = t - _f(k) * _EXP_STEP
    p = _EXP_TAYLOR[5]
    p = p * r + _EXP_TAYLOR[4]
    p = p * r + _EXP_TAYLOR[3]
    p = p * r + _EXP_TAYLOR[2]
    p = p * r + _EXP_TAYLOR[1]
    p = p * r + _EXP_TAYLOR[0]
    return _EXP_TABLE[k] * p


_exp_neg_kernel = jit(_exp_neg)


def _gelu_forward(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = _HALF * v * (_ONE + _erf_kernel(v * _INV_SQRT_2))


def _gelu_backward(x, g, out):
    """out = g·(Φ(x) + x·φ(x)), φ(x) = exp(-x²/2)/√(2π) by ``_exp_neg``."""
    for i in range(x.size):
        v = x[i]
        cdf = _HALF * (_ONE + _erf_kernel(v * _INV_SQRT_2))
        out[i] = g[i] * (cdf + v * _exp_neg_kernel(_HALF * v * v) * _INV_SQRT_2PI)


_forward_kernel = jit(_gelu_forward) if _erf_kernel is not None else None
_backward_kernel = jit(_gelu_backward) if _erf_kernel is not None else None


def gelu_forward(x: np.ndarray) -> np.ndarray:
    """x·Φ(x) for a C-contiguous float32 array (callers check ``kernels.takes`` and the dtype)."""
    flat = x.reshape(-1)  # 1-D views: a 0-d array would turn NumPy's ufunc results into scalars
    out = np.empty_like(flat)
    _forward_kernel(flat, out)
    return out.reshape(x.shape)


def gelu_backward(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """g·GELU'(x) for C-contiguous float32 arrays of one shape."""
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    _backward_kernel(flat, g.reshape(-1), out)
    return out.reshape(x.shape)


# Eigen (generic_fast_tanh_float): tanh(x) ≈ x·P(x²)/Q(x²) for |x| <= 7.90531110763549805, ±1 beyond.
_TANH_ALPHA = (_f(-2.76076847742355e-16), _f(2.00018790482477e-13), _f(-8.60467152213735e-11),
               _f(5.12229709037114e-08), _f(1.48572235717979e-05), _f(6.37261928875436e-04), _f(4.89352455891786e-03))
_TANH_BETA = (_f(1.19825839466702e-06), _f(1.18534705686654e-04), _f(2.26843463243900e-03), _f(4.89352518554385e-03))
_TANH_CLAMP, _TANH_TINY = _f(7.90531110763549805), _f(0.0004)
_SQRT_2_OVER_PI = _f(math.sqrt(2.0 / math.pi))
_CUBIC = _f(0.044715)


def _tanh(v):
    x = min(max(v, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = x2 * _TANH_ALPHA[0] + _TANH_ALPHA[1]
    p = x2 * p + _TANH_ALPHA[2]
    p = x2 * p + _TANH_ALPHA[3]
    p = x2 * p + _TANH_ALPHA[4]
    p = x2 * p + _TANH_ALPHA[5]
    p = x2 * p + _TANH_ALPHA[6]
    q = x2 * _TANH_BETA[0] + _TANH_BETA[1]
    q = x2 * q + _TANH_BETA[2]
    q = x2 * q + _TANH_BETA[3]
    r = x * p / q
    return v if abs(v) < _TANH_TINY else r  # a select, not a branch: the loop stays vectorised


def tanh_reference(x: np.ndarray) -> np.ndarray:
    """The same rational tanh in NumPy passes (float32 throughout), to test the kernel's arithmetic exactly."""
    rational = _odd_rational(np.clip(x, -_TANH_CLAMP, _TANH_CLAMP), _TANH_ALPHA, _TANH_BETA)
    return np.where(np.abs(x) < _TANH_TINY, x, rational)


_tanh_kernel = jit(_tanh)


def _gelu_tanh_forward(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = _HALF * v * (_ONE + _tanh_kernel(_SQRT_2_OVER_PI * (v + _CUBIC * v * v * v)))


_tanh_forward_kernel = jit(_gelu_tanh_forward) if _tanh_kernel is not None else None


def gelu_tanh_forward(x: np.ndarray) -> np.ndarray:
    """GPT-2's tanh GELU for a C-contiguous float32 array (callers check ``kernels.takes`` and the dtype)."""
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    _tanh_forward_kernel(flat, out)
    return out.reshape(x.shape)
