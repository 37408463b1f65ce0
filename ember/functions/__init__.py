"""Top-level tensor functions (``ember.cat``, ``ember.where``, ...), one module per family.

Each module lists its public names in ``__all__``; ``ember`` re-exports them all.
"""

from . import core as _core
from . import indexing as _indexing
from . import pointwise as _pointwise
from .core import *  # noqa: F403
from .indexing import *  # noqa: F403
from .pointwise import *  # noqa: F403

_FAMILIES = (_core, _indexing, _pointwise)
__all__ = [name for family in _FAMILIES for name in family.__all__]
