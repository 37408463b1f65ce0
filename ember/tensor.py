"""Tensor: an array, its gradient and the graph node that produced it.

Arithmetic and the methods below delegate to the ``Function`` ops in ``ember.ops``;
``apply`` is the dispatcher that unwraps arrays, runs an op's forward, and records the
node when a gradient is needed. It is on every op's path, so it is kept short.
"""

from __future__ import annotations

import math
import operator
import warnings
from typing import NamedTuple

import numpy as np

from . import autograd as _autograd
from . import backend
from . import indexing as _indexing
from .ops import elementwise as E
from .ops import linalg as L
from .ops import nn as N
from .ops import reduce as R
from .ops import shape as S
from .ops.util import dim_arg, keepdim_arg, normalize_axes, normalize_axis

_ndarray = np.ndarray
_float_kinds = "fc"


def _xp_of(a):
    return np if type(a) is _ndarray else backend.array_module(a)


def _wrap(data, node) -> Tensor:
    """Build a Tensor around an op's output without re-validating it (the dispatcher's fast path)."""
    if isinstance(data, np.generic):  # NumPy returns scalars from 0-d ufuncs; keep arrays
        data = np.asarray(data)
    t = object.__new__(Tensor)
    t.data = data
    t.grad = None
    t._requires_grad = node is not None
    t._node = node
    t._vbox = None
    return t


def _no_graph(t: Tensor) -> Tensor:
    """``t``'s data outside the graph, for a cast to integers or bool: such a result has no gradient (PyTorch's
    does not require grad), and a gradient passed back through the rounding would be wrong."""
    return _wrap(t.data, None)


def apply(cls, *inputs: Tensor, **attrs) -> Tensor:
    """Run op ``cls`` on tensors ``inputs`` (and non-tensor ``attrs``), recording the graph if needed."""
    if len(inputs) > 1:
        kind = type(inputs[0].data)
        for t in inputs:
            if type(t.data) is not kind:
                _refuse_mixed_devices(cls, inputs)
    fn = cls()
    fn.xp = _xp_of(inputs[0].data)
    record = False
    if _autograd._grad_mode.enabled:
        needs = tuple([t._requires_grad for t in inputs])  # the slot itself: cheaper than the property
        if True in needs:
            record = True
            fn.needs_input_grad = needs
    try:
        out = fn.forward(*[t.data for t in inputs], **attrs)
    except (ValueError, TypeError, IndexError) as exc:
        raise type(exc)(_describe_failure(cls, inputs, exc)) from exc
    if record:
        fn.inputs = inputs
        n = len(inputs)
        fn.parents = ((inputs[0]._node,) if n == 1 else (inputs[0]._node, inputs[1]._node) if n == 2
                      else tuple([t._node for t in inputs]))
        result = _wrap(out, fn)
        saves = fn.saves  # an op may set it in forward when it depends on the inputs
        if saves is None or saves:
            fn.clock = _write_clock[0]  # a saved tensor written after this is stale for backward
            if saves is None or "out" in saves:
                fn.out_box = result._vbox = [0, False, 0]
    else:
        result = _wrap(out, None)
    if cls.returns_view:
        _share_version_if_view(result, inputs[0])
    return result


# Every in-place write ticks this clock and stamps the written tensor's version box with it, so a
# node knows a tensor it saved was written after its forward pass when the stamp exceeds the clock
# it recorded (one integer per node instead of a version per input).
_write_clock = [0]


def _share_version_if_view(view: Tensor, base: Tensor) -> None:
    """A view shares its base's version counter, so a write through either is seen by both."""
    a, b = view.data, base.data
    if a is b or _xp_of(a).may_share_memory(a, b):
        box = base._box()
        box[1] = True
        view._vbox = box


def _refuse_mixed_devices(cls, inputs):
    devices = sorted({str(t.device) for t in inputs})
    if len(devices) > 1:  # arrays of one device but different classes (a NumPy scalar, say) are fine
        raise RuntimeError(f"ember.{cls.__name__.lower()}: operands on different devices ({', '.join(devices)}); "
                           f"move them to one device with .to() first")


def _describe_failure(cls, inputs, exc) -> str:
    operands = ", ".join(f"{tuple(t.shape)} {t.dtype} on {t.device}" for t in inputs)
    devices = {str(t.device) for t in inputs}
    hint = f" (operands on different devices: {sorted(devices)}; move them with .to())" if len(devices) > 1 else ""
    return f"ember.{cls.__name__.lower()}: {exc}; operands: {operands}{hint}"


# ----------------------------------------------------------------------------- conversion


def as_array(data, dtype=None, device=None):
    """Turn Python data, NumPy/CuPy arrays or a Tensor into an array of the requested dtype/device.

    Python floats become the default dtype (float32); arrays keep their dtype unless one is given.
    """
    dtype = backend.resolve_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)) or hasattr(data, "__cuda_array_interface__"):
        arr = data
    else:
        arr = np.asarray(data)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(backend.get_default_dtype())
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    if device is None and type(arr) is _ndarray and backend._default_stack[-1] is not backend.CPU:
        device = backend._default_stack[-1]  # host data under `with ember.device(...)`
    if device is not None:
        arr = backend.to_device(arr, backend.device(device))
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    return arr


def _scalar(value):
    """A Python int/float from a Python or NumPy number (NumPy float64 scalars would upcast float32)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    return float(value) if isinstance(value, float) else value


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float, np.number, np.bool_))


def _delegate(family: str, name: str):
    """A Tensor method that calls the top-level function ``ember.<name>`` with the tensor first.

    The functions live in ``ember.functions.<family>``, which imports this module; they are looked up
    when the method is called, so the one implementation stays in the functions module.
    """

    def method(self, *args, **kwargs):
        return getattr(_FAMILIES[family], name)(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``ember.{name}`` with this tensor as the first argument."
    return method


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``data`` is a ``numpy.ndarray`` (CPU) or ``cupy.ndarray`` (GPU); ``grad`` is a Tensor
    (or None) that accumulates across ``backward`` calls until zeroed.

    Examples:
        >>> x = ember.tensor([[1.0, 2.0]], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([[2., 4.]], dtype=float32)
    """

    # _vbox is [version, viewed, stamp]: the count of in-place writes to the memory (shared with
    # every view of it), whether a view (or a detached alias) of the memory was ever made, and the
    # write clock at the last write. It is made on first need (None: version 0, no view, never
    # written), so most op outputs never get one.
    __slots__ = ("data", "grad", "_requires_grad", "_node", "_vbox", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        self.data = as_array(data, dtype, device)
        self.grad = None
        self._node = None
        self._vbox = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # -- attributes ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> backend.Device:
        return backend.CPU if type(self.data) is _ndarray else backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    def numel(self) -> int:
        return int(self.data.size)

    def size(self, axis: int | None = None):
        return self.data.shape if axis is None else self.data.shape[axis]

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self) -> str:
        data = self.numpy()
        body = np.array2string(data, separator=", ", prefix="tensor(", precision=4, threshold=200)
        extras = [f"dtype={self.dtype}"]
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    # -- conversion ---------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shared on the CPU, copied from a GPU)."""
        return self.data if type(self.data) is _ndarray else backend.to_device(self.data, backend.CPU)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): tensor of shape {self.shape} has {self.data.size} elements, not 1")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.data.item())

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def to(self, *args, dtype=None, device=None) -> Tensor:
        """Move and/or cast: ``t.to('cuda')``, ``t.to(ember.float64)``, ``t.to('cpu', 'float64')``.

        Differentiable: the gradient flows back across the cast and the copy. A cast to integers or bool
        leaves the graph (its result does not require grad, as in PyTorch).
        """
        for arg in args:
            if isinstance(arg, backend.Device) or (isinstance(arg, str) and backend.is_device_name(arg)):
                device = arg
            else:
                dtype = arg
        out = self
        if dtype is not None:
            dt = backend.resolve_dtype(dtype)
            if dt != out.dtype:
                out = apply(E.Cast, out if dt.kind in _float_kinds else _no_graph(out), dtype=dt)
        if device is not None:
            dev = backend.device(device)
            if dev != out.device:
                out = apply(_ToDevice, out, device=dev)
        return out

    def float(self) -> Tensor:
        return self.to(dtype=backend.float32)

    def double(self) -> Tensor:
        return self.to(dtype=backend.float64)

    def half(self) -> Tensor:
        return self.to(dtype=backend.float16)

    def int(self) -> Tensor:
        """Cast to int32 (PyTorch's ``int()``; floats are truncated toward zero)."""
        return self.to(dtype=backend.int32)

    def long(self) -> Tensor:
        return self.to(dtype=backend.int64)

    def bool(self) -> Tensor:
        return self.to(dtype=backend.bool_)

    def type(self, dtype=None):
        """With no argument, the type name as PyTorch spells it ('ember.FloatTensor'); else a cast."""
        if dtype is None:
            return f"ember.{_TYPE_NAMES.get(self.data.dtype.name, self.data.dtype.name)}"
        return self.to(dtype=dtype)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(dtype=other.dtype)

    def dim(self) -> int:
        """The number of dimensions (PyTorch's spelling of ``ndim``)."""
        return self.data.ndim

    ndimension = dim

    def nelement(self) -> int:
        return int(self.data.size)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Tensor:
        return self.to(f"cuda:{index}")

    def astype(self, dtype) -> Tensor:
        return self.to(dtype=dtype)

    # -- autograd -----------------------------------------------------------------------
    def requires_grad_(self, mode: bool = True) -> Tensor:
        if self._node is not None:
            raise RuntimeError("requires_grad_() is for leaf tensors; use .detach() to make a new leaf")
        self.requires_grad = mode
        return self

    def _set_requires_grad(self, mode: bool) -> None:
        """Setter of ``requires_grad``: a gradient of an integer or bool tensor would be rounded, so it is refused."""
        if mode and self.data.dtype.kind not in _float_kinds:
            raise TypeError(f"only floating-point tensors can require gradients, not {self.dtype}; "
                            "convert it first, e.g. .float()")
        self._requires_grad = bool(mode)

    # The getter is C-level (attrgetter), as cheap as a property can be; ``apply`` reads the slot directly.
    requires_grad = property(operator.attrgetter("_requires_grad"), _set_requires_grad,
                             doc="Whether ``backward`` computes a gradient for this tensor (floating point only).")

    @property
    def _version(self) -> int:
        """How many in-place writes this tensor's memory has seen (PyTorch's ``_version``)."""
        return 0 if self._vbox is None else self._vbox[0]

    def _box(self) -> list:
        """This tensor's version box, made on first need."""
        if self._vbox is None:
            self._vbox = [0, False, 0]
        return self._vbox

    def _bump_version(self) -> None:
        """Record an in-place write to this tensor's memory (in-place ops, optimizers, initialisers)."""
        box = self._box()
        box[0] += 1
        _write_clock[0] += 1
        box[2] = _write_clock[0]

    def detach(self) -> Tensor:
        """The same data, cut from the graph; it shares the version counter (writes through it are seen)."""
        t = _wrap(self.data, None)
        t._vbox = box = self._box()
        box[1] = True
        return t

    def clone(self) -> Tensor:
        return apply(S.Copy, self)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        A non-scalar tensor needs ``gradient`` (the vector in the vector-Jacobian product).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph; "
                "create the inputs with requires_grad=True (and not under no_grad())"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward(): the tensor has shape {self.shape}; gradients can be created implicitly "
                    "only for scalars. Pass gradient= (same shape) or reduce first, e.g. loss.sum()."
                )
            grad = _xp_of(self.data).ones(self.shape, dtype=self.dtype)
        else:
            grad = as_array(gradient, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): gradient has shape {grad.shape} but the tensor has {self.shape}")
        _autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate_grad(self, g, owned: bool) -> None:
        """Add ``g`` into ``.grad``; the stored array is always owned by this tensor alone.

        ``owned`` says the graph walk hands ``g`` over for good (nobody else holds it), so it
        can become ``.grad`` without a copy; anything else is copied first.
        """
        if g.dtype != self.data.dtype:
            g = g.astype(self.data.dtype)
            owned = True
        if g.shape != self.data.shape:
            raise RuntimeError(f"internal error: gradient of shape {g.shape} for a tensor of shape {self.shape}")
        if self.grad is None:
            if not owned:
                g = _xp_of(g).array(g, copy=True)
            self.grad = _wrap(g, None)
        else:
            self.grad.data += g

    # -- arithmetic ---------------------------------------------------------------------
    def _binary(self, other, op, scalar_op):
        if isinstance(other, Tensor):
            a, b = _promote(self, other, op)
            return apply(op, a, b)
        if _is_scalar(other):
            c = _scalar(other)
            a = self
            if isinstance(c, float) and a.data.dtype.kind not in _float_kinds:
                a = a.to(dtype=backend.get_default_dtype())
            return apply(scalar_op, a, c=c)
        return self._binary(Tensor(as_array(other), device=self.device), op, scalar_op)

    def __add__(self, other):
        return self._binary(other, E.Add, E.AddScalar)

    __radd__ = __add__

    def __sub__(self, other):
        if _is_scalar(other):
            return self._binary(-_scalar(other), E.Add, E.AddScalar)
        return self._binary(other, E.Sub, None)

    def __rsub__(self, other):
        if _is_scalar(other):
            return apply(E.RSubScalar, self._float_for(other), c=_scalar(other))
        return Tensor(as_array(other), device=self.device) - self

    def __mul__(self, other):
        return self._binary(other, E.Mul, E.MulScalar)

    __rmul__ = __mul__

    def __truediv__(self, other):
        """True division: integer operands divide as the default float dtype (never float64 by accident)."""
        if _is_scalar(other):
            return apply(E.DivScalar, self._float_for(1.0), c=_scalar(other))
        if not isinstance(other, Tensor):
            other = Tensor(as_array(other), device=self.device)
        a, b = self, other
        if a.data.dtype.kind not in _float_kinds and b.data.dtype.kind not in _float_kinds:
            a, b = a._float_for(1.0), b._float_for(1.0)
        return a._binary(b, E.Div, None)

    def __rtruediv__(self, other):
        if _is_scalar(other):
            return apply(E.RDivScalar, self._float_for(1.0), c=_scalar(other))
        return Tensor(as_array(other), device=self.device) / self

    def __pow__(self, other):
        if _is_scalar(other):
            return apply(E.PowScalar, self._float_for(other), p=_scalar(other))
        return self._binary(other, E.Pow, None)

    def __rpow__(self, other):
        if _is_scalar(other):
            return apply(E.RPowScalar, self._float_for(1.0), c=_scalar(other))
        return Tensor(as_array(other), device=self.device) ** self

    def __neg__(self):
        return apply(E.Neg, self)

    def __matmul__(self, other):
        other = other if isinstance(other, Tensor) else Tensor(as_array(other), device=self.device)
        return apply(L.MatMul, *_promote(self, other, L.MatMul))

    def __rmatmul__(self, other):
        return Tensor(as_array(other), device=self.device) @ self

    def _float_for(self, scalar) -> Tensor:
        """Integer tensors meet float scalars as the default float dtype (not float64)."""
        if isinstance(_scalar(scalar), float) and self.data.dtype.kind not in _float_kinds:
            return self.to(dtype=backend.get_default_dtype())
        return self

    # -- comparisons (no gradient) ------------------------------------------------------
    def _compare(self, other, fn):
        other = other.data if isinstance(other, Tensor) else other
        return _wrap(fn(self.data, other), None)

    def __lt__(self, other):
        return self._compare(other, operator.lt)

    def __le__(self, other):
        return self._compare(other, operator.le)

    def __gt__(self, other):
        return self._compare(other, operator.gt)

    def __ge__(self, other):
        return self._compare(other, operator.ge)

    def __eq__(self, other):
        return self._compare(other, operator.eq)

    def __ne__(self, other):
        return self._compare(other, operator.ne)

    __hash__ = object.__hash__

    # -- integer and bitwise operators (PyTorch's semantics, in ember.functions.pointwise) ---
    def __floordiv__(self, other):
        return _FP.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _FP.floor_divide(other, self)

    def __mod__(self, other):
        return _FP.remainder(self, other)

    def __rmod__(self, other):
        return _FP.remainder(other, self)

    def __invert__(self):
        return _FP.bitwise_not(self)

    def __and__(self, other):
        return _FP.bitwise_and(self, other)

    def __rand__(self, other):
        return _FP.bitwise_and(other, self)

    def __or__(self, other):
        return _FP.bitwise_or(self, other)

    def __ror__(self, other):
        return _FP.bitwise_or(other, self)

    def __xor__(self, other):
        return _FP.bitwise_xor(self, other)

    def __rxor__(self, other):
        return _FP.bitwise_xor(other, self)

    def __lshift__(self, other):
        return _FP.bitwise_left_shift(self, other)

    def __rlshift__(self, other):
        return _FP.bitwise_left_shift(other, self)

    def __rshift__(self, other):
        return _FP.bitwise_right_shift(self, other)

    def __rrshift__(self, other):
        return _FP.bitwise_right_shift(other, self)

    def any(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
        axes = normalize_axes(dim_arg("any", axis, dim), self.ndim, "any")
        return _wrap(self.data.any(axis=axes, keepdims=keepdim_arg("any", keepdims, keepdim)), None)

    def all(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
        axes = normalize_axes(dim_arg("all", axis, dim), self.ndim, "all")
        return _wrap(self.data.all(axis=axes, keepdims=keepdim_arg("all", keepdims, keepdim)), None)

    # -- reductions ---------------------------------------------------------------------
    # Each takes NumPy's (axis, keepdims) or PyTorch's (dim, keepdim) spelling; one axis or several.

    def _reduce(self, op, name, axis, dim, keepdims, keepdim, **attrs) -> Tensor:
        axes = normalize_axes(dim_arg(name, axis, dim), self.ndim, name)
        return apply(op, self, axes=axes, keepdims=keepdim_arg(name, keepdims, keepdim), **attrs)

    def sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None, dtype=None) -> Tensor:
        """Sum over ``axis`` (all by default). ``dtype`` casts first and sums in that dtype; bool and
        integer tensors sum as int64 (PyTorch's rule), others keep their dtype."""
        if dtype is None and self.data.dtype.kind in _float_kinds:  # the common case, without the dtype rules
            return self._reduce(R.Sum, "sum", axis, dim, keepdims, keepdim)
        return _FP.sum(self, axis, keepdims, dim=dim, keepdim=keepdim, dtype=dtype)

    def mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None, dtype=None) -> Tensor:
        """Mean over ``axis`` (all by default); integer tensors need a floating ``dtype`` (as in PyTorch)."""
        x = self._floating(dtype, "mean")
        return x._reduce(R.Mean, "mean", axis, dim, keepdims, keepdim)

    def _floating(self, dtype, name) -> Tensor:
        if dtype is not None:
            return self.to(dtype=dtype)
        if self.data.dtype.kind not in _float_kinds:
            raise TypeError(f"{name}(): the input is {self.dtype}; {name} needs a floating-point tensor "
                            f"(cast with .float(), or pass dtype=ember.float32)")
        return self

    def amax(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
        """Maximum over one or several axes; ties share the gradient evenly (PyTorch's amax)."""
        return self._reduce(R.Max, "amax", axis, dim, keepdims, keepdim)

    def amin(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
        return self._reduce(R.Min, "amin", axis, dim, keepdims, keepdim)

    def max(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """PyTorch's max: with no axis, the largest element (0-d); with an axis, ``(values, indices)``;
        with a tensor, the elementwise maximum. ``x.max(1)[0]`` sends each row's gradient to the
        first maximum, as PyTorch does (``amax`` shares it among ties)."""
        if isinstance(axis, Tensor):
            return self.maximum(axis)
        return self._extremum(axis, dim, keepdims, keepdim, "max")

    def min(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        """PyTorch's min: see ``max``."""
        if isinstance(axis, Tensor):
            return self.minimum(axis)
        return self._extremum(axis, dim, keepdims, keepdim, "min")

    def _extremum(self, axis, dim, keepdims, keepdim, name):
        axis = dim_arg(name, axis, dim)
        keep = keepdim_arg(name, keepdims, keepdim)
        if axis is None:
            if keep:
                raise TypeError(f"{name}(): keepdim needs an axis (use amax/amin over all axes instead)")
            if self.data.size == 0:
                raise RuntimeError(f"{name}(): the tensor is empty (shape {self.shape}); there is no {name}imum")
            return apply(R.Max if name == "max" else R.Min, self, axes=tuple(range(self.ndim)), keepdims=False)
        if not isinstance(axis, int):
            raise TypeError(f"{name}(): takes one axis (an int), got {axis!r}; use amax/amin for several")
        ax = normalize_axis(axis, self.ndim, name)
        x = self.reshape(1) if self.ndim == 0 else self
        if x.shape[ax] == 0:
            raise IndexError(f"{name}(): axis {axis} of the tensor {self.shape} is empty")
        idx = _arg_reduce(x.data, "argmax" if name == "max" else "argmin", ax, True)
        values = apply(R.SelectAlongAxis, x, index=idx, axis=ax, keepdims=keep or self.ndim == 0)
        indices = _wrap(idx if keep else idx.squeeze(ax), None)
        if self.ndim == 0:
            values, indices = values.reshape(()), _wrap(idx.reshape(()), None)
        return MaxMin(values, indices)

    def logsumexp(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
        return self._floating(None, "logsumexp")._reduce(R.LogSumExp, "logsumexp", axis, dim, keepdims, keepdim)

    def var(self, axis=None, unbiased: bool | None = None, keepdims: bool = False, *, dim=None, keepdim=None,
            correction=None) -> Tensor:
        """Variance with N - correction in the denominator: Bessel's (correction=1) by default,
        ``correction=0`` or ``unbiased=False`` for the biased one. N - correction <= 0 gives inf or nan
        with a warning, as in PyTorch."""
        return self._spread(R.Var, "var", axis, unbiased, keepdims, dim, keepdim, correction)

    def std(self, axis=None, unbiased: bool | None = None, keepdims: bool = False, *, dim=None, keepdim=None,
            correction=None) -> Tensor:
        """Standard deviation (see ``var``); its gradient is 0 where it is 0."""
        return self._spread(R.Std, "std", axis, unbiased, keepdims, dim, keepdim, correction)

    def _spread(self, op, name, axis, unbiased, keepdims, dim, keepdim, correction):
        if isinstance(axis, bool):  # PyTorch's var(unbiased)
            axis, unbiased = None, axis
        if unbiased is not None and correction is not None:
            raise TypeError(f"{name}(): give unbiased or correction, not both")
        corr = (1 if unbiased is None or unbiased else 0) if correction is None else correction
        x = self._floating(None, name)
        axes = normalize_axes(dim_arg(name, axis, dim), x.ndim, name)
        n = math.prod(x.shape[a] for a in axes)
        if n - corr <= 0:
            warnings.warn(f"{name}(): degrees of freedom is <= 0 (N = {n}, correction = {corr}); the result is "
                          "inf or nan", RuntimeWarning, stacklevel=3)
        return apply(op, x, axes=axes, correction=corr, keepdims=keepdim_arg(name, keepdims, keepdim))

    def argmax(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
        axis = dim_arg("argmax", axis, dim)
        if axis is not None:
            axis = normalize_axis(axis, self.ndim, "argmax")
        return _wrap(_arg_reduce(self.data, "argmax", axis, keepdim_arg("argmax", keepdims, keepdim)), None)

    def argmin(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
        axis = dim_arg("argmin", axis, dim)
        if axis is not None:
            axis = normalize_axis(axis, self.ndim, "argmin")
        return _wrap(_arg_reduce(self.data, "argmin", axis, keepdim_arg("argmin", keepdims, keepdim)), None)

    # -- shape --------------------------------------------------------------------------
    def reshape(self, *shape) -> Tensor:
        shape = _shape_args(shape)
        if shape == self.data.shape:
            return self
        return apply(S.Reshape, self, shape=shape)

    def view(self, *shape) -> Tensor:
        """A view with a new shape (``reshape``; NumPy copies only when the strides make a view impossible)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)) and not hasattr(shape[0], "__index__"):
            raise TypeError(f"view({shape[0]!r}): reinterpreting the bytes as another dtype is not supported; "
                            "use .to(dtype) to convert the values")
        return self.reshape(*shape)

    def flatten(self, start_axis=None, end_axis=None, *, start_dim=None, end_dim=None) -> Tensor:
        """Merge axes start..end (inclusive; all by default) into one; PyTorch's ``start_dim``/``end_dim`` too."""
        start = dim_arg("flatten", start_axis, start_dim, 0)
        end = dim_arg("flatten", end_axis, end_dim, -1)
        if self.ndim == 0:
            return self.reshape(1)
        start, end = normalize_axis(start, self.ndim, "flatten"), normalize_axis(end, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start axis {start} comes after end axis {end}")
        return self.reshape(self.shape[:start] + (math.prod(self.shape[start : end + 1]),) + self.shape[end + 1 :])

    def squeeze(self, axis=None, *, dim=None) -> Tensor:
        """Drop size-1 axes: all of them, or those of ``axis`` (an int or tuple) that have size 1."""
        axis = dim_arg("squeeze", axis, dim)
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axes = normalize_axes(axis, self.ndim, "squeeze")
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def unsqueeze(self, axis=None, *, dim=None) -> Tensor:
        axis = dim_arg("unsqueeze", axis, dim)
        if axis is None:
            raise TypeError("unsqueeze(): missing the axis (dim) at which to insert a size-1 axis")
        axis = normalize_axis(axis, self.ndim + 1, "unsqueeze")
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def permute(self, *axes, dims=None) -> Tensor:
        axes = _shape_args(axes) if dims is None else tuple(dims)
        if len(axes) != self.ndim:
            raise ValueError(f"permute: {axes} has {len(axes)} axes, the tensor {self.shape} has {self.ndim}")
        axes = tuple(normalize_axis(a, self.ndim, "permute") for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes of {self.shape}")
        return apply(S.Permute, self, axes=axes)

    def transpose(self, axis0: int = -2, axis1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's meaning); ``.T`` reverses all of them."""
        if self.ndim == 0:
            normalize_axis(axis0, 0, "transpose"), normalize_axis(axis1, 0, "transpose")
            return self
        a0, a1 = normalize_axis(axis0, self.ndim, "transpose"), normalize_axis(axis1, self.ndim, "transpose")
        axes = list(range(self.ndim))
        axes[a0], axes[a1] = axes[a1], axes[a0]
        return apply(S.Permute, self, axes=tuple(axes))

    swapaxes = transpose
    swapdims = transpose

    @property
    def T(self) -> Tensor:
        return apply(S.Permute, self, axes=tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    def expand(self, *shape) -> Tensor:
        shape = _shape_args(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: cannot expand {self.shape} to fewer dimensions {shape}")
        full = tuple(self.shape[i - lead] if (n == -1 and i >= lead) else n for i, n in enumerate(shape))
        return apply(S.Expand, self, shape=full)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(*other.shape)

    def broadcast_to(self, shape) -> Tensor:
        return self.expand(*shape)

    def contiguous(self) -> Tensor:
        """This tensor if its memory is C-contiguous, else a contiguous copy (in the graph)."""
        flags = getattr(self.data, "flags", None)
        if flags is None or flags.c_contiguous:
            return self
        return apply(S.Copy, self)

    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    def __getitem__(self, index) -> Tensor:
        """NumPy-style indexing read as PyTorch reads it (see ``ember/indexing.py`` for the two differences)."""
        idx, then = _index_arrays(index, self)
        out = apply(S.GetItem, self, index=idx)
        return out if then is None else apply(S.GetItem, out, index=then)

    def __setitem__(self, index, value) -> None:
        """``x[index] = value`` in place. Recorded in the graph when ``x`` or ``value`` needs a gradient:
        the written elements then take their gradient from ``value``, the others keep ``x``'s."""
        idx, then = _index_arrays(index, self)
        if isinstance(value, Tensor) and _records_inplace(self, (value,)):
            value = _cast_operand(value, self, "setitem")
            self._inplace_recorded(S.SetItem, (value,), dict(index=idx, then=then), "setitem")
            return
        if _records_inplace(self, ()):
            self._inplace_recorded(S.SetItem, (), dict(index=idx, then=then, value=_constant(value, self)), "setitem")
            return
        _indexing.assign(self.data, idx, then, value.data if isinstance(value, Tensor) else value)
        self._bump_version()

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def split(self, split_size_or_sections, axis=None, *, dim=None) -> tuple[Tensor, ...]:
        """Split along ``axis`` (0 by default) into pieces of one size (the last may be smaller) or of given sizes."""
        axis = normalize_axis(dim_arg("split", axis, dim, 0), self.ndim, "split")
        n = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError(f"split: size must be positive, got {split_size_or_sections}")
            sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} do not add up to {n} along axis {axis}")
        lead = (slice(None),) * (axis % self.ndim)
        out, start = [], 0
        for size in sizes:
            out.append(self[lead + (slice(start, start + size),)])
            start += size
        return tuple(out)

    def chunk(self, chunks: int, axis=None, *, dim=None) -> tuple[Tensor, ...]:
        """At most ``chunks`` pieces of equal size (the last may be smaller), PyTorch's rule for how many."""
        return _FI.chunk(self, chunks, axis, dim=dim)

    # -- in-place ops (PyTorch's trailing underscore) -----------------------------------
    # Each writes into this tensor's memory and bumps its version counter. Outside a recorded
    # graph they are single NumPy passes. When a gradient is recorded, the out-of-place op runs
    # on a snapshot of the old value and the result is written back, with this tensor's node
    # rebased onto the new op (earlier consumers keep the old node): PyTorch's semantics.

    def _inplace_recorded(self, cls, others: tuple, attrs: dict, name: str) -> Tensor:
        if self._node is None and self.requires_grad:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad cannot be used in an in-place operation while "
                "gradients are recorded; update it under `with ember.no_grad():` (as optimizers do) or work on "
                "a .clone()"
            )
        if self._vbox is not None and self._vbox[1]:
            raise RuntimeError(
                f"{name}: this tensor shares its memory with a view or a detached alias (from slicing, reshape, "
                "transpose, detach, ...); an in-place change recorded in the graph would not reach the other "
                "tensor's gradient. Use the out-of-place form (e.g. x = x + y, ember.where) or a .clone()"
            )
        saves = cls.saves
        keeps_self = saves is None or 0 in saves or "inputs" in saves
        old = _wrap(self.data.copy() if keeps_self else self.data, self._node)
        old._requires_grad = self._requires_grad
        result = apply(cls, old, *others, **attrs)
        self._write(result.data, name)
        self._node = result._node
        self._requires_grad = result._requires_grad
        return self

    def _write(self, values, name: str) -> None:
        """Copy ``values`` into this tensor's memory (same shape, a castable dtype) and bump the version."""
        if values.shape != self.data.shape:
            raise ValueError(f"{name}: the result has shape {values.shape}, but an in-place op cannot change "
                             f"the shape of the tensor {self.shape}")
        _check_inplace_dtype(values.dtype, self.data.dtype, name)
        if values is not self.data:
            self.data[...] = values
        self._bump_version()

    def _inplace_binary(self, other, name, op, scalar_op, raw):
        """self ⊙= other, for a tensor, array or number ``other``."""
        if not isinstance(other, Tensor) and not _is_scalar(other):
            other = Tensor(as_array(other), device=self.device)
        if isinstance(other, Tensor):
            if _records_inplace(self, (other,)):
                return self._inplace_recorded(op, (_cast_operand(other, self, name),), {}, name)
            _check_inplace_dtype(other.dtype, self.dtype, name)
            raw(self.data, other.data, out=self.data, casting="same_kind")
        else:
            c = _scalar(other)
            if _records_inplace(self, ()):
                return self._inplace_recorded(scalar_op, (), dict(c=c), name)
            if isinstance(c, float):
                _check_inplace_dtype(np.dtype(np.float64), self.dtype, name)
            raw(self.data, c, out=self.data, casting="same_kind")
        self._bump_version()
        return self

    def add_(self, other, alpha=1) -> Tensor:
        """self += alpha * other, in place."""
        if alpha != 1:
            other = other * alpha
        return self._inplace_binary(other, "add_", E.Add, E.AddScalar, _xp_of(self.data).add)

    def sub_(self, other, alpha=1) -> Tensor:
        """self -= alpha * other, in place."""
        if alpha != 1:
            other = other * alpha
        if _is_scalar(other):
            return self._inplace_binary(-_scalar(other), "sub_", None, E.AddScalar, _xp_of(self.data).add)
        return self._inplace_binary(other, "sub_", E.Sub, None, _xp_of(self.data).subtract)

    def mul_(self, other) -> Tensor:
        return self._inplace_binary(other, "mul_", E.Mul, E.MulScalar, _xp_of(self.data).multiply)

    def div_(self, other) -> Tensor:
        if self.data.dtype.kind not in _float_kinds:
            raise TypeError(f"div_: true division of a {self.dtype} tensor cannot be stored in place; "
                            "use out-of-place division or convert with .float()")
        return self._inplace_binary(other, "div_", E.Div, E.DivScalar, _xp_of(self.data).divide)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
        """Clamp into [min, max] in place; the bounds are numbers or tensors (broadcast to this shape)."""
        if min is None and max is None:
            raise ValueError("clamp_: give min, max or both")
        bounds = tuple(b for b in (min, max) if isinstance(b, Tensor))
        if bounds:
            if _records_inplace(self, bounds):
                bounds = tuple(_cast_operand(b, self, "clamp_") for b in bounds)
                attrs = dict(has_min=min is not None, has_max=max is not None)
                return self._inplace_recorded(_P.ClampTensor, bounds, attrs, "clamp_")
            self._write(_FP.clamp(self.detach(), min, max).data, "clamp_")
            return self
        lo = None if min is None else _scalar(min)
        hi = None if max is None else _scalar(max)
        if _records_inplace(self, ()):
            return self._inplace_recorded(E.Clip, (), dict(lo=lo, hi=hi), "clamp_")
        _xp_of(self.data).clip(self.data, lo, hi, out=self.data)
        self._bump_version()
        return self

    def _scatter_inplace(self, name, *args, **kwargs) -> Tensor:
        cls, others, attrs = _FI.inplace_args(name, self, *args, **kwargs)
        if _records_inplace(self, others):
            return self._inplace_recorded(cls, others, attrs, name + "_")
        self._write(apply(cls, self.detach(), *others, **attrs).data, name + "_")
        return self

    def scatter_(self, *args, **kwargs) -> Tensor:
        """In-place ``scatter`` (see ember.scatter)."""
        return self._scatter_inplace("scatter", *args, **kwargs)

    def scatter_add_(self, *args, **kwargs) -> Tensor:
        return self._scatter_inplace("scatter_add", *args, **kwargs)

    def scatter_reduce_(self, *args, **kwargs) -> Tensor:
        return self._scatter_inplace("scatter_reduce", *args, **kwargs)

    def index_add_(self, *args, **kwargs) -> Tensor:
        return self._scatter_inplace("index_add", *args, **kwargs)

    clip_ = clamp_

    def fill_(self, value) -> Tensor:
        """Set every element to ``value`` (a number, or a one-element tensor) in place."""
        if isinstance(value, Tensor):
            if value.data.size != 1:
                raise ValueError(f"fill_: the value must be a number or a one-element tensor, got shape {value.shape}")
            return self.copy_(value.reshape(()))
        if _records_inplace(self, ()):
            return self._inplace_recorded(S.Fill, (), dict(value=_scalar(value)), "fill_")
        if isinstance(_scalar(value), float):
            _check_inplace_dtype(np.dtype(np.float64), self.dtype, "fill_")
        self.data[...] = value
        self._bump_version()
        return self

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def copy_(self, src) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor, in place."""
        src = src if isinstance(src, Tensor) else Tensor(as_array(src), device=self.device)
        if _records_inplace(self, (src,)):
            return self._inplace_recorded(S.CopyInto, (src,), {}, "copy_")
        self.data[...] = backend.to_device(src.data, self.device)
        self._bump_version()
        return self

    def masked_fill(self, mask, value) -> Tensor:
        """A copy with ``value`` where the boolean ``mask`` (broadcastable to this shape) is true; ``value`` may
        be a number or a 0-d tensor (which then gets the gradient of the filled elements)."""
        m = _bool_mask(mask, self, "masked_fill")
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise ValueError(f"masked_fill: the value must be a number or a 0-d tensor, got shape {value.shape}")
            return apply(E.Where, *_promote(value.expand(*self.shape), self, E.Where), cond=m)
        return apply(E.MaskedFill, self, mask=m, value=_scalar(value))

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two axes (from ``diagonal`` down), zeros above."""
        return self._triangle(diagonal, False, "tril")

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two axes (from ``diagonal`` up), zeros below."""
        return self._triangle(diagonal, True, "triu")

    def _triangle(self, diagonal, upper, name):
        if self.ndim < 2:
            raise ValueError(f"{name}: needs at least 2 dimensions, got a tensor of shape {self.shape}")
        return apply(E.Triangle, self, k=int(diagonal), upper=upper)

    def masked_fill_(self, mask, value) -> Tensor:
        """Set the elements where ``mask`` (broadcastable, boolean) is true to ``value``, in place."""
        m = _bool_mask(mask, self, "masked_fill_")
        if _records_inplace(self, ()):
            return self._inplace_recorded(E.MaskedFill, (), dict(mask=m, value=_scalar(value)), "masked_fill_")
        _xp_of(self.data).copyto(self.data, _scalar(value), where=m, casting="unsafe")
        self._bump_version()
        return self

    # -- elementwise functions ----------------------------------------------------------
    def exp(self):
        return apply(E.Exp, self)

    def log(self):
        return apply(E.Log, self)

    def sqrt(self):
        return apply(E.Sqrt, self)

    def abs(self):
        return apply(E.Abs, self)

    def sin(self):
        return apply(E.Sin, self)

    def cos(self):
        return apply(E.Cos, self)

    def tanh(self):
        return apply(E.Tanh, self)

    def sigmoid(self):
        return apply(E.Sigmoid, self)

    def relu(self):
        return apply(E.ReLU, self)

    def gelu(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        return apply(E.GELU, self, approximate=approximate)

    def silu(self):
        return apply(E.SiLU, self)

    def clamp(self, min=None, max=None) -> Tensor:  # noqa: A002 - NumPy/PyTorch names
        """Limit to [min, max]; the bounds are numbers or (differentiable) tensors. See ember.clamp."""
        return _FP.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        """Elementwise maximum; ties share the gradient evenly (PyTorch's rule), a number operand included."""
        return apply(E.Maximum, *_operands_with_scalar(self, other))

    def minimum(self, other):
        return apply(E.Minimum, *_operands_with_scalar(self, other))

    def softmax(self, axis=None, *, dim=None, dtype=None) -> Tensor:
        """e^x / sum(e^x) along ``axis`` (the last by default); ``dtype`` casts first, as in PyTorch."""
        x, ax = self._softmax_args("softmax", axis, dim, dtype)
        return apply(N.Softmax, x, axis=ax)

    def log_softmax(self, axis=None, *, dim=None, dtype=None) -> Tensor:
        x, ax = self._softmax_args("log_softmax", axis, dim, dtype)
        return apply(N.LogSoftmax, x, axis=ax)

    def _softmax_args(self, name, axis, dim, dtype):
        x = self if dtype is None else self.to(dtype=dtype)
        axis = dim_arg(name, axis, dim, -1)
        return x, normalize_axis(axis, x.ndim, name) if x.ndim else None

    # -- methods over ember.functions (one implementation: x.f(...) is ember.f(x, ...)) --------
    rsqrt = _delegate("pointwise", "rsqrt")
    reciprocal = _delegate("pointwise", "reciprocal")
    square = _delegate("pointwise", "square")
    erf = _delegate("pointwise", "erf")
    log2 = _delegate("pointwise", "log2")
    log10 = _delegate("pointwise", "log10")
    log1p = _delegate("pointwise", "log1p")
    exp2 = _delegate("pointwise", "exp2")
    expm1 = _delegate("pointwise", "expm1")
    tan = _delegate("pointwise", "tan")
    sinh = _delegate("pointwise", "sinh")
    cosh = _delegate("pointwise", "cosh")
    asinh = _delegate("pointwise", "asinh")
    acosh = _delegate("pointwise", "acosh")
    atanh = _delegate("pointwise", "atanh")
    asin = _delegate("pointwise", "asin")
    acos = _delegate("pointwise", "acos")
    atan = _delegate("pointwise", "atan")
    arcsinh, arccosh, arctanh, arcsin, arccos, arctan = asinh, acosh, atanh, asin, acos, atan
    sign = _delegate("pointwise", "sign")
    floor = _delegate("pointwise", "floor")
    ceil = _delegate("pointwise", "ceil")
    trunc = _delegate("pointwise", "trunc")
    fix = trunc
    round = _delegate("pointwise", "round")
    atan2 = _delegate("pointwise", "atan2")
    arctan2 = atan2
    hypot = _delegate("pointwise", "hypot")
    remainder = _delegate("pointwise", "remainder")
    fmod = _delegate("pointwise", "fmod")
    floor_divide = _delegate("pointwise", "floor_divide")
    lerp = _delegate("pointwise", "lerp")
    isnan = _delegate("pointwise", "isnan")
    isinf = _delegate("pointwise", "isinf")
    isfinite = _delegate("pointwise", "isfinite")
    logical_and = _delegate("pointwise", "logical_and")
    logical_or = _delegate("pointwise", "logical_or")
    logical_xor = _delegate("pointwise", "logical_xor")
    logical_not = _delegate("pointwise", "logical_not")
    bitwise_and = _delegate("pointwise", "bitwise_and")
    bitwise_or = _delegate("pointwise", "bitwise_or")
    bitwise_xor = _delegate("pointwise", "bitwise_xor")
    bitwise_not = _delegate("pointwise", "bitwise_not")
    bitwise_left_shift = _delegate("pointwise", "bitwise_left_shift")
    bitwise_right_shift = _delegate("pointwise", "bitwise_right_shift")
    cumsum = _delegate("pointwise", "cumsum")
    cumprod = _delegate("pointwise", "cumprod")
    prod = _delegate("pointwise", "prod")
    gather = _delegate("indexing", "gather")
    scatter = _delegate("indexing", "scatter")
    scatter_add = _delegate("indexing", "scatter_add")
    scatter_reduce = _delegate("indexing", "scatter_reduce")
    index_select = _delegate("indexing", "index_select")
    index_add = _delegate("indexing", "index_add")
    take_along_dim = _delegate("indexing", "take_along_dim")
    masked_select = _delegate("indexing", "masked_select")
    roll = _delegate("indexing", "roll")
    repeat = _delegate("indexing", "repeat")
    repeat_interleave = _delegate("indexing", "repeat_interleave")
    unflatten = _delegate("indexing", "unflatten")
    narrow = _delegate("indexing", "narrow")
    sort = _delegate("indexing", "sort")
    argsort = _delegate("indexing", "argsort")
    topk = _delegate("indexing", "topk")

    def flip(self, *dims) -> Tensor:
        """Reverse the order along ``dims`` (PyTorch's method takes them as arguments or one tuple)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _FI.flip(self, dims)

    def matmul(self, other):
        return self @ other

    # -- PyTorch's method spellings of the operators --------------------------------------
    def add(self, other, alpha=1) -> Tensor:
        """self + alpha * other."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1) -> Tensor:
        """self - alpha * other."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other) -> Tensor:
        return self * other

    def div(self, other, rounding_mode: str | None = None) -> Tensor:
        """True division; ``rounding_mode`` 'trunc' or 'floor' rounds the quotient (no gradient)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        q = self / other
        return q.trunc() if rounding_mode == "trunc" else q.floor()

    def pow(self, exponent) -> Tensor:
        return self**exponent

    def neg(self) -> Tensor:
        return -self

    true_divide = div
    multiply = mul
    subtract = sub
    negative = neg


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
               "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
               "bool": "BoolTensor"}


class MaxMin(NamedTuple):
    """What ``max(dim)``/``min(dim)`` return, as PyTorch's ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


class _ToDevice(_autograd.Function):
    """Copy between devices; the gradient is copied back."""

    saves = ()

    def forward(ctx, a, device):
        ctx.source = backend.device_of(a)
        return backend.to_device(a, device)

    def backward(ctx, g):
        return backend.to_device(g, ctx.source)


def _arg_reduce(data, name, axis, keepdims):
    if data.ndim == 0:  # PyTorch: the only element is at index 0
        return data.reshape(1).__getattribute__(name)().reshape(()) * 0
    if axis is None:
        out = getattr(data.reshape(-1), name)()
        return out.reshape((1,) * data.ndim) if keepdims else out
    return getattr(data, name)(axis=axis, keepdims=keepdims)


def _shape_args(shape) -> tuple:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


def _index_arrays(index, like: Tensor):
    """The index as (first step, second step or None) of arrays on the indexed tensor's device."""
    xp = _xp_of(like.data)
    parts = index if isinstance(index, tuple) else (index,)
    parts = tuple(_indexing.index_part(p.data if isinstance(p, Tensor) else p, xp) for p in parts)
    return _indexing.split_index(parts, like.ndim)


def _records_inplace(t: Tensor, others) -> bool:
    """Does an in-place op on ``t`` with tensor operands ``others`` go into the graph?"""
    if not _autograd._grad_mode.enabled:
        return False
    return t.requires_grad or any(o.requires_grad for o in others)


def _check_inplace_dtype(src, dst, name: str) -> None:
    """In-place results keep the tensor's dtype: refuse what would need a cast across kinds (float into int)."""
    if not np.can_cast(src, dst, casting="same_kind"):
        raise TypeError(f"{name}: a result of type {src} cannot be stored in place in a {dst} tensor")


def _cast_operand(other: Tensor, like: Tensor, name: str) -> Tensor:
    """An in-place op's operand, cast (differentiably) to the dtype of the tensor written into."""
    _check_inplace_dtype(other.dtype, like.dtype, name)
    return other if other.dtype == like.dtype else other.to(dtype=like.dtype)


def _constant(value, like: Tensor):
    """A value written into ``like`` that is not differentiated: a Python number or an array on its device."""
    if isinstance(value, Tensor):
        return backend.to_device(value.data, like.device)
    if _is_scalar(value):
        return _scalar(value)
    return backend.to_device(as_array(value, dtype=like.dtype), like.device)


def _bool_mask(mask, like: Tensor, name: str):
    """A boolean mask array on ``like``'s device that broadcasts to its shape (without enlarging it)."""
    m = mask.data if isinstance(mask, Tensor) else _xp_of(like.data).asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{name}: the mask must be boolean, got {m.dtype}")
    try:
        fits = np.broadcast_shapes(m.shape, like.shape) == like.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: mask of shape {m.shape} does not broadcast to the shape {like.shape}")
    return m


def scalar_result_dtype(dtype, value) -> np.dtype:
    """The dtype of an op between a tensor of ``dtype`` and a Python number (PyTorch's promotion): a float
    tensor keeps its dtype; an integer tensor meeting a float becomes the default float; a bool tensor
    meeting an int becomes int64."""
    dtype = np.dtype(dtype)
    value = _scalar(value) if not isinstance(value, bool) else value
    if dtype.kind in _float_kinds:
        return dtype
    if isinstance(value, float):
        return backend.get_default_dtype()
    if dtype == np.bool_ and not isinstance(value, bool):
        return backend.int64
    return dtype


def _operands_with_scalar(a, b):
    """Two operands of a binary op, either possibly a Python number (or array-like): two tensors of one
    dtype, a number becoming a 0-d tensor of PyTorch's result dtype (no float64 from a Python float)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return _promote(a, b, E.Where)
    if isinstance(b, Tensor):
        b, a = _operands_with_scalar(b, a)
        return a, b
    if not isinstance(a, Tensor):
        raise TypeError(f"expected a tensor operand, got {type(a).__name__} and {type(b).__name__}")
    if not _is_scalar(b):
        return _promote(a, Tensor(as_array(b), device=a.device), E.Where)
    dt = scalar_result_dtype(a.dtype, b)
    if a.dtype != dt:
        a = a.to(dtype=dt)
    return a, Tensor(_xp_of(a.data).asarray(_scalar(b), dtype=dt))


def _tensor_like(value, like: Tensor) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(as_array(value), device=like.device)


def _promote(a: Tensor, b: Tensor, op):
    """Reconcile dtypes of two operands: a non-float meets a float as that float dtype;
    two different float dtypes are an error (no silent float64 upcast)."""
    da, db = a.data.dtype, b.data.dtype
    if da is db or da == db:
        return a, b
    fa, fb = da.kind in _float_kinds, db.kind in _float_kinds
    if fa and not fb:
        return a, _wrap(b.data.astype(da), None)
    if fb and not fa:
        return _wrap(a.data.astype(db), None), b
    if fa and fb:
        raise TypeError(
            f"ember.{op.__name__.lower()}: dtype mismatch {da} vs {db} (shapes {a.shape} and {b.shape}); "
            "cast one explicitly with .to(dtype) - ember never upcasts silently"
        )
    return a, b


# The function families import this module (for Tensor and apply), so they are imported last.
from .functions import indexing as _FI  # noqa: E402
from .functions import pointwise as _FP  # noqa: E402
from .ops import pointwise as _P  # noqa: E402

_FAMILIES = {"indexing": _FI, "pointwise": _FP}
