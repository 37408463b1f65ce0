"""Edge plots: a PNG of the learned functions (skipped without matplotlib)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.kan import plot_edges
from ember.models import KAN


def test_plot_edges_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the optional extra: pip install 'ember[plot]'")
    ember.manual_seed(0)
    model = KAN(widths=(2, 3, 1))
    x = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    path = plot_edges(model, x, tmp_path / "edges.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary file left


def test_plot_of_a_fully_pruned_model_is_an_error(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the optional extra: pip install 'ember[plot]'")
    model = KAN(widths=(2, 1), edge_masks=True)
    model.layers[0].edge_mask.data[...] = 0
    with pytest.raises(ValueError, match="every edge is pruned"):
        plot_edges(model, np.zeros((4, 2), np.float32), tmp_path / "x.png")
