"""Activation layers (stateless wrappers over the functional ops)."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = [
    "ReLU",
    "Tanh",
    "Sigmoid",
    "SiLU",
    "GELU",
    "Softmax",
    "ACTIVATIONS",
    "activation",
]


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class GELU(Module):
    """GELU, exact (erf) by default or with ``approximate='tanh'`` (GPT-2's form)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate='{self.approximate}'" if self.approximate != "none" else ""


class Softmax(Module):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "gelu": GELU, "silu": SiLU}


def activation(name: str) -> Module:
    """Build an activation layer by name (for configs): relu, tanh, sigmoid, gelu, silu."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None
