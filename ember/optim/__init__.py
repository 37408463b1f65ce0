"""Optimizers, gradient clipping and learning-rate schedules."""

from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_
from .lr_scheduler import CosineAnnealingLR, LRScheduler, StepLR, WarmupCosineLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = [
    "SGD", "Adam", "AdamW", "CosineAnnealingLR", "LRScheduler", "Optimizer", "StepLR", "WarmupCosineLR",
    "clip_grad_norm_", "lr_scheduler",
]
