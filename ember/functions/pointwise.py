"""Element-wise math (floor, erf, sinh, ...), comparisons and logical/bitwise ops, scans and products."""

from __future__ import annotations

__all__: list[str] = []
