"""Neural-network building blocks: Module, layers, functional ops, initialisation."""

from . import functional, init, layers
from .activation_stats import ActivationStats
from .layers import *  # noqa: F403
from .module import Module, ModuleDict, ModuleList, Parameter, RemovableHandle, Sequential

__all__ = [
    "ActivationStats", "functional", "init", "Module", "ModuleDict", "ModuleList", "Parameter", "RemovableHandle",
    "Sequential", *layers.__all__,
]
