"""Pruning: exact amounts (per layer and global), masks that survive optimizer steps, iterative schedules, and
structured pruning that shrinks the MLP and LeNet-5 and keeps their outputs when the removed units are zero."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn
from ember.compress import (
    MaskedOptimizer,
    amount_for_macs,
    count_macs,
    prune_and_finetune,
    prune_channels,
    prune_magnitude,
    prune_neurons,
    prune_structured,
    quantize_model,
    save_compressed,
    sparsity,
    sparsity_schedule,
)
from ember.data import DataLoader, TensorDataset
from ember.io import load_model
from ember.models import GPT, MLP, GPTConfig, LeNet5
from ember.train import fit

RNG = np.random.default_rng(0)
LENET_MACS = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10  # per image, by hand


def weights(model) -> dict[str, np.ndarray]:
    return {name: m.weight.numpy().copy() for name, m in model.named_modules() if isinstance(m, (nn.Linear,
                                                                                               nn.Conv2d))}


def tiny_loader(n: int = 64, features: int = 20, classes: int = 4) -> DataLoader:
    x = RNG.standard_normal((n, features)).astype(np.float32)
    y = RNG.integers(0, classes, n).astype(np.int64)
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0)


# ----------------------------------------------------------------------------- unstructured


@pytest.mark.parametrize("amount", [0.3, 0.9])
def test_per_layer_pruning_removes_exactly_that_fraction_of_every_layer(amount):
    model = MLP()
    before = weights(model)
    report = prune_magnitude(model, amount, scope="layer")
    for name, w in weights(model).items():
        n = w.size
        assert int((w == 0).sum()) == round(amount * n) and report[name] == pytest.approx(round(amount * n) / n)
        kept, dropped = np.abs(before[name][w != 0]), np.abs(before[name][w == 0])
        assert kept.min() >= dropped.max()  # the smallest magnitudes went, within each layer


def test_global_pruning_removes_exactly_that_fraction_of_all_weights_ranked_together():
    model = MLP()
    before = weights(model)
    prune_magnitude(model, 0.9, scope="global")
    after = weights(model)
    total = sum(w.size for w in after.values())
    assert sum(int((w == 0).sum()) for w in after.values()) == round(0.9 * total)
    kept = np.concatenate([np.abs(before[k][after[k] != 0]) for k in after])
    dropped = np.concatenate([np.abs(before[k][after[k] == 0]) for k in after])
    assert kept.min() >= dropped.max()  # one threshold over every layer ...
    per_layer = [float((w == 0).mean()) for w in after.values()]
    assert max(per_layer) - min(per_layer) > 0.2  # ... so the layers end up unequally sparse
    assert sparsity(model) == pytest.approx(round(0.9 * total) / total)


def test_masks_survive_optimizer_steps_and_a_plain_step_would_regrow_them():
    def train(wrap: bool):
        ember.manual_seed(0)
        model = MLP(sizes=(20, 16, 4))
        prune_magnitude(model, 0.5, scope="layer")
        pruned = {k: w == 0 for k, w in weights(model).items()}
        before = weights(model)
        optimizer = ember.optim.Adam(model.parameters(), lr=1e-2)
        fit(model, MaskedOptimizer(optimizer, model) if wrap else optimizer, tiny_loader(), epochs=2, progress=False)
        return pruned, before, weights(model)

    pruned, before, after = train(wrap=True)
    for name in after:
        assert (after[name][pruned[name]] == 0).all()
        assert not np.array_equal(after[name][~pruned[name]], before[name][~pruned[name]])  # the rest trained
    pruned, _, after = train(wrap=False)
    assert any((after[name][pruned[name]] != 0).any() for name in after)  # Adam moves zeros that are not held


def test_rising_amounts_prune_further_and_keep_earlier_zeros():
    model = MLP(sizes=(30, 20, 5))
    prune_magnitude(model, 0.5, scope="global")
    first = {k: w == 0 for k, w in weights(model).items()}
    model.net[1].weight.data += 1.0  # the pruned weights move (as training without the mask would) ...
    prune_magnitude(model, 0.8, scope="global")
    for name, w in weights(model).items():
        assert (w[first[name]] == 0).all()  # ... but stay pruned: the old mask is kept
    assert sparsity(model) >= 0.8


def test_sparsity_schedule_is_cubic():
    assert sparsity_schedule(0.9, 3) == pytest.approx([0.9 * (1 - (2 / 3) ** 3), 0.9 * (1 - (1 / 3) ** 3), 0.9])
    with pytest.raises(ValueError, match="amount must be a fraction in"):
        sparsity_schedule(1.0, 2)


def test_prune_and_finetune_prunes_then_calls_finetune_each_round():
    model = MLP(sizes=(20, 16, 4))
    calls = []

    def finetune(m, r):
        calls.append((r, sparsity(m)))
        optimizer = MaskedOptimizer(ember.optim.SGD(m.parameters(), lr=0.1), m)
        fit(m, optimizer, tiny_loader(), epochs=1, progress=False)
        return {"note": r}

    model, history = prune_and_finetune(model, [0.5, 0.75], finetune)
    assert [r for r, _ in calls] == [1, 2] and [h["note"] for h in history] == [1, 2]
    assert [s for _, s in calls] == pytest.approx([0.5, 0.75], abs=1e-3)
    assert sparsity(model) == pytest.approx(0.75, abs=1e-3)  # fine-tuning kept the zeros


def test_pruning_names_bad_arguments():
    with pytest.raises(ValueError, match="scope must be one of"):
        prune_magnitude(MLP(), 0.5, scope="row")
    with pytest.raises(ValueError, match=r"\['net.9'\] are not Linear or Conv2d layers"):
        prune_magnitude(MLP(), 0.5, layers=["net.9"])
    with pytest.raises(ValueError, match="amount must be a fraction"):
        prune_magnitude(MLP(), 1.5)


# ----------------------------------------------------------------------------- structured


def test_structured_pruning_shrinks_the_mlp_and_its_config():
    model = MLP(sizes=(20, 16, 8, 4))
    small = prune_neurons(model, 0.5)
    assert [tuple(m.weight.shape) for m in small.net if isinstance(m, nn.Linear)] == [(8, 20), (4, 8), (4, 4)]
    assert small.config.sizes == (20, 8, 4, 4) and model.config.sizes == (20, 16, 8, 4)
    x = ember.tensor(RNG.standard_normal((2, 20)).astype(np.float32))
    assert count_macs(small, x[:1]) == 20 * 8 + 8 * 4 + 4 * 4 < count_macs(model, x[:1]) == 20 * 16 + 16 * 8 + 8 * 4


def test_structured_pruning_shrinks_lenet_channels_and_the_flattened_inputs():
    model = LeNet5()
    x = ember.tensor(RNG.standard_normal((1, 1, 28, 28)).astype(np.float32))
    assert count_macs(model, x) == LENET_MACS
    channels = prune_channels(model, 0.5)
    assert channels.conv1.weight.shape == (3, 1, 5, 5) and channels.conv2.weight.shape == (8, 3, 5, 5)
    assert channels.fc1.weight.shape == (120, 8 * 25) and channels.fc2.weight.shape == (84, 120)
    both = prune_structured(model, 0.5)
    assert both.fc1.weight.shape == (60, 200) and both.fc2.weight.shape == (42, 60)
    assert both.fc3.weight.shape == (10, 42)
    macs = 28 * 28 * 3 * 25 + 10 * 10 * 8 * 3 * 25 + 200 * 60 + 60 * 42 + 42 * 10
    assert count_macs(both, x) == macs


def zero_units(layer, units) -> None:
    """Make ``units`` of ``layer`` output exactly 0 (weights and bias), so that after a ReLU they carry nothing."""
    layer.weight.data[units] = 0.0
    layer.bias.data[units] = 0.0


def test_removing_units_that_output_zero_keeps_the_mlps_outputs():
    model = MLP(sizes=(12, 10, 8, 3)).double()
    with ember.no_grad():
        zero_units(model.net[1], [1, 4, 6, 9, 2])
        zero_units(model.net[3], [0, 5, 7, 3])
    small = prune_neurons(model, 0.5)
    x = ember.tensor(RNG.standard_normal((7, 12)))
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(small.net[1].weight.numpy(), model.net[1].weight.numpy()[[0, 3, 5, 7, 8]])


def test_removing_channels_that_output_zero_keeps_lenets_outputs():
    model = LeNet5().double()
    with ember.no_grad():
        zero_units(model.conv1, [0, 3, 5])
        zero_units(model.conv2, [1, 2, 3, 8, 9, 10, 12, 15])
        zero_units(model.fc1, list(range(0, 120, 2)))
        zero_units(model.fc2, list(range(1, 84, 2)))
    small = prune_structured(model, 0.5)
    x = ember.tensor(RNG.standard_normal((3, 1, 28, 28)))
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), rtol=1e-11, atol=1e-12)


def test_amount_for_macs_halves_lenet():
    model = LeNet5()
    x = ember.tensor(RNG.standard_normal((1, 1, 28, 28)).astype(np.float32))
    amount = amount_for_macs(model, x, 0.5)
    assert count_macs(prune_structured(model, amount), x) <= LENET_MACS / 2
    assert count_macs(prune_structured(model, amount - 0.002), x) > LENET_MACS / 2  # the smallest such amount


def test_structured_lenet_checkpoint_rebuilds_its_narrower_layers(tmp_path):
    model = prune_structured(LeNet5(), 0.4)
    qmodel = quantize_model(model)  # pruned, then int8: both recorded
    x = ember.tensor(RNG.standard_normal((2, 1, 28, 28)).astype(np.float32))
    for m in (model, qmodel):
        loaded, _ = load_model(save_compressed(tmp_path / "lenet.safetensors", m))
        np.testing.assert_array_equal(loaded(x).numpy(), m.eval()(x).numpy())


def test_structured_pruning_refuses_models_it_has_no_chain_for():
    with pytest.raises(TypeError, match="knows the layer chains of the MLP and LeNet-5, not GPT"):
        prune_structured(GPT(GPTConfig(n_layer=1, n_head=2, n_embd=8, vocab_size=5, block_size=4)), 0.5)
