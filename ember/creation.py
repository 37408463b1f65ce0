"""Tensor creation: from data, filled, ranges and random draws (seeded by ``ember.manual_seed``)."""

from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor, _wrap, as_array


def _dev(device) -> backend.Device:
    return backend.default_device() if device is None else backend.device(device)


def _float_dtype(dtype):
    return backend.resolve_dtype(dtype) or backend.get_default_dtype()


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _leaf(data, requires_grad: bool) -> Tensor:
    t = _wrap(data, None)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python data, an array or a Tensor), as ``torch.tensor``.

    Python floats become the default dtype (float32) unless ``dtype`` says otherwise; arrays keep
    theirs. To share an array's memory instead, use ``from_numpy`` or ``as_tensor``.
    """
    if isinstance(data, Tensor):
        data = data.data
    arr = as_array(data, dtype, device)
    if arr is data or (type(arr) is type(data) and backend.array_module(arr).shares_memory(arr, data)):
        arr = arr.copy()
    return Tensor(arr, device=backend.device_of(arr), requires_grad=requires_grad)  # placed: no default device


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap a NumPy array without copying (its dtype is kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return _leaf(array, False)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _dev(device).xp
    return _leaf(xp.zeros(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _dev(device).xp
    return _leaf(xp.ones(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor filled with ``fill_value``; without ``dtype``, its type decides as in PyTorch: bool -> bool,
    int -> int64, float -> the default float dtype."""
    xp = _dev(device).xp
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if dtype is None:
        value = fill_value.item() if isinstance(fill_value, (np.generic, Tensor)) else fill_value
        dtype = backend.bool_ if isinstance(value, bool) else backend.int64 if isinstance(value, int) else None
    return _leaf(xp.full(shape, fill_value, dtype=_float_dtype(dtype)), requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    xp = _dev(device).xp
    return _leaf(xp.empty(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad=False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None) -> Tensor:
    """Like numpy.arange: integers give int64, a float argument gives the default float dtype."""
    if stop is None:
        start, stop = 0, start
    is_float = any(isinstance(v, float) for v in (start, stop, step))
    dt = backend.resolve_dtype(dtype) or (backend.get_default_dtype() if is_float else backend.int64)
    return _leaf(_dev(device).xp.arange(start, stop, step, dtype=dt), False)


def linspace(start: float, stop: float, steps: int, dtype=None, device=None) -> Tensor:
    """``steps`` evenly spaced values from start to stop; an integer dtype truncates them toward zero
    (PyTorch's rule; NumPy floors)."""
    dt = _float_dtype(dtype)
    if dt == np.bool_:
        raise TypeError("linspace: bool is not a supported dtype (as in PyTorch)")
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    xp = _dev(device).xp
    values = xp.linspace(start, stop, steps, dtype=np.float64)
    if dt.kind in "iu":
        return _leaf(xp.trunc(values).astype(dt), False)
    return _leaf(values.astype(dt), False)


def eye(n: int, m: int | None = None, dtype=None, device=None) -> Tensor:
    return _leaf(_dev(device).xp.eye(n, m, dtype=_float_dtype(dtype)), False)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal draws from the device's seeded generator (or ``generator``)."""
    dev = _dev(device)
    gen = generator or backend.generator(dev)
    data = gen.standard_normal(_shape(shape), dtype=_float_dtype(dtype))
    return _leaf(data, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform draws on [0, 1)."""
    dev = _dev(device)
    gen = generator or backend.generator(dev)
    data = gen.random(_shape(shape), dtype=_float_dtype(dtype))
    return _leaf(data, requires_grad)


def randint(low: int, high: int, shape, device=None, generator=None) -> Tensor:
    """Integers in [low, high) as int64."""
    dev = _dev(device)
    gen = generator or backend.generator(dev)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _leaf(gen.integers(low, high, size=shape, dtype=np.int64), False)


def randperm(n: int, device=None, generator=None) -> Tensor:
    dev = _dev(device)
    gen = generator or backend.generator(dev)
    return _leaf(gen.permutation(n).astype(np.int64), False)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Reuse a Tensor as is, or wrap data (no copy when dtype and device already match)."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return _leaf(as_array(data, dtype, device), False)
