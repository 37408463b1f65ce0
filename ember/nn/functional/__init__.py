"""Functional interface (``import ember.nn.functional as F``): thin functions over the ops.

Argument checks live here, once, so the ops stay lean and layers stay declarative. One module
per family; each lists its public functions in ``__all__`` and this package re-exports them all.
"""

from . import activation, attention, conv, dense, hyper, indexing, kan, loss, norm
from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .conv import *  # noqa: F403
from .dense import *  # noqa: F403
from .hyper import *  # noqa: F403
from .indexing import *  # noqa: F403
from .kan import *  # noqa: F403
from .loss import *  # noqa: F403
from .norm import *  # noqa: F403

_FAMILIES = (activation, attention, conv, dense, hyper, indexing, kan, loss, norm)
__all__ = [name for family in _FAMILIES for name in family.__all__]
