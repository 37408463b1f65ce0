"""Layers, one file per family; each lists its public names in ``__all__`` and this package re-exports them."""

from . import activation as _activation
from . import attention as _attention
from . import conv as _conv
from . import dropout as _dropout
from . import embedding as _embedding
from . import flatten as _flatten
from . import hyper as _hyper
from . import kan as _kan
from . import linear as _linear
from . import loss as _loss
from . import norm as _norm
from . import pool as _pool
from . import upsample as _upsample
from .activation import *  # noqa: F403
from .attention import *  # noqa: F403
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .embedding import *  # noqa: F403
from .flatten import *  # noqa: F403
from .hyper import *  # noqa: F403
from .kan import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .norm import *  # noqa: F403
from .pool import *  # noqa: F403
from .upsample import *  # noqa: F403

_FAMILIES = (_activation, _attention, _conv, _dropout, _embedding, _flatten, _hyper, _kan, _linear, _loss, _norm, _pool,
             _upsample)
__all__ = [name for family in _FAMILIES for name in family.__all__]
