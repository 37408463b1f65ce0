"""``GPT.prepare_for_decoding``: the weights stored transposed for serving keep their values, and everything that
reads them (the forward, the KV-cache decode, a training step, a checkpoint, an export) means what it meant."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.models.gpt import GPT, GPTConfig

SMALL = dict(vocab_size=29, block_size=24, n_layer=2, n_head=2, n_embd=16)


def pair(dtype="float64", seed=0, **overrides):
    """Two equal models: one as built (C-ordered weights), one prepared for decoding."""
    ember.manual_seed(seed)
    plain = GPT(GPTConfig(**{**SMALL, **overrides})).to(dtype=dtype).eval()
    prepared = GPT(plain.config).to(dtype=dtype).eval()
    prepared.load_state_dict(plain.state_dict())
    return plain, prepared.prepare_for_decoding()


def linear_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("bias", [False, True])
def test_the_weights_keep_shape_and_values_and_are_stored_transposed(bias):
    plain, prepared = pair(bias=bias)
    for a, b in zip(linear_weights(plain), linear_weights(prepared)):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a.data, b.data)
        assert b.data.flags.f_contiguous and not b.data.flags.c_contiguous
    assert prepared.lm_head.weight is prepared.transformer["wte"].weight  # still tied: one array, transposed once
    before = [w.data for w in linear_weights(prepared)]
    prepared.prepare_for_decoding()  # a second call changes nothing
    assert all(a is w.data for a, w in zip(before, linear_weights(prepared)))


@pytest.mark.parametrize("seed", range(3))
def test_full_forward_and_cached_decoding_agree_with_the_plain_model(seed):
    plain, prepared = pair(seed=seed)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, SMALL["vocab_size"], (3, 10))
    np.testing.assert_allclose(prepared(ember.Tensor(ids)).data, plain(ember.Tensor(ids)).data, rtol=0, atol=1e-12)
    caches = plain.new_cache(3), prepared.new_cache(3)
    for model, cache in zip((plain, prepared), caches):  # rows at different lengths, as a server holds them
        for row, n in enumerate((4, 7, 2)):
            model.forward_cached(ids[row:row + 1, :n], cache, rows=[row], last_only=True)
    step = rng.integers(0, SMALL["vocab_size"], (3, 1))
    np.testing.assert_allclose(prepared.forward_cached(step, caches[1]), plain.forward_cached(step, caches[0]),
                               rtol=0, atol=1e-12)


def test_a_training_step_on_prepared_weights_equals_one_on_plain_weights():
    plain, prepared = pair()  # float64: Adam's normalised steps would magnify float32 round-off
    rng = np.random.default_rng(1)
    ids = rng.integers(0, SMALL["vocab_size"], (4, 12))
    for model in (plain, prepared):
        model.train()
        opt = model.configure_optimizer(1e-2, 0.1, (0.9, 0.99))
        for _ in range(3):
            logits = model(ember.Tensor(ids[:, :-1]))
            loss = F.cross_entropy(logits.reshape(-1, SMALL["vocab_size"]), ember.Tensor(ids[:, 1:].reshape(-1)))
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), (_, b) in zip(plain.named_parameters(), prepared.named_parameters()):
        np.testing.assert_allclose(b.data, a.data, rtol=0, atol=1e-10, err_msg=name)


def test_a_checkpoint_of_prepared_weights_loads_back_equal(tmp_path):
    from ember.io.checkpoint import load_model, save_checkpoint

    plain, prepared = pair()
    save_checkpoint(tmp_path / "m.safetensors", prepared, model_name="gpt")
    loaded, _ = load_model(tmp_path / "m.safetensors")
    for (name, a), (_, b) in zip(plain.state_dict().items(), loaded.state_dict().items()):
        np.testing.assert_array_equal(b.data if hasattr(b, "data") else b, a.data if hasattr(a, "data") else a,
                                      err_msg=name)


def test_the_hugging_face_export_of_prepared_weights_is_the_plain_models(tmp_path):
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    from ember.io.export import export_hf
    from ember.text import CharTokenizer

    tokenizer = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz ."))
    plain, prepared = pair(dtype="float32", vocab_size=tokenizer.vocab_size)
    export_hf(plain, tokenizer, tmp_path / "plain")
    export_hf(prepared, tokenizer, tmp_path / "prepared")
    a, b = load_file(tmp_path / "plain" / "model.safetensors"), load_file(tmp_path / "prepared" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
