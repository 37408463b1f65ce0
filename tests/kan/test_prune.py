"""Pruning: weak neurons and edges go, and the kept paths compute exactly what they did."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.io import load_model, save_checkpoint
from ember.kan import edge_scores, prune
from ember.models import KAN


def _model_with_dead_parts():
    ember.manual_seed(1)
    model = KAN(widths=(3, 4, 2), grid_size=4).double()
    l0, l1 = model.layers
    for t in (l0.base_weight, l0.spline_scaler):  # hidden neurons 2 and 3 are cut off on both sides
        t.data[2:] = 0.0
    for t in (l1.base_weight, l1.spline_scaler):
        t.data[:, 2:] = 0.0
    l0.base_weight.data[1, 0] = 0.0  # one weak edge into a kept neuron
    l0.spline_scaler.data[1, 0] = 0.0
    return model


def test_prune_removes_dead_neurons_and_masks_weak_edges():
    model = _model_with_dead_parts()
    x = ember.tensor(np.random.default_rng(0).uniform(-1, 1, (200, 3)))
    small = prune(model, x, threshold=1e-3)
    assert small.config.widths == (3, 2, 2)
    assert small.layers[0].edge_mask.numpy()[1, 0] == 0  # the weak edge, now hidden neuron 1
    with ember.no_grad():
        np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-12)


def test_pruned_kept_paths_equal_the_original_with_the_cut_edges_removed():
    ember.manual_seed(2)
    model = KAN(widths=(2, 5, 1), grid_size=4).double()
    x = ember.tensor(np.random.default_rng(1).uniform(-1, 1, (100, 2)))
    scores = edge_scores(model, x)
    strength = np.minimum(scores[0].max(axis=1), scores[1][0])  # a hidden neuron's weaker side
    threshold = float(np.median(strength))  # keeps about half of the hidden neurons
    small = prune(model, x, threshold=threshold)
    kept = [i for i in range(5) if scores[0][i].max() >= threshold and scores[1][0, i] >= threshold]
    assert 1 <= len(kept) < 5 and small.config.widths == (2, len(kept), 1)
    # the original with every pruned edge switched off
    ref = KAN(widths=(2, 5, 1), grid_size=4, edge_masks=True).double()
    ref.load_state_dict(model.state_dict(), strict=False)
    ref.layers[0].edge_mask.data[...] = scores[0] >= threshold
    ref.layers[1].edge_mask.data[...] = np.isin(np.arange(5), kept)[None, :] & (scores[1] >= threshold)
    with ember.no_grad():
        np.testing.assert_allclose(small(x).numpy(), ref(x).numpy(), atol=1e-12)


def test_pruned_model_saves_and_loads(tmp_path):
    model = _model_with_dead_parts()
    x = ember.tensor(np.random.default_rng(0).uniform(-1, 1, (50, 3)))
    small = prune(model, x, threshold=1e-3)
    loaded, _ = load_model(save_checkpoint(tmp_path / "p.safetensors", small))
    with ember.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), small(x).numpy())


def test_prune_threshold_must_be_non_negative():
    with pytest.raises(ValueError, match="threshold"):
        prune(KAN(widths=(2, 2, 1)), ember.zeros(3, 2), threshold=-1)
