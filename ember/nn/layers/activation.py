"""Activation layers (stateless wrappers over the functional ops), and ``activation(name)`` for configs.

Constructor arguments follow ``torch.nn``; ``inplace=True`` writes the result into the input
(see ``ember.nn.functional.activation``).
"""

from __future__ import annotations

from ...ops.util import dim_arg
from .. import functional as F
from ..module import Module

__all__ = [
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Hardtanh",
    "Hardswish",
    "Hardsigmoid",
    "Softplus",
    "Softsign",
    "Tanh",
    "Sigmoid",
    "LogSigmoid",
    "Softmax",
    "Softmin",
    "LogSoftmax",
    "ACTIVATIONS",
    "activation",
]


class _Inplace(Module):
    """An activation with PyTorch's ``inplace`` flag."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    def forward(self, x):
        return F.relu(x, self.inplace)


class ReLU6(_Inplace):
    """min(max(x, 0), 6)."""

    def forward(self, x):
        return F.relu6(x, self.inplace)


class SELU(_Inplace):
    """Scaled ELU with the fixed self-normalising constants."""

    def forward(self, x):
        return F.selu(x, self.inplace)


class SiLU(_Inplace):
    def forward(self, x):
        return F.silu(x, self.inplace)


class Mish(_Inplace):
    """x·tanh(softplus(x))."""

    def forward(self, x):
        return F.mish(x, self.inplace)


class Hardswish(_Inplace):
    """x·relu6(x + 3)/6."""

    def forward(self, x):
        return F.hardswish(x, self.inplace)


class Hardsigmoid(_Inplace):
    """relu6(x + 3)/6."""

    def forward(self, x):
        return F.hardsigmoid(x, self.inplace)


class LeakyReLU(_Inplace):
    """x for x > 0, negative_slope·x otherwise.

    Args:
        negative_slope: the slope for negative inputs (default 0.01).
        inplace: write the result into the input.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__(inplace)
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(_Inplace):
    """x for x > 0, alpha·(e^x - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(_Inplace):
    """max(0, x) + min(0, alpha·(e^(x/alpha) - 1))."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        self.alpha = alpha

    def forward(self, x):
        return F.celu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(_Inplace):
    """clamp(x, min_val, max_val)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__(inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """log(1 + e^(beta·x))/beta, linear where beta·x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, x):
        return F.softsign(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class LogSigmoid(Module):
    """log(sigmoid(x))."""

    def forward(self, x):
        return F.logsigmoid(x)


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


class _AlongAxis(Module):
    """A normalisation along one axis (``axis``, or PyTorch's ``dim=``; default the last)."""

    def __init__(self, axis: int | None = None, *, dim: int | None = None):
        super().__init__()
        self.axis = dim_arg(type(self).__name__, axis, dim, -1)

    @property
    def dim(self) -> int:
        """PyTorch's name for ``axis``."""
        return self.axis

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Softmax(_AlongAxis):
    def forward(self, x):
        return F.softmax(x, self.axis)


class Softmin(_AlongAxis):
    def forward(self, x):
        return F.softmin(x, self.axis)


class LogSoftmax(_AlongAxis):
    def forward(self, x):
        return F.log_softmax(x, self.axis)


ACTIVATIONS = {
    "relu": ReLU,
    "relu6": ReLU6,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "selu": SELU,
    "celu": CELU,
    "gelu": GELU,
    "silu": SiLU,
    "mish": Mish,
    "hardtanh": Hardtanh,
    "hardswish": Hardswish,
    "hardsigmoid": Hardsigmoid,
    "softplus": Softplus,
    "softsign": Softsign,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "logsigmoid": LogSigmoid,
}


def activation(name: str) -> Module:
    """Build an activation layer by name with its default arguments (for configs), e.g. ``'relu'``, ``'mish'``."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None
