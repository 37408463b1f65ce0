"""Pruning a KAN: drop edges and hidden neurons whose activations are small on sample data (as pykan does).

An edge's score is the mean |φ_{j,i}(x_i)| over the samples (the KAN paper's L1 size). A hidden
neuron is kept when its largest incoming and largest outgoing edge score both reach the
threshold; inside the kept network, edges below the threshold are masked out. The result is a
new, narrower KAN that computes exactly what the old one computes through the kept paths.
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..models.kan import KAN, KANConfig
from ..tensor import Tensor  # noqa: F401  (type hints)


@no_grad()
def edge_scores(model: KAN, x: Tensor) -> list[np.ndarray]:
    """Mean |φ_{j,i}| over the samples for every layer: a list of (out, in) arrays."""
    if x.ndim > 2:
        x = x.flatten(1)
    scores = []
    for layer in model.layers:
        scores.append(np.abs(layer.edge_activations(x).numpy()).mean(axis=0))
        x = layer(x)
    return scores


@no_grad()
def prune(model: KAN, x: Tensor, threshold: float = 1e-2) -> KAN:
    """A smaller KAN with the neurons and edges whose scores on ``x`` fall below ``threshold`` removed."""
    if threshold < 0:
        raise ValueError(f"prune: threshold must be >= 0, got {threshold}")
    scores = edge_scores(model, x)
    widths = model.config.widths
    keep = [np.arange(widths[0])]  # kept neurons per level: inputs and outputs always stay
    for level in range(1, len(widths) - 1):
        incoming = scores[level - 1].max(axis=1)  # (n_level,)
        outgoing = scores[level].max(axis=0)
        keep.append(np.flatnonzero((incoming >= threshold) & (outgoing >= threshold)))
    keep.append(np.arange(widths[-1]))
    new_widths = tuple(max(len(k), 1) for k in keep)
    keep = [k if len(k) else np.array([0]) for k in keep]  # a dead layer keeps one (masked) neuron
    config = KANConfig(**{**model.config.__dict__, "widths": new_widths, "edge_masks": True})
    pruned = KAN(config).to(dtype=model.layers[0].base_weight.dtype)
    for old, new, rows, cols, score in zip(model.layers, pruned.layers, keep[1:], keep[:-1], scores):
        sub = np.ix_(rows, cols)
        new.base_weight.data = np.ascontiguousarray(old.base_weight.numpy()[sub])
        new.spline_weight.data = np.ascontiguousarray(old.spline_weight.numpy()[sub])
        if old.spline_scaler is not None:
            new.spline_scaler.data = np.ascontiguousarray(old.spline_scaler.numpy()[sub])
        new.grid.data = np.ascontiguousarray(old.grid.numpy()[cols])
        new.grid_size = old.grid_size
        mask = (score[sub] >= threshold).astype(old.base_weight.dtype)
        if old.edge_mask is not None:
            mask *= old.edge_mask.numpy()[sub]
        new.edge_mask.data = mask
        new._after_state_loaded()
    return pruned
