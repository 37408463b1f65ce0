"""Kolmogorov–Arnold layer: one learnable B-spline function per edge, plus a SiLU base path.

    y_j = Σ_i [ w_b[j,i]·silu(x_i) + w_s[j,i]·Σ_m c[j,i,m]·B_m(x_i) ]

(efficient-kan's equation; ``standalone_spline_scale=False`` drops w_s). The forward and
backward are one fused op (ember/ops/kan.py). The knots live in the ``grid`` buffer,
(in_features, G + 2k + 1), one row per input, so grid updates can move each input's knots
to where its data are.
"""

from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...autograd import no_grad
from ...ops import bspline as BS
from ...ops import kan as K
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module, Parameter

__all__ = [
    "KANLinear",
]


def uniform_knots(grid_size: int, spline_order: int, lo: float, hi: float, n_inputs: int) -> np.ndarray:
    """The extended uniform grid: t_i = lo + (i - k)·h, i = 0..G+2k, h = (hi - lo)/G, one row per input."""
    h = (hi - lo) / grid_size
    row = lo + (np.arange(grid_size + 2 * spline_order + 1) - spline_order) * h
    return np.tile(row, (n_inputs, 1))


def check_spline_config(grid_size: int, spline_order: int, grid_range) -> None:
    if grid_size < 1:
        raise ValueError(f"KAN: grid size G must be >= 1, got {grid_size}")
    if spline_order < 1:
        raise ValueError(f"KAN: spline order k must be >= 1, got {spline_order}")
    lo, hi = grid_range
    if not lo < hi:
        raise ValueError(f"KAN: grid range needs lo < hi, got [{lo}, {hi}]")


class KANLinear(Module):
    """A KAN layer from ``in_features`` to ``out_features``.

    Args:
        grid_size: G, the number of spline intervals on ``grid_range``.
        spline_order: k (3: cubic).
        grid_range: (lo, hi) covered by the initial uniform grid; inputs outside it get the
            partial (or, beyond the extended knots, zero) basis, so scale inputs to it or call
            ``update_grid``.
        scale_noise: the initial spline is a least-squares fit to uniform noise of amplitude
            scale_noise/G at the grid points (a small random curve, as in pykan/efficient-kan).
        scale_base, scale_spline: Kaiming-uniform gains (a = sqrt(5)·scale) of w_b and w_s;
            this init, not a constant one, is what lets a 784-wide KAN learn MNIST.
        standalone_spline_scale: learn w_s (default) or fold it into c.
        edge_mask: keep an (out, in) 0/1 buffer that switches edges off (set by pruning).

    Shape: (..., in_features) -> (..., out_features).
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), scale_noise: float = 0.1, scale_base: float = 1.0,
                 scale_spline: float = 1.0, standalone_spline_scale: bool = True, edge_mask: bool = False,
                 dtype=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"KANLinear: widths must be positive, got in={in_features}, out={out_features}")
        check_spline_config(grid_size, spline_order, grid_range)
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.spline_order = grid_size, spline_order
        self.grid_range = (float(grid_range[0]), float(grid_range[1]))
        self.scale_noise, self.scale_base, self.scale_spline = scale_noise, scale_base, scale_spline
        self.standalone_spline_scale = standalone_spline_scale
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        n_basis = grid_size + spline_order
        self.register_buffer("grid", Tensor(uniform_knots(grid_size, spline_order, *self.grid_range,
                                                          in_features).astype(dt)))
        self.base_weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        self.spline_weight = Parameter(np.empty((out_features, in_features, n_basis), dtype=dt))
        self.register_parameter(
            "spline_scaler", Parameter(np.empty((out_features, in_features), dtype=dt)) if standalone_spline_scale
            else None
        )
        self.register_buffer("edge_mask", Tensor(np.ones((out_features, in_features), dtype=dt)) if edge_mask else None)
        self.uniform_grid = True
        self.reset_parameters()

    # -- init ---------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * self.scale_base)
        gen = backend.generator(self.base_weight.device)
        g = self.grid_size
        points = self.grid.numpy()[:, self.spline_order : self.spline_order + g + 1].T  # (G+1, in)
        noise = (gen.random((g + 1, self.in_features, self.out_features)) - 0.5) * self.scale_noise / g
        coef = K.fit_coefficients(np, points, noise, self.grid.numpy(), self.spline_order, True)
        if not self.standalone_spline_scale:
            coef = coef * self.scale_spline
        with no_grad():
            self.spline_weight.data[...] = backend.to_device(coef.astype(self.spline_weight.dtype),
                                                             self.spline_weight.device)
        if self.spline_scaler is not None:
            init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5) * self.scale_spline)

    def _after_state_loaded(self) -> None:
        self.uniform_grid = BS.is_uniform(self.grid.numpy())

    # -- forward ------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        base, spline, scaler = self._masked_parameters()
        return F.kan_linear(x, base, spline, scaler, self.grid, self.spline_order, self.uniform_grid)

    def _masked_parameters(self):
        """(base_weight, spline_weight, spline_scaler) with pruned edges zeroed (differentiably)."""
        if self.edge_mask is None:
            return self.base_weight, self.spline_weight, self.spline_scaler
        mask = self.edge_mask
        if self.spline_scaler is not None:
            return self.base_weight * mask, self.spline_weight, self.spline_scaler * mask
        return self.base_weight * mask, self.spline_weight * mask.unsqueeze(-1), None

    def scaled_spline_weight(self):
        """c·w_s (masked) as an array (out, in, G+k): the coefficients the forward actually uses."""
        _, spline, scaler = self._masked_parameters()
        sw = spline.data
        return sw * scaler.data[..., None] if scaler is not None else sw

    def effective_base_weight(self):
        """w_b (masked) as an array (out, in)."""
        return self._masked_parameters()[0].data

    def edge_activations(self, x: Tensor) -> Tensor:
        """Per-edge outputs φ_{j,i}(x_i) as (n, out, in), differentiable (for sample-based
        regularisation, plots, pruning and symbolic fits; costs n·out·in memory)."""
        bases = F.bspline_basis(x, self.grid.data, self.spline_order, self.uniform_grid)  # (n, in, W)
        base_weight, coef, scaler = self._masked_parameters()
        if scaler is not None:
            coef = coef * scaler.unsqueeze(-1)
        # spline part per edge: (in, n, W) @ (in, W, out) -> (in, n, out)
        spline = bases.permute(1, 0, 2) @ coef.permute(1, 2, 0)
        base = F.silu(x).unsqueeze(1) * base_weight.unsqueeze(0)  # (n, out, in)
        return base + spline.permute(1, 2, 0)

    # -- grids ----------------------------------------------------------------------------
    def _set_grid(self, knots: np.ndarray) -> None:
        dev = self.grid.device
        self.grid.data = backend.to_device(np.asarray(knots, dtype=self.grid.dtype), dev)
        self.uniform_grid = BS.is_uniform(knots)

    def _refit(self, x64: np.ndarray, new_knots: np.ndarray) -> None:
        """Move to ``new_knots`` and refit the (unscaled) coefficients so the splines keep their values on x."""
        k = self.spline_order
        old = K.spline_edge_values(np, x64, self.spline_weight.numpy().astype(np.float64),
                                   self.grid.numpy().astype(np.float64), k, self.uniform_grid)
        coef = K.fit_coefficients(np, x64, old, new_knots, k, BS.is_uniform(new_knots))
        with no_grad():
            self._set_grid(new_knots)
            self.spline_weight.data = backend.to_device(np.ascontiguousarray(coef, dtype=self.spline_weight.dtype),
                                                        self.spline_weight.device)

    @no_grad()
    def update_grid(self, x: Tensor, grid_eps: float = 0.02, margin: float = 0.01) -> None:
        """Adapt each input's knots to samples x (n, in) and refit c so the layer's function is kept.

        New interior grid = grid_eps·uniform + (1 - grid_eps)·percentiles of x (G+1 points per
        input), extended by k knots of the uniform step on each side. The refit uses the
        *unscaled* coefficients (efficient-kan refits c·w_s into c and so scales twice).
        """
        if not 0.0 <= grid_eps <= 1.0:
            raise ValueError(f"update_grid: grid_eps must be in [0, 1], got {grid_eps}")
        x64 = np.asarray(x.numpy() if isinstance(x, Tensor) else x, dtype=np.float64).reshape(-1, self.in_features)
        if x64.shape[0] < 2:
            raise ValueError("update_grid: needs at least 2 samples")
        BS.check_finite(np, x64, "update_grid")
        g, k = self.grid_size, self.spline_order
        xs = np.sort(x64, axis=0)
        adaptive = xs[np.linspace(0, xs.shape[0] - 1, g + 1).astype(np.int64)]  # (G+1, in)
        step = (xs[-1] - xs[0] + 2 * margin) / g
        uniform = np.arange(g + 1)[:, None] * step + xs[0] - margin
        interior = grid_eps * uniform + (1 - grid_eps) * adaptive
        min_gap = 1e-4 * step  # keep knots strictly increasing when many samples coincide
        for i in range(1, g + 1):
            interior[i] = np.maximum(interior[i], interior[i - 1] + min_gap)
        knots = np.concatenate([interior[:1] - step * np.arange(k, 0, -1)[:, None], interior,
                                interior[-1:] + step * np.arange(1, k + 1)[:, None]], axis=0).T
        self._refit(x64, knots)

    @no_grad()
    def extend_grid(self, new_grid_size: int, x: Tensor | None = None) -> None:
        """Refine every input's grid to ``new_grid_size`` uniform intervals over its current range,
        refitting c by least squares so the function is kept (exactly, when the new knots contain
        the old ones, e.g. G -> 2G on a uniform grid). Samples: ``x`` or a dense sweep of the range.
        ``spline_weight`` changes shape in place: create the optimizer again (Adam resets the state
        of a parameter whose shape changed)."""
        check_spline_config(new_grid_size, self.spline_order, (0, 1))
        k = self.spline_order
        old = self.grid.numpy().astype(np.float64)
        lo, hi = old[:, k], old[:, -k - 1]
        if x is None:
            t = np.linspace(0.0, 1.0, 4 * (new_grid_size + k) + 1)
            x64 = lo[None, :] + t[:, None] * (hi - lo)[None, :]
        else:
            x64 = np.asarray(x.numpy() if isinstance(x, Tensor) else x, dtype=np.float64).reshape(-1, self.in_features)
        h = (hi - lo) / new_grid_size
        knots = lo[:, None] + (np.arange(new_grid_size + 2 * k + 1) - k)[None, :] * h[:, None]
        self._refit(x64, knots)
        self.grid_size = new_grid_size

    # -- regularisation -------------------------------------------------------------------
    def regularization_loss(self, activation_weight: float = 1.0, entropy_weight: float = 1.0,
                            x: Tensor | None = None) -> Tensor:
        """L1 + entropy sparsity penalty of the edges (the KAN paper's, as pykan defines it).

        With ``x``, an edge's size is its mean |φ_{j,i}(x_i)| over the samples (the paper's
        definition; needs the (n, out, in) edge activations). Without, efficient-kan's cheap
        stand-in: the mean |c[j,i,:]| of its coefficients. Then
        λ_act·Σ_{j,i} l1[j,i] + λ_ent·(−Σ p log p), p = l1/Σ l1.
        """
        if x is not None:
            l1 = self.edge_activations(x).abs().mean(axis=0)  # (out, in)
        else:
            l1 = self.spline_weight.abs().mean(axis=-1)
        total = l1.sum()
        p = l1 / (total + 1e-12)
        entropy = -(p * (p + 1e-12).log()).sum()
        return activation_weight * total + entropy_weight * entropy

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, grid_size={self.grid_size}, "
                f"spline_order={self.spline_order}, grid_range={self.grid_range}")
