"""Checkpoints: bit-exact round trips, atomic writes, and an error naming the file for every broken file."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import safetensors.numpy

import ember
from ember.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from ember.io.checkpoint import FORMAT_VERSION, CheckpointError, load_into, load_model, read_checkpoint, save_checkpoint
from ember.models import MLP, LeNet5, LeNet5Config, MLPConfig


def images(n: int = 4, seed: int = 0) -> ember.Tensor:
    return ember.tensor(np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32))


def snapshot(model) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def assert_unchanged(model, before: dict[str, np.ndarray]) -> None:
    after = snapshot(model)
    assert after.keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def names_file(path) -> str:
    return re.escape(str(path))


@pytest.fixture
def small_mlp():
    ember.manual_seed(1)
    return MLP(MLPConfig(sizes=(784, 32, 10), activation="tanh"))


@pytest.fixture
def saved_mlp(tmp_path, small_mlp):
    path = save_checkpoint(tmp_path / "mlp.safetensors", small_mlp, extra={"epoch": 3})
    return path, small_mlp


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("make", [lambda: MLP(MLPConfig(sizes=(784, 32, 10), activation="tanh")),
                                  lambda: MLP(), lambda: LeNet5()], ids=["mlp_small", "mlp_default", "lenet5"])
def test_round_trip_bit_identical(tmp_path, make):
    ember.manual_seed(3)
    model = make()
    ember.manual_seed(4)
    other = make()  # same architecture, different weights
    x = images()
    assert not np.array_equal(model(x).numpy(), other(x).numpy())
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    load_into(other, path)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
        assert b.dtype == a.dtype


def test_load_model_rebuilds_with_stored_config(saved_mlp):
    path, original = saved_mlp
    model, meta = load_model(path)
    assert type(model) is MLP
    assert model.config.sizes == (784, 32, 10)
    assert model.config.activation == "tanh"
    x = images(6)
    np.testing.assert_array_equal(model(x).numpy(), original(x).numpy())
    assert meta["model"] == "mlp"
    assert meta["config"] == {"sizes": [784, 32, 10], "activation": "tanh", "dropout": 0.0}
    assert meta["extra"] == {"epoch": 3}
    assert meta["format_version"] == str(FORMAT_VERSION)


def test_load_model_lenet_with_config(tmp_path):
    ember.manual_seed(2)
    model = LeNet5(LeNet5Config(num_classes=7))
    path = save_checkpoint(tmp_path / "lenet.safetensors", model)
    rebuilt, meta = load_model(path)
    assert type(rebuilt) is LeNet5 and rebuilt.config.num_classes == 7
    assert meta["model"] == "lenet"
    x = images(3)
    out = rebuilt(x).numpy()
    assert out.shape == (3, 7)
    np.testing.assert_array_equal(out, model(x).numpy())


def test_metadata_on_disk(saved_mlp):
    """The raw safetensors metadata: all strings, with format, version, model, config and extra."""
    path, _ = saved_mlp
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        raw = f.metadata()
        keys = set(f.keys())
    assert raw["format"] == "ember"
    assert raw["format_version"] == str(FORMAT_VERSION) == "2"
    assert raw["model"] == "mlp"
    assert json.loads(raw["config"])["sizes"] == [784, 32, 10]
    assert json.loads(raw["extra"]) == {"epoch": 3}
    assert keys == {"net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"}


def test_read_checkpoint_returns_arrays_and_decoded_metadata(saved_mlp):
    path, model = saved_mlp
    arrays, meta = read_checkpoint(path)
    expected = snapshot(model)
    assert arrays.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(arrays[k], expected[k])
        assert arrays[k].dtype == np.float32
    assert meta["extra"] == {"epoch": 3} and isinstance(meta["config"], dict)


def test_save_overwrites_and_creates_parent(tmp_path, small_mlp):
    path = tmp_path / "deep" / "er" / "ckpt.safetensors"
    save_checkpoint(path, small_mlp, extra={"v": 1})
    with ember.no_grad():
        for p in small_mlp.parameters():
            p.data += 1.0
    save_checkpoint(path, small_mlp, extra={"v": 2})
    arrays, meta = read_checkpoint(path)
    assert meta["extra"] == {"v": 2}
    np.testing.assert_array_equal(arrays["net.1.bias"], small_mlp.net[1].bias.numpy())
    assert sorted(os.listdir(path.parent)) == ["ckpt.safetensors"]


def test_unregistered_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a registered model"):
        save_checkpoint(tmp_path / "x.safetensors", ember.nn.Linear(3, 2))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- atomic writes


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path, small_mlp, monkeypatch):
    path = save_checkpoint(tmp_path / "ckpt.safetensors", small_mlp, extra={"good": True})
    good_bytes = path.read_bytes()
    calls = []

    def broken_save_file(tensors, filename, metadata=None):
        calls.append(filename)
        with open(filename, "wb") as f:
            f.write(b"half a checkpoint" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, MLP(MLPConfig(sizes=(784, 32, 10), activation="tanh")), extra={"good": False})
    assert calls and calls[0] != str(path)  # it wrote somewhere else, beside the target
    assert os.path.dirname(calls[0]) == str(tmp_path)
    assert path.read_bytes() == good_bytes
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]
    monkeypatch.undo()
    assert read_checkpoint(path)[1]["extra"] == {"good": True}


def test_failed_first_write_leaves_nothing(tmp_path, small_mlp, monkeypatch):
    def broken_save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 10)
        raise KeyboardInterrupt  # even an interrupt cleans up

    monkeypatch.setattr(safetensors.numpy, "save_file", broken_save_file)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "new.safetensors", small_mlp)
    assert os.listdir(tmp_path) == []


def test_atomic_helpers(tmp_path):
    target = tmp_path / "a" / "file.txt"
    write_text_atomic(target, "héllo")
    assert target.read_text(encoding="utf-8") == "héllo"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(target.parent) == ["file.txt"]


# ----------------------------------------------------------------------------- broken files


def write_raw(path, tensors: dict, metadata: dict | None):
    safetensors.numpy.save_file(tensors, str(path), metadata=metadata)
    return path


def ember_metadata(**changes) -> dict:
    meta = {"format": "ember", "format_version": "1", "model": "mlp",
            "config": json.dumps({"sizes": [784, 32, 10], "activation": "tanh"}), "extra": "{}"}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def good_tensors(model) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v) for k, v in snapshot(model).items()}


def unknown_version(path, model):
    return write_raw(path, good_tensors(model), ember_metadata(format_version="99"))


def garbage_version(path, model):
    return write_raw(path, good_tensors(model), ember_metadata(format_version="one"))


def foreign_file(path, model):
    return write_raw(path, good_tensors(model), None)


def other_format(path, model):
    return write_raw(path, good_tensors(model), ember_metadata(format="gguf"))


def missing_tensor(path, model):
    tensors = good_tensors(model)
    del tensors["net.3.bias"]
    return write_raw(path, tensors, ember_metadata())


def extra_tensor(path, model):
    return write_raw(path, {**good_tensors(model), "net.5.weight": np.zeros((2, 2), np.float32)}, ember_metadata())


def misshaped_tensor(path, model):
    return write_raw(path, {**good_tensors(model), "net.1.weight": np.zeros((32, 783), np.float32)},
                     ember_metadata())


def corrupt_json(path, model):
    return write_raw(path, good_tensors(model), ember_metadata(extra="{not json"))


def truncated(path, model):
    save_checkpoint(path, model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_header(path, model):
    save_checkpoint(path, model)
    path.write_bytes(path.read_bytes()[:20])
    return path


def zero_bytes(path, model):
    path.write_bytes(b"")
    return path


def random_bytes(path, model):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def missing(path, model):
    return path


def directory(path, model):
    path.mkdir()
    return path


BROKEN = {
    "unknown_version": (unknown_version, "format version '99' is not supported"),
    "garbage_version": (garbage_version, "format version 'one' is not supported"),
    "foreign_safetensors": (foreign_file, "not an ember checkpoint"),
    "other_format": (other_format, "not an ember checkpoint"),
    "missing_tensor": (missing_tensor, "missing keys.*net.3.bias"),
    "extra_tensor": (extra_tensor, "unexpected keys.*net.5.weight"),
    "misshaped_tensor": (misshaped_tensor, r"net.1.weight: shape \(32, 783\)"),
    "corrupt_json": (corrupt_json, "corrupt JSON"),
    "truncated": (truncated, "truncated or corrupt"),
    "truncated_header": (truncated_header, "truncated or corrupt"),
    "zero_bytes": (zero_bytes, "truncated or corrupt"),
    "random_bytes": (random_bytes, "truncated or corrupt"),
    "missing_path": (missing, "no such checkpoint file"),
    "directory": (directory, "no such checkpoint file"),
}


@pytest.mark.parametrize("make, problem", BROKEN.values(), ids=BROKEN.keys())
def test_broken_file_raises_naming_it_and_leaves_model_untouched(tmp_path, small_mlp, make, problem):
    ember.manual_seed(7)
    source = MLP(MLPConfig(sizes=(784, 32, 10), activation="tanh"))  # weights differing from small_mlp's
    path = make(tmp_path / "broken.safetensors", source)
    before = snapshot(small_mlp)
    with pytest.raises(CheckpointError, match=f"{names_file(path)}.*{problem}"):
        load_into(small_mlp, path)
    assert_unchanged(small_mlp, before)
    with pytest.raises(CheckpointError, match=names_file(path)):
        load_model(path)


def test_checkpoint_error_is_a_value_error(tmp_path):
    assert issubclass(CheckpointError, ValueError)
    with pytest.raises(ValueError):
        read_checkpoint(tmp_path / "nothing.safetensors")


def test_wrong_architecture_names_the_model(tmp_path, small_mlp):
    path = save_checkpoint(tmp_path / "lenet.safetensors", LeNet5())
    before = snapshot(small_mlp)
    with pytest.raises(CheckpointError, match=f"{names_file(path)}: does not fit MLP"):
        load_into(small_mlp, path)
    assert_unchanged(small_mlp, before)


def test_non_strict_load_ignores_extra_tensor(tmp_path, small_mlp):
    ember.manual_seed(7)
    source = MLP(MLPConfig(sizes=(784, 32, 10), activation="tanh"))
    path = extra_tensor(tmp_path / "extra.safetensors", source)
    load_into(small_mlp, path, strict=False)
    assert_unchanged(small_mlp, snapshot(source))


def test_unknown_model_name_or_config(tmp_path, small_mlp):
    bad_name = write_raw(tmp_path / "name.safetensors", good_tensors(small_mlp), ember_metadata(model="resnet"))
    with pytest.raises(CheckpointError, match=f"{names_file(bad_name)}: cannot rebuild the model.*resnet"):
        load_model(bad_name)
    bad_config = write_raw(tmp_path / "config.safetensors", good_tensors(small_mlp),
                           ember_metadata(config=json.dumps({"sizes": [784, 10], "width": 3})))
    with pytest.raises(CheckpointError, match=f"{names_file(bad_config)}: cannot rebuild.*width"):
        load_model(bad_config)
    wrong_sizes = write_raw(tmp_path / "sizes.safetensors", good_tensors(small_mlp),
                            ember_metadata(config=json.dumps({"sizes": [784, 64, 10]})))
    with pytest.raises(CheckpointError, match=f"{names_file(wrong_sizes)}: weights do not fit the model 'mlp'"):
        load_model(wrong_sizes)


def test_bfloat16_checkpoints_load_as_float32_exactly(tmp_path, small_mlp, torch):
    """Hugging Face weights often come in bfloat16, which NumPy lacks: each value widens to float32 exactly."""
    import safetensors.torch

    path = save_checkpoint(tmp_path / "mlp.safetensors", small_mlp)
    arrays, meta = read_checkpoint(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    bf16 = {k: torch.from_numpy(v).to(torch.bfloat16) for k, v in arrays.items()}
    stale = tmp_path / "stale_hashes.safetensors"  # converted, but still carrying the float32 hashes
    safetensors.torch.save_file(bf16, str(stale), metadata=meta)
    with pytest.raises(CheckpointError, match="stale_hashes.safetensors: tensor 'net.1.bias' is corrupt"):
        read_checkpoint(stale)
    del meta["sha256"]
    meta["format_version"] = "1"  # what a converter that knows nothing of hashes writes
    bf16_path = tmp_path / "mlp_bf16.safetensors"
    safetensors.torch.save_file(bf16, str(bf16_path), metadata=meta)
    loaded, _ = read_checkpoint(bf16_path)
    for name, t in bf16.items():
        assert loaded[name].dtype == np.float32
        np.testing.assert_array_equal(loaded[name], t.float().numpy())
    model, _ = load_model(bf16_path)
    for name, p in model.state_dict().items():
        np.testing.assert_array_equal(p.numpy(), bf16[name].float().numpy())
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(bf16_path.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        read_checkpoint(truncated)


def test_zero_dimensional_parameters_keep_their_shape_through_checkpoints_and_training_states(tmp_path):
    """mhc2's mixing logit is a 0-d parameter: np.ascontiguousarray made it (1,) on save, and the load failed."""
    from ember.io.checkpoint import load_model, save_checkpoint
    from ember.io.train_state import read_train_state, restore_train_state, save_train_state
    from ember.models import GPT, GPTConfig

    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8, residual="mhc2"))
    assert model.transformer["h"][0].hc_mlp.mix_logit.shape == ()
    opt = model.configure_optimizer(1e-2, 0.1)
    ids = np.random.default_rng(0).integers(0, 11, (2, 8))
    model(ids, ids)[1].backward()
    opt.step()
    save_checkpoint(tmp_path / "m.safetensors", model)
    loaded, _ = load_model(tmp_path / "m.safetensors")
    for (name, a), (_, b) in zip(model.named_parameters(), loaded.named_parameters()):
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    save_train_state(tmp_path / "s.safetensors", model, opt, {"iter": 1})
    arrays, opt_state, _ = read_train_state(tmp_path / "s.safetensors")
    twin = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8, residual="mhc2"))
    twin_opt = twin.configure_optimizer(1e-2, 0.1)
    restore_train_state(tmp_path / "s.safetensors", twin, twin_opt, arrays, opt_state)
    for a, b in zip(opt.state.values(), twin_opt.state.values()):
        for key, value in a.items():
            if hasattr(value, "shape"):
                assert np.shape(b[key]) == np.shape(value), key
