"""Baked KAN: same outputs as the training model, bit-identical file round trip, clear load errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.kan import BakedKAN, BakedKANError
from ember.models import KAN


@pytest.fixture
def model_and_x():
    ember.manual_seed(0)
    model = KAN(widths=(6, 5, 3), grid_size=4)
    x = ember.tensor(np.random.default_rng(0).uniform(-1.2, 1.2, (40, 6)).astype(np.float32))
    model.layers[1].update_grid(model.layers[0](x))  # one layer on a non-uniform grid
    return model, x


def test_baked_outputs_match_the_model(model_and_x):
    model, x = model_and_x
    with ember.no_grad():
        ref = model(x).numpy()
    baked = BakedKAN.from_model(model)
    np.testing.assert_allclose(baked(x.numpy()), ref, rtol=1e-5, atol=1e-6)
    out = baked(x)
    assert isinstance(out, ember.Tensor) and not out.requires_grad


def test_file_round_trip_is_bit_identical(model_and_x, tmp_path):
    model, x = model_and_x
    baked = BakedKAN.from_model(model)
    path = baked.save(tmp_path / "m.baked.safetensors")
    again = BakedKAN.load(path)
    assert np.array_equal(again(x.numpy()), baked(x.numpy()))
    assert [la.uniform for la in again.layers] == [True, False]


def test_load_errors_name_the_file(model_and_x, tmp_path):
    model, _ = model_and_x
    path = BakedKAN.from_model(model).save(tmp_path / "m.safetensors")
    data = path.read_bytes()
    with pytest.raises(BakedKANError, match="no such"):
        BakedKAN.load(tmp_path / "missing.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(BakedKANError, match="cut.safetensors.*truncated or corrupt"):
        BakedKAN.load(tmp_path / "cut.safetensors")
    (tmp_path / "v9.safetensors").write_bytes(data.replace(b'"format_version":"2"', b'"format_version":"9"'))
    with pytest.raises(BakedKANError, match="version '9' is not supported"):
        BakedKAN.load(tmp_path / "v9.safetensors")
    from ember.io import save_checkpoint

    plain = save_checkpoint(tmp_path / "plain.safetensors", model)
    with pytest.raises(BakedKANError, match="not a baked KAN"):
        BakedKAN.load(plain)


def test_bad_inputs_are_rejected(model_and_x):
    baked = BakedKAN.from_model(model_and_x[0])
    with pytest.raises(ValueError, match="expected 6 input features"):
        baked(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="NaN or inf"):
        baked(np.full((2, 6), np.nan, np.float32))
