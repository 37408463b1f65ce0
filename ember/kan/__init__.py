"""Tools around Kolmogorov–Arnold networks: baking for inference, pruning, symbolic formulas, plots.

The layer is ``ember.nn.KANLinear`` and the network ``ember.models.KAN``; this package works on them.
"""

from .baked import BakedKAN, BakedKANError
from .plot import plot_edges
from .prune import edge_scores, prune
from .symbolic import SYMBOLIC_LIBRARY, SymbolicKAN, auto_symbolic, fit_edge

__all__ = [
    "SYMBOLIC_LIBRARY", "BakedKAN", "BakedKANError", "SymbolicKAN", "auto_symbolic", "edge_scores", "fit_edge",
    "plot_edges", "prune",
]
