"""GPT: parity with a PyTorch twin (forward and backward, float64), KV-cache parity, sampling, config."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import kernels
from ember.models import MODELS, build
from ember.models.gpt import GPT, GPTConfig, sample_next, sample_rows
from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights

SMALL = dict(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=8)


def small_gpt(dtype="float64", **overrides) -> GPT:
    return GPT(GPTConfig(**{**SMALL, **overrides})).to(dtype=dtype)


def tokens(b, t, vocab=13, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=(b, t))


@pytest.mark.parametrize("bias,gelu", [(False, "none"), (True, "tanh")])
def test_forward_and_backward_equal_a_pytorch_twin_in_float64(torch, bias, gelu):
    model = small_gpt(bias=bias, gelu=gelu)
    for p in model.parameters():  # non-trivial LayerNorm gains and biases, so their gradients matter
        p.data += np.random.default_rng(p.numel()).standard_normal(p.shape) * 0.1
    twin = copy_gpt_weights(torch, model, build_torch_gpt(torch, model.config, sdpa=False))
    idx, tgt = tokens(3, 11), tokens(3, 11, seed=1)
    tgt[0, :4] = -1  # ignored positions
    logits, loss = model(idx, tgt)
    loss.backward()
    tlogits, tloss = twin(torch.from_numpy(idx), torch.from_numpy(tgt))
    tloss.backward()
    np.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), rtol=1e-5, atol=1e-10)
    assert abs(loss.item() - tloss.item()) < 1e-10
    twin_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        ref = twin_params[name if name != "lm_head.weight" else "transformer.wte.weight"].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), ref, rtol=1e-5, atol=1e-10, err_msg=name)


def test_an_adamw_step_matches_pytorch(torch):
    """Same groups (decay on ≥2-D only), same update: the weights after three steps agree."""
    model = small_gpt()
    twin = copy_gpt_weights(torch, model, build_torch_gpt(torch, model.config))
    opt = model.configure_optimizer(lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99))
    topt = twin.configure_optimizer(1e-2, 0.1, (0.9, 0.99))
    for step in range(3):
        idx, tgt = tokens(2, 9, seed=step), tokens(2, 9, seed=10 + step)
        opt.zero_grad()
        model(idx, tgt)[1].backward()
        opt.step()
        topt.zero_grad()
        twin(torch.from_numpy(idx), torch.from_numpy(tgt))[1].backward()
        topt.step()
    twin_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), twin_params[name].detach().numpy(), rtol=1e-7, atol=1e-9,
                                   err_msg=name)


def test_init_follows_nanogpt():
    model = GPT(GPTConfig(vocab_size=500, block_size=64, n_layer=6, n_head=4, n_embd=128))
    params = dict(model.named_parameters())
    assert abs(params["transformer.wte.weight"].numpy().std() - 0.02) < 1e-3
    assert abs(params["transformer.h.0.attn.c_attn.weight"].numpy().std() - 0.02) < 1e-3
    residual = 0.02 / math.sqrt(2 * 6)
    for name in ("transformer.h.3.attn.c_proj.weight", "transformer.h.3.mlp.c_proj.weight"):
        assert abs(params[name].numpy().std() - residual) < 0.1 * residual
    assert (params["transformer.h.0.ln_1.weight"].numpy() == 1).all()
    assert model.lm_head.weight is model.transformer["wte"].weight  # tied: one parameter


def test_parameter_count_matches_the_formula():
    c = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    per_block = 4 * c.n_embd * c.n_embd + 8 * c.n_embd * c.n_embd + 2 * c.n_embd
    expected = c.vocab_size * c.n_embd + c.n_layer * per_block + c.n_embd
    model = GPT(c)
    assert model.num_parameters() == expected
    assert model.num_parameters(non_embedding=False) == expected + c.block_size * c.n_embd


def test_optimizer_groups_decay_only_matrices():
    model = small_gpt(bias=True)
    opt = model.configure_optimizer(lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_kv_cache_logits_equal_full_recomputation_at_every_position(dtype, tol):
    model = small_gpt(dtype).eval()
    seq = tokens(2, 16)
    full = model(seq).numpy()
    cache = model.new_cache(batch=2)
    parts = [model.forward_cached(seq[:, :5], cache)]  # prefill, then one token at a time
    for i in range(5, 16):
        parts.append(model.forward_cached(seq[:, i:i + 1], cache))
    cached = np.concatenate(parts, axis=1)
    scale = np.abs(full).max()
    np.testing.assert_allclose(cached, full, rtol=0, atol=tol * scale)
    assert cache.pos == 16
    with pytest.raises(ValueError, match="KVCache full"):
        model.forward_cached(seq[:, :1], cache)


def test_kv_cache_in_chunks_equals_one_prefill():
    model = small_gpt().eval()
    seq = tokens(1, 12)
    one = model.forward_cached(seq, model.new_cache())
    cache = model.new_cache()
    chunks = np.concatenate([model.forward_cached(seq[:, a:b], cache) for a, b in ((0, 3), (3, 8), (8, 12))],
                            axis=1)
    np.testing.assert_allclose(chunks, one, rtol=0, atol=1e-12)


def test_cache_longer_than_the_context_is_refused():
    with pytest.raises(ValueError, match="exceed the model's context"):
        small_gpt().new_cache(max_len=17)


def test_greedy_generation_is_identical_with_and_without_the_cache():
    model = small_gpt()
    prompt = [1, 2, 3]
    with_cache = list(model.generate(prompt, 30, temperature=0))  # slides past block_size 16
    without = list(model.generate(prompt, 30, temperature=0, use_cache=False))
    assert with_cache == without and len(with_cache) == 30


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = small_gpt()
    prompt = [4, 5]
    a = list(model.generate(prompt, 20, temperature=1.0, seed=7))
    assert a == list(model.generate(prompt, 20, temperature=1.0, seed=7))
    assert a == list(model.generate(prompt, 20, temperature=1.0, seed=7, use_cache=False))
    assert a != list(model.generate(prompt, 20, temperature=1.0, seed=8))
    assert list(model.generate(prompt, 12, top_k=1, seed=3)) == list(model.generate(prompt, 12, temperature=0))


def test_sample_next_respects_top_k_and_top_p():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(0)
    top2 = {sample_next(logits, 1.0, 2, None, rng) for _ in range(300)}
    assert top2 == {0, 1}
    nucleus = {sample_next(logits, 1.0, None, 0.75, rng) for _ in range(300)}
    assert nucleus == {0, 1}  # 0.5 + 0.3 reaches 0.75
    counts = np.bincount([sample_next(logits, 1.0, None, None, rng) for _ in range(4000)], minlength=4)
    np.testing.assert_allclose(counts / 4000, [0.5, 0.3, 0.15, 0.05], atol=0.03)
    assert sample_next(logits, 0.0, None, None, rng) == 0


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.8, None, None), (0.7, 5, None),
                                                     (1.3, None, 0.9)])
def test_sample_next_draws_what_generator_choice_draws(temperature, top_k, top_p):
    """The sampler replaces Generator.choice (its checks of p were most of a token's time) with the same draw: one
    uniform against the normalised cumulative sum. Same seed, same ids, for many vocabularies and draws."""
    for seed in range(20):
        data = np.random.default_rng(seed)
        logits = data.standard_normal(int(data.integers(2, 9000))) * 3
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        for _ in range(25):
            z = logits / temperature
            if top_k is not None:
                z = np.where(z < np.partition(z, -top_k)[-top_k], -np.inf, z)
            p = np.exp(z - z.max())
            p /= p.sum()
            if top_p is not None:
                order = np.argsort(-p)
                keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p) + 1)]
                masked = np.zeros_like(p)
                masked[keep] = p[keep]
                p = masked / masked.sum()
            assert sample_next(logits, temperature, top_k, top_p, ours) == int(theirs.choice(p.size, p=p))


@pytest.mark.parametrize("kwargs,match", [({"temperature": -1}, "temperature"), ({"top_k": 0}, "top_k"),
                                          ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p")])
def test_generate_rejects_bad_sampling_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        list(small_gpt().generate([1], 3, **kwargs))


def test_generate_rejects_an_empty_prompt():
    with pytest.raises(ValueError, match="at least one token"):
        list(small_gpt().generate([], 3))


def test_sequence_longer_than_the_context_is_refused():
    with pytest.raises(ValueError, match="longer than the context of 16"):
        small_gpt()(tokens(1, 17))


@pytest.mark.parametrize("kwargs,match", [({"n_embd": 10, "n_head": 4}, "divisible"), ({"n_layer": 0}, "n_layer"),
                                          ({"dropout": 1.0}, "dropout"), ({"gelu": "relu"}, "gelu")])
def test_config_errors_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kwargs)


def test_registered_in_models_and_float32_by_default():
    assert "gpt" in MODELS
    model = build("gpt", {"vocab_size": 20, "block_size": 8, "n_layer": 1, "n_head": 1, "n_embd": 4})
    logits, loss = model(tokens(2, 8, vocab=20), tokens(2, 8, vocab=20, seed=1))
    assert logits.dtype == np.float32 and logits.shape == (2, 8, 20)
    assert abs(loss.item() - math.log(20)) < 0.1  # an untrained model is close to uniform


def test_dropout_makes_training_stochastic_and_eval_deterministic():
    model = small_gpt(dropout=0.2)
    idx = tokens(2, 10)
    ember.manual_seed(1)
    a = model(idx).numpy()
    b = model(idx).numpy()
    assert not np.allclose(a, b)
    model.eval()
    np.testing.assert_array_equal(model(idx).numpy(), model(idx).numpy())


def test_the_torch_twin_can_draw_nanogpts_own_initial_weights(torch):
    config = GPTConfig(**{**SMALL, "n_layer": 3})
    torch.manual_seed(1337)
    a = build_torch_gpt(torch, config, nanogpt_init=True)
    torch.manual_seed(1337)
    b = build_torch_gpt(torch, config, nanogpt_init=True)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), name
    assert a.lm_head.weight is a.transformer.wte.weight
    residual = a.transformer.h[0].mlp.c_proj.weight.std().item()
    assert residual < 0.02 / math.sqrt(2 * 3) * 1.5 < 0.02 * 0.8


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_last_logits_equal_the_full_forwards_last_position(dtype, tol):
    ember.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=65, n_layer=2, n_head=4, n_embd=32)).to(dtype=dtype).eval()
    ids = np.random.default_rng(0).integers(0, 65, (3, 20))
    full = model(ids).numpy()[:, -1]
    last = model.last_logits(ids).numpy()
    assert last.shape == (3, 65)
    np.testing.assert_allclose(last, full, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="longer than the context of 32"):
        model.last_logits(np.zeros((1, 33), np.int64))


@pytest.mark.parametrize("backend", kernels.available())
def test_sampling_rows_together_draws_what_each_row_draws_alone(backend):
    """A server samples all its decode rows in one pass: same ids as sample_next row by row, and every
    generator left where sample_next leaves it, whatever mix of greedy, top-k, top-p and plain rows."""
    with kernels.use(backend):
        for seed in range(40):
            data = np.random.default_rng(seed)
            rows, vocab = int(data.integers(1, 17)), int(data.choice([2, 9, 500, 8192]))
            logits = data.standard_normal((rows, vocab)) * data.uniform(0.1, 8)
            temperatures = data.choice([0.0, 0.4, 0.8, 1.0, 1.7], rows).tolist()
            top_ks = [None if data.random() < 0.7 else int(data.integers(1, vocab + 3)) for _ in range(rows)]
            top_ps = [None if data.random() < 0.7 else float(data.uniform(0.05, 1.0)) for _ in range(rows)]
            ours = [np.random.default_rng([seed, r]) for r in range(rows)]
            alone = [np.random.default_rng([seed, r]) for r in range(rows)]
            got = sample_rows(logits, temperatures, top_ks, top_ps, ours)
            want = [sample_next(logits[r], temperatures[r], top_ks[r], top_ps[r], alone[r]) for r in range(rows)]
            assert got == want, seed
            assert [g.random() for g in ours] == [g.random() for g in alone]
