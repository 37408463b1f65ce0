"""Hyper-connections in the GPT: the two bugs of the reference system must be impossible and caught.

1. A mixing initialised to the identity that never learns (and a model that copies its input).
2. Training and inference placing H_res differently: H_res (X + h_post y) against H_res X + h_post y.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import nn
from ember.models import GPT, GPTConfig
from ember.models import gpt as gpt_module
from ember.testing.perturb import logit, perturb_hyper_connections

MODES = [("hc", 3), ("mhc", 4), ("mhc", 2), ("mhc2", 2)]
SMALL = dict(block_size=16, vocab_size=13, n_layer=2, n_head=2, n_embd=8)


def build(residual="plain", streams=0, dtype="float64", seed=0, **overrides) -> GPT:
    ember.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, **overrides}, residual=residual, streams=streams)).to(dtype=dtype)



# ----------------------------------------------------------------------------- Sinkhorn


@pytest.mark.parametrize("n", [2, 3, 4, 6])
def test_sinkhorn_converges_to_a_doubly_stochastic_matrix(n):
    rng = np.random.default_rng(n)
    logits = rng.uniform(-2.0, 2.0, (50, n, n))
    m = nn.functional.sinkhorn(ember.tensor(logits), 200).numpy()
    assert (m > 0).all()
    np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-12)  # rows are normalised last: exact
    np.testing.assert_allclose(m.sum(-2), 1.0, atol=1e-6)


def test_sinkhorn_default_iterations_leave_a_small_column_residual():
    """At 20 iterations the columns are close, not exact: the residual is reported here (and in the README)."""
    rng = np.random.default_rng(0)
    logits = rng.uniform(-2.0, 2.0, (2000, 4, 4))
    m = nn.functional.sinkhorn(ember.tensor(logits), 20).numpy()
    residual = np.abs(m.sum(-2) - 1).max()
    print(f"sinkhorn 20 iterations, logits in [-2, 2], n=4: max column residual {residual:.2e}")
    np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-12)
    assert 0 < residual < 1e-2


def test_sinkhorn_2x2_equals_the_closed_form():
    """Sinkhorn keeps the cross-ratio K11·K22/(K12·K21): its limit is [[a, 1-a], [1-a, a]], a = σ((p+s-q-r)/2)."""
    rng = np.random.default_rng(1)
    logits = rng.uniform(-3.0, 3.0, (100, 2, 2))
    m = nn.functional.sinkhorn(ember.tensor(logits), 3000).numpy()  # slow near a permutation (a = 0.993)
    p, q, r, s = logits[:, 0, 0], logits[:, 0, 1], logits[:, 1, 0], logits[:, 1, 1]
    a = 1 / (1 + np.exp(-(p + s - q - r) / 2))
    expected = np.stack([np.stack([a, 1 - a], -1), np.stack([1 - a, a], -1)], -2)
    np.testing.assert_allclose(m, expected, atol=1e-10)


def test_sinkhorn_refuses_bad_arguments():
    with pytest.raises(ValueError, match="square"):
        nn.functional.sinkhorn(ember.zeros(3, 4))
    with pytest.raises(ValueError, match="at least 1"):
        nn.functional.sinkhorn(ember.zeros(3, 3), 0)


# ----------------------------------------------------------------------------- initialisation


def set_layer_norm_eps(model, eps):
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            m.eps = eps


def copy_shared_weights(src: GPT, dst: GPT) -> None:
    theirs = dict(dst.named_parameters())
    for name, p in src.named_parameters():
        theirs[name].data[...] = p.data


@pytest.mark.parametrize("residual, streams", MODES)
def test_an_n_stream_gpt_starts_as_the_plain_gpt(residual, streams):
    plain, hyper = build(), build(residual, streams)
    copy_shared_weights(plain, hyper)
    ids = np.random.default_rng(2).integers(0, 13, (3, 16))
    at_default_eps = np.abs(hyper(ids).numpy() - plain(ids).numpy()).max()
    print(f"{residual} n={streams}: initial logits differ from plain by {at_default_eps:.1e} at LayerNorm eps 1e-5")
    assert at_default_eps < 5e-2  # summing n streams scales what ln_f sees (eps 1e-5 against a variance ~4e-4)
    set_layer_norm_eps(plain, 0.0)
    set_layer_norm_eps(hyper, 0.0)
    np.testing.assert_allclose(hyper(ids).numpy(), plain(ids).numpy(), atol=1e-6, rtol=0)


def test_initial_mixing_is_moderate_not_an_identity():
    """The reference system's alpha_logit = 5 (a = 0.993) barely mixed and barely learned; ember starts at a = 0.88."""
    model = build("mhc2")
    hc = model.transformer["h"][0].hc_mlp
    a = 1 / (1 + math.exp(-float(hc.mix_logit.item())))
    assert 0.7 < a < 0.95
    mhc = build("mhc", 4).transformer["h"][1].hc_attn
    x = ember.randn(1, 1, 4, 8, dtype="float64")
    _, _, h_res = mhc.coefficients(x)
    diag = np.diagonal(h_res.numpy()[0, 0])
    assert (diag < 0.9).all() and (diag > 0.5).all()


# ----------------------------------------------------------------------------- train/inference parity


def assert_cache_matches_full_forward(model: GPT, ids, rtol: float):
    full = model(ids).numpy()
    cache = model.new_cache(ids.shape[0], ids.shape[1])
    pieces = [model.forward_cached(ids[:, :5], cache)]  # a prompt, then one token at a time
    pieces += [model.forward_cached(ids[:, t : t + 1], cache) for t in range(5, ids.shape[1])]
    cached = np.concatenate([np.asarray(p) for p in pieces], axis=1)
    scale = np.abs(full).max()
    np.testing.assert_allclose(cached, full, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("residual, streams", MODES)
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
def test_kv_cache_decoding_equals_the_training_forward(residual, streams, dtype, rtol):
    model = build(residual, streams, dtype)
    perturb_hyper_connections(model)
    model.eval()
    ids = np.random.default_rng(4).integers(0, 13, (2, 16))
    assert_cache_matches_full_forward(model, ids, rtol)


def test_the_parity_test_catches_the_reference_systems_bug(monkeypatch):
    """Decoding that mixes after adding, H_res (X + h_post y), must fail the parity test above."""
    model = build("mhc2")
    perturb_hyper_connections(model)
    model.eval()

    def wrong_leave(hc, x, y, maps):
        if hc is None:
            return x + y
        _, h_post, h_res = maps
        added = ember.tensor(x) + h_post.unsqueeze(-1) * ember.tensor(y).unsqueeze(-2)
        return (added if h_res is None else h_res @ added).data

    monkeypatch.setattr(gpt_module, "_leave", wrong_leave)
    ids = np.random.default_rng(4).integers(0, 13, (2, 16))
    with pytest.raises(AssertionError):
        assert_cache_matches_full_forward(model, ids, 1e-5)


def test_a_hand_computed_two_stream_layer():
    """mhc2 with a = 0.7, h_pre = σ(1, -1), h_post = 2σ(logit 0.3, logit 0.7) = (0.6, 1.4), branch y = 2u + 1."""
    hc = nn.HyperConnection("mhc2", 2, 2, index=0).to(dtype="float64")
    hc.mix_logit.data[...] = logit(0.7)
    hc.pre_logits.data[...] = [1.0, -1.0]
    hc.post_logits.data[...] = [logit(0.3), logit(0.7)]
    x = ember.tensor([[[1.0, 2.0], [3.0, -4.0]]], dtype="float64")  # one token, streams (1, 2) and (3, -4)
    c = hc.coefficients(x)
    u = hc.read(x, c)
    out = hc.write(x, 2.0 * u + 1.0, c).numpy()[0]
    s1, s2 = 1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(1.0))  # 0.7311, 0.2689
    u_hand = [s1 * 1.0 + s2 * 3.0, s1 * 2.0 + s2 * -4.0]
    y_hand = [2 * u_hand[0] + 1, 2 * u_hand[1] + 1]
    stream1 = [0.7 * 1.0 + 0.3 * 3.0 + 0.6 * y_hand[0], 0.7 * 2.0 + 0.3 * -4.0 + 0.6 * y_hand[1]]
    stream2 = [0.3 * 1.0 + 0.7 * 3.0 + 1.4 * y_hand[0], 0.3 * 2.0 + 0.7 * -4.0 + 1.4 * y_hand[1]]
    np.testing.assert_allclose(u.numpy()[0], u_hand, rtol=1e-14)
    np.testing.assert_allclose(out, [stream1, stream2], rtol=1e-14)


# ----------------------------------------------------------------------------- configuration


def test_config_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="exactly 2 streams"):
        GPTConfig(residual="mhc2", streams=3)
    with pytest.raises(ValueError, match="one stream"):
        GPTConfig(streams=2)
    with pytest.raises(ValueError, match="residual must be"):
        GPTConfig(residual="dense")
    assert GPTConfig(residual="mhc").streams == 4 and GPTConfig(residual="mhc2").streams == 2


def test_the_first_and_last_mixes_are_left_out_and_static_maps_are_not_decayed():
    """The first sub-layer mixes copies of the embedding (equal streams) and the last one's mix is summed away:
    a doubly stochastic H_res changes neither, so mhc/mhc2 leave both out (hc's unconstrained H_res stays)."""
    model = build("mhc", 3)
    first, last = model.transformer["h"][0], model.transformer["h"][-1]
    assert not first.hc_attn.mix and first.hc_mlp.mix and last.hc_attn.mix and not last.hc_mlp.mix
    assert last.hc_mlp.b_res is None and first.hc_attn.phi.shape[1] == 2 * 3
    assert all(hc.mix for hc in (build("hc", 3).transformer["h"][0].hc_attn, build("hc", 3).transformer["h"][1].hc_mlp))
    opt = model.configure_optimizer(1e-3, 0.1)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        if ".hc_" in name:
            assert (id(p) in decayed) == name.endswith("phi"), name


def test_a_hyper_connected_checkpoint_round_trips(tmp_path):
    from ember.io.checkpoint import load_model, save_checkpoint

    model = build("mhc", 3, "float32")
    perturb_hyper_connections(model)
    save_checkpoint(tmp_path / "m.safetensors", model)
    loaded, _ = load_model(tmp_path / "m.safetensors")
    ids = np.random.default_rng(5).integers(0, 13, (1, 16))
    np.testing.assert_array_equal(loaded(ids).numpy(), model(ids).numpy())
    assert loaded.config.residual == "mhc" and loaded.config.streams == 3
