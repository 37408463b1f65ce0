"""Top-level tensor functions (``ember.cat``, ``ember.where``, ...), one module per family.

Each module lists its public names in ``__all__``; ``ember`` re-exports them all.
"""

from . import core as _core
from .core import *  # noqa: F403

_FAMILIES = (_core,)
__all__ = [name for family in _FAMILIES for name in family.__all__]
