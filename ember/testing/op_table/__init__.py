"""The table of ops and layers that drives the tests and ``ember gradcheck``.

Each row says how to call the op in ember and in PyTorch on the same float inputs. Adding
an op means adding a row to its family's module (``OPS``, and ``LAYERS`` for the layers built on
it); every row then gets a float64 gradient check, a dtype check and a forward+backward comparison
with PyTorch. PyTorch is never imported here: a row's ``torch_fn`` receives the ``torch`` module as
its first argument.
"""

from __future__ import annotations

from . import (
    activation,
    attention,
    conv,
    elementwise,
    hyper,
    indexing,
    kan,
    layers,
    linalg,
    loss,
    norm,
    pointwise,
    reduce,
    shape,
)
from .case import LayerCase, OpCase, make_inputs

FAMILIES = (elementwise, pointwise, activation, reduce, shape, indexing, linalg, conv, norm, kan, attention, loss,
            hyper)
OPS: list[OpCase] = [case for family in FAMILIES for case in family.OPS]
LAYERS: list[LayerCase] = layers.LAYERS + [case for family in FAMILIES for case in getattr(family, "LAYERS", [])]

__all__ = ["FAMILIES", "LAYERS", "LayerCase", "OPS", "OpCase", "make_inputs"]
