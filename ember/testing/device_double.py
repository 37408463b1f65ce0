"""``cpu:other``: a second device without a GPU, so CI exercises every path that moves data between devices.

A GPU's arrays refuse to mix with host arrays: CuPy raises ``TypeError`` when an op gets a NumPy array
next to a CuPy one, and a NumPy call on a CuPy array fails. Code that works on the CPU can therefore
still call ``numpy`` directly inside an op, keep optimizer state on the host, or forget to move a
batch, and only a GPU would tell. This device behaves like the GPU in those respects while running
NumPy underneath: its arrays are ``OtherArray`` (a NumPy subclass) and its array module ``xp`` is
NumPy with every array-returning function wrapped to return ``OtherArray``, so

- a ufunc, NumPy function or indexing that mixes an ``OtherArray`` with a plain host array raises
  ``TypeError`` naming both devices (as CuPy does);
- reductions return 0-d arrays, not NumPy scalars (as CuPy does);
- the compiled numba kernels never take its arrays (they take only plain NumPy arrays), so the
  reference path every GPU op falls back to runs;
- moving to and from it copies (``to_host``/``from_host``), as moving to a GPU does.

Its random generator draws the CPU generator's numbers (PCG64 from the same seed), so seeded
stochastic ops agree with the CPU exactly. ``import ember.testing.device_double`` registers it;
``ember.testing`` does so on import.
"""

from __future__ import annotations

import types

import numpy as np
import scipy.special

from .. import backend

NAME = "cpu:other"

# Functions that take host data by design: they are how data gets onto the device (cupy.asarray).
_TRANSFER = frozenset({"asarray", "array"})


class OtherArray(np.ndarray):
    """An array on the ``cpu:other`` device: NumPy underneath, refuses to mix with host arrays."""

    ember_device: backend.Device  # set below, once the device exists

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        refuse_host_arrays(f"{ufunc.__name__}.{method}" if method != "__call__" else ufunc.__name__,
                           inputs + (out or ()))
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*[_plain(a) for a in inputs], **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _on_device(result)

    def __array_function__(self, func, types_, args, kwargs):
        refuse_host_arrays(func.__name__, (args, kwargs))
        return _on_device(func(*_plain(args), **_plain(kwargs)))

    def __getitem__(self, key):
        refuse_host_arrays("indexing", (key,))
        return _on_device(super().__getitem__(_plain(key)))

    def __setitem__(self, key, value):
        refuse_host_arrays("index assignment", (key, value))
        super().__setitem__(_plain(key), _plain(value))

    def get(self) -> np.ndarray:
        """A host copy, as ``cupy.ndarray.get()``."""
        return np.array(self.view(np.ndarray))


def refuse_host_arrays(what: str, values) -> None:
    """Raise TypeError if ``values`` (nested tuples/lists/dicts) hold a plain host array with elements."""
    host = _find_host_array(values)
    if host is not None:
        raise TypeError(f"{what}: an array on device '{NAME}' was mixed with a host (cpu) NumPy array of shape "
                        f"{host.shape}; move it with Tensor.to() or the array module's asarray first")


def _find_host_array(value):
    if type(value) is np.ndarray:
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            found = _find_host_array(v)
            if found is not None:
                return found
    elif isinstance(value, dict):
        return _find_host_array(tuple(value.values()))
    return None


def _plain(value):
    """The same structure with every OtherArray viewed as a plain NumPy array."""
    if isinstance(value, OtherArray):
        return value.view(np.ndarray)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _on_device(value):
    """Arrays (and NumPy scalars, which CuPy returns as 0-d arrays) viewed as OtherArray, in any structure."""
    if type(value) is np.ndarray:
        return value.view(OtherArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(OtherArray)
    if isinstance(value, tuple):  # named tuples too: CuPy's linalg.eigh/svd/qr return device arrays
        items = [_on_device(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_on_device(v) for v in value]
    return value


class ArrayModule:
    """NumPy (or one of its submodules) whose functions return OtherArray and refuse host arrays."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if name == "ndarray":
            wrapped = OtherArray
        elif isinstance(attr, types.ModuleType):
            wrapped = ArrayModule(attr)
        elif isinstance(attr, (type, np.ufunc)) or not callable(attr):
            wrapped = attr  # dtypes, classes, constants; ufuncs dispatch through OtherArray.__array_ufunc__
        else:
            wrapped = _device_function(attr, name)
        setattr(self, name, wrapped)
        return wrapped

    def __repr__(self) -> str:
        return f"<array module of device '{NAME}' over {self._module.__name__}>"


def _device_function(fn, name: str):
    takes_host = name in _TRANSFER

    def call(*args, **kwargs):
        if not takes_host:
            refuse_host_arrays(name, (args, kwargs))
        result = fn(*_plain(args), **_plain(kwargs))
        if takes_host or isinstance(result, (np.ndarray, np.generic, tuple, list)):
            return _on_device(result)
        return result

    call.__name__ = name
    call.__doc__ = fn.__doc__
    return call


class Generator:
    """The CPU's PCG64 generator with its draws placed on the device (same seed, same numbers)."""

    def __init__(self, seed):
        self._gen = np.random.Generator(np.random.PCG64(seed))

    def __getattr__(self, name):
        method = getattr(self._gen, name)

        def draw(*args, **kwargs):
            refuse_host_arrays(f"Generator.{name}", (args, kwargs))
            return _on_device(method(*_plain(args), **_plain(kwargs)))

        return draw


def _from_host(array):
    return np.array(array).view(OtherArray)


xp = ArrayModule(np)
xp.special = ArrayModule(scipy.special)  # what cupyx.scipy.special is to CuPy (backend.special)
DEVICE = backend.Device(NAME, None, xp, to_host=OtherArray.get, from_host=_from_host, new_generator=Generator)
OtherArray.ember_device = DEVICE
backend.register_device(NAME, DEVICE)
