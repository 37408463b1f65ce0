"""Activations: elementwise nonlinearities and (log-)softmax."""

from __future__ import annotations

from ...ops import elementwise as E
from ...ops import nn as N
from ...tensor import Tensor, apply

__all__ = [
    "relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
]


def relu(x: Tensor) -> Tensor:
    return apply(E.ReLU, x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return x.gelu(approximate)


def silu(x: Tensor) -> Tensor:
    return apply(E.SiLU, x)


def sigmoid(x: Tensor) -> Tensor:
    return apply(E.Sigmoid, x)


def tanh(x: Tensor) -> Tensor:
    return apply(E.Tanh, x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return apply(N.Softmax, x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return apply(N.LogSoftmax, x, axis=axis)
