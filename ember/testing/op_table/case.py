"""The rows' shape (OpCase, LayerCase), their inputs and the fixed constants shared by both frameworks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import ember.nn as nn

_rng = np.random.default_rng(1234)  # fixed constants (targets, indices, masks) shared by both frameworks

TARGETS_4x5 = _rng.integers(0, 5, size=4)
TARGETS_IGNORE = np.array([1, -100, 3, 0])
TARGETS_3D = _rng.integers(0, 4, size=(2, 3))
SOFT_TARGETS = _rng.dirichlet(np.ones(5), size=4)
INDEX_REPEATS = np.array([0, 2, 2, 1, 0])
BOOL_MASK = np.array([[True, False, True, True], [False, True, False, True], [True, True, False, False]])
WHERE_COND = _rng.random((3, 4)) > 0.5
LOSS_MASK = (_rng.random((4, 3)) > 0.4).astype(np.float64)
ROW_MASK = np.array([True, False, True, True])
EMBED_IDS = np.array([[1, 3, 3], [0, 6, 1]])
KNOTS_UNIFORM = np.tile(-2.0 + (np.arange(4 + 2 * 3 + 1) - 3) * 1.0, (3, 1))  # G=4, k=3 on [-2, 2]
KNOTS_GENERAL = np.sort(_rng.uniform(-3.0, 3.0, (3, 10)), axis=1)  # increasing, uneven, per input
BINARY_TARGETS = (_rng.random((4, 3)) > 0.5).astype(np.float64)


@dataclass
class OpCase:
    """One op on float inputs of the given shapes."""

    name: str
    fn: Callable  # (*Tensor) -> Tensor
    torch_fn: Callable | None  # (torch, *torch.Tensor) -> torch.Tensor
    shapes: tuple
    domain: str = "real"  # real | positive | away_from_zero | unit
    atol: float = 1e-6
    rtol: float = 1e-5
    eps: float = 1e-6  # finite-difference step
    reseed: bool = False  # stochastic op: reseed before every call


def make_inputs(case: OpCase, dtype=np.float64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in case.shapes:
        x = rng.standard_normal(shape)
        if case.domain == "positive":
            x = np.abs(x) + 0.5
        elif case.domain == "away_from_zero":
            x = np.sign(x) * (np.abs(x) + 0.1)
        elif case.domain == "unit":
            x = rng.uniform(0.05, 0.95, size=shape)
        out.append(x.astype(dtype))
    return out


def _t(torch, a):
    return torch.from_numpy(np.asarray(a))


def _other_float(dtype):
    return np.float32 if dtype == np.float64 else np.float64


@dataclass
class LayerCase:
    """A layer, its PyTorch twin (with copied parameters) and an input shape."""

    name: str
    build: Callable[[], nn.Module]
    torch_build: Callable | None  # (torch, ember_module) -> torch.nn.Module
    input_shape: tuple
    train: bool = True
    integer_input: int = 0  # >0: inputs are ids below this bound (Embedding)
    extra: dict = field(default_factory=dict)


def copy_params(torch, ember_module, torch_module):
    """Copy parameters and buffers by name into the PyTorch module (dtype float64)."""
    state = {k: torch.from_numpy(np.array(v.numpy(), dtype=np.float64)) for k, v in ember_module.state_dict().items()}
    torch_module.double()
    torch_module.load_state_dict(state, strict=False)
    return torch_module


def _twin(factory):
    return lambda T, m: copy_params(T, m, factory(T))


def _perturbed(module: nn.Module) -> nn.Module:
    """Move default-initialised affine parameters (ones/zeros) and running stats off their trivial values."""
    rng = np.random.default_rng(7)
    for t in list(module.parameters()) + list(module.buffers()):
        t.data[...] = t.data + rng.uniform(0.1, 0.5, size=t.shape).astype(t.dtype)
    return module
