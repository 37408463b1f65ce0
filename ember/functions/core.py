"""Top-level tensor functions: joining (cat, stack, split), selection (where), padding, products and a few
unary shortcuts."""

from __future__ import annotations

from ..ops import elementwise as E
from ..ops import linalg as L
from ..ops import shape as S
from ..tensor import Tensor, _promote, _tensor_like, apply

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
]


def _same_dtype(tensors, op_name):
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"ember.{op_name}: tensors have different dtypes {sorted(map(str, dtypes))}; cast first")


def cat(tensors, axis: int = 0) -> Tensor:
    """Concatenate along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("ember.cat: needs at least one tensor")
    _same_dtype(tensors, "cat")
    ndim = tensors[0].ndim
    return apply(S.Concat, *tensors, axis=axis % ndim)


concat = cat


def stack(tensors, axis: int = 0) -> Tensor:
    """Join along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("ember.stack: needs at least one tensor")
    _same_dtype(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"ember.stack: all tensors must have the same shape, got {sorted(shapes)}")
    return apply(S.Stack, *tensors, axis=axis % (tensors[0].ndim + 1))


def split(t: Tensor, split_size_or_sections, axis: int = 0):
    return t.split(split_size_or_sections, axis)


def where(cond, a, b) -> Tensor:
    """Elementwise ``a`` where ``cond`` else ``b``; ``a``/``b`` may be tensors or numbers."""
    cond_arr = cond.data if isinstance(cond, Tensor) else cond
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError("ember.where: at least one of a and b must be a Tensor")
    a, b = _promote(_tensor_like(a, like), _tensor_like(b, like), E.Where)
    return apply(E.Where, a, b, cond=cond_arr.astype(bool, copy=False))


def maximum(a: Tensor, b) -> Tensor:
    return a.maximum(b)


def minimum(a: Tensor, b) -> Tensor:
    return a.minimum(b)


def clip(a: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    return a.clip(min, max)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return apply(L.MatMul, *_promote(a, b, L.MatMul))


def pad(t: Tensor, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding. ``pad_width`` is NumPy's ((before, after), ...) per axis, or PyTorch's flat
    (left, right, top, bottom, ...) tuple that pads the last axes first."""
    widths = _pad_widths(pad_width, t.ndim)
    return apply(S.Pad, t, pad_width=widths, value=value)


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

