"""Model definitions (no training loops) and the name -> (class, config) registry used by checkpoints."""

from __future__ import annotations

import dataclasses

from .gpt import GPT, GPTConfig
from .kan import KAN, KANConfig
from .lenet import LeNet5, LeNet5Config
from .mlp import MLP, MLPConfig

MODELS = {
    "mlp": (MLP, MLPConfig),
    "lenet": (LeNet5, LeNet5Config),
    "kan": (KAN, KANConfig),
    "gpt": (GPT, GPTConfig),
}


def build(name: str, config: dict | None = None):
    """Instantiate a registered model from its name and a config dict (as stored in a checkpoint)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    cls, config_cls = MODELS[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    config = dict(config or {})
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(f"model {name!r}: unknown config keys {unknown}; known: {sorted(fields)}")
    return cls(config_cls(**config))


def model_name(model) -> str:
    for name, (cls, _) in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model; add it to ember.models.MODELS")


__all__ = ["GPT", "GPTConfig", "KAN", "KANConfig", "MLP", "MODELS", "LeNet5", "LeNet5Config", "MLPConfig", "build",
           "model_name"]
