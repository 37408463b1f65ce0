"""Functional interface (``import ember.nn.functional as F``): thin functions over the ops.

Argument checks live here, once, so the ops stay lean and layers stay declarative. One module
per family (activation, linear, conv, norm, attention, kan, loss); this package re-exports them.
"""

from .activation import (  # noqa: F401
    gelu,
    log_softmax,
    relu,
    sigmoid,
    silu,
    softmax,
    tanh,
)
from .attention import (  # noqa: F401
    causal_self_attention,
)
from .conv import (  # noqa: F401
    avg_pool2d,
    conv2d,
    max_pool2d,
)
from .kan import (  # noqa: F401
    bspline_basis,
    kan_linear,
)
from .linear import (  # noqa: F401
    dropout,
    embedding,
    linear,
)
from .loss import (  # noqa: F401
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    masked_cross_entropy,
    masked_huber_loss,
    masked_mse_loss,
    mse_loss,
    nll_loss,
)
from .norm import (  # noqa: F401
    batch_norm,
    layer_norm,
)
