"""Gathering, scattering and rearranging elements: gather, scatter, scatter_add, scatter_reduce,
index_select, index_add, take_along_dim, masked_select, flip, roll, repeat, repeat_interleave, unflatten,
narrow, chunk, sort, argsort and topk, with PyTorch's names, arguments, semantics and errors.

Index tensors must be integers (int64, or int32 where PyTorch takes it too) and inside the dimension:
negative indices are an IndexError here as in PyTorch (NumPy would wrap them around). Every function
is out of place; the values are differentiable, indices never are.

Duplicate indices in ``scatter`` (which PyTorch leaves undefined): the source element that comes last
in the row-major order of ``index`` is written; the gradient follows PyTorch's formula, so every
duplicate source element gets the gradient of the position it was aimed at.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import backend
from ..ops import indexing as IX
from ..ops.util import dim_arg
from ..tensor import Tensor, _wrap, apply
from .pointwise import check_tensor, required_dim, wrap_dim

__all__ = [
    "gather", "scatter", "scatter_add", "scatter_reduce", "index_select", "index_add", "take_along_dim",
    "masked_select", "flip", "roll", "repeat", "repeat_interleave", "unflatten", "narrow", "chunk", "sort",
    "argsort", "topk",
]


class SortResult(NamedTuple):
    """``sort``'s (values, indices), as PyTorch's ``torch.return_types.sort``."""

    values: Tensor
    indices: Tensor


class TopKResult(NamedTuple):
    """``topk``'s (values, indices), as PyTorch's ``torch.return_types.topk``."""

    values: Tensor
    indices: Tensor


# ----------------------------------------------------------------------------- argument checks


def index_tensor(op: str, index, like: Tensor, name: str = "index", int32_ok: bool = True) -> Tensor:
    """``index`` as an integer tensor on ``like``'s device (a Tensor or an array; int64, or int32 if allowed)."""
    if isinstance(index, Tensor):
        arr = index.data
    elif isinstance(index, np.ndarray) or hasattr(index, "__cuda_array_interface__"):
        arr = index
    else:
        raise TypeError(f"{op}: {name} must be an integer Tensor, got {type(index).__name__}")
    allowed = (np.int64, np.int32) if int32_ok else (np.int64,)
    if arr.dtype not in allowed:
        wanted = "int64 (or int32)" if int32_ok else "int64"
        raise TypeError(f"{op}: {name} must be an {wanted} tensor, got {arr.dtype}; convert it with .to(ember.int64)")
    arr = backend.to_device(arr, like.device)
    return index if isinstance(index, Tensor) and arr is index.data else _wrap(arr, None)


def check_index_range(op: str, index: Tensor, size: int, dim: int) -> None:
    """Every index in [0, size): PyTorch does not wrap negative indices here, and neither does ember."""
    if index.data.size == 0:
        return
    lo, hi = int(index.data.min()), int(index.data.max())
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension {dim} with size {size}")


def _as_1d(t: Tensor) -> Tensor:
    return t.reshape(1) if t.ndim == 0 else t


def _check_gather_shapes(op: str, x_shape, index_shape, axis: int, src_shape=None) -> None:
    """PyTorch's rule: index has the input's number of dimensions, and is no larger than the input in
    every dimension but ``axis`` (and, for a scatter, no larger than ``src`` in any dimension)."""
    if len(index_shape) != len(x_shape):
        raise ValueError(f"{op}: index has {len(index_shape)} dimension(s) (shape {tuple(index_shape)}) but the "
                         f"input has {len(x_shape)} (shape {tuple(x_shape)}); they must match")
    for d, (n_index, n_x) in enumerate(zip(index_shape, x_shape)):
        if d != axis and n_index > n_x:
            raise ValueError(f"{op}: index shape {tuple(index_shape)} is larger than the input {tuple(x_shape)} at "
                             f"dimension {d}; only dimension {axis} may be larger")
    if src_shape is not None:
        if len(src_shape) != len(index_shape) or any(i > s for i, s in zip(index_shape, src_shape)):
            raise ValueError(f"{op}: index shape {tuple(index_shape)} must be no larger than src {tuple(src_shape)} "
                             "in every dimension")


def _same_dtype(op: str, x: Tensor, other: Tensor, name: str) -> None:
    if other.dtype != x.dtype:
        raise TypeError(f"{op}: {name} has dtype {other.dtype} but the input has {x.dtype}; they must match "
                        "(cast with .to(dtype))")


def _scatter_operands(op: str, input, axis, index, src=None):
    """Validated (input as >= 1-d, axis, index, src) for gather and the scatters; 0-d tensors act as 1-d."""
    x = check_tensor(op, "input", input)
    idx = index_tensor(op, index, x)
    ax = wrap_dim(op, axis, x.ndim)
    if src is not None:
        check_tensor(op, "src", src)
        _same_dtype(op, x, src, "src")
        src = _as_1d(src)
    x1, idx1 = _as_1d(x), _as_1d(idx)
    _check_gather_shapes(op, x1.shape, idx1.shape, ax, None if src is None else src.shape)
    check_index_range(op, idx1, x1.shape[ax], ax)
    return x1, ax, idx1, src


def _restore_0d(out: Tensor, like: Tensor) -> Tensor:
    return out.reshape(()) if like.ndim == 0 else out


# ----------------------------------------------------------------------------- gather / scatter


def gather(input: Tensor, axis=None, index=None, *, dim=None, sparse_grad: bool = False) -> Tensor:
    """out[i][j][k] = input[i][index[i][j][k]][k] for dim 1 (and likewise for the others); out has
    index's shape. ``index`` has the input's number of dimensions and is no larger outside ``dim``."""
    axis = required_dim("gather", axis, dim)
    x, ax, idx, _ = _scatter_operands("gather", input, axis, index)
    out = apply(IX.Gather, x, idx, axis=ax)
    return out.reshape(()) if index.ndim == 0 else out


def scatter(input: Tensor, axis=None, index=None, src=None, *, dim=None, value=None, reduce=None) -> Tensor:
    """A copy of ``input`` with out[i][index[i][j]] = src[i][j] for dim 1 (and likewise), or ``value``
    (a number) everywhere index points. ``reduce='add'`` or ``'multiply'`` combines instead of writing
    (as ``scatter_reduce`` with 'sum' or 'prod'). Gradients: the overwritten elements of ``input`` get
    none, ``src`` gets the gradient gathered at ``index``."""
    return _applied(_scatter_plan(input, axis, index, src, dim=dim, value=value, reduce=reduce), input)


def scatter_add(input: Tensor, axis=None, index=None, src=None, *, dim=None) -> Tensor:
    """A copy of ``input`` with src[i][j] added at out[i][index[i][j]] (dim 1; repeated indices add up)."""
    return _applied(_scatter_add_plan(input, axis, index, src, dim=dim), input)


def scatter_reduce(input: Tensor, axis=None, index=None, src=None, reduce=None, *, dim=None,
                   include_self: bool = True) -> Tensor:
    """Reduce every src element scattered to a position ('sum', 'prod', 'mean', 'amax' or 'amin'), together
    with the input's element there unless ``include_self`` is False. Integer 'mean' rounds down, as PyTorch."""
    return _applied(_scatter_reduce_plan(input, axis, index, src, reduce, dim=dim, include_self=include_self), input)


def _applied(plan, input: Tensor) -> Tensor:
    cls, operands, attrs = plan
    return _restore_0d(apply(cls, *operands, **attrs), input)


# Each plan validates the arguments and returns (op class, operands with the input first, attrs): the
# functions apply it, and in-place Tensor methods hand it to the in-place machinery (``inplace_args``).


def _scatter_plan(input, axis=None, index=None, src=None, *, dim=None, value=None, reduce=None):
    axis = required_dim("scatter", axis, dim)
    if src is not None and not isinstance(src, Tensor):
        if value is not None:
            raise TypeError("scatter: give src or value, not both")
        src, value = None, src
    if (src is None) == (value is None):
        raise TypeError("scatter: give either src (a tensor) or value (a number)")
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r} "
                             "(scatter_reduce has 'sum', 'prod', 'mean', 'amax' and 'amin')")
        if src is None:
            idx = index_tensor("scatter", index, input)
            src = _wrap(backend.array_module(input.data).full(idx.shape, value, dtype=input.dtype), None)
        return _scatter_reduce_plan(input, axis, index, src, "sum" if reduce == "add" else "prod")
    x, ax, idx, src = _scatter_operands("scatter", input, axis, index, src)
    if src is None:
        return IX.Scatter, (x, idx), dict(axis=ax, value=value)
    return IX.Scatter, (x, idx, src), dict(axis=ax)


def _scatter_add_plan(input, axis=None, index=None, src=None, *, dim=None):
    axis = required_dim("scatter_add", axis, dim)
    if src is None:
        raise TypeError("scatter_add: src (a tensor) is required")
    x, ax, idx, src = _scatter_operands("scatter_add", input, axis, index, src)
    return IX.ScatterAdd, (x, idx, src), dict(axis=ax)


_SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _scatter_reduce_plan(input, axis=None, index=None, src=None, reduce=None, *, dim=None, include_self=True):
    axis = required_dim("scatter_reduce", axis, dim)
    if reduce not in _SCATTER_REDUCTIONS:
        raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(_SCATTER_REDUCTIONS)}, got {reduce!r}")
    if src is None:
        raise TypeError("scatter_reduce: src (a tensor) is required")
    x, ax, idx, src = _scatter_operands("scatter_reduce", input, axis, index, src)
    return IX.ScatterReduce, (x, idx, src), dict(axis=ax, reduce=reduce, include_self=bool(include_self))


# ----------------------------------------------------------------------------- index_select / index_add


def _vector_index(op: str, index, x: Tensor, ax: int) -> Tensor:
    idx = index_tensor(op, index, x)
    if idx.ndim > 1:
        raise IndexError(f"{op}: index must be a vector (0-d or 1-d), got shape {tuple(idx.shape)}")
    idx = _as_1d(idx)
    check_index_range(op, idx, _as_1d(x).shape[ax], ax)
    return idx


def index_select(input: Tensor, axis=None, index=None, *, dim=None) -> Tensor:
    """The slices of ``input`` along ``dim`` at the positions in the vector ``index`` (repeats allowed)."""
    axis = required_dim("index_select", axis, dim)
    x = check_tensor("index_select", "input", input)
    ax = wrap_dim("index_select", axis, x.ndim)
    idx = _vector_index("index_select", index, x, ax)
    return _restore_0d(apply(IX.IndexSelect, _as_1d(x), idx, axis=ax), x)


def index_add(input: Tensor, axis=None, index=None, source=None, *, dim=None, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added slice by slice at the positions in ``index``
    along ``dim`` (repeated positions add up). ``source`` is the input's shape with ``len(index)`` along dim."""
    return _applied(_index_add_plan(input, axis, index, source, dim=dim, alpha=alpha), input)


def _index_add_plan(input, axis=None, index=None, source=None, *, dim=None, alpha=1):
    axis = required_dim("index_add", axis, dim)
    x = check_tensor("index_add", "input", input)
    check_tensor("index_add", "source", source)
    _same_dtype("index_add", x, source, "source")
    ax = wrap_dim("index_add", axis, x.ndim)
    idx = _vector_index("index_add", index, x, ax)
    x1, src1 = _as_1d(x), _as_1d(source)
    expected = x1.shape[:ax] + (idx.shape[0],) + x1.shape[ax + 1:]
    if src1.shape != expected:
        raise ValueError(f"index_add: source has shape {tuple(source.shape)}; with {idx.shape[0]} indices along dim "
                         f"{ax} of an input of shape {tuple(x.shape)} it must be {expected}")
    if isinstance(alpha, (Tensor, bool)) or not isinstance(alpha, (int, float, np.number)):
        raise TypeError(f"index_add: alpha must be a number, got {alpha!r}")
    return IX.IndexAdd, (x1, idx, src1), dict(axis=ax, alpha=alpha)


_INPLACE_PLANS = {
    "scatter": _scatter_plan,
    "scatter_add": _scatter_add_plan,
    "scatter_reduce": _scatter_reduce_plan,
    "index_add": _index_add_plan,
}


def inplace_args(name: str, input: Tensor, *args, **kwargs):
    """(op class, other operands, attrs) for the in-place method ``input.<name>_(*args, **kwargs)``, where
    name is 'scatter', 'scatter_add', 'scatter_reduce' or 'index_add': the same checks as the function.

    A Tensor method records it with ``self._inplace_recorded(cls, others, attrs, name + "_")`` when a
    gradient is recorded, and otherwise writes ``apply(cls, self, *others, **attrs).data`` into itself.
    """
    if input.ndim == 0:
        raise ValueError(f"{name}_: the in-place form needs a tensor with at least one dimension")
    cls, operands, attrs = _INPLACE_PLANS[name](input, *args, **kwargs)
    return cls, operands[1:], attrs


def take_along_dim(input: Tensor, indices=None, axis=None, *, dim=None) -> Tensor:
    """input's values at ``indices`` along ``dim``, broadcasting the two in the other dimensions (NumPy's
    take_along_axis). Without a dimension both are flattened."""
    axis = dim_arg("take_along_dim", axis, dim)
    x = check_tensor("take_along_dim", "input", input)
    idx = index_tensor("take_along_dim", indices, x, name="indices", int32_ok=False)
    if axis is None:
        flat = idx.reshape(-1)
        check_index_range("take_along_dim", flat, x.data.size, 0)
        return apply(IX.Gather, x.reshape(-1), flat, axis=0)
    ax = wrap_dim("take_along_dim", axis, x.ndim)
    x1, idx1 = _as_1d(x), _as_1d(idx)
    if idx1.ndim != x1.ndim:
        raise ValueError(f"take_along_dim: input and indices must have the same number of dimensions, got "
                         f"{tuple(x.shape)} and {tuple(idx.shape)}")
    shape_x, shape_i = list(x1.shape), list(idx1.shape)
    shape_x[ax] = shape_i[ax] = 1
    try:
        common = np.broadcast_shapes(tuple(shape_x), tuple(shape_i))
    except ValueError:
        raise ValueError(f"take_along_dim: input {tuple(x.shape)} and indices {tuple(idx.shape)} do not broadcast "
                         f"outside dimension {ax}") from None
    check_index_range("take_along_dim", idx1, x1.shape[ax], ax)
    x_shape = common[:ax] + (x1.shape[ax],) + common[ax + 1:]
    i_shape = common[:ax] + (idx1.shape[ax],) + common[ax + 1:]
    xb = x1 if x1.shape == x_shape else x1.expand(*x_shape)
    ib = idx1 if idx1.shape == i_shape else _wrap(backend.array_module(idx1.data).broadcast_to(idx1.data, i_shape),
                                                    None)
    out = apply(IX.Gather, xb, ib, axis=ax)
    return out.reshape(()) if idx.ndim == 0 else out


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements of ``input`` where the boolean ``mask`` is true (the two broadcast), as a 1-d tensor."""
    x = check_tensor("masked_select", "input", input)
    check_tensor("masked_select", "mask", mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_select: mask must be a bool tensor, got {mask.dtype}")
    try:
        shape = np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise ValueError(f"masked_select: the mask {tuple(mask.shape)} does not broadcast with the input "
                         f"{tuple(x.shape)}") from None
    return apply(IX.MaskedSelect, x, mask, shape=shape)


# ----------------------------------------------------------------------------- rearranging


def _dims_list(op: str, dims, ndim: int, name: str = "dims") -> tuple:
    values = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    return tuple(wrap_dim(op, d, ndim, name) for d in values)


def flip(input: Tensor, dims) -> Tensor:
    """Reverse the order of elements along each dimension in ``dims`` (an int or a sequence); a copy."""
    x = check_tensor("flip", "input", input)
    axes = _dims_list("flip", dims, x.ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"flip: dims {dims} name a dimension more than once")
    return apply(IX.Flip, x, axes=axes if x.ndim else ())


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Shift elements cyclically: by ``shifts[i]`` along ``dims[i]``; without ``dims``, over the flattened
    tensor (then ``shifts`` is one int). A dimension may be named twice (its shifts add up)."""
    x = check_tensor("roll", "input", input)
    shift_list = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    if not shift_list:
        raise ValueError("roll: shifts is required (an int, or one int per dimension in dims)")
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts}; pass dims to roll "
                             "several dimensions")
        return apply(IX.Roll, x, shifts=int(shift_list[0]), axes=None)
    axes = _dims_list("roll", dims, x.ndim)
    if len(axes) != len(shift_list):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    if x.ndim == 0:
        return apply(IX.Roll, x, shifts=0, axes=None)
    return apply(IX.Roll, x, shifts=tuple(int(s) for s in shift_list), axes=axes)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile ``input``: ``sizes[d]`` copies along each dimension d (PyTorch's ``Tensor.repeat``, NumPy's tile).
    ``sizes`` may be longer than input.ndim (new leading dimensions), not shorter."""
    x = check_tensor("repeat", "input", input)
    if not sizes:
        raise TypeError("repeat: missing the repeat counts, one per dimension (e.g. repeat(x, 2, 1))")
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    reps = tuple(int(s) for s in sizes)
    if len(reps) < x.ndim:
        raise ValueError(f"repeat: {len(reps)} repeat count(s) {reps} for a tensor with {x.ndim} dimensions; give "
                         "at least one per dimension")
    if any(r < 0 for r in reps):
        raise ValueError(f"repeat: repeat counts must be non-negative, got {reps}")
    return apply(IX.Tile, x, reps=reps)


def repeat_interleave(input: Tensor, repeats=None, axis=None, *, dim=None, output_size=None) -> Tensor:
    """Repeat each element (or each slice along ``dim``) ``repeats`` times in place: ``[a, b] -> [a, a, b, b]``.

    ``repeats`` is an int or an integer tensor with one count per slice (or a single count). Without
    ``dim`` the input is flattened first. ``repeat_interleave(counts)`` alone gives
    ``repeat_interleave(arange(len(counts)), counts)``."""
    axis = dim_arg("repeat_interleave", axis, dim)
    if repeats is None:
        counts = check_tensor("repeat_interleave", "input", input)
        if counts.ndim != 1:
            raise ValueError(f"repeat_interleave: a single argument must be a 1-d tensor of counts, got shape "
                             f"{tuple(counts.shape)}")
        arange = backend.array_module(counts.data).arange(counts.shape[0], dtype=np.int64)
        return repeat_interleave(_wrap(arange, None), counts, 0)
    x = check_tensor("repeat_interleave", "input", input)
    if axis is None:
        x, ax = x.reshape(-1), 0
    else:
        ax = wrap_dim("repeat_interleave", axis, x.ndim)
        x = _as_1d(x)
    n = x.shape[ax]
    reps = _repeat_counts(repeats, n, x)
    total = reps * n if isinstance(reps, int) else int(reps.sum())
    if output_size is not None and int(output_size) != total:
        raise ValueError(f"repeat_interleave: output_size={output_size} but the repeats add up to {total}")
    return apply(IX.RepeatInterleave, x, repeats=reps, axis=ax)


def _repeat_counts(repeats, n: int, like: Tensor):
    """An int, or an int64 array of n counts (a private copy: the op keeps it for backward)."""
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        if repeats < 0:
            raise ValueError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
        return int(repeats)
    counts = index_tensor("repeat_interleave", repeats, like, name="repeats")
    if counts.ndim > 1:
        raise ValueError(f"repeat_interleave: repeats must be a 0-d or 1-d tensor, got shape {tuple(counts.shape)}")
    data = counts.data.reshape(-1)
    if data.size and int(data.min()) < 0:
        raise ValueError("repeat_interleave: repeats must be non-negative")
    if data.shape[0] == 1:
        return int(data[0])
    if data.shape[0] != n:
        raise ValueError(f"repeat_interleave: repeats has {data.shape[0]} counts but the input has {n} slices "
                         "along the dimension")
    return data.astype(np.int64, copy=True)


def unflatten(input: Tensor, axis=None, sizes=None, *, dim=None) -> Tensor:
    """Split dimension ``dim`` into ``sizes`` (whose product is its size; one entry may be -1). A view."""
    axis = required_dim("unflatten", axis, dim)
    x = check_tensor("unflatten", "input", input)
    ax = wrap_dim("unflatten", axis, x.ndim)
    sizes = tuple(int(s) for s in sizes) if sizes is not None else ()
    if not sizes:
        raise ValueError("unflatten: sizes must be non-empty")
    n = x.shape[ax] if x.ndim else 1
    free = [i for i, s in enumerate(sizes) if s == -1]
    if len(free) > 1:
        raise ValueError(f"unflatten: only one size may be -1, got {sizes}")
    known = math.prod(s for s in sizes if s != -1)
    if free:
        if known == 0 or n % known:
            raise ValueError(f"unflatten: sizes {list(sizes)} don't multiply up to the size of dim {ax} ({n})")
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    if math.prod(sizes) != n or any(s < 0 for s in sizes):
        raise ValueError(f"unflatten: sizes {list(sizes)} don't multiply up to the size of dim {ax} ({n}) of the "
                         f"input {tuple(x.shape)}")
    shape = x.shape[:ax] + sizes + x.shape[ax + 1:]
    return x.reshape(shape)


def narrow(input: Tensor, axis=None, start=None, length=None, *, dim=None) -> Tensor:
    """The view input[..., start:start + length, ...] along ``dim``; ``start`` may be negative (from the end)."""
    axis = required_dim("narrow", axis, dim)
    x = check_tensor("narrow", "input", input)
    if x.ndim == 0:
        raise ValueError("narrow: cannot be applied to a 0-d tensor")
    ax = wrap_dim("narrow", axis, x.ndim)
    if start is None or length is None:
        raise TypeError("narrow: start and length are required")
    start = int(start.item()) if isinstance(start, Tensor) else int(start)
    length = int(length)
    n = x.shape[ax]
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dimension {ax} of size {n} "
                         f"(expected a value in [{-n}, {n}])")
    if start < 0:
        start += n
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    if start + length > n:
        raise ValueError(f"narrow: start ({start}) + length ({length}) exceeds dimension {ax}'s size ({n})")
    return apply(IX.Narrow, x, axis=ax, start=start, length=length)


def chunk(input: Tensor, chunks: int, axis=None, *, dim=None) -> tuple[Tensor, ...]:
    """Split into views of ceil(size / chunks) along ``dim`` (default 0); the last may be smaller and fewer
    than ``chunks`` may come out (PyTorch's rule: ``chunk(arange(6), 4)`` gives 3 chunks of 2)."""
    axis = dim_arg("chunk", axis, dim, 0)
    x = check_tensor("chunk", "input", input)
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    if x.ndim == 0:
        raise ValueError("chunk: expects at least a 1-dimensional tensor")
    ax = wrap_dim("chunk", axis, x.ndim)
    n = x.shape[ax]
    size = -(-n // int(chunks))
    if size == 0:  # an empty dimension: `chunks` empty pieces
        return tuple(apply(IX.Narrow, x, axis=ax, start=0, length=0) for _ in range(int(chunks)))
    return tuple(apply(IX.Narrow, x, axis=ax, start=s, length=min(size, n - s)) for s in range(0, n, size))


# ----------------------------------------------------------------------------- sorting


def _sort_order(xp, data, axis: int, descending: bool, stable: bool):
    """argsort along ``axis`` with NaN as the largest value (PyTorch's order). A stable descending sort keeps
    equal elements in their original order: sort the reversed array, then reverse the result."""
    kind = "stable" if stable else None  # NumPy's default sort is several times faster, and not stable
    if not descending:
        return xp.argsort(data, axis=axis, kind=kind).astype(np.int64, copy=False)
    order = xp.argsort(xp.flip(data, axis), axis=axis, kind=kind)
    return (data.shape[axis] - 1) - xp.flip(order, axis).astype(np.int64)


def _sort_input(op: str, input, axis, dim):
    x = check_tensor(op, "input", input)
    ax = wrap_dim(op, dim_arg(op, axis, dim, -1), x.ndim)
    return x, _as_1d(x), ax


def sort(input: Tensor, axis=None, descending: bool = False, stable: bool = False, *, dim=None) -> SortResult:
    """(values, indices) sorted along ``dim`` (default -1); NaN sorts last (first when descending).
    ``stable=True`` keeps equal elements in their original order; otherwise their order is unspecified
    (as in PyTorch) and the sort is faster. Values are differentiable."""
    x, x1, ax = _sort_input("sort", input, axis, dim)
    order = _sort_order(backend.array_module(x1.data), x1.data, ax, bool(descending), bool(stable))
    idx = _wrap(order, None)
    values = apply(IX.Gather, x1, idx, axis=ax, unique=True)
    return SortResult(_restore_0d(values, x), _restore_0d(idx, x))


def argsort(input: Tensor, axis=None, descending: bool = False, stable: bool = False, *, dim=None) -> Tensor:
    """The int64 indices that sort ``input`` along ``dim`` (default -1), as ``sort``."""
    x, x1, ax = _sort_input("argsort", input, axis, dim)
    order = _sort_order(backend.array_module(x1.data), x1.data, ax, bool(descending), bool(stable))
    return _restore_0d(_wrap(order, None), x)


def topk(input: Tensor, k: int, axis=None, largest: bool = True, sorted: bool = True, *, dim=None) -> TopKResult:  # noqa: A002
    """The ``k`` largest (or smallest) elements along ``dim`` (default -1) and their int64 indices, always in
    sorted order (NaN counts as the largest). Equal values inside the result come lowest index first; which
    of several equal values at the k-th place are taken is unspecified, as in PyTorch. Values are
    differentiable."""
    x, x1, ax = _sort_input("topk", input, axis, dim)
    n = x1.shape[ax]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k={k!r} is out of range for dimension {ax} of size {n} (expected 0 <= k <= {n})")
    idx = _wrap(_topk_order(backend.array_module(x1.data), x1.data, ax, int(k), bool(largest)), None)
    values = apply(IX.Gather, x1, idx, axis=ax, unique=True)
    return TopKResult(_restore_0d(values, x), _restore_0d(idx, x))


def _topk_order(xp, data, axis: int, k: int, largest: bool):
    """Indices of the k largest (smallest) along ``axis``, sorted: a partition (linear time) picks them,
    then only those k are sorted, by value and then by index."""
    n = data.shape[axis]
    if k == n:
        candidates = xp.broadcast_to(xp.arange(n).reshape((n,) + (1,) * (data.ndim - 1 - axis)), data.shape)
    else:
        kth = n - k if largest else k - 1
        part = xp.argpartition(data, kth, axis=axis) if k else xp.zeros(data.shape, dtype=np.int64)
        keep = slice(n - k, n) if largest else slice(0, k)
        candidates = part[(slice(None),) * axis + (keep,)]
    candidates = xp.sort(candidates, axis=axis)  # index order, so that the stable sort below breaks ties by index
    order = _sort_order(xp, xp.take_along_axis(data, candidates, axis=axis), axis, largest, stable=True)
    return xp.take_along_axis(candidates, order, axis=axis).astype(np.int64, copy=False)
