"""Small helpers shared by the ops: broadcasting reduction and axis normalisation."""

from __future__ import annotations

import contextlib


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``.

    Every binary op calls this as its gradient leaves the op (not when gradients are
    accumulated), so a (3,) bias added to a (N, 3) activation gets a (3,) gradient.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes)
    return grad.reshape(shape)


def normalize_axes(axis, ndim: int, op: str = "reduce") -> tuple[int, ...]:
    """``None`` -> all axes; an int or tuple of ints (negative allowed) -> sorted non-negative tuple.

    As PyTorch, a 0-d tensor accepts axis 0 or -1 (meaning the tensor itself: no axis to reduce).
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        out.append(normalize_axis(a, ndim, op))
    if ndim == 0:
        return ()
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {tuple(axis)}")
    return tuple(sorted(out))


def normalize_axis(axis: int, ndim: int, op: str = "op") -> int:
    """One axis in [-ndim, ndim) as a non-negative int (0-d tensors take 0 or -1, PyTorch's rule)."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        if hasattr(axis, "__index__"):
            axis = axis.__index__()
        else:
            raise TypeError(f"{op}: an axis must be an integer, got {axis!r}")
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= axis <= hi:
        raise IndexError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimension(s) "
                         f"(expected one in [{lo}, {hi}])")
    return axis % ndim if ndim else 0


def keepdims_shape(shape: tuple, axes: tuple[int, ...]) -> tuple:
    """The shape a reduction over ``axes`` would have with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def dim_arg(op: str, axis, dim, default=None):
    """One axis argument under NumPy's name (``axis``) or PyTorch's (``dim``); giving both is an error.

    Functions take ``axis=None`` positionally and ``dim=None`` as a keyword, and pass their real
    default here, so ``x.sum(1)``, ``x.sum(axis=1)`` and ``x.sum(dim=1)`` mean the same.
    """
    if dim is None:
        return default if axis is None else axis
    if axis is not None:
        raise TypeError(f"{op}: got both axis={axis!r} and dim={dim!r}; they are the same argument, give one")
    return dim


def keepdim_arg(op: str, keepdims: bool, keepdim) -> bool:
    """``keepdims`` (NumPy) or ``keepdim`` (PyTorch, a keyword defaulting to None); giving both is an error."""
    if keepdim is None:
        return bool(keepdims)
    if keepdims:
        raise TypeError(f"{op}: got both keepdims and keepdim; they are the same argument, give one")
    return bool(keepdim)


def quiet_float_errors(xp):
    """A context that silences divide/invalid/overflow warnings where inf/nan results are intended
    (PyTorch's edge values); CuPy does not warn, so it gets a null context."""
    errstate = getattr(xp, "errstate", None)
    return errstate(divide="ignore", invalid="ignore", over="ignore") if errstate else contextlib.nullcontext()
