"""The distributed forward-only fits in a world of one (the two-rank sums are in test_mpi.py): the same readout as
the learner's own fit, and their argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember.distributed as dist
from ember.distributed.forward_only import SpreadEnsemble, fit_elm, score
from ember.elm.features import RandomProjection
from ember.elm.learners import ELMClassifier, Ensemble, HebbianReadout


def data(n=700, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 5, 5)).astype(np.float32)
    return X, (X.reshape(n, -1)[:, :4].sum(axis=1) > 0).astype(np.int64)


def elm(seed, lam="gcv", views=0):
    return ELMClassifier(RandomProjection(40, "relu", seed), lam=lam, chunk=100, shift_views=views)


@pytest.mark.parametrize("lam, views, solve_on", [("gcv", 0, 0), (0.3, 4, None)])
def test_fit_elm_alone_equals_the_learners_own_fit(fresh_world, lam, views, solve_on):
    world = dist.init()
    X, y = data()
    mine = fit_elm(elm(3, lam, views), X, y, world, solve_on=solve_on)
    reference = elm(3, lam, views).fit(X, y)
    np.testing.assert_allclose(mine.readout.W, reference.readout.W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mine.readout.bias, reference.readout.bias, rtol=1e-12, atol=1e-14)
    assert mine.readout.lam == reference.readout.lam
    assert score(mine, X, y, world, chunk=128) == reference.score(X, y)


def test_a_spread_ensemble_alone_is_the_ensemble(fresh_world):
    world = dist.init()
    X, y = data()
    spread = SpreadEnsemble(Ensemble([elm(s) for s in range(3)]), world).fit(X, y)
    reference = Ensemble([elm(s) for s in range(3)]).fit(X, y)
    assert spread.mine == [0, 1, 2]
    np.testing.assert_allclose(spread.decision_function(X[:40]), reference.decision_function(X[:40]), rtol=1e-12)
    assert spread.score(X, y) == reference.score(X, y)


def test_fit_elm_refuses_other_learners_and_ranks_that_do_not_exist(fresh_world):
    world = dist.init()
    X, y = data(n=50)
    with pytest.raises(TypeError, match="fit_elm: expected an ELMClassifier.*got HebbianReadout"):
        fit_elm(HebbianReadout(RandomProjection(8, "relu", 0)), X, y, world)
    with pytest.raises(ValueError, match=r"fit_elm: solve_on: root must be a rank in \[0, 1\), got 3"):
        fit_elm(elm(0), X, y, world, solve_on=3)
