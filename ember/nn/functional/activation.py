"""Activations: elementwise nonlinearities and (log-)softmax / softmin.

Signatures follow ``torch.nn.functional``. ``inplace=True`` computes the result and writes it
into the input with ``copy_`` (recorded in the graph as PyTorch records an in-place op; a leaf
that requires grad then raises, as in PyTorch) and returns the input tensor.
"""

from __future__ import annotations

from ... import backend
from ...autograd import is_grad_enabled
from ...ops import activation as A
from ...ops import elementwise as E
from ...ops import nn as N
from ...ops.util import dim_arg
from ...tensor import Tensor, apply

__all__ = [
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "softplus",
    "softsign",
    "sigmoid",
    "logsigmoid",
    "tanh",
    "softmax",
    "softmin",
    "log_softmax",
]

# SELU's fixed constants (Klambauer et al. 2017), to the digits PyTorch uses.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _activate(op, x: Tensor, inplace: bool, **attrs) -> Tensor:
    """Apply ``op``; with ``inplace``, write the result into ``x`` and return ``x``.

    The op then runs on a clone when a graph is recorded, so what its backward reads is not the
    memory that ``copy_`` overwrites (the version check would rightly refuse it otherwise).
    """
    if not inplace:
        return apply(op, x, **attrs)
    source = x.clone() if x.requires_grad and is_grad_enabled() else x
    return x.copy_(apply(op, source, **attrs))


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    return _activate(E.ReLU, x, inplace)


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6); gradient 0 at both kinks (x = 0 and x = 6), as PyTorch."""
    return _activate(A.Hardtanh, x, inplace, min_val=0.0, max_val=6.0)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope·x otherwise (the gradient at 0 is negative_slope)."""
    return _activate(A.LeakyReLU, x, inplace, negative_slope=float(negative_slope))


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha·(e^x - 1) otherwise."""
    return _activate(A.ELU, x, inplace, alpha=float(alpha), scale=1.0, input_scale=1.0)


def selu(x: Tensor, inplace: bool = False) -> Tensor:
    """scale·elu(x, alpha) with SELU's fixed alpha ≈ 1.6733 and scale ≈ 1.0507."""
    return _activate(A.ELU, x, inplace, alpha=SELU_ALPHA, scale=SELU_SCALE, input_scale=1.0)


def celu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha·(e^(x/alpha) - 1)); alpha must be nonzero.

    The gradient uses the exact 1/alpha; PyTorch's backward uses 1/float32(alpha), so in float64
    the two differ by ~1e-8 (relative) when alpha is not exact in float32.
    """
    if alpha == 0:
        raise ValueError("celu: alpha must be nonzero (the negative side is alpha·(exp(x/alpha) - 1)), got 0")
    return _activate(A.ELU, x, inplace, alpha=float(alpha), scale=1.0, input_scale=1.0 / float(alpha))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return x.gelu(approximate)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    return _activate(E.SiLU, x, inplace)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x·tanh(softplus(x))."""
    return _activate(A.Mish, x, inplace)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """clamp(x, min_val, max_val); the gradient is 1 strictly between the bounds and 0 at them."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    return _activate(A.Hardtanh, x, inplace, min_val=float(min_val), max_val=float(max_val))


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    """x·relu6(x + 3)/6 (MobileNetV3)."""
    return _activate(A.Hardswish, x, inplace)


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3)/6."""
    return _activate(A.Hardsigmoid, x, inplace)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta·x))/beta, reverting to x where beta·x > threshold."""
    return apply(A.Softplus, x, beta=float(beta), threshold=float(threshold))


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return apply(A.Softsign, x)


def sigmoid(x: Tensor) -> Tensor:
    return apply(E.Sigmoid, x)


def logsigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)), stable for any x."""
    return apply(A.LogSigmoid, x)


def tanh(x: Tensor) -> Tensor:
    return apply(E.Tanh, x)


def _softmax_input(name: str, x: Tensor, axis, dim, dtype):
    """Resolve axis/dim (default -1, see below) and cast to ``dtype`` first, as PyTorch's ``dtype=`` does.

    PyTorch's ``dim=None`` picks a legacy implicit axis with a deprecation warning; ember's
    default is the last axis.
    """
    axis = dim_arg(name, axis, dim, -1)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{name}: the axis must be an int, got {axis!r}")
    ndim = max(x.ndim, 1)
    if not -ndim <= axis < ndim:
        raise IndexError(f"{name}: axis {axis} is out of range for a tensor of shape {tuple(x.shape)}")
    if dtype is not None:
        x = x.to(dtype=backend.resolve_dtype(dtype))
    return x, axis % ndim if x.ndim else None


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None, dtype=None) -> Tensor:
    """e^x / sum(e^x) along ``axis`` (default -1; ``dim=`` is PyTorch's spelling)."""
    x, axis = _softmax_input("softmax", x, axis, dim, dtype)
    return apply(N.Softmax, x, axis=axis)


def softmin(x: Tensor, axis: int | None = None, *, dim: int | None = None, dtype=None) -> Tensor:
    """softmax(-x) along ``axis`` (default -1)."""
    x, axis = _softmax_input("softmin", x, axis, dim, dtype)
    return apply(N.Softmin, x, axis=axis)


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None, dtype=None) -> Tensor:
    """x - logsumexp(x) along ``axis`` (default -1)."""
    x, axis = _softmax_input("log_softmax", x, axis, dim, dtype)
    return apply(N.LogSoftmax, x, axis=axis)
