"""nn.MultiheadAttention against torch.nn.MultiheadAttention with the same weights, over its options."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ember
import ember.nn as nn

E, H, L, S, N = 8, 2, 3, 4, 2


def twins(torch, **kwargs):
    ember.manual_seed(0)
    ours = nn.MultiheadAttention(E, H, **kwargs).to(dtype=ember.float64)
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    assert set(state) == set(theirs.state_dict()), "parameter names must match PyTorch's"
    theirs.load_state_dict(state)
    ours.eval(), theirs.eval()
    return ours, theirs


def inputs(torch, batch_first=False, kdim=E, vdim=E, batched=True, seed=0):
    rng = np.random.default_rng(seed)

    def shape(seq, width):
        if not batched:
            return (seq, width)
        return (N, seq, width) if batch_first else (seq, N, width)

    arrays = [rng.standard_normal(shape(L, E)), rng.standard_normal(shape(S, kdim)),
              rng.standard_normal(shape(S, vdim))]
    ours = [ember.tensor(a, requires_grad=True) for a in arrays]
    return ours, [torch.tensor(a, requires_grad=True) for a in arrays]


def masks(torch, kind, seed=1):
    """(ember kwargs, torch kwargs) for a mask configuration."""
    rng = np.random.default_rng(seed)
    out = {}
    if kind in ("bool_attn", "both"):
        m = rng.random((L, S)) > 0.6
        m[:, 0] = False  # every query keeps one key
        out["attn_mask"] = m
    if kind == "float_attn":
        out["attn_mask"] = rng.standard_normal((N * H, L, S))
    if kind in ("padding", "both"):
        m = np.zeros((N, S), dtype=bool)
        m[0, -1] = m[1, -2:] = True
        out["key_padding_mask"] = m
    return ({k: ember.tensor(v) for k, v in out.items()}, {k: torch.from_numpy(v) for k, v in out.items()})


def assert_matches_torch(torch, ours, theirs, xs, txs, kw, tkw):
    out, w = ours(*xs, **kw)
    tout, tw = theirs(*txs, **tkw)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert (w is None) == (tw is None)
    if w is not None:
        np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    cot = np.random.default_rng(7).standard_normal(tout.shape)
    loss = (out * ember.tensor(cot)).sum() + (0.0 if w is None else (w * w).sum())
    tloss = (tout * torch.from_numpy(cot)).sum() + (0.0 if tw is None else (tw * tw).sum())
    loss.backward()
    tloss.backward()
    for x, tx in zip(xs, txs):
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


@pytest.mark.parametrize("batch_first,need_weights,average,mask_kind", [
    (bf, nw, avg, mk) for bf, nw, avg, mk in itertools.product(
        (False, True), (True, False), (True, False), ("none", "bool_attn", "float_attn", "padding", "both"))
    if nw or avg
])
def test_matches_torch(torch, batch_first, need_weights, average, mask_kind):
    ours, theirs = twins(torch, batch_first=batch_first)
    xs, txs = inputs(torch, batch_first=batch_first)
    kw, tkw = masks(torch, mask_kind)
    opts = dict(need_weights=need_weights, average_attn_weights=average)
    assert_matches_torch(torch, ours, theirs, xs, txs, {**kw, **opts}, {**tkw, **opts})


@pytest.mark.parametrize("options", [
    dict(kdim=5, vdim=3), dict(bias=False), dict(add_bias_kv=True), dict(add_zero_attn=True),
    dict(add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=4),
])
@pytest.mark.parametrize("need_weights", [True, False])
def test_options_match_torch(torch, options, need_weights):
    ours, theirs = twins(torch, **options)
    xs, txs = inputs(torch, kdim=options.get("kdim", E), vdim=options.get("vdim", E))
    kw, tkw = masks(torch, "both")
    opts = {"need_weights": need_weights}
    assert_matches_torch(torch, ours, theirs, xs, txs, {**kw, **opts}, {**tkw, **opts})


def test_unbatched_inputs_match_torch(torch):
    ours, theirs = twins(torch)
    xs, txs = inputs(torch, batched=False)
    assert_matches_torch(torch, ours, theirs, xs, txs, {}, {})


def test_causal_hint_with_its_mask(torch):
    ours, theirs = twins(torch, batch_first=True)
    xs, txs = inputs(torch, batch_first=True)
    causal = np.triu(np.ones((L, S), dtype=bool), 1)
    kw = dict(attn_mask=ember.tensor(causal), is_causal=True, need_weights=False)
    tkw = dict(attn_mask=torch.from_numpy(causal), is_causal=True, need_weights=False)
    assert_matches_torch(torch, ours, theirs, xs, txs, kw, tkw)
    with pytest.raises(ValueError, match="is_causal"):
        ours(*xs, is_causal=True)


def test_dropout_acts_in_training_only():
    m = nn.MultiheadAttention(E, H, dropout=0.5, batch_first=True)
    x = ember.randn(N, L, E)
    m.eval()
    a, _ = m(x, x, x)
    b, _ = m(x, x, x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    m.train()
    c, w = m(x, x, x, average_attn_weights=False)
    assert not np.allclose(a.numpy(), c.numpy())
    zeros = (w.numpy() == 0).mean()
    assert 0.2 < zeros < 0.8  # about half of the weights dropped


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="not divisible"):
        nn.MultiheadAttention(10, 3)
    m = nn.MultiheadAttention(E, H)
    x = ember.randn(L, N, E)
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=ember.tensor(np.zeros((N, L + 1), dtype=bool)))
    with pytest.raises(ValueError, match="attn_mask"):
        m(x, x, x, attn_mask=ember.tensor(np.zeros((2, 2), dtype=bool)))
    with pytest.raises(ValueError, match="feature sizes"):
        m(ember.randn(L, N, E + 1), x, x)
