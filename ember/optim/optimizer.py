"""Optimizer base class: parameter groups, per-parameter state, zero_grad, state_dict."""

from __future__ import annotations

import copy
import math

import numpy as np

from .. import backend
from ..tensor import Tensor


class Optimizer:
    """Holds parameter groups (dicts with 'params' and hyperparameters) and per-parameter state.

    ``step()`` updates ``p.data`` in place, outside the graph. State arrays live on the
    parameter's device; ``state_dict()``/``load_state_dict()`` round-trip them (for resume).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict] = []
        for g in groups:
            self.add_param_group(g)
        self.state: dict[int, dict] = {}  # id(param) -> state

    def add_param_group(self, group: dict) -> None:
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: a parameter of shape {p.shape} does not require grad")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter of shape {p.shape} appears in two groups")
            seen.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self._check_hyperparameters(full)
        self.param_groups.append(full)

    def _check_hyperparameters(self, group: dict) -> None:
        for key, value in group.items():  # a NaN or infinite setting would silently train a model of NaNs
            numbers = value if isinstance(value, tuple) else (value,)
            if key != "params" and any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                raise ValueError(f"{type(self).__name__}: {key} must be finite, got {value}")
        if group.get("lr", 0.0) < 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0.0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self) -> None:
        raise NotImplementedError

    def _params_with_grad(self, group):
        """(parameter, its gradient array, its state) for each parameter the step will update in place."""
        for p in group["params"]:
            if p.grad is not None:
                p._bump_version()  # a graph that saved p before this step must not use the new values
                yield p, p.grad.data, self.state.setdefault(id(p), {})

    # -- persistence --------------------------------------------------------------------
    persistent_state: tuple[str, ...] = ()  # state keys saved by state_dict (scratch buffers are not)

    def state_dict(self) -> dict:
        """{'state': {index: {key: ndarray or number}}, 'param_groups': [hyperparameters + param indices]}."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for pid, st in self.state.items():
            if pid in index:
                state[index[pid]] = {
                    k: (backend.to_device(v, backend.CPU).copy() if hasattr(v, "shape") else v)
                    for k, v in st.items()
                    if k in self.persistent_state
                }
        return {"state": state, "param_groups": copy.deepcopy(groups)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state; checked in full before anything changes."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: {len(groups)} parameter groups saved, the optimizer has {len(self.param_groups)}"
            )
        params = []
        for saved, group in zip(groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"load_state_dict: a group has {len(saved['params'])} parameters saved, {len(group['params'])} here"
                )
            params.extend(group["params"])
        new_state = {}
        for key, st in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"load_state_dict: state for parameter {i}, but there are {len(params)}")
            p = params[i]
            restored = {}
            for k, v in st.items():
                if hasattr(v, "shape") and np.ndim(v) > 0:
                    if tuple(v.shape) != tuple(p.shape):
                        raise ValueError(f"load_state_dict: state '{k}' of parameter {i} has shape {v.shape}, "
                                         f"the parameter {p.shape}")
                    v = backend.to_device(np.asarray(v, dtype=p.dtype), p.device).copy()
                restored[k] = v
            new_state[id(p)] = restored
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} tensors, {hyper}")
        return "\n".join(lines) + "\n)"
