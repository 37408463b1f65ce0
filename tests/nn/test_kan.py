"""KANLinear and KAN: config errors, init, grid update and extension, regularisation, persistence."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.io import load_model, save_checkpoint
from ember.models import KAN, KANConfig


def _x(n=256, d=4, lo=-0.9, hi=0.9, seed=0):
    return ember.tensor(np.random.default_rng(seed).uniform(lo, hi, (n, d)))


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="positive"):
        KANConfig(widths=(4, 0, 2))
    with pytest.raises(ValueError, match="at least an input and an output"):
        KANConfig(widths=(4,))
    with pytest.raises(ValueError, match="grid size"):
        KANConfig(grid_size=0)
    with pytest.raises(ValueError, match="spline order"):
        KANConfig(spline_order=0)
    with pytest.raises(ValueError, match="lo < hi"):
        KANConfig(grid_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="widths must be positive"):
        nn.KANLinear(0, 3)


def test_init_is_a_small_random_spline_with_kaiming_weights():
    layer = nn.KANLinear(100, 20, grid_size=5)
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.base_weight.numpy()).max() <= bound
    assert np.abs(layer.spline_scaler.numpy()).max() <= bound
    values = layer.spline_weight.numpy()
    assert 0 < np.abs(values).max() < 0.1  # a fit to noise of amplitude 0.1/G
    assert layer.grid.shape == (100, 5 + 2 * 3 + 1)


def test_edge_activations_sum_to_the_layer_output():
    layer = nn.KANLinear(4, 3).double()
    x = _x()
    np.testing.assert_allclose(layer.edge_activations(x).numpy().sum(axis=-1), layer(x).numpy(), atol=1e-12)


def _smooth_layer(n_in, n_out, seed):
    """A layer whose splines are smooth curves (sin with per-edge phases), so a refit on a new grid
    can be accurate; a fit to noise, the default init, changes at every knot."""
    from ember.ops.kan import fit_coefficients

    ember.manual_seed(seed)
    layer = nn.KANLinear(n_in, n_out).double()
    t = np.linspace(-1, 1, 200)[:, None].repeat(n_in, axis=1)
    phase = np.arange(n_out)[None, None, :] + np.arange(n_in)[None, :, None]
    target = 0.5 * np.sin(2 * t[..., None] + phase)
    layer.spline_weight.data[...] = fit_coefficients(np, t, target, layer.grid.numpy(), 3, True)
    return layer


def test_update_grid_keeps_the_function_on_the_samples_and_moves_the_knots():
    layer = _smooth_layer(4, 3, seed=0)
    x = ember.tensor(np.random.default_rng(1).normal(0, 0.4, (512, 4)).clip(-0.95, 0.95))
    before = layer(x).numpy()
    old_grid = layer.grid.numpy().copy()
    layer.update_grid(x)
    assert not layer.uniform_grid and not np.allclose(layer.grid.numpy(), old_grid)
    np.testing.assert_allclose(layer(x).numpy(), before, atol=2e-3)
    layer.update_grid(x, grid_eps=1.0)  # fully uniform again
    assert layer.uniform_grid
    np.testing.assert_allclose(layer(x).numpy(), before, atol=4e-3)


def test_update_grid_with_the_standalone_scale_does_not_scale_twice():
    """efficient-kan refits c·w_s into c: with w_s = 5 the spline part would grow five-fold."""
    layer = _smooth_layer(3, 2, seed=1)
    layer.spline_scaler.data[...] = 5.0
    x = _x(400, 3, seed=2)
    before = layer(x).numpy()
    layer.update_grid(x)
    np.testing.assert_allclose(layer(x).numpy(), before, atol=1e-2)


def test_extend_grid_is_exact_for_a_refined_uniform_grid():
    ember.manual_seed(2)
    layer = nn.KANLinear(4, 3, grid_size=5).double()
    x = _x(300)
    before = layer(x).numpy()
    layer.extend_grid(10)
    assert layer.spline_weight.shape == (3, 4, 13) and layer.grid_size == 10
    np.testing.assert_allclose(layer(x).numpy(), before, atol=1e-8)


def test_training_continues_after_extend_grid():
    ember.manual_seed(3)
    model = KAN(widths=(2, 3, 1)).double()
    opt = ember.optim.Adam(model.parameters(), lr=1e-2)
    x = _x(64, 2)
    y = (x * x).sum(axis=1, keepdims=True)

    def step():
        opt.zero_grad()
        loss = ember.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(5):
        step()
    model.extend_grid(10)
    losses = [step() for _ in range(30)]  # Adam resets the state of the reshaped coefficients
    assert losses[-1] < losses[0]


def test_regularization_matches_its_definition():
    layer = nn.KANLinear(3, 2).double()
    c = np.abs(layer.spline_weight.numpy()).mean(axis=-1)
    p = c / c.sum()
    expected = 0.5 * c.sum() - 2.0 * (p * np.log(p)).sum()
    assert layer.regularization_loss(0.5, 2.0).item() == pytest.approx(expected, rel=1e-9)
    x = _x(50, 3)
    phi = np.abs(layer.edge_activations(x).numpy()).mean(axis=0)
    q = phi / phi.sum()
    expected_samples = phi.sum() - (q * np.log(q)).sum()
    reg = layer.regularization_loss(1.0, 1.0, x=x)
    assert reg.item() == pytest.approx(expected_samples, rel=1e-9)
    reg.backward()
    assert layer.spline_weight.grad is not None and layer.base_weight.grad is not None


def test_kan_model_state_and_checkpoint_round_trip_with_an_adapted_grid(tmp_path):
    ember.manual_seed(4)
    model = KAN(widths=(4, 5, 2))
    x = _x(128).to(ember.float32)
    model.update_grid(x)
    model.extend_grid(7, x)
    out = model(x).numpy()
    path = save_checkpoint(tmp_path / "kan.safetensors", model)
    loaded, meta = load_model(path)
    assert meta["config"]["grid_size"] == 7
    assert [lay.uniform_grid for lay in loaded.layers] == [lay.uniform_grid for lay in model.layers]
    np.testing.assert_array_equal(loaded(x).numpy(), out)


def test_kan_flattens_images():
    model = KAN(widths=(16, 3, 2))
    assert model(ember.randn(5, 1, 4, 4)).shape == (5, 2)


def test_refitted_coefficients_are_contiguous():
    """A grid extension keeps spline_weight C-contiguous, so the compiled kernels (optimizer updates) apply."""
    from ember.models import KAN, KANConfig

    ember.manual_seed(0)
    model = KAN(KANConfig(widths=(3, 4, 2), grid_size=5))
    x = ember.tensor(np.random.default_rng(0).uniform(-1, 1, (50, 3)).astype(np.float32))
    model.extend_grid(8, x)
    for layer in model.layers:
        assert layer.spline_weight.data.flags.c_contiguous
