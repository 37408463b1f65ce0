"""Kolmogorov–Arnold networks: a stack of KANLinear layers from a widths list (e.g. [784, 64, 10])."""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn
from ..nn.layers.kan import check_spline_config


@dataclass
class KANConfig:
    widths: tuple[int, ...] = (784, 64, 10)  # input, hidden..., output
    grid_size: int = 5
    spline_order: int = 3
    grid_range: tuple[float, float] = (-1.0, 1.0)
    scale_noise: float = 0.1
    scale_base: float = 1.0
    scale_spline: float = 1.0
    standalone_spline_scale: bool = True
    edge_masks: bool = False  # layers carry a 0/1 edge mask (pruned networks)

    def __post_init__(self):
        self.widths = tuple(int(w) for w in self.widths)
        self.grid_range = (float(self.grid_range[0]), float(self.grid_range[1]))
        if len(self.widths) < 2:
            raise ValueError(f"KANConfig: widths needs at least an input and an output width, got {self.widths}")
        if min(self.widths) <= 0:
            raise ValueError(f"KANConfig: every width must be positive, got {self.widths}")
        check_spline_config(self.grid_size, self.spline_order, self.grid_range)


class KAN(nn.Module):
    """KANLinear layers between consecutive widths; inputs with more axes are flattened first.

    Shape: (N, widths[0]) (or (N, C, H, W) with C·H·W = widths[0]) -> (N, widths[-1]).
    """

    def __init__(self, config: KANConfig | None = None, **overrides):
        super().__init__()
        self.config = config or KANConfig(**overrides)
        c = self.config
        self.layers = nn.ModuleList([
            nn.KANLinear(a, b, c.grid_size, c.spline_order, c.grid_range, c.scale_noise, c.scale_base,
                         c.scale_spline, c.standalone_spline_scale, c.edge_masks)
            for a, b in zip(c.widths[:-1], c.widths[1:])
        ])

    def forward(self, x):
        if x.ndim > 2:
            x = x.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return x

    def update_grid(self, x, grid_eps: float = 0.02, margin: float = 0.01) -> None:
        """Adapt every layer's knots to the activations that x produces (see KANLinear.update_grid)."""
        from ..autograd import no_grad

        with no_grad():
            if x.ndim > 2:
                x = x.flatten(1)
            for layer in self.layers:
                layer.update_grid(x, grid_eps, margin)
                x = layer(x)

    def extend_grid(self, new_grid_size: int, x=None) -> None:
        """Refine every layer to ``new_grid_size`` intervals, keeping the function (recreate the optimizer)."""
        from ..autograd import no_grad

        with no_grad():
            if x is not None and x.ndim > 2:
                x = x.flatten(1)
            for layer in self.layers:
                layer.extend_grid(new_grid_size, x)
                if x is not None:
                    x = layer(x)
        self.config.grid_size = new_grid_size

    def regularization_loss(self, activation_weight: float = 1.0, entropy_weight: float = 1.0, x=None):
        """Sum of the layers' L1 + entropy penalties (sample-based when x is given)."""
        total = None
        if x is not None and x.ndim > 2:
            x = x.flatten(1)
        for layer in self.layers:
            term = layer.regularization_loss(activation_weight, entropy_weight, x)
            total = term if total is None else total + term
            if x is not None:
                x = layer(x)
        return total
