"""ember's hyper-connected GPT against a PyTorch twin written from the formulas (ember/testing/torch_gpt.py).

The model-level independent check of ember's HC/mHC: with perturbed hyper-connection parameters (random φ,
α and biases; asymmetric maps, so H_res's placement and every coefficient matter), ember's logits, loss and
every gradient equal PyTorch autograd's through the twin, and two AdamW steps leave the same parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.models import GPT, GPTConfig
from ember.testing.perturb import perturb_hyper_connections
from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights

SMALL = dict(block_size=12, vocab_size=11, n_layer=3, n_head=2, n_embd=8)
# (residual, streams, other config): GELU tanh, biases and a non-default Sinkhorn count each appear once
CASES = [
    ("hc", 3, dict(bias=True)),
    ("mhc", 4, dict(gelu="tanh")),
    ("mhc", 2, dict(sinkhorn_iters=7)),
    ("mhc2", 2, dict(gelu="tanh")),
]
IDS = [f"{r}-n{n}" for r, n, _ in CASES]
KERNEL_PATHS = ember.kernels.available()  # "numpy", and "numba" where it is installed



def perturbed_pair(torch, residual, streams, extra, seed=0):
    """A float64 ember GPT with perturbed maps (and LayerNorm gains off 1) and its twin holding the same weights."""
    ember.manual_seed(seed)
    model = GPT(GPTConfig(**SMALL, residual=residual, streams=streams, **extra)).to(dtype="float64")
    perturb_hyper_connections(model)
    rng = np.random.default_rng(7)
    for name, p in model.named_parameters():
        if ".ln_" in name:
            p.data[...] = p.data + rng.uniform(-0.3, 0.3, p.shape)
    return model, copy_gpt_weights(torch, model, build_torch_gpt(torch, model.config, sdpa=False))


def batch(seed: int, b: int = 3, t: int = 12):
    rng = np.random.default_rng(seed)
    idx, tgt = rng.integers(0, SMALL["vocab_size"], (b, t)), rng.integers(0, SMALL["vocab_size"], (b, t))
    tgt[0, :3] = -1  # ignored positions
    return idx, tgt


def twin_name(name: str) -> str:
    """The twin lists the tied head once, as the token embedding."""
    return "transformer.wte.weight" if name == "lm_head.weight" else name


@pytest.mark.parametrize("kernels", KERNEL_PATHS)
@pytest.mark.parametrize("residual, streams, extra", CASES, ids=IDS)
def test_logits_loss_and_gradients_equal_the_torch_twin(torch, residual, streams, extra, kernels):
    """On both of ember's kernel paths: the compiled one (linear-domain Sinkhorn per matrix) and the NumPy reference."""
    model, twin = perturbed_pair(torch, residual, streams, extra)
    idx, tgt = batch(1)
    with ember.kernels.use(kernels):
        logits, loss = model(idx, tgt)
        loss.backward()
    tlogits, tloss = twin(torch.from_numpy(idx), torch.from_numpy(tgt))
    tloss.backward()
    np.testing.assert_allclose(logits.numpy(), tlogits.detach().numpy(), rtol=1e-10, atol=1e-13)
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-10)
    twin_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        ref = twin_params[twin_name(name)].grad.numpy()
        assert np.abs(ref).max() > 0, f"{name}: the twin's gradient is zero, the comparison would prove nothing"
        np.testing.assert_allclose(p.grad.numpy(), ref, rtol=1e-8, atol=1e-12 * np.abs(ref).max(), err_msg=name)


@pytest.mark.parametrize("residual, streams, extra", CASES, ids=IDS)
def test_two_adamw_steps_leave_the_same_parameters(torch, residual, streams, extra):
    """Same groups (φ decayed, the static maps not), same updates: the weights agree after two steps."""
    model, twin = perturbed_pair(torch, residual, streams, extra)
    opt = model.configure_optimizer(lr=1e-2, weight_decay=0.1, betas=(0.9, 0.95))
    topt = twin.configure_optimizer(1e-2, 0.1, (0.9, 0.95))
    for step in range(2):
        idx, tgt = batch(10 + step)
        opt.zero_grad()
        model(idx, tgt)[1].backward()
        opt.step()
        topt.zero_grad()
        twin(torch.from_numpy(idx), torch.from_numpy(tgt))[1].backward()
        topt.step()
    twin_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), twin_params[twin_name(name)].detach().numpy(), rtol=1e-8, atol=1e-12,
                                   err_msg=name)


@pytest.mark.parametrize("residual, streams, extra", CASES, ids=IDS)
def test_the_twin_decays_the_same_parameters(torch, residual, streams, extra):
    model, twin = perturbed_pair(torch, residual, streams, extra)
    ember_decayed = {name for g in model.configure_optimizer(1e-3, 0.1).param_groups if g["weight_decay"] > 0
                     for name, p in model.named_parameters() if any(p is q for q in g["params"])}
    names = {id(p): name for name, p in twin.named_parameters()}
    twin_decayed = {names[id(p)] for g in twin.configure_optimizer(1e-3, 0.1, (0.9, 0.95)).param_groups
                    if g["weight_decay"] > 0 for p in g["params"]}
    assert {twin_name(n) for n in ember_decayed} == twin_decayed
    assert any(n.endswith(".phi") for n in twin_decayed) == (residual == "mhc")


@pytest.mark.parametrize("residual, streams, extra", CASES, ids=IDS)
def test_the_twin_starts_with_embers_hyper_connection_values(torch, residual, streams, extra):
    """The twin's own initialisation (written from the spec) gives the same maps as ember's, name by name."""
    model = GPT(GPTConfig(**SMALL, residual=residual, streams=streams, **extra))
    twin = dict(build_torch_gpt(torch, model.config).named_parameters())
    hyper = [(name, p) for name, p in model.named_parameters() if ".hc_" in name]
    assert hyper and {name for name, _ in hyper} == {name for name in twin if ".hc_" in name}
    for name, p in hyper:
        np.testing.assert_allclose(p.numpy(), twin[name].detach().numpy(), rtol=1e-7, err_msg=name)


def test_the_comparison_sees_a_misplaced_mix(torch, monkeypatch):
    """A twin that mixes after adding, H_res (X + h_post y) (the reference system's bug), must disagree with ember
    far beyond the tolerance: the perturbed maps make H_res's placement matter."""
    model, twin = perturbed_pair(torch, "mhc", 4, {})
    block = twin.transformer.h[1]

    def mixed_after_adding(x, branch, hc=block.hc_attn):
        h_pre, h_post, h_res = hc.maps(x)
        added = x + h_post.unsqueeze(-1) * branch((h_pre.unsqueeze(-1) * x).sum(-2)).unsqueeze(-2)
        return h_res @ added

    monkeypatch.setattr(block.hc_attn, "forward", mixed_after_adding)
    idx, _ = batch(1)
    wrong, ours = twin(torch.from_numpy(idx)).detach().numpy(), model(idx).numpy()
    assert np.abs(wrong - ours).max() > 1e-6 * np.abs(ours).max()  # a million times the parity tolerance
