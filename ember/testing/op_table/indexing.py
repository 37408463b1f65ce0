"""Op-table rows: gathering, scattering and rearranging elements (gather, scatter, flip, roll, repeat, ...)."""

from __future__ import annotations

from .case import LayerCase, OpCase

OPS: list[OpCase] = []
LAYERS: list[LayerCase] = []
