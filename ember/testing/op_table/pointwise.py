"""Op-table rows: math functions applied element by element, scans and products, logical and bitwise ops."""

from __future__ import annotations

from .case import LayerCase, OpCase

OPS: list[OpCase] = []
LAYERS: list[LayerCase] = []
