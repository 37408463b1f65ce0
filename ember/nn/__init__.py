"""Neural-network building blocks: Module, layers, functional ops, initialisation."""

from . import functional, init
from .activation_stats import ActivationStats
from .layers import (
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Embedding,
    Flatten,
    KANLinear,
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
    "activation", "ActivationStats", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Embedding",
    "Flatten", "functional", "GELU", "init", "KANLinear", "LayerNorm", "Linear", "MaxPool2d", "Module", "ModuleDict",
    "ModuleList", "Parameter", "ReLU", "RemovableHandle", "Sequential", "Sigmoid", "SiLU", "Softmax", "Tanh",
]
