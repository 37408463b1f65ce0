"""Small helpers shared by the ops: broadcasting reduction and axis normalisation."""

from __future__ import annotations


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


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """``None`` -> all axes; an int or tuple of ints (negative allowed) -> sorted non-negative tuple."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(out))


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
