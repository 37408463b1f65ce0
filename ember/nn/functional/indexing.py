"""One-hot encoding and padding modes (constant, reflect, replicate, circular), as ``torch.nn.functional``."""

from __future__ import annotations

import numpy as np

from ... import backend
from ...ops import indexing as IX
from ...tensor import Tensor, _wrap, apply

__all__ = [
    "one_hot",
    "pad",
]


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape ``tensor.shape + (num_classes,)`` with a 1 at each class index.

    ``tensor`` holds int64 class indices in [0, num_classes); ``num_classes=-1`` takes max + 1.
    """
    t = check_tensor("one_hot", "tensor", tensor)
    if t.dtype != np.int64:
        raise TypeError(f"one_hot: the class indices must be an int64 tensor, got {t.dtype}; "
                        "convert with .to(ember.int64)")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    data = t.data
    if num_classes == -1:
        if data.size == 0:
            raise ValueError("one_hot: cannot infer the number of classes from an empty tensor; pass num_classes")
        num_classes = int(data.max()) + 1
    if data.size:
        if int(data.min()) < 0:
            raise ValueError(f"one_hot: class values must be non-negative, got {int(data.min())}")
        if int(data.max()) >= num_classes:
            raise ValueError(f"one_hot: class values must be smaller than num_classes={num_classes}, "
                             f"got {int(data.max())}")
    elif num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be -1 or non-negative, got {num_classes}")
    xp = backend.array_module(data)
    return _wrap((data[..., None] == xp.arange(int(num_classes))).astype(np.int64), None)


def check_tensor(op: str, name: str, value) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    return value


_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Pad (or crop, with negative widths) the last dimensions of ``input``.

    ``pad`` is PyTorch's flat tuple (left, right, top, bottom, front, back): the last dimension first.
    ``'constant'`` fills with ``value`` (default 0) and takes any number of dimensions. ``'reflect'``
    mirrors without repeating the edge (each width < that dimension's size), ``'replicate'`` repeats the
    edge, ``'circular'`` wraps around (width <= size); these pad the last 1, 2 or 3 dimensions of an input
    with one or two more (unbatched or batched: (C, W) / (N, C, W), ...). Differentiable.
    """
    x = check_tensor("pad", "input", input)
    widths = _flat_widths(pad, x.ndim)
    if mode not in _MODES:
        raise ValueError(f"pad: unknown mode {mode!r}; expected one of {', '.join(_MODES)}")
    if mode == "constant":
        return _pad_constant(x, widths, 0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: mode {mode!r} does not take a value (got {value!r}); only 'constant' does")
    return _pad_indexed(x, widths, mode)


def _flat_widths(pad, ndim: int) -> list:
    """PyTorch's flat (left, right, top, bottom, ...) -> [(before, after)] for the last len(pad)/2 dims, last first."""
    if isinstance(pad, Tensor) or not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad: pad must be a tuple of ints, got {type(pad).__name__}")
    values = [int(p) for p in pad]
    if len(values) % 2:
        raise ValueError(f"pad: the padding length must be divisible by 2, got {len(values)} values {tuple(pad)}")
    if len(values) // 2 > ndim:
        raise ValueError(f"pad: {len(values)} padding values pad {len(values) // 2} dimensions, but the input has "
                         f"only {ndim}")
    return [(values[2 * i], values[2 * i + 1]) for i in range(len(values) // 2)]


def _pad_constant(x: Tensor, widths, value) -> Tensor:
    per_axis = [(0, 0)] * x.ndim
    for i, (lo, hi) in enumerate(widths):
        axis = x.ndim - 1 - i
        n = x.shape[axis]
        if n + lo + hi < 0:
            raise ValueError(f"pad: the input size {n}, plus negative padding {lo} and {hi}, gives a negative "
                             f"size at dimension {axis} of the input {tuple(x.shape)}")
        per_axis[axis] = (lo, hi)
    return apply(IX.PadConstant, x, widths=tuple(per_axis), value=value)


def _pad_indexed(x: Tensor, widths, mode: str) -> Tensor:
    n_pad = len(widths)
    if n_pad not in (1, 2, 3) or x.ndim not in (n_pad + 1, n_pad + 2):
        raise ValueError(
            f"pad: mode {mode!r} pads the last 1, 2 or 3 dimensions of an input with one or two more "
            f"(e.g. (C, W) or (N, C, W) for 2 values); got {2 * n_pad} padding values for a {x.ndim}-d input "
            f"{tuple(x.shape)}"
        )
    if mode != "circular":
        first = x.ndim - n_pad - 1  # channels (and beyond) must be non-empty; only a batch may be empty
        if any(n == 0 for n in x.shape[first:]):
            raise ValueError(f"pad: mode {mode!r} needs non-empty dimensions apart from the batch, got "
                             f"{tuple(x.shape)}")
    xp = backend.array_module(x.data)
    sources = []
    for i, (lo, hi) in enumerate(widths):
        axis = x.ndim - 1 - i
        n = x.shape[axis]
        _check_widths(mode, lo, hi, n, axis, x.shape)
        sources.append((axis, _source_positions(xp, mode, lo, n + lo + hi, n), lo))
    return apply(IX.PadIndexed, x, sources=tuple(sources))


def _check_widths(mode: str, lo: int, hi: int, n: int, axis: int, shape) -> None:
    out = n + lo + hi
    if mode == "reflect" and (lo >= n or hi >= n):
        raise ValueError(f"pad: reflect padding must be smaller than the dimension it pads, got ({lo}, {hi}) at "
                         f"dimension {axis} of the input {tuple(shape)}")
    if mode == "circular" and (lo > n or hi > n):
        raise ValueError(f"pad: circular padding ({lo}, {hi}) at dimension {axis} of the input {tuple(shape)} would "
                         "wrap around more than once")
    if out < (0 if mode == "circular" else 1):
        raise ValueError(f"pad: dimension {axis} of size {n} padded by ({lo}, {hi}) would have size {out}")


def _source_positions(xp, mode: str, lo: int, out: int, n: int):
    """For each output position along a padded axis, the input position it copies.

    Reflect and replicate map positions relative to the whole input (a crop just drops the first or last
    ones); circular padding, as PyTorch's, crops first and then wraps around what is left.
    """
    i = xp.arange(out, dtype=np.int64) - lo
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    if mode == "circular":
        start = max(-lo, 0)
        kept = n - start - max(-(out - n - lo), 0)  # the input left after cropping both ends
        return start + (i - start) % kept if kept > 0 else i
    i = xp.abs(i)  # reflect about 0, then about n - 1
    return xp.where(i > n - 1, 2 * (n - 1) - i, i)
