"""Upsampling layers over ``F.interpolate``."""

from __future__ import annotations

__all__: list[str] = []
