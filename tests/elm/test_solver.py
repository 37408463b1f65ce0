"""Ridge solver: matches lstsq on the augmented system, streams exactly, GCV near LOO, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from ember.elm.solver import MemoryBudgetError, RidgeAccumulator, SingularGramWarning, ridge


def _problem(n=200, d=12, c=3, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((n, d)) + 2.0  # a large common offset: the intercept must handle it
    W = rng.standard_normal((d, c))
    T = H @ W + 0.5 + noise * rng.standard_normal((n, c))
    return H, T


def test_equals_lstsq_on_the_augmented_system_with_an_unregularised_intercept():
    H, T = _problem()
    lam = 3.7
    acc = ridge(H, T, lam=lam)
    n, d = H.shape
    A = np.block([[H, np.ones((n, 1))], [np.sqrt(lam) * np.eye(d), np.zeros((d, 1))]])
    rhs = np.vstack([T, np.zeros((d, T.shape[1]))])
    sol = np.linalg.lstsq(A, rhs, rcond=None)[0]
    np.testing.assert_allclose(acc.W, sol[:d], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(acc.bias, sol[d], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(acc.predict(H), A[:n] @ sol, rtol=1e-9, atol=1e-9)


def test_streaming_equals_one_shot_and_accumulators_merge():
    H, T = _problem(n=500, seed=1)
    one = RidgeAccumulator(H.shape[1], T.shape[1]).add(H, T).solve(0.5)
    streamed = RidgeAccumulator(H.shape[1], T.shape[1])
    for i in range(0, 500, 37):
        streamed.add(H[i:i + 37], T[i:i + 37])
    streamed.solve(0.5)
    np.testing.assert_allclose(streamed.W, one.W, rtol=1e-10, atol=1e-12)
    a, b = RidgeAccumulator(12, 3), RidgeAccumulator(12, 3)
    a.shift = b.shift = np.zeros(12)
    a.add(H[:300], T[:300])
    b.add(H[300:], T[300:])
    merged = a.merge(b).solve(0.5)
    np.testing.assert_allclose(merged.W, one.W, rtol=1e-9, atol=1e-11)


def test_float32_chunks_accumulate_into_float64_accurately():
    H, T = _problem(n=2000, d=30, seed=2)
    exact = ridge(H, T, lam=1.0)
    single = ridge(H.astype(np.float32), T, lam=1.0)
    assert single.G.dtype == np.float64
    np.testing.assert_allclose(single.W, exact.W, rtol=1e-3, atol=1e-4)


def _loo_errors(H, T, lambdas):
    """Exact leave-one-out squared error of ridge with an unregularised intercept, by the hat matrix."""
    n, d = H.shape
    Hc, Tc = H - H.mean(0), T - T.mean(0)
    out = []
    for lam in lambdas:
        A = Hc @ np.linalg.solve(Hc.T @ Hc + lam * np.eye(d), Hc.T) + np.full((n, n), 1.0 / n)
        resid = (Tc - (A - 1.0 / n) @ Tc) / (1 - np.diag(A))[:, None]
        out.append(float((resid**2).sum()))
    return np.array(out)


def test_gcv_lambda_lands_near_the_leave_one_out_minimum():
    H, T = _problem(n=150, d=40, seed=3, noise=2.0)
    acc = RidgeAccumulator(40, 3).add(H, T)
    lambdas = np.logspace(-3, 4, 50)
    result, _, _ = acc.gcv(lambdas)
    loo = _loo_errors(H, T, lambdas)
    best_loo = lambdas[int(np.argmin(loo))]
    assert abs(np.log10(result.best) - np.log10(best_loo)) <= 0.5  # within half a decade
    chosen = loo[int(np.argmin(result.gcv))]
    assert chosen <= 1.05 * loo.min()
    fitted = acc.solve_gcv(lambdas)
    np.testing.assert_allclose(fitted.W, RidgeAccumulator(40, 3).add(H, T).solve(result.best).W, rtol=1e-7)


def test_lambda_must_be_positive():
    acc = RidgeAccumulator(4, 2).add(*_problem(d=4, c=2))
    for lam in (0.0, -1.0):
        with pytest.raises(ValueError, match="λ must be > 0"):
            acc.solve(lam)
    with pytest.raises(ValueError, match="every λ"):
        acc.gcv(np.array([1.0, 0.0]))


def test_nan_features_are_an_error():
    H, T = _problem(d=4, c=2)
    H[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        RidgeAccumulator(4, 2).add(H, T)


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(n, 4\).*\(n, 2\)"):
        RidgeAccumulator(4, 2).add(np.zeros((5, 3)), np.zeros((5, 2)))


def test_a_memory_budget_is_checked_before_allocating():
    with pytest.raises(MemoryBudgetError, match=r"about .* GiB, over the memory budget"):
        RidgeAccumulator(200_000, 10, budget=1 << 30)  # a 200k x 200k Gram would be 300+ GiB


def test_a_singular_gram_falls_back_with_a_warning():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((100, 3))
    H = np.hstack([base, base, base[:, :1]])  # duplicated features: rank 3 of 7
    T = base @ rng.standard_normal((3, 2))
    acc = RidgeAccumulator(7, 2).add(H, T)
    with pytest.warns(SingularGramWarning, match="not numerically positive definite"):
        acc.solve(1e-300)
    np.testing.assert_allclose(acc.predict(H), T, atol=1e-6)
