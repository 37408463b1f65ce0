"""Gathering, scattering and rearranging elements: gather, scatter, index_select, flip, roll, repeat, ..."""

from __future__ import annotations

__all__: list[str] = []
