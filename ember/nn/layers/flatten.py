"""Flatten and Unflatten layers."""

from __future__ import annotations

import math
import operator

from ...ops.util import dim_arg
from ..module import Module

__all__ = [
    "Flatten",
    "Unflatten",
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


class Unflatten(Module):
    """Split axis ``axis`` into ``unflattened_size`` (one entry may be -1, inferred): the inverse of Flatten.

    Args:
        axis: the axis to split (negative counts from the end; ``dim=`` is PyTorch's spelling).
        unflattened_size: tuple or list of ints whose product is that axis's size.

    Shape: (*, S, *) -> (*, u1, u2, ..., *) with u1·u2·... = S.
    """

    def __init__(self, axis: int | None = None, unflattened_size=None, *, dim: int | None = None):
        super().__init__()
        axis = dim_arg("Unflatten", axis, dim)
        if axis is None:
            raise TypeError("Unflatten: give the axis to split (Unflatten(1, (2, 3)) or dim=1)")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple or list of ints, got {unflattened_size!r}")
        try:
            sizes = tuple(operator.index(n) for n in unflattened_size)
        except TypeError:
            raise TypeError(f"Unflatten: unflattened_size must contain ints, got {unflattened_size!r}") from None
        if not sizes:
            raise ValueError("Unflatten: unflattened_size must not be empty")
        if sum(n == -1 for n in sizes) > 1 or any(n < -1 for n in sizes):
            raise ValueError(f"Unflatten: unflattened_size {sizes} may hold one -1 (inferred) and otherwise sizes >= 0")
        self.axis, self.unflattened_size = operator.index(axis), sizes

    def forward(self, x):
        if not -x.ndim <= self.axis < x.ndim:
            raise IndexError(f"Unflatten: axis {self.axis} is out of range for an input of shape {x.shape}")
        axis = self.axis % x.ndim
        n = x.shape[axis]
        sizes = self.unflattened_size
        if -1 in sizes:
            known = math.prod(s for s in sizes if s != -1)
            if known == 0:
                raise ValueError(f"Unflatten: cannot infer the -1 in {sizes} for an axis of size {n}")
            sizes = tuple(n // known if s == -1 else s for s in sizes)
        if math.prod(sizes) != n:
            raise ValueError(f"Unflatten: sizes {self.unflattened_size} do not multiply to {n}, the size of axis "
                             f"{self.axis} of the input {x.shape}")
        return x.reshape(x.shape[:axis] + sizes + x.shape[axis + 1:])

    def extra_repr(self) -> str:
        return f"axis={self.axis}, unflattened_size={self.unflattened_size}"
