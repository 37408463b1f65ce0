"""Neural-network building blocks: Module, layers, functional ops, initialisation."""

from . import functional, init
from .layers import (
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    LayerNorm,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
    activation,
)
from .module import Module, ModuleDict, ModuleList, Parameter, RemovableHandle, Sequential

__all__ = [
    "GELU", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Embedding", "Flatten", "LayerNorm",
    "Linear", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "Parameter", "ReLU", "RemovableHandle",
    "Sequential", "SiLU", "Sigmoid", "Softmax", "Tanh", "activation", "functional", "init",
]
