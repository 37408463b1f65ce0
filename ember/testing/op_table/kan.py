"""Op-table rows: b-spline bases and the fused KAN layer."""

from __future__ import annotations

import ember.nn.functional as F

from .case import KNOTS_GENERAL, KNOTS_UNIFORM, OpCase
from .references import torch_bspline, torch_kan_linear

OPS: list[OpCase] = [
    OpCase("bspline_basis_uniform", lambda x: F.bspline_basis(x, KNOTS_UNIFORM, 3),
           lambda T, x: torch_bspline(T, x, KNOTS_UNIFORM, 3), ((5, 3),)),
    OpCase("bspline_basis_general_k2", lambda x: F.bspline_basis(x, KNOTS_GENERAL, 2),
           lambda T, x: torch_bspline(T, x, KNOTS_GENERAL, 2), ((6, 3),)),
    OpCase("kan_linear", lambda x, wb, sw, sc: F.kan_linear(x, wb, sw, sc, KNOTS_UNIFORM.astype(x.dtype), 3),
           lambda T, x, wb, sw, sc: torch_kan_linear(T, x, wb, sw, sc, KNOTS_UNIFORM, 3),
           ((5, 3), (2, 3), (2, 3, 7), (2, 3))),
    OpCase("kan_linear_no_scaler_general", lambda x, wb, sw: F.kan_linear(x, wb, sw, None,
                                                                          KNOTS_GENERAL.astype(x.dtype), 3),
           lambda T, x, wb, sw: torch_kan_linear(T, x, wb, sw, None, KNOTS_GENERAL, 3),
           ((4, 3), (2, 3), (2, 3, 6))),
]
