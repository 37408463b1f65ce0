"""Layers, one file per family."""

from .activation import ACTIVATIONS, GELU, ReLU, Sigmoid, SiLU, Softmax, Tanh, activation
from .conv import Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .kan import KANLinear
from .linear import Linear
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pool import AvgPool2d, MaxPool2d

__all__ = [
    "activation", "ACTIVATIONS", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Embedding",
    "Flatten", "GELU", "KANLinear", "LayerNorm", "Linear", "MaxPool2d", "ReLU", "Sigmoid", "SiLU", "Softmax", "Tanh",
]
