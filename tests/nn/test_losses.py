"""Loss invariants: reductions, stability, masks, label smoothing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn.functional as F


def logits(n=6, c=5, seed=0, dtype=np.float64):
    return ember.tensor(np.random.default_rng(seed).standard_normal((n, c)).astype(dtype), requires_grad=True)


TARGET = np.array([0, 3, 1, 4, 2, 2])


def test_mean_reduction_scales_the_gradient_by_one_over_batch():
    a, b = logits(), logits()
    F.cross_entropy(a, TARGET).backward()
    F.cross_entropy(b, TARGET, reduction="sum").backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy() / 6, rtol=1e-12)


def test_uniform_logits_give_log_classes_and_grads_sum_to_zero():
    x = ember.zeros(4, 7, dtype=ember.float64, requires_grad=True)
    loss = F.cross_entropy(x, np.array([0, 1, 2, 3]))
    assert loss.item() == pytest.approx(math.log(7))
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy().sum(axis=1), 0, atol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits():
    x = ember.tensor([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]], requires_grad=True)
    loss = F.cross_entropy(x, np.array([0, 1]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
    assert loss.item() == pytest.approx(math.log(2) / 2, rel=1e-4)


def test_label_smoothing_zero_is_plain_and_positive_is_larger_when_confident():
    x = ember.tensor([[10.0, 0.0, 0.0]], dtype=ember.float64)
    plain = F.cross_entropy(x, np.array([0])).item()
    assert F.cross_entropy(x, np.array([0]), label_smoothing=0.0).item() == plain
    assert F.cross_entropy(x, np.array([0]), label_smoothing=0.2).item() > plain


def test_ignore_index_rows_get_no_gradient_and_do_not_count():
    x = logits()
    t = TARGET.copy()
    t[[1, 4]] = -100
    loss = F.cross_entropy(x, t)
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy()[[1, 4]], 0)
    keep = [0, 2, 3, 5]
    ref = F.cross_entropy(ember.tensor(x.numpy()[keep]), TARGET[keep]).item()
    assert loss.item() == pytest.approx(ref, rel=1e-12)


def test_masked_cross_entropy_equals_the_selected_rows():
    x = logits()
    mask = np.array([True, False, True, True, False, False])
    loss = F.masked_cross_entropy(x, TARGET, mask)
    ref = F.cross_entropy(ember.tensor(x.numpy()[mask]), TARGET[mask]).item()
    assert loss.item() == pytest.approx(ref, rel=1e-12)


def test_masked_mse_and_huber_average_over_the_mask_only():
    p = ember.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    t = ember.zeros(2, 3, dtype=ember.float64)
    mask = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.float64)
    assert F.masked_mse_loss(p, t, mask).item() == pytest.approx((0 + 4 + 25) / 3)
    F.masked_mse_loss(p, t, mask).backward()
    np.testing.assert_allclose(p.grad.numpy(), 2 * p.numpy() * mask / 3)
    assert F.masked_huber_loss(p, t, mask, delta=1.0).item() == pytest.approx((0 + 1.5 + 4.5) / 3)


def test_huber_is_quadratic_inside_and_linear_outside():
    p = ember.tensor([0.5, 3.0], dtype=ember.float64)
    losses = F.huber_loss(p, ember.zeros(2, dtype=ember.float64), delta=1.0, reduction="none").numpy()
    np.testing.assert_allclose(losses, [0.125, 2.5])


def test_bce_with_logits_is_stable_and_matches_the_formula():
    x = ember.tensor([-1000.0, -2.0, 0.0, 3.0, 1000.0], dtype=ember.float64, requires_grad=True)
    y = ember.tensor([0.0, 1.0, 0.5, 0.0, 1.0], dtype=ember.float64)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    xv, yv = x.numpy()[1:4], y.numpy()[1:4]
    ref = -(yv * np.log(1 / (1 + np.exp(-xv))) + (1 - yv) * np.log(1 - 1 / (1 + np.exp(-xv))))
    np.testing.assert_allclose(loss.numpy()[1:4], ref, rtol=1e-12)
    assert loss.numpy()[0] == pytest.approx(0.0) and loss.numpy()[4] == pytest.approx(0.0)
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_nll_of_log_softmax_equals_cross_entropy():
    x = logits()
    a = F.nll_loss(F.log_softmax(x), TARGET).item()
    assert a == pytest.approx(F.cross_entropy(x, TARGET).item(), rel=1e-12)


def test_loss_argument_errors():
    x = logits()
    with pytest.raises(ValueError, match="targets of shape"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(IndexError, match="out of range"):
        F.cross_entropy(x, np.array([0, 1, 2, 3, 4, 5]))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(x, np.zeros(6))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, TARGET, reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        F.mse_loss(x, ember.zeros(3, 3, dtype=ember.float64))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, TARGET, label_smoothing=1.5)
