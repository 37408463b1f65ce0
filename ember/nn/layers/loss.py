"""Loss modules: wrappers over the functional losses with ``torch.nn``'s constructor arguments.

Class weights are buffers named as in PyTorch (``weight``, ``pos_weight``), so they move with
``.to()`` and travel in the state dict. As in ``ember.nn.functional``, options after the
positional ones are keyword-only (PyTorch's deprecated ``size_average``/``reduce`` are not taken).
"""

from __future__ import annotations

from ...ops.loss import REDUCTIONS
from ...ops.util import dim_arg
from ...tensor import Tensor
from .. import functional as F
from ..functional.loss import KL_REDUCTIONS
from ..module import Module

__all__ = [
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
    "CosineSimilarity",
]


class _Loss(Module):
    """A loss with a ``reduction`` ('mean', 'sum' or 'none'), checked when the module is built."""

    reductions = REDUCTIONS

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in self.reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {self.reductions}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction='{self.reduction}'" if self.reduction != "mean" else ""


def _buffer(value) -> Tensor | None:
    return None if value is None or isinstance(value, Tensor) else Tensor(value)


class _WeightedLoss(_Loss):
    """A loss with an optional ``weight`` buffer."""

    def __init__(self, weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy between logits and class indices (or class probabilities).

    Args:
        weight: optional (C,) rescaling of each class (a buffer).
        ignore_index: class-index targets equal to it are left out of the loss and of the mean.
        reduction: 'mean' (over counted targets, weighted), 'sum' or 'none'.
        label_smoothing: in [0, 1], mixes the target with the uniform distribution.

    Shape: input (C,), (N, C) or (N, C, d1, ...); target (), (N,) or (N, d1, ...) of class indices,
    or probabilities of the input's shape. Output: scalar, or the target's shape with 'none'.
    """

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities at class-index targets.

    Args:
        weight: optional (C,) rescaling of each class (a buffer).
        ignore_index: targets equal to it are left out of the loss and of the mean.
        reduction: 'mean' (over counted targets, weighted), 'sum' or 'none'.

    Shape: input (C,), (N, C) or (N, C, d1, ...); target (), (N,) or (N, d1, ...).
    """

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error. Shape: input and target of one shape; scalar output unless reduction='none'."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error. Shape: input and target of one shape; scalar output unless reduction='none'."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic for |d| < beta, linear beyond (beta = 0 is L1Loss).

    Args:
        reduction: 'mean', 'sum' or 'none'.
        beta: where the loss turns from quadratic to linear (>= 0).
    """

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta}")
        self.beta = beta

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """0.5·d² for |d| <= delta, delta·(|d| - 0.5·delta) beyond (SmoothL1Loss times delta, for beta = delta).

    Args:
        reduction: 'mean', 'sum' or 'none'.
        delta: where the loss turns from quadratic to linear (> 0).
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        if delta <= 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = delta

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities in [0, 1] (logs clamped at -100).

    Args:
        weight: optional rescaling broadcast to the input's shape (a buffer).
        reduction: 'mean', 'sum' or 'none'.
    """

    def __init__(self, weight=None, *, reduction: str = "mean"):
        super().__init__(weight, reduction)

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits, stable for any magnitude.

    Args:
        weight: optional rescaling broadcast to the input's shape (a buffer).
        reduction: 'mean', 'sum' or 'none'.
        pos_weight: optional weight of the positive term, broadcast against the target, e.g. one
            value per class on the last axis (a buffer).
    """

    def __init__(self, weight=None, *, reduction: str = "mean", pos_weight=None):
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """KL divergence of the target from the input (log-probabilities).

    Args:
        reduction: 'mean' (over elements), 'batchmean' (over the batch: the true KL), 'sum' or 'none'.
        log_target: the target is given as log-probabilities.
    """

    reductions = KL_REDUCTIONS

    def __init__(self, *, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):  # noqa: A002 - PyTorch's name
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class CosineSimilarity(Module):
    """Cosine similarity of x1 and x2 along ``axis`` (default 1; ``dim=`` is PyTorch's spelling).

    Args:
        axis: the axis holding the vectors.
        eps: floor of each norm.

    Shape: x1 and x2 broadcastable; output is their broadcast shape without ``axis``.
    """

    def __init__(self, axis: int | None = None, eps: float = 1e-8, *, dim: int | None = None):
        super().__init__()
        self.axis, self.eps = dim_arg("CosineSimilarity", axis, dim, 1), eps

    @property
    def dim(self) -> int:
        """PyTorch's name for ``axis``."""
        return self.axis

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.axis, self.eps)

    def extra_repr(self) -> str:
        return f"axis={self.axis}, eps={self.eps}"
