"""Module, Parameter and the containers (Sequential, ModuleList, ModuleDict).

Parameters, buffers and sub-modules are plain instance attributes (so ``self.weight`` is a
dictionary lookup in the hot path); ``__setattr__`` only records their names, in order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor, as_array
from ..threads import maybe_rebalance


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad=True`` by default)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by ``register_*_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: dict, key: int):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


_hook_counter = 0


class Module:
    """Base class of every layer and model.

    Subclasses create ``Parameter``s, sub-modules and buffers in ``__init__`` and compute in
    ``forward``; calling the module runs forward pre-hooks, ``forward``, then forward hooks.
    """

    training: bool

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_param_names", [])
        object.__setattr__(self, "_buffer_names", {})  # name -> persistent
        object.__setattr__(self, "_module_names", [])
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # -- registration -------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_param_names" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        self._forget(name)
        if isinstance(value, Parameter):
            self._param_names.append(name)
        elif isinstance(value, Module):
            self._module_names.append(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        for names in (self._param_names, self._module_names):
            if name in names:
                names.remove(name)
        self._buffer_names.pop(name, None)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or declare an absent one with None, e.g. ``bias=False``)."""
        if param is None:
            self._forget(name)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A non-trainable tensor saved with the state (running statistics, masks)."""
        self._forget(name)
        object.__setattr__(self, name, tensor)
        self._buffer_names[name] = persistent

    def add_module(self, name: str, module: Module | None) -> None:
        setattr(self, name, module)

    # -- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name in self._module_names:
            yield name, getattr(self, name)

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "", memo: set | None = None) -> Iterator[tuple[str, Module]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs; a parameter shared by two modules is listed once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name in module._param_names:
                p = getattr(module, name)
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name in module._buffer_names:
                b = getattr(module, name)
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- modes and housekeeping ---------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, mode: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(mode)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, dtype=None, device=None) -> Module:
        """Move and/or cast parameters and floating buffers in place (keeps the same Parameter objects)."""
        for arg in args:
            if isinstance(arg, backend.Device) or (isinstance(arg, str) and backend.is_device_name(arg)):
                device = arg
            else:
                dtype = arg
        dev = None if device is None else backend.device(device)
        dt = backend.resolve_dtype(dtype)
        if dt is not None and dt.kind not in "fc":
            raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes, got {dt}; integer or bool "
                            "parameters cannot require gradients (as PyTorch's nn.Module.to)")
        for t in list(self.parameters()) + list(self.buffers()):
            data = t.data
            if dt is not None and data.dtype.kind == "f":
                data = data.astype(dt)
            if dev is not None:
                data = backend.to_device(data, dev)
            t.data = data
            if t.grad is not None:
                t.grad = None
        return self

    def float(self) -> Module:
        return self.to(dtype=backend.float32)

    def double(self) -> Module:
        return self.to(dtype=backend.float64)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name (sharing data with the module)."""
        state: OrderedDict[str, Tensor] = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = p.detach()
        for mod_prefix, module in self.named_modules():
            for name, persistent in module._buffer_names.items():
                b = getattr(module, name)
                if persistent and b is not None:
                    state[f"{mod_prefix}.{name}" if mod_prefix else name] = b.detach()
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy ``state`` (name -> Tensor or array) into this module.

        Every key and shape is checked before anything is written, so a failed load leaves
        the module untouched. With ``strict`` (the default) missing or unexpected keys are
        errors; otherwise they are returned as (missing, unexpected).
        """
        own = self.state_dict()
        targets = {}
        for name, t in self.named_parameters():
            targets[name] = t
        for mod_prefix, module in self.named_modules():
            for name in module._buffer_names:
                b = getattr(module, name)
                if b is not None:
                    targets[f"{mod_prefix}.{name}" if mod_prefix else name] = b
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        arrays = {}
        for name, value in state.items():
            if name not in own:
                continue
            arr = as_array(value)
            expected = own[name].shape
            if tuple(arr.shape) != tuple(expected):
                problems.append(f"{name}: shape {tuple(arr.shape)} in the state, {tuple(expected)} in the model")
                continue
            if not np.can_cast(arr.dtype, own[name].dtype, casting="same_kind"):
                problems.append(f"{name}: dtype {arr.dtype} cannot become {own[name].dtype}")
                continue
            arrays[name] = arr
        if problems:
            raise RuntimeError(
                f"load_state_dict into {type(self).__name__} failed (the model is unchanged): " + "; ".join(problems)
            )
        with no_grad():
            for name, arr in arrays.items():
                target = targets[name]
                target.data[...] = backend.to_device(arr, target.device).astype(target.dtype, copy=False)
                target._bump_version()
        for module in self.modules():
            module._after_state_loaded()
        return missing, unexpected

    def _after_state_loaded(self) -> None:
        """Hook for modules that derive state from their buffers (a KAN layer's grid kind)."""

    # -- hooks and calling ----------------------------------------------------------------
    def register_forward_hook(self, hook) -> RemovableHandle:
        """``hook(module, inputs, output)`` runs after forward; a non-None return replaces the output."""
        return self._add_hook(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, inputs)`` runs before forward; a non-None return replaces the inputs."""
        return self._add_hook(self._forward_pre_hooks, hook)

    @staticmethod
    def _add_hook(hooks: dict, hook) -> RemovableHandle:
        global _hook_counter
        _hook_counter += 1
        hooks[_hook_counter] = hook
        return RemovableHandle(hooks, _hook_counter)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        maybe_rebalance()  # BLAS threads follow the free cores (ember/threads.py); a clock read otherwise
        if not (self._forward_hooks or self._forward_pre_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): " + _indent(repr(m)) for name, m in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        return head + "\n  " + "\n  ".join(children) + "\n)"


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


class Sequential(Module):
    """Apply modules in order: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                setattr(self, name, m)
        else:
            for i, m in enumerate(modules):
                setattr(self, str(i), m)

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self.children())
        if isinstance(i, slice):
            return Sequential(*mods[i])
        return mods[i]

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self):
        return iter(list(self.children()))

    def append(self, module: Module) -> Sequential:
        setattr(self, str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters the parent module sees."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        mods = list(self.children())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self) -> int:
        return len(self._module_names)

    def __iter__(self):
        return iter(list(self.children()))

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleList is a container; iterate over it in the parent's forward()")


class ModuleDict(Module):
    """A dict of modules whose parameters the parent module sees."""

    def __init__(self, modules: dict | None = None):
        super().__init__()
        for name, m in (modules or {}).items():
            setattr(self, name, m)

    def __getitem__(self, name: str) -> Module:
        if name not in self._module_names:
            raise KeyError(name)
        return getattr(self, name)

    def __setitem__(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    def __contains__(self, name: str) -> bool:
        return name in self._module_names

    def __len__(self) -> int:
        return len(self._module_names)

    def keys(self):
        return list(self._module_names)

    def items(self):
        return list(self.named_children())

    def values(self):
        return list(self.children())

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleDict is a container; index it in the parent's forward()")
