"""Flatten layer."""

from __future__ import annotations

from ..module import Module

__all__ = [
    "Flatten",
]


class Flatten(Module):
    """Merge axes start_axis..end_axis (default: all but the batch axis)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1):
        super().__init__()
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x):
        return x.flatten(self.start_axis, self.end_axis)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"
