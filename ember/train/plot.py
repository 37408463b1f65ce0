"""Loss and accuracy curves of a training run as a PNG (matplotlib, an optional extra: ``ember[plot]``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

PLOT_EXTRA = "pip install 'ember[plot]'"


def import_pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), or ImportError naming the extra."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(f"plotting training curves needs matplotlib: {PLOT_EXTRA}") from exc
    return plt


def is_loss_tag(tag: str) -> bool:
    return tag.endswith("loss") or tag.endswith("mse")


def is_accuracy_tag(tag: str) -> bool:
    return tag.endswith("accuracy")


def plot_training_curves(series: Mapping[str, Sequence[tuple[int, float]]], path: str | os.PathLike,
                         x_label: str = "step", title: str | None = None) -> Path:
    """Draw the loss curves (tags ending in ``loss`` or ``mse``) and, beside them, the accuracy curves (tags ending
    in ``accuracy``) of ``series`` ({tag: [(step, value), ...]}, as ``ScalarLogger.series`` keeps them) against
    ``x_label``; losses spanning more than two decades get a log scale. Written atomically to ``path`` (PNG)."""
    from ..io.atomic import atomic_path

    losses = {tag: points for tag, points in series.items() if is_loss_tag(tag) and points}
    accuracies = {tag: points for tag, points in series.items() if is_accuracy_tag(tag) and points}
    if not losses and not accuracies:
        raise ValueError(f"plot_training_curves: no loss or accuracy to draw (tags: {sorted(series) or 'none'})")
    plt = import_pyplot()
    from matplotlib import ticker

    panels = [(name, curves) for name, curves in (("loss", losses), ("accuracy", accuracies)) if curves]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.0), squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels):
        for tag, points in sorted(curves.items()):
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, marker="o" if len(points) <= 20 else None, markersize=3, label=tag)
        if name == "loss" and spans_decades(curves.values()):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # steps and epochs are whole numbers
        ax.set_xlabel(x_label)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


def spans_decades(curves, decades: float = 2.0) -> bool:
    """True when every finite value is positive and the largest is over 10**decades times the smallest."""
    values = [v for points in curves for _, v in points if math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) > 10**decades * min(values)
