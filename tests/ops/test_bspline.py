"""B-spline basis: SciPy parity, partition of unity, derivatives, out-of-range behaviour, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.interpolate import BSpline

import ember
import ember.nn.functional as F
from ember.nn.layers.kan import uniform_knots
from ember.ops.bspline import basis_dense, local_basis, scatter_local, uniform_local_polynomials

LO, HI = -1.3, 2.1


def _points(G, k, rng):
    h = (HI - LO) / G
    grid_points = LO + np.arange(G + 1) * h
    return np.concatenate([rng.uniform(LO, HI, 300), grid_points, [LO, HI, HI - 1e-12]])


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform-path", "general-path"])
def test_values_equal_scipy_for_all_grid_sizes_and_orders(uniform):
    rng = np.random.default_rng(0)
    for G in range(1, 11):
        for k in range(1, 6):
            knots = uniform_knots(G, k, LO, HI, 1)
            x = _points(G, k, rng)
            ours = basis_dense(np, x[:, None], knots, k, uniform)[:, 0, :]
            ref = BSpline.design_matrix(x, knots[0], k).toarray()
            np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=0, err_msg=f"G={G} k={k}")


def test_non_uniform_knots_equal_scipy():
    rng = np.random.default_rng(1)
    for k in range(1, 6):
        knots = np.sort(rng.uniform(-3, 3, 2 * k + 6))
        x = np.concatenate([rng.uniform(knots[k], knots[-k - 1], 300), knots[k:-k]])
        ours = basis_dense(np, x[:, None], knots[None], k, False)[:, 0, :]
        ref = BSpline.design_matrix(x, knots, k).toarray()
        np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=0, err_msg=f"k={k}")


@settings(max_examples=60, deadline=None)
@given(G=st.integers(1, 12), k=st.integers(1, 5), x=st.floats(-1.0, 1.0, allow_nan=False))
def test_partition_of_unity_and_non_negativity_inside_the_range(G, k, x):
    knots = uniform_knots(G, k, -1.0, 1.0, 1)
    for uniform in (True, False):
        b = basis_dense(np, np.array([[x]]), knots, k, uniform)[0, 0]
        assert b.min() >= -1e-12
        assert b.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.count_nonzero(b > 1e-15) <= k + 1


def test_derivatives_sum_to_zero_and_match_finite_differences():
    rng = np.random.default_rng(2)
    for k in (1, 2, 3, 5):
        knots = uniform_knots(6, k, -1.0, 1.0, 1)
        x = rng.uniform(-0.99, 0.99, 200)[:, None]
        for uniform in (True, False):
            s, _, dN = local_basis(np, x, knots, k, uniform, derivative=True)
            d = scatter_local(np, s, dN, k, 6 + k)[:, 0]
            np.testing.assert_allclose(d.sum(axis=-1), 0.0, atol=1e-12)
            eps = 1e-6
            fd = (basis_dense(np, x + eps, knots, k, uniform) - basis_dense(np, x - eps, knots, k, uniform))[:, 0]
            np.testing.assert_allclose(d, fd / (2 * eps), atol=1e-6)


def test_outside_the_range_bases_fade_then_vanish():
    """Documented behaviour: between t_0 and lo only the tails of bases that start there remain
    (each basis keeps its Cox–de Boor value), and beyond the extended knots every basis is 0."""
    G, k = 4, 3
    knots = uniform_knots(G, k, -1.0, 1.0, 1)  # h = 0.5, t_0 = -2.5, last knot 2.5
    x = np.array([-3.0, -2.6, -2.0, -1.2, 1.2, 2.0, 2.5, 3.0])
    ref = np.stack([
        np.nan_to_num(BSpline.basis_element(knots[0, m : m + k + 2], extrapolate=False)(x))
        for m in range(G + k)
    ], axis=1)
    for uniform in (True, False):
        b = basis_dense(np, x[:, None], knots, k, uniform)[:, 0]
        np.testing.assert_allclose(b, ref, atol=1e-12)
        sums = b.sum(axis=1)
        assert sums[0] == sums[1] == sums[-2] == sums[-1] == 0  # beyond the knots
        assert 0 < sums[2] < sums[3] < 1 and 0 < sums[5] < sums[4] < 1  # fading tails


def test_uniform_local_polynomials_are_the_cubic_blending_functions():
    P = uniform_local_polynomials(3) * 6
    np.testing.assert_allclose(P, [[1, -3, 3, -1], [4, 0, -6, 3], [1, 3, 3, -3], [0, 0, 0, 1]], atol=1e-12)


def test_nan_or_inf_input_raises():
    knots = uniform_knots(5, 3, -1, 1, 2)
    for bad in (np.nan, np.inf, -np.inf):
        x = ember.tensor(np.array([[0.1, bad]]), requires_grad=True)
        with pytest.raises(ValueError, match="NaN or inf"):
            F.bspline_basis(x, knots, 3)


def test_bad_knots_and_order_raise():
    x = ember.zeros(2, 3, dtype=ember.float64)
    with pytest.raises(ValueError, match="order"):
        F.bspline_basis(x, uniform_knots(5, 3, -1, 1, 3), 0)
    with pytest.raises(ValueError, match="knots must be"):
        F.bspline_basis(x, uniform_knots(5, 3, -1, 1, 2), 3)
    decreasing = uniform_knots(5, 3, -1, 1, 3)[:, ::-1].copy()
    with pytest.raises(ValueError, match="increasing"):
        F.bspline_basis(x, decreasing, 3)


def test_float32_basis_is_float32_and_close_to_float64():
    knots = uniform_knots(5, 3, -1, 1, 4)
    x = np.random.default_rng(3).uniform(-1, 1, (50, 4))
    b32 = F.bspline_basis(ember.tensor(x.astype(np.float32)), knots.astype(np.float32), 3)
    b64 = F.bspline_basis(ember.tensor(x), knots, 3)
    assert b32.dtype == np.float32
    np.testing.assert_allclose(b32.numpy(), b64.numpy(), atol=2e-6)
