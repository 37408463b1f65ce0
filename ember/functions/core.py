"""Top-level tensor functions: joining (cat, stack, split), selection (where), padding, products and a few
unary shortcuts."""

from __future__ import annotations

import numpy as np

from .. import backend
from ..ops import elementwise as E
from ..ops import indexing as IX
from ..ops import linalg as L
from ..ops import shape as S
from ..ops.util import dim_arg, normalize_axis
from ..tensor import Tensor, _operands_with_scalar, _promote, apply

__all__ = [
    "cat",
    "stack",
    "split",
    "where",
    "maximum",
    "minimum",
    "clip",
    "matmul",
    "pad",
    "exp",
    "log",
    "sqrt",
    "tanh",
    "sin",
    "cos",
    "sigmoid",
    "abs",
    "argmax",
    "is_tensor",
    "concat",
    "concatenate",
    "masked_fill",
    "tril",
    "triu",
    "mean",
    "amax",
    "amin",
    "max",
    "min",
    "var",
    "std",
    "logsumexp",
    "argmin",
    "softmax",
    "log_softmax",
    "relu",
    "reshape",
    "flatten",
    "squeeze",
    "unsqueeze",
    "transpose",
    "permute",
    "numel",
]


def _same_dtype(tensors, op_name):
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"ember.{op_name}: tensors have different dtypes {sorted(map(str, dtypes))}; cast first")


def _join_args(tensors, axis, dim, name):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"ember.{name}: needs at least one tensor")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"ember.{name}: item {i} is a {type(t).__name__}, not a Tensor")
    _same_dtype(tensors, name)
    return tensors, dim_arg(name, axis, dim, 0)


def cat(tensors, axis=None, *, dim=None) -> Tensor:
    """Concatenate along an existing axis (0 by default)."""
    tensors, axis = _join_args(tensors, axis, dim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"ember.cat: tensor {i} is 0-d and cannot be concatenated; use ember.stack, or "
                             ".reshape(1) first")
    ndim = tensors[0].ndim
    ax = normalize_axis(axis, ndim, "ember.cat")
    for i, t in enumerate(tensors):
        if t.ndim != ndim or t.shape[:ax] + t.shape[ax + 1 :] != tensors[0].shape[:ax] + tensors[0].shape[ax + 1 :]:
            raise ValueError(f"ember.cat: tensor {i} has shape {t.shape}, tensor 0 has {tensors[0].shape}; all "
                             f"sizes must match except along axis {ax}")
    return apply(S.Concat, *tensors, axis=ax)


concat = cat
concatenate = cat


def stack(tensors, axis=None, *, dim=None) -> Tensor:
    """Join along a new axis (0 by default)."""
    tensors, axis = _join_args(tensors, axis, dim, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"ember.stack: all tensors must have the same shape, got {sorted(shapes)}")
    return apply(S.Stack, *tensors, axis=normalize_axis(axis, tensors[0].ndim + 1, "ember.stack"))


def split(t: Tensor, split_size_or_sections, axis=None, *, dim=None):
    return t.split(split_size_or_sections, dim_arg("split", axis, dim, 0))


def where(condition, input, other) -> Tensor:  # noqa: A002 - PyTorch's names
    """Elementwise ``input`` where ``condition`` (boolean) is true, else ``other``; either may be a number.

    Numbers take the dtype PyTorch would give them: a tensor's float dtype, the default float for a
    float number meeting an integer tensor, int64 for two integers.
    """
    cond = condition.data if isinstance(condition, Tensor) else condition
    if not isinstance(condition, Tensor):
        like = input if isinstance(input, Tensor) else other
        xp = like.device.xp if isinstance(like, Tensor) else np
        cond = xp.asarray(cond)
    if cond.dtype != np.bool_:
        raise TypeError(f"ember.where: the condition must be a boolean tensor, got {cond.dtype} "
                        "(compare first, e.g. x > 0)")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        dt = _scalars_dtype(input, other)
        device = condition.device if isinstance(condition, Tensor) else None
        input, other = (Tensor(np.asarray(v, dtype=dt), device=device) for v in (input, other))
    input, other = _operands_with_scalar(input, other)
    return apply(E.Where, input, other, cond=cond)


def _scalars_dtype(a, b):
    if isinstance(a, bool) and isinstance(b, bool):
        return backend.bool_
    if isinstance(a, float) or isinstance(b, float):
        return backend.get_default_dtype()
    return backend.int64


def maximum(input, other) -> Tensor:  # noqa: A002
    """Elementwise maximum; ties share the gradient evenly (PyTorch's rule), a number operand included."""
    return apply(E.Maximum, *_operands_with_scalar(input, other))


def minimum(input, other) -> Tensor:  # noqa: A002
    return apply(E.Minimum, *_operands_with_scalar(input, other))


def clip(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    return a.clip(min, max)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return apply(L.MatMul, *_promote(a, b, L.MatMul))


def pad(t: Tensor, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding. ``pad_width`` is NumPy's ((before, after), ...) per axis, or PyTorch's flat
    (left, right, top, bottom, ...) tuple that pads the last axes first."""
    widths = _pad_widths(pad_width, t.ndim)
    return apply(IX.PadConstant, t, widths=widths, value=value)


def _pad_widths(pad_width, ndim):
    pad_width = tuple(pad_width)
    if pad_width and all(isinstance(p, (tuple, list)) for p in pad_width):
        if len(pad_width) != ndim:
            raise ValueError(f"pad: {len(pad_width)} (before, after) pairs for a {ndim}-d tensor")
        return tuple((int(a), int(b)) for a, b in pad_width)
    if len(pad_width) % 2 or len(pad_width) // 2 > ndim:
        raise ValueError(f"pad: flat pad {pad_width} needs an even length of at most {2 * ndim}")
    widths = [(0, 0)] * ndim
    for i in range(len(pad_width) // 2):
        widths[ndim - 1 - i] = (int(pad_width[2 * i]), int(pad_width[2 * i + 1]))
    if any(a < 0 or b < 0 for a, b in widths):
        raise ValueError(f"pad: negative padding {pad_width}")
    return tuple(widths)


def exp(t):
    return t.exp()


def log(t):
    return t.log()


def sqrt(t):
    return t.sqrt()


def tanh(t):
    return t.tanh()


def sin(t):
    return t.sin()


def cos(t):
    return t.cos()


def sigmoid(t):
    return t.sigmoid()


def abs(t):  # noqa: A001
    return t.abs()


def argmax(t, axis=None, keepdims=False):
    return t.argmax(axis, keepdims)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)



def masked_fill(input: Tensor, mask, value) -> Tensor:  # noqa: A002
    """``input`` with ``value`` where the boolean ``mask`` is true (see ``Tensor.masked_fill``)."""
    return input.masked_fill(mask, value)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    return input.tril(diagonal)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    return input.triu(diagonal)


def _tensor_method(name: str):
    """``ember.<name>(x, ...)`` as PyTorch spells it: the Tensor method with ``x`` first."""

    def function(input: Tensor, *args, **kwargs):  # noqa: A002 - PyTorch's name
        if not isinstance(input, Tensor):
            raise TypeError(f"ember.{name}: expected a Tensor first, got {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``x.{name}(...)`` as a function (see ``Tensor.{name}``)."
    return function


mean = _tensor_method("mean")
amax = _tensor_method("amax")
amin = _tensor_method("amin")
max = _tensor_method("max")
min = _tensor_method("min")
var = _tensor_method("var")
std = _tensor_method("std")
logsumexp = _tensor_method("logsumexp")
argmin = _tensor_method("argmin")
softmax = _tensor_method("softmax")
log_softmax = _tensor_method("log_softmax")
relu = _tensor_method("relu")
reshape = _tensor_method("reshape")
flatten = _tensor_method("flatten")
squeeze = _tensor_method("squeeze")
unsqueeze = _tensor_method("unsqueeze")
transpose = _tensor_method("transpose")
permute = _tensor_method("permute")
numel = _tensor_method("numel")
