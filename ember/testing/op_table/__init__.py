"""The table of ops and layers that drives the tests and ``ember gradcheck``.

Each row says how to call the op in ember and in PyTorch on the same float inputs. Adding
an op means adding a row to its family's module; every row then gets a float64 gradient check,
a dtype check and a forward+backward comparison with PyTorch. PyTorch is never imported here:
a row's ``torch_fn`` receives the ``torch`` module as its first argument.
"""

from __future__ import annotations

from . import activation, attention, conv, elementwise, kan, linalg, loss, norm, reduce, shape
from .case import LayerCase, OpCase, make_inputs
from .layers import LAYERS

FAMILIES = (elementwise, activation, reduce, shape, linalg, conv, norm, kan, attention, loss)
OPS: list[OpCase] = [case for family in FAMILIES for case in family.OPS]

__all__ = ["FAMILIES", "LAYERS", "LayerCase", "OPS", "OpCase", "make_inputs"]
