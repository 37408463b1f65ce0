"""The compiled B-spline scatter and gather against ``ember.ops.bspline``'s NumPy references, bit for bit (the
scatter moves values, the gather sums its k+1 products in the reference's order), on inputs inside the grid,
on its knots and beyond it (dropped bases); then the KAN ops' outputs and gradients under both backends."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels
from ember.nn.layers.kan import uniform_knots
from ember.ops import bspline as BS

numba = pytest.importorskip("numba")

SHAPES = [(64, 784), (7, 5), (1, 1), (2, 3, 4), (0, 3)]


def assert_same_bits(actual, expected):
    actual, expected = np.ascontiguousarray(actual), np.ascontiguousarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))


def knots_for(n_inputs, k, uniform, dtype, rng):
    """(n_inputs, G + 2k + 1) knots on [-1, 1] with G = 5: evenly spaced, or each interval stretched at random."""
    knots = uniform_knots(5, k, -1.0, 1.0, n_inputs)
    if not uniform:
        steps = np.diff(knots, axis=1) * rng.uniform(0.5, 1.5, (n_inputs, knots.shape[1] - 1))
        knots = knots[:, :1] + np.concatenate([np.zeros((n_inputs, 1)), np.cumsum(steps, axis=1)], axis=1)
    return knots.astype(dtype)


BEYOND = 5.0  # past every extended grid here: all bases dropped


def inputs(rng, shape, dtype):
    """Inside the grid, exactly on its ends (MNIST's pixels at -1: a basis dropped after rounding, in float32), in
    the extensions (some bases dropped) and beyond them (all dropped)."""
    x = rng.uniform(-1.0, 1.0, shape)
    flat = x.reshape(-1)
    flat[::7] = -1.0
    flat[3::11] = 1.0
    flat[5::13] = rng.choice([-BEYOND, BEYOND, -1.9, 1.8], flat[5::13].shape)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("k", [0, 1, 3, 4])
@pytest.mark.parametrize("shape", SHAPES)
def test_scatter_and_gather_equal_the_references(shape, k, uniform, dtype):
    for seed in range(2):
        rng = np.random.default_rng(seed)
        knots = knots_for(shape[-1], k, uniform, dtype, rng)
        n_basis = knots.shape[1] - k - 1
        x = inputs(rng, shape, dtype)
        s, N, dN = BS.local_basis(np, x, knots, k, uniform, derivative=True)
        dense = rng.standard_normal(shape + (n_basis,)).astype(dtype)
        results = {}
        for backend in ("numpy", "numba"):
            with kernels.use(backend):
                assert kernels.takes(N, dN, dense) == (backend == "numba")
                results[backend] = [BS.scatter_local(np, s, N, k, n_basis, lead) for lead in (0, 1)]
                results[backend].append(BS.gather_local_dot(np, dense, s, dN, k))
        for fast, reference in zip(results["numba"], results["numpy"]):
            assert_same_bits(fast, reference)
        assert not results["numba"][0][np.abs(x) == BEYOND].any()


def kan_run(x, base, spline, scaler, knots, k, uniform, cot):
    """Output and every input's gradient of ``F.kan_linear`` under the current backend."""
    tensors = [ember.tensor(v, requires_grad=True) for v in (x, base, spline, scaler)]
    y = F.kan_linear(*tensors, knots, k, uniform)
    y.backward(ember.tensor(cot))
    return [y.numpy()] + [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("uniform", [True, False])
def test_kan_linear_equals_the_reference_path(uniform, dtype):
    rng = np.random.default_rng(3)
    n, in_f, out_f, k = 33, 20, 7, 3
    knots = knots_for(in_f, k, uniform, dtype, rng)
    n_basis = knots.shape[1] - k - 1
    x = inputs(rng, (n, in_f), dtype)
    base = rng.standard_normal((out_f, in_f)).astype(dtype)
    spline = rng.standard_normal((out_f, in_f, n_basis)).astype(dtype)
    scaler = rng.standard_normal((out_f, in_f)).astype(dtype)
    cot = rng.standard_normal((n, out_f)).astype(dtype)
    with kernels.use("numpy"):
        reference = kan_run(x, base, spline, scaler, knots, k, uniform, cot)
    with kernels.use("numba"):
        fast = kan_run(x, base, spline, scaler, knots, k, uniform, cot)
    for f, r in zip(fast, reference):
        assert_same_bits(f, r)


@pytest.mark.parametrize("uniform", [True, False])
def test_bspline_basis_op_equals_the_reference_path(uniform):
    rng = np.random.default_rng(4)
    knots = knots_for(6, 3, uniform, np.float64, rng)
    x = inputs(rng, (5, 6), np.float64)
    cot = rng.standard_normal((5, 6, knots.shape[1] - 4))
    results = {}
    for backend in ("numpy", "numba"):
        with kernels.use(backend):
            xs = ember.tensor(x, requires_grad=True)
            y = F.bspline_basis(xs, knots, 3, uniform)
            y.backward(ember.tensor(cot))
            results[backend] = (y.numpy(), xs.grad.numpy())
    for fast, reference in zip(results["numba"], results["numpy"]):
        assert_same_bits(fast, reference)
