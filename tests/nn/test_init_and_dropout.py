"""Initialisation statistics and dropout behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.nn import init


def test_kaiming_uniform_bound_and_variance():
    w = ember.empty(512, 256)
    init.kaiming_uniform_(w, nonlinearity="relu")
    bound = math.sqrt(2.0) * math.sqrt(3.0 / 256)
    assert np.abs(w.numpy()).max() <= bound
    assert w.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def test_kaiming_normal_fan_out_and_xavier():
    w = ember.empty(256, 128, 3, 3)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2.0 / (256 * 9)), rel=0.02)
    v = ember.empty(300, 200)
    init.xavier_uniform_(v)
    assert np.abs(v.numpy()).max() <= math.sqrt(6.0 / 500)
    init.xavier_normal_(v, gain=2.0)
    assert v.numpy().std() == pytest.approx(2.0 * math.sqrt(2.0 / 500), rel=0.03)


def test_gains_and_errors():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swishy")
    with pytest.raises(ValueError, match="at least 2"):
        init.xavier_uniform_(ember.empty(3))


def test_linear_default_init_matches_pytorch_bounds():
    layer = nn.Linear(400, 30)
    bound = 1 / math.sqrt(400)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert layer.weight.numpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_dropout_drops_about_p_and_keeps_the_mean():
    x = ember.ones(200, 500)
    y = F.dropout(x, 0.3).numpy()
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert y.mean() == pytest.approx(1.0, abs=0.02)


def test_dropout_is_identity_in_eval_and_reproducible_with_a_seed():
    d = nn.Dropout(0.5)
    x = ember.randn(10, 10)
    np.testing.assert_array_equal(d.eval()(x).numpy(), x.numpy())
    d.train()
    ember.manual_seed(3)
    a = d(x).numpy()
    ember.manual_seed(3)
    np.testing.assert_array_equal(a, d(x).numpy())


def test_dropout_gradient_uses_the_same_mask():
    x = ember.ones(50, 50, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())
