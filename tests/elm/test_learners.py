"""Learners on a toy image problem: each one learns, and the special pieces are checked exactly."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.elm.features import RandomConv, RandomProjection
from ember.elm.learners import (
    DeepELM,
    DeltaRuleReadout,
    DirectFeedbackAlignment,
    ELMClassifier,
    Ensemble,
    FineTunedELM,
    ForwardForward,
    HebbianReadout,
    ProximalALS,
    prox_leaky_relu,
)


def test_elm_learns_and_shift_views_keep_the_gram_size(toy_images):
    X, y, Xt, yt = toy_images
    elm = ELMClassifier(RandomProjection(400, "relu", 0)).fit(X, y)
    assert elm.score(Xt, yt) > 0.85
    aug = ELMClassifier(RandomProjection(400, "relu", 0), shift_views=4).fit(X, y)
    assert aug.readout.n == 5 * len(X) and aug.readout.G.shape == (400, 400)
    with pytest.raises(ValueError, match="λ must be > 0"):
        ELMClassifier(RandomProjection(10), lam=0)


def test_ensemble_averages_member_scores(toy_images):
    X, y, Xt, yt = toy_images
    members = [ELMClassifier(RandomConv(8, 3, 2, seed=s), lam=1.0) for s in range(3)]
    ens = Ensemble(members).fit(X, y)
    np.testing.assert_allclose(ens.decision_function(Xt), np.mean([m.decision_function(Xt) for m in members], 0))
    assert ens.score(Xt, yt) >= min(m.score(Xt, yt) for m in members)


def test_deep_elm_and_proximal_als_learn(toy_images):
    X, y, Xt, yt = toy_images
    deep = DeepELM(RandomProjection(300, "relu", 0), hidden=(200,), cycles=2).fit(X, y)
    assert deep.score(Xt, yt) > 0.8
    prox = ProximalALS(RandomProjection(300, "relu", 0), hidden=(200,), cycles=2).fit(X, y)
    assert prox.score(Xt, yt) > 0.8


def test_prox_leaky_relu_is_the_exact_minimiser():
    rng = np.random.default_rng(0)
    a, m = rng.standard_normal(200) * 2, rng.standard_normal(200) * 2
    alpha, gamma, beta = 0.1, 1.5, 0.7
    z = prox_leaky_relu(a, m, alpha, gamma, beta)
    grid = np.linspace(-8, 8, 160001)

    def objective(zz):
        phi = np.where(zz >= 0, zz, alpha * zz)
        return gamma * (a[:, None] - phi) ** 2 + beta * (zz - m[:, None]) ** 2

    best = objective(grid[None, :]).min(axis=1)
    np.testing.assert_allclose(objective(z[:, None])[:, 0], best, atol=1e-6)


def test_local_rules_learn_and_the_delta_rule_respects_its_stability_bound(toy_images):
    X, y, Xt, yt = toy_images
    heb = HebbianReadout(RandomProjection(400, "relu", 0), epochs=2).fit(X, y)
    assert np.allclose(np.linalg.norm(heb.W, axis=1), 1.0, atol=1e-5) and heb.score(Xt, yt) > 0.6
    delta = DeltaRuleReadout(RandomProjection(400, "relu", 0), epochs=10).fit(X, y)
    assert delta.score(Xt, yt) > 0.8
    h = RandomProjection(400, "relu", 0).fit(X)(X[:2000]).astype(np.float64)
    h = np.hstack([h, np.ones((len(h), 1))])
    lam_max = np.linalg.eigvalsh(h.T @ h / len(h)).max()
    assert delta.eta < 2.0 / lam_max


def test_gradient_based_comparisons_learn(toy_images):
    X, y, Xt, yt = toy_images
    assert FineTunedELM(300, epochs=2).fit(X, y).score(Xt, yt) > 0.85
    assert DirectFeedbackAlignment(hidden=(100, 100), epochs=8).fit(X, y).score(Xt, yt) > 0.8
    assert ForwardForward(hidden=(200, 200), epochs=8).fit(X, y).score(Xt, yt) > 0.5


def test_forward_forward_reports_a_dead_layer(toy_images):
    X, y, _, _ = toy_images

    class Dead(ForwardForward):  # biases so negative that no input can switch a unit on
        @staticmethod
        def _initial_layers(sizes, rng):
            return [(W, b - 100.0) for W, b in ForwardForward._initial_layers(sizes, rng)]

    with pytest.raises(RuntimeError, match="layer 0 died in epoch 1"):
        Dead(hidden=(50,), epochs=3).fit(X, y)


def test_learner_pipelines_feed_activation_statistics(toy_images):
    X, y, Xt, _ = toy_images
    deep = DeepELM(RandomProjection(50, "relu", 0), hidden=(20,), cycles=1).fit(X, y)
    pipeline = deep.pipeline()
    with ember.nn.ActivationStats(pipeline) as stats:
        pipeline(ember.tensor(Xt[:64]))
    names = [r["layer"] for r in stats.report()]
    assert names == ["features", "hidden0", "readout"]
    hidden = deep.stages()[1][1](deep.features(Xt[:64]))
    row = stats.report()[1]
    assert row["mean"] == pytest.approx(float(hidden.mean()), rel=1e-5)
    assert row["zero_fraction"] == pytest.approx(float((hidden == 0).mean()))
