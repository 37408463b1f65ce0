"""Loss modules: stateless wrappers over the functional losses (``nn.CrossEntropyLoss``, ...)."""

from __future__ import annotations

__all__: list[str] = []
