"""Element-wise math (floor, erf, sinh, ...), logical and bitwise ops, scans and products, sums, clamp,
lerp, integer-style division and einsum, with PyTorch's names, arguments and semantics.

Argument checks and type promotion live here; the ops in ``ember.ops.pointwise``, ``ember.ops.scan`` and
``ember.ops.einsum`` see arrays only. Results that cannot carry a gradient (booleans, integers,
``floor_divide``) come back as tensors that do not require grad.

Type promotion is PyTorch's: tensors with dimensions outrank 0-d tensors, which outrank Python numbers,
unless a lower rank brings a higher category (bool < integer < float); a Python float meets an integer
tensor as the default float dtype. ember's own rule comes first: two tensors of different float dtypes
in one op are a TypeError (no silent float64).
"""

from __future__ import annotations

import builtins
import string
from collections import Counter

import numpy as np

from .. import backend
from ..autograd import is_grad_enabled
from ..ops import elementwise as E
from ..ops import pointwise as P
from ..ops import reduce as R
from ..ops import scan as C
from ..ops.einsum import Einsum
from ..ops.util import dim_arg, keepdim_arg
from ..tensor import Tensor, _wrap, apply

__all__ = [
    # unary math
    "rsqrt", "reciprocal", "square", "erf", "log2", "log10", "log1p", "exp2", "expm1", "tan", "sinh", "cosh",
    "asinh", "acosh", "atanh", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "arcsinh", "arccosh",
    "arctanh", "sign", "floor", "ceil", "round", "trunc", "fix",
    # binary math
    "atan2", "arctan2", "hypot", "remainder", "fmod", "floor_divide", "lerp", "clamp",
    # tests
    "isnan", "isinf", "isfinite",
    # logical and bitwise
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "bitwise_left_shift", "bitwise_right_shift",
    # scans, products, sums
    "cumsum", "cumprod", "prod", "sum", "einsum",
]

_FLOAT = "f"
_INTEGRAL = "biu"  # bool, signed, unsigned


# ----------------------------------------------------------------------------- shared argument handling


def check_tensor(op: str, name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    return value


def wrap_dim(op: str, dim, ndim: int, name: str = "dim") -> int:
    """A dimension in [-ndim, ndim) as a non-negative int (a 0-d tensor accepts 0 and -1, as in PyTorch)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an int, got {dim!r}")
    bound = builtins.max(ndim, 1)
    if not -bound <= dim < bound:
        raise IndexError(
            f"{op}: {name}={dim} is out of range for a tensor with {ndim} dimension(s) "
            f"(expected a value in [{-bound}, {bound - 1}])"
        )
    return int(dim) % bound


def required_dim(op: str, axis, dim):
    """The dimension given as ``axis`` (positionally) or ``dim=``; one of them is required."""
    value = dim_arg(op, axis, dim)
    if value is None:
        raise TypeError(f"{op}: missing the dimension; pass it positionally or as dim=")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def _number_dtype(value) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    return backend.get_default_dtype()


def _promote_pair(a, b):
    """Promote two dtypes of the same rank: float beats integer beats bool; two integers as NumPy (and PyTorch)."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    ka, kb = a.kind == _FLOAT, b.kind == _FLOAT
    if ka != kb:
        return a if ka else b
    if a == np.bool_ or b == np.bool_:
        return b if a == np.bool_ else a
    return np.promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's combine_categories: a lower rank decides only if it brings a higher category."""
    if higher is None:
        return lower
    if lower is None or higher.kind == _FLOAT:
        return higher
    if higher == np.bool_ or lower.kind == _FLOAT:
        return _promote_pair(higher, lower)
    return higher


def result_type(op: str, *operands) -> np.dtype:
    """The dtype PyTorch gives an op on ``operands`` (tensors and Python numbers; None is skipped)."""
    floats = {t.dtype for t in operands if isinstance(t, Tensor) and t.dtype.kind == _FLOAT}
    if len(floats) > 1:
        described = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in operands if isinstance(t, Tensor))
        raise TypeError(
            f"{op}: tensors of different float dtypes ({described}); cast one explicitly with .to(dtype) - "
            "ember never upcasts silently"
        )
    dims = zero_dim = numbers = None
    for o in operands:
        if isinstance(o, Tensor):
            if o.ndim:
                dims = _promote_pair(dims, o.dtype)
            else:
                zero_dim = _promote_pair(zero_dim, o.dtype)
        elif o is not None:
            if not _is_number(o):
                raise TypeError(f"{op}: expected tensors or numbers, got {type(o).__name__}")
            numbers = _promote_pair(numbers, _number_dtype(o))
    return _combine(dims, _combine(zero_dim, numbers))


def as_operand(value, dtype, like: Tensor) -> Tensor:
    """A tensor of ``dtype`` on ``like``'s device: numbers become 0-d constants, other dtypes are converted
    (only non-float tensors ever are, so no gradient is lost)."""
    if isinstance(value, Tensor):
        return value if value.dtype == dtype else _wrap(value.data.astype(dtype), None)
    xp = backend.array_module(like.data)
    if isinstance(value, (float, np.floating)) and np.dtype(dtype).kind != _FLOAT:
        raise TypeError(f"a float number {value!r} cannot take part in an op whose result is {dtype}")
    return _wrap(xp.asarray(value).astype(dtype), None)


def promoted(op: str, *operands):
    """Promote tensors and numbers (at least one tensor) to their common dtype: (dtype, tensors)."""
    like = next((o for o in operands if isinstance(o, Tensor)), None)
    if like is None:
        raise TypeError(f"{op}: at least one operand must be a Tensor, got {[type(o).__name__ for o in operands]}")
    dtype = result_type(op, *operands)
    return dtype, [as_operand(o, dtype, like) for o in operands]


def _floating(op: str, x) -> Tensor:
    """Float tensors pass; integer and bool tensors become the default float dtype (PyTorch's rule for
    functions such as sqrt or tan), without a gradient since they never had one."""
    check_tensor(op, "input", x)
    if x.dtype.kind == _FLOAT:
        return x
    return _wrap(x.data.astype(backend.get_default_dtype()), None)


def _no_grad(array) -> Tensor:
    return _wrap(array, None)


def _xp(t: Tensor):
    return backend.array_module(t.data)


# ----------------------------------------------------------------------------- unary math


def rsqrt(input: Tensor) -> Tensor:
    """1 / sqrt(input)."""
    return apply(P.Rsqrt, _floating("rsqrt", input))


def reciprocal(input: Tensor) -> Tensor:
    """1 / input (integer inputs give floats)."""
    return apply(P.Reciprocal, _floating("reciprocal", input))


def square(input: Tensor) -> Tensor:
    """input * input; integers stay integers (bool becomes int64, as in PyTorch)."""
    check_tensor("square", "input", input)
    if input.dtype == np.bool_:
        input = _wrap(input.data.astype(np.int64), None)
    return apply(P.Square, input)


def erf(input: Tensor) -> Tensor:
    """The error function 2/√π ∫₀ˣ exp(-t²) dt."""
    return apply(P.Erf, _floating("erf", input))


def log2(input: Tensor) -> Tensor:
    return apply(P.Log2, _floating("log2", input))


def log10(input: Tensor) -> Tensor:
    return apply(P.Log10, _floating("log10", input))


def log1p(input: Tensor) -> Tensor:
    """log(1 + input), accurate for small inputs."""
    return apply(P.Log1p, _floating("log1p", input))


def exp2(input: Tensor) -> Tensor:
    return apply(P.Exp2, _floating("exp2", input))


def expm1(input: Tensor) -> Tensor:
    """exp(input) - 1, accurate for small inputs."""
    return apply(P.Expm1, _floating("expm1", input))


def tan(input: Tensor) -> Tensor:
    return apply(P.Tan, _floating("tan", input))


def sinh(input: Tensor) -> Tensor:
    return apply(P.Sinh, _floating("sinh", input))


def cosh(input: Tensor) -> Tensor:
    return apply(P.Cosh, _floating("cosh", input))


def asinh(input: Tensor) -> Tensor:
    return apply(P.Asinh, _floating("asinh", input))


def acosh(input: Tensor) -> Tensor:
    """Inverse hyperbolic cosine (NaN below 1)."""
    return apply(P.Acosh, _floating("acosh", input))


def atanh(input: Tensor) -> Tensor:
    """Inverse hyperbolic tangent (±inf at ±1, NaN beyond)."""
    return apply(P.Atanh, _floating("atanh", input))


def asin(input: Tensor) -> Tensor:
    return apply(P.Asin, _floating("asin", input))


def acos(input: Tensor) -> Tensor:
    return apply(P.Acos, _floating("acos", input))


def atan(input: Tensor) -> Tensor:
    return apply(P.Atan, _floating("atan", input))


arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def _rounding(op: str, cls, x, **attrs) -> Tensor:
    """Floats are rounded (zero gradient, as PyTorch); integers are already whole and come back as a copy."""
    check_tensor(op, "input", x)
    if x.dtype.kind == _FLOAT:
        return apply(cls, x, **attrs)
    if x.dtype == np.bool_:
        raise TypeError(f"{op}: not defined for bool tensors (shape {tuple(x.shape)}); convert with .to(dtype) first")
    return _no_grad(x.data.copy())


def floor(input: Tensor) -> Tensor:
    """The largest integer <= input (gradient zero, as PyTorch)."""
    return _rounding("floor", P.Floor, input)


def ceil(input: Tensor) -> Tensor:
    """The smallest integer >= input (gradient zero)."""
    return _rounding("ceil", P.Ceil, input)


def trunc(input: Tensor) -> Tensor:
    """Round toward zero (gradient zero)."""
    return _rounding("trunc", P.Trunc, input)


fix = trunc


def round(input: Tensor, decimals: int = 0) -> Tensor:  # noqa: A001 - PyTorch's name
    """Round half to even at ``decimals`` decimal places (negative: to tens, hundreds, ...); gradient zero."""
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    check_tensor("round", "input", input)
    if decimals != 0 and input.dtype.kind != _FLOAT:
        raise TypeError(f"round: decimals={decimals} needs a float tensor, got {input.dtype}; convert with .float()")
    return _rounding("round", P.Round, input, decimals=int(decimals))


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element (NaN gives 0, as in PyTorch); gradient zero."""
    check_tensor("sign", "input", input)
    if input.dtype == np.bool_:
        return _no_grad(input.data.copy())
    return apply(P.Sign, input)


# ----------------------------------------------------------------------------- binary math


def _binary_float(op: str, cls, input, other) -> Tensor:
    check_tensor(op, "input", input)
    check_tensor(op, "other", other)
    dtype, (a, b) = promoted(op, input, other)
    if dtype.kind != _FLOAT:
        dtype = backend.get_default_dtype()
        a, b = as_operand(a, dtype, a), as_operand(b, dtype, a)
    return apply(cls, a, b)


def atan2(input: Tensor, other: Tensor) -> Tensor:
    """The angle of the point (other, input), in (-π, π]."""
    return _binary_float("atan2", P.Atan2, input, other)


arctan2 = atan2


def hypot(input: Tensor, other: Tensor) -> Tensor:
    """sqrt(input² + other²) without overflow."""
    return _binary_float("hypot", P.Hypot, input, other)


def _check_integer_divisor(op: str, dtype, b: Tensor) -> None:
    """Integer division by zero is an error in PyTorch (NumPy would return 0 with a warning)."""
    if dtype.kind in "iu" and b.data.size and not bool(b.data.all()):
        raise ZeroDivisionError(f"{op}: integer division by zero (the divisor of shape {tuple(b.shape)} has zeros)")


def _division_operands(op: str, input, other):
    dtype, (a, b) = promoted(op, input, other)
    if dtype == np.bool_:
        raise TypeError(f"{op}: not defined for bool tensors; convert with .to(ember.int64) first")
    _check_integer_divisor(op, dtype, b)
    return a, b


def remainder(input, other) -> Tensor:
    """input - floor(input / other) * other: the result has the sign of ``other`` (Python's %).

    Either operand may be a number. Gradient: 1 for input, -floor(input / other) for other.
    """
    a, b = _division_operands("remainder", input, other)
    return apply(P.Remainder, a, b)


def fmod(input: Tensor, other) -> Tensor:
    """C's fmod: input - trunc(input / other) * other, with the sign of ``input``. ``other`` may be a number."""
    check_tensor("fmod", "input", input)
    a, b = _division_operands("fmod", input, other)
    return apply(P.Fmod, a, b)


def floor_divide(input, other) -> Tensor:
    """floor(input / other) (Python's //): int64 stays int64, floats stay floats. No gradient.

    PyTorch records floor_divide in the graph and fails in backward ("not implemented"); ember returns
    a tensor that does not require grad.
    """
    a, b = _division_operands("floor_divide", input, other)
    return _no_grad(_xp(a).floor_divide(a.data, b.data))


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    """input + weight * (end - input), with ``weight`` a number or a tensor (all three broadcast)."""
    check_tensor("lerp", "input", input)
    check_tensor("lerp", "end", end)
    for name, t in (("input", input), ("end", end)) + ((("weight", weight),) if isinstance(weight, Tensor) else ()):
        if t.dtype.kind != _FLOAT:
            raise TypeError(f"lerp: {name} must be a float tensor, got {t.dtype}")
    if isinstance(weight, Tensor):
        result_type("lerp", input, end, weight)  # the float dtypes must agree
        return apply(P.Lerp, input, end, weight)
    if not _is_number(weight):
        raise TypeError(f"lerp: weight must be a number or a Tensor, got {type(weight).__name__}")
    result_type("lerp", input, end)
    return apply(P.LerpScalar, input, end, weight=float(weight))


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names (min, max)
    """Limit ``input`` to [min, max]; each bound is None, a number or a tensor (broadcasting), but numbers
    and tensors are not mixed (as in PyTorch). Tensor bounds are differentiable: a bound gets the gradient
    where it is the result; ties go to ``input``; if min > max the result is max."""
    check_tensor("clamp", "input", input)
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    bounds = [b for b in (min, max) if b is not None]
    tensors = [b for b in bounds if isinstance(b, Tensor)]
    if tensors and len(tensors) != len(bounds):
        raise TypeError("clamp: min and max must both be numbers or both be tensors; wrap the number with ember.tensor")
    _, (x, *limits) = promoted("clamp", input, *bounds)
    if tensors:
        return apply(P.ClampTensor, x, *limits, has_min=min is not None, has_max=max is not None)
    lo = None if min is None else limits[0].data.item()
    hi = None if max is None else limits[-1].data.item()
    return apply(E.Clip, x, lo=lo, hi=hi)


# ----------------------------------------------------------------------------- tests (bool results)


def isnan(input: Tensor) -> Tensor:
    x = check_tensor("isnan", "input", input)
    return _no_grad(_xp(x).isnan(x.data) if x.dtype.kind == _FLOAT else _xp(x).zeros(x.shape, dtype=bool))


def isinf(input: Tensor) -> Tensor:
    x = check_tensor("isinf", "input", input)
    return _no_grad(_xp(x).isinf(x.data) if x.dtype.kind == _FLOAT else _xp(x).zeros(x.shape, dtype=bool))


def isfinite(input: Tensor) -> Tensor:
    x = check_tensor("isfinite", "input", input)
    return _no_grad(_xp(x).isfinite(x.data) if x.dtype.kind == _FLOAT else _xp(x).ones(x.shape, dtype=bool))


# ----------------------------------------------------------------------------- logical and bitwise


def _logical(op: str, fn_name: str, input, other) -> Tensor:
    check_tensor(op, "input", input)
    check_tensor(op, "other", other)
    return _no_grad(getattr(_xp(input), fn_name)(input.data, other.data))


def logical_and(input: Tensor, other: Tensor) -> Tensor:
    """Element-wise AND of the truth values (nonzero is true); a bool tensor."""
    return _logical("logical_and", "logical_and", input, other)


def logical_or(input: Tensor, other: Tensor) -> Tensor:
    return _logical("logical_or", "logical_or", input, other)


def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    return _logical("logical_xor", "logical_xor", input, other)


def logical_not(input: Tensor) -> Tensor:
    x = check_tensor("logical_not", "input", input)
    return _no_grad(_xp(x).logical_not(x.data))


def _bitwise(op: str, fn_name: str, input, other, shift: bool = False) -> Tensor:
    dtype, (a, b) = promoted(op, input, other)
    allowed = "iu" if shift else "biu"
    if dtype.kind not in allowed:
        kinds = "integer" if shift else "integer or bool"
        raise TypeError(f"{op}: needs {kinds} operands, but they promote to {dtype}")
    return _no_grad(getattr(_xp(a), fn_name)(a.data, b.data))


def bitwise_and(input, other) -> Tensor:
    """Bitwise AND of integer or bool tensors (either operand may be a number)."""
    return _bitwise("bitwise_and", "bitwise_and", input, other)


def bitwise_or(input, other) -> Tensor:
    return _bitwise("bitwise_or", "bitwise_or", input, other)


def bitwise_xor(input, other) -> Tensor:
    return _bitwise("bitwise_xor", "bitwise_xor", input, other)


def bitwise_not(input: Tensor) -> Tensor:
    """~input for integers, logical NOT for bools."""
    x = check_tensor("bitwise_not", "input", input)
    if x.dtype.kind not in _INTEGRAL:
        raise TypeError(f"bitwise_not: needs an integer or bool tensor, got {x.dtype}")
    return _no_grad(_xp(x).invert(x.data))


def bitwise_left_shift(input, other) -> Tensor:
    """input << other for integers; shifting by the bit width or more (or by a negative amount) gives 0."""
    return _bitwise("bitwise_left_shift", "left_shift", input, other, shift=True)


def bitwise_right_shift(input, other) -> Tensor:
    """input >> other (arithmetic for signed integers); shifting by the width or more gives 0 or -1."""
    return _bitwise("bitwise_right_shift", "right_shift", input, other, shift=True)


# ----------------------------------------------------------------------------- scans, products, sums


def _accumulating(op: str, x, dtype) -> Tensor:
    """The tensor a sum, product or scan runs over: cast to ``dtype`` if given (differentiably between
    floats), integers and bools as int64 otherwise (PyTorch's default for these reductions)."""
    check_tensor(op, "input", x)
    if dtype is None:
        if x.dtype.kind in _INTEGRAL and x.dtype != np.int64:
            return _wrap(x.data.astype(np.int64), None)
        return x
    dt = backend.resolve_dtype(dtype)
    if dt == x.dtype:
        return x
    if dt.kind != _FLOAT and x.requires_grad and is_grad_enabled():
        raise TypeError(
            f"{op}: dtype={dt} gives a result without a gradient, but the input ({tuple(x.shape)} {x.dtype}) "
            "requires grad; accumulate in a float dtype, or call it on input.detach() or under ember.no_grad()"
        )
    return x.to(dtype=dt)


def cumsum(input: Tensor, axis=None, *, dim=None, dtype=None) -> Tensor:
    """Running sum along a dimension; integers and bools accumulate as int64 unless ``dtype`` says otherwise."""
    return _scan("cumsum", C.Cumsum, input, axis, dim, dtype)


def cumprod(input: Tensor, axis=None, *, dim=None, dtype=None) -> Tensor:
    """Running product along a dimension; its gradient is exact where the input has zeros (as PyTorch's)."""
    return _scan("cumprod", C.Cumprod, input, axis, dim, dtype)


def _scan(name: str, op, input, axis, dim, dtype) -> Tensor:
    axis = required_dim(name, axis, dim)
    x = _accumulating(name, input, dtype)
    ax = wrap_dim(name, axis, x.ndim)
    if x.ndim == 0:
        return apply(op, x.reshape(1), axis=0).reshape(())
    return apply(op, x, axis=ax)


def prod(input: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None, dtype=None) -> Tensor:
    """Product of all elements, or along one dimension (``keepdim`` keeps it as size 1). Integers and
    bools multiply as int64 by default. The gradient is exact where the input has zeros."""
    axis = dim_arg("prod", axis, dim)
    keep = keepdim_arg("prod", keepdims, keepdim)
    x = _accumulating("prod", input, dtype)
    if axis is None:
        if keep:
            raise TypeError("prod: keepdim needs a dimension (PyTorch's prod(input) has no keepdim)")
        return apply(C.Prod, x, axis=None, keepdims=False)
    ax = wrap_dim("prod", axis, x.ndim)
    if x.ndim == 0:
        return apply(C.Prod, x, axis=None, keepdims=False)
    return apply(C.Prod, x, axis=ax, keepdims=keep)


def reduction_axes(op: str, axis, ndim: int) -> tuple:
    """None or () -> every axis; an int or a sequence of ints -> sorted non-negative axes (no repeats)."""
    if axis is None:
        return tuple(range(ndim))
    dims = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not dims:
        return tuple(range(ndim))
    axes = [wrap_dim(op, d, ndim) for d in dims]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {axis} names a dimension more than once")
    return tuple(sorted(axes)) if ndim else ()


def sum(  # noqa: A001 - PyTorch's name
    input: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim=None, dtype=None
) -> Tensor:
    """Sum over all elements or over the given dimension(s). Integers and bools sum as int64 unless
    ``dtype`` is given; ``dtype`` casts first (a float32 tensor summed with dtype=float64 is differentiable)."""
    axes = dim_arg("sum", axis, dim)
    keep = keepdim_arg("sum", keepdims, keepdim)
    x = _accumulating("sum", input, dtype)
    axes = reduction_axes("sum", axes, x.ndim)
    if x.dtype.kind == _FLOAT:
        return apply(R.Sum, x, axes=axes, keepdims=keep)
    return _no_grad(x.data.sum(axis=axes, keepdims=keep, dtype=x.dtype))


# ----------------------------------------------------------------------------- einsum

_LETTERS = string.ascii_letters


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation: ``einsum('ij,jk->ik', a, b)`` is a @ b. Differentiable in every operand.

    Supports PyTorch's equation syntax: implicit output (letters used once, sorted), '...' for broadcast
    dimensions, repeated letters in one operand (diagonals: 'ii->i', traces: 'ii'), letters summed away,
    size-1 dimensions broadcasting against larger ones, and the operands given as one list. Not supported:
    the sublist format, bool operands.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(
            "einsum: the first argument must be an equation string such as 'ij,jk->ik' "
            "(the sublist format is not supported)"
        )
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    for k, t in enumerate(operands):
        check_tensor("einsum", f"operand {k}", t)
    dtypes = {t.dtype for t in operands}
    if len(dtypes) > 1:
        described = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in operands)
        raise TypeError(f"einsum: operands have different dtypes ({described}); cast them to one dtype")
    if operands[0].dtype == np.bool_:
        raise TypeError("einsum: bool operands are not supported; convert them with .to(ember.int64)")
    terms, output, squeeze = parse_einsum(equation, [t.shape for t in operands])
    return apply(Einsum, *operands, terms=tuple(terms), output=output, squeeze=tuple(squeeze))


def parse_einsum(equation: str, shapes):
    """Explicit subscripts for each operand and the output, and per operand the size-1 axes to drop.

    Returns (terms, output, squeeze): every term has one letter per remaining axis of its operand.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    for part, allowed in ((lhs, _LETTERS + ",."), (out, _LETTERS + ".")):
        for c in part:
            if c not in allowed:
                raise ValueError(f"einsum: invalid subscript {c!r} in {equation!r}; subscripts must be letters a-z "
                                 "or A-Z, with at most one '...' per operand and one '->'")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} names {len(terms)} operand(s) but {len(shapes)} "
                         "tensor(s) were given")
    used = set(c for c in eq if c in _LETTERS)
    heads_tails, ellipsis_dims = [], []
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        head, tail, n_ell = _split_ellipsis(term, len(shape), k, equation)
        heads_tails.append((head, tail))
        ellipsis_dims.append(n_ell)
    n_ell = builtins.max(ellipsis_dims, default=0)
    spare = [c for c in _LETTERS if c not in used]
    if n_ell > len(spare):
        raise ValueError(f"einsum: too many dimensions under '...' in {equation!r}")
    ell = "".join(spare[:n_ell])
    expanded = [head + ell[n_ell - n:] + tail for (head, tail), n in zip(heads_tails, ellipsis_dims)]
    output = _einsum_output(out if arrow else None, terms, ell, equation)
    sizes = _letter_sizes(expanded, shapes)
    squeeze, final = [], []
    for term, shape in zip(expanded, shapes):
        axes = tuple(d for d, (c, n) in enumerate(zip(term, shape)) if n == 1 and sizes[c] != 1)
        squeeze.append(axes)
        final.append("".join(c for d, c in enumerate(term) if d not in axes))
    return final, output, squeeze


def _split_ellipsis(term: str, ndim: int, k: int, equation: str):
    """(letters before '...', letters after, how many dims '...' covers) for operand k."""
    if term.count("...") > 1 or term.replace("...", "").count("."):
        raise ValueError(f"einsum: operand {k}'s subscripts {term!r} in {equation!r} have a stray '.' or more than "
                         "one '...'")
    if "..." in term:
        head, tail = term.split("...")
        n_ell = ndim - len(head) - len(tail)
        if n_ell < 0:
            raise ValueError(f"einsum: operand {k} has {ndim} dimension(s) but its subscripts {term!r} name more")
        return head, tail, n_ell
    if len(term) != ndim:
        raise ValueError(f"einsum: operand {k} has {ndim} dimension(s) but {len(term)} subscript(s) {term!r} and no "
                         "'...'")
    return term, "", 0


def _einsum_output(out, terms, ell: str, equation: str) -> str:
    """The output letters: given (with '...' spelt out), or implicit (ellipsis, then letters used once, sorted)."""
    letters_in = Counter(c for term in terms for c in term.replace("...", ""))
    if out is None:
        return ell + "".join(sorted(c for c, n in letters_in.items() if n == 1))
    if out.count("...") > 1 or out.replace("...", "").count("."):
        raise ValueError(f"einsum: the output subscripts {out!r} have a stray '.' or more than one '...'")
    plain = out.replace("...", "")
    for c in plain:
        if plain.count(c) > 1:
            raise ValueError(f"einsum: output subscript {c} appears more than once in the output of {equation!r}")
        if c not in letters_in:
            raise ValueError(f"einsum: output subscript {c} of {equation!r} does not appear in any operand")
    return out.replace("...", ell)


def _letter_sizes(terms, shapes) -> dict:
    """Each letter's size; sizes must agree or be 1 across operands (broadcasting), and agree within one."""
    sizes: dict = {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        own: dict = {}
        for c, n in zip(term, shape):
            if c in own and own[c] != n:
                raise ValueError(f"einsum: subscript {c} is repeated for operand {k} but the sizes don't match, "
                                 f"{n} != {own[c]}")
            own[c] = n
        for c, n in own.items():
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = n
            elif n not in (1, prev):
                raise ValueError(f"einsum: subscript {c} has size {n} for operand {k}, which does not broadcast with "
                                 f"the size {prev} seen before")
    return sizes
