"""The fused causal attention op against a naive per-head loop, PyTorch's SDPA, and its own rules
(dropout is unbiased and off in eval, masks never leak the future, bad shapes are refused)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember.nn import functional as F
from ember.ops.attention import causal_mask_t, softmax_keys
from ember.testing import gradcheck


def naive_attention(qkv: np.ndarray, n_head: int) -> np.ndarray:
    """Textbook attention, one batch row, head and query at a time."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    d = c // n_head
    out = np.zeros((b, t, c))
    for n in range(b):
        for h in range(n_head):
            q = qkv[n, :, h * d:(h + 1) * d]
            k = qkv[n, :, c + h * d:c + (h + 1) * d]
            v = qkv[n, :, 2 * c + h * d:2 * c + (h + 1) * d]
            for i in range(t):
                s = np.array([q[i] @ k[j] / math.sqrt(d) for j in range(i + 1)])
                p = np.exp(s - s.max())
                p /= p.sum()
                out[n, i, h * d:(h + 1) * d] = p @ v[: i + 1]
    return out


@pytest.mark.parametrize("b,t,n_head,d", [(1, 1, 1, 4), (2, 7, 3, 4), (3, 16, 4, 8), (1, 33, 2, 16)])
def test_attention_equals_a_naive_per_head_loop(b, t, n_head, d):
    rng = np.random.default_rng(b * 100 + t)
    qkv = rng.standard_normal((b, t, 3 * n_head * d)) * 2.0
    y = F.causal_self_attention(ember.tensor(qkv), n_head).numpy()
    np.testing.assert_allclose(y, naive_attention(qkv, n_head), rtol=1e-12, atol=1e-12)


def test_attention_equals_pytorch_sdpa_forward_and_backward(torch):
    rng = np.random.default_rng(1)
    b, t, n_head, d = 2, 12, 4, 8
    qkv = rng.standard_normal((b, t, 3 * n_head * d))
    g = rng.standard_normal((b, t, n_head * d))
    x = ember.tensor(qkv, requires_grad=True)
    F.causal_self_attention(x, n_head).backward(ember.tensor(g))
    xt = torch.tensor(qkv, requires_grad=True)
    q, k, v = (z.reshape(b, t, n_head, d).transpose(1, 2) for z in xt.split(n_head * d, dim=2))
    yt = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(F.causal_self_attention(ember.tensor(qkv), n_head).numpy(), yt.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_attention_never_looks_ahead():
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((1, 10, 24))
    y = F.causal_self_attention(ember.tensor(qkv), 2).numpy()
    changed = qkv.copy()
    changed[:, 6:] = rng.standard_normal((1, 4, 24)) * 10
    y2 = F.causal_self_attention(ember.tensor(changed), 2).numpy()
    np.testing.assert_array_equal(y[:, :6], y2[:, :6])
    assert not np.allclose(y[:, 6:], y2[:, 6:])


def test_attention_gradient_is_numerically_right_with_large_scores():
    """Scores of ±30 push softmax near one-hot, where an unstable softmax overflows or loses the gradient."""
    rng = np.random.default_rng(3)
    x = ember.tensor(rng.standard_normal((2, 6, 12)) * 6.0, requires_grad=True)
    y = F.causal_self_attention(x, 2)
    assert np.isfinite(y.numpy()).all()
    assert gradcheck(lambda: F.causal_self_attention(x, 2), [x]).ok


def test_attention_keeps_float32():
    x = ember.tensor(np.random.default_rng(4).standard_normal((2, 5, 12)), dtype="float32", requires_grad=True)
    y = F.causal_self_attention(x, 2)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_dropout_is_unbiased_in_training_and_off_in_eval():
    rng = np.random.default_rng(5)
    qkv = ember.tensor(rng.standard_normal((1, 8, 12)))
    clean = F.causal_self_attention(qkv, 2).numpy()
    np.testing.assert_array_equal(F.causal_self_attention(qkv, 2, dropout=0.5, training=False).numpy(), clean)
    ember.manual_seed(0)
    first = F.causal_self_attention(qkv, 2, dropout=0.5).numpy()
    assert not np.allclose(first, clean)
    ember.manual_seed(0)
    np.testing.assert_array_equal(F.causal_self_attention(qkv, 2, dropout=0.5).numpy(), first)
    mean = np.mean([F.causal_self_attention(qkv, 2, dropout=0.5).numpy() for _ in range(3000)], axis=0)
    # each output is a mean of at most 8 values scaled by Bernoulli(0.5)/0.5: std/sqrt(3000) < 0.05
    np.testing.assert_allclose(mean, clean, atol=0.08)


def test_first_query_attends_to_itself_only_under_dropout():
    """Dropout acts on probabilities, never on the mask: the first token's output is 0 or 2·v_0."""
    rng = np.random.default_rng(6)
    qkv = rng.standard_normal((1, 4, 6))
    y = F.causal_self_attention(ember.tensor(qkv), 1, dropout=0.5).numpy()[0, 0]
    v0 = qkv[0, 0, 4:]
    assert np.allclose(y, 0.0) or np.allclose(y, 2.0 * v0)


@pytest.mark.parametrize("shape,n_head,match", [((2, 5, 13), 1, "3C"), ((2, 5, 12), 3, "divisible"),
                                                 ((5, 12), 2, "B, T, 3C")])
def test_attention_rejects_bad_shapes(shape, n_head, match):
    with pytest.raises(ValueError, match=match):
        F.causal_self_attention(ember.zeros(shape), n_head)


def test_attention_rejects_bad_dropout():
    with pytest.raises(ValueError, match="dropout"):
        F.causal_self_attention(ember.zeros((1, 2, 6)), 1, dropout=1.0)


def test_offset_mask_and_key_major_softmax():
    mask = causal_mask_t(np, 5, 2, offset=3)
    assert np.isneginf(mask[4, 0]) and mask[3, 0] == 0 and mask[4, 1] == 0
    st = np.random.default_rng(7).standard_normal((3, 5, 2)) + mask
    p = softmax_keys(np, st.copy())
    np.testing.assert_allclose(p.sum(axis=-2), 1.0)
    assert (p[:, 4, 0] == 0).all()


def test_cached_causal_masks_are_read_only_and_exact():
    from ember.ops.attention import _causal_mask, causal_mask_t

    for tk, tq, offset, dtype in ((5, 5, 0, np.float32), (7, 3, 4, np.float64), (6, 1, 5, np.float32)):
        mask = causal_mask_t(np, tk, tq, offset, dtype)
        assert mask is causal_mask_t(np, tk, tq, offset, dtype) and mask.dtype == dtype
        np.testing.assert_array_equal(mask, _causal_mask(np, tk, tq, offset, dtype))
        j, i = np.arange(tk)[:, None], np.arange(tq)[None, :] + offset
        assert np.array_equal(np.isinf(mask), j > i)
        with pytest.raises(ValueError, match="read-only"):
            mask += 1
