"""A PNG of every edge's learned univariate function (matplotlib, an optional extra: ``ember[plot]``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot_edges needs matplotlib: pip install 'ember[plot]'") from exc
    return plt


@no_grad()
def plot_edges(model, x, path: str | os.PathLike, max_edges: int = 64, n_points: int = 101,
               symbolic=None) -> Path:
    """Draw φ_{j,i} for the edges of every layer (rows: outputs j, columns: inputs i) over the
    range each input takes on ``x``; large layers show only their ``max_edges`` strongest edges
    (mean |φ|). Pruned edges are skipped. With ``symbolic`` (a SymbolicKAN), each panel is titled
    with its fitted function and R². Written atomically to ``path``."""
    from ..io.atomic import atomic_path

    plt = _matplotlib()
    xt = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if xt.ndim > 2:
        xt = xt.flatten(1)
    panels = []  # (layer, j, i, xs, ys)
    for li, layer in enumerate(model.layers):
        h = xt.numpy()
        lo, hi = h.min(axis=0), h.max(axis=0)
        sweep = (np.linspace(0.0, 1.0, n_points)[:, None] * (hi - lo) + lo).astype(h.dtype)
        phi = layer.edge_activations(Tensor(sweep)).numpy()  # (n_points, out, in)
        score = np.abs(layer.edge_activations(xt).numpy()).mean(axis=0)
        if layer.edge_mask is not None:
            score = score * layer.edge_mask.numpy()
        order = np.argsort(-score, axis=None)[:max_edges]
        for flat in order:
            j, i = np.unravel_index(flat, score.shape)
            if score[j, i] > 0:
                panels.append((li, int(j), int(i), sweep[:, i], phi[:, j, i]))
        xt = layer(xt)
    if not panels:
        raise ValueError("plot_edges: no edge to draw (every edge is pruned)")
    cols = min(8, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 1.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, (li, j, i, xs, ys) in zip(axes.ravel(), panels):
        ax.set_visible(True)
        ax.plot(xs, ys, color="tab:red", linewidth=1.2)
        title = f"L{li}: {i}->{j}"
        fit = symbolic.layers[li].get((j, i)) if symbolic is not None else None
        if fit is not None:
            title += f"\n{fit.name} (R²={fit.r2:.4f})"
        ax.set_title(title, fontsize=7)
        ax.tick_params(labelsize=5)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
