"""The compiled max pooling against ``MaxPoolPlan``'s NumPy references: maxima, argmax (PyTorch's first maximum
in row-major order, on data full of ties and signed zeros) and gradients, bit for bit, in every window
configuration; windows holding NaN against PyTorch, where the references disagree among themselves."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels
from ember.ops.pool import MaxPoolPlan
from ember.testing import assert_same_bits

numba = pytest.importorskip("numba")

# (x_shape, kernel, stride, padding, dilation, ceil_mode)
CONFIGS = [
    pytest.param((64, 6, 28, 28), (2, 2), (2, 2), (0, 0), (1, 1), False, id="lenet-pool1"),
    pytest.param((64, 16, 10, 10), (2, 2), (2, 2), (0, 0), (1, 1), False, id="lenet-pool2"),
    pytest.param((3, 2, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False, id="tiled-ragged"),
    pytest.param((2, 3, 8, 10), (3, 3), (3, 3), (0, 0), (1, 1), False, id="tiled-3x3"),
    pytest.param((2, 3, 9, 8), (2, 3), (2, 3), (0, 0), (1, 1), False, id="tiled-2x3"),
    pytest.param((2, 3, 6, 7), (3, 3), (1, 1), (0, 0), (1, 1), False, id="overlapping"),
    pytest.param((2, 3, 9, 9), (3, 3), (2, 2), (1, 1), (1, 1), False, id="padded"),
    pytest.param((2, 2, 9, 10), (3, 2), (1, 2), (1, 1), (2, 3), False, id="dilated"),
    pytest.param((2, 3, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True, id="ceil-mode"),
    pytest.param((2, 3, 8, 6), (3, 3), (2, 2), (1, 0), (1, 1), True, id="ceil-mode-padded"),
    pytest.param((2, 3, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1), False, id="1x1"),
    pytest.param((2, 3, 5, 5), (1, 1), (2, 2), (0, 0), (1, 1), False, id="1x1-strided"),
    pytest.param((3, 2, 1, 9), (1, 3), (1, 2), (0, 1), (1, 1), False, id="one-row"),
    pytest.param((1, 2, 12, 11), (12, 11), (12, 11), (0, 0), (1, 1), False, id="window-of-132-int32-offsets"),
    pytest.param((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False, id="one-element"),
    pytest.param((0, 2, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), False, id="empty-batch"),
]



def tie_heavy(rng, shape, dtype):
    """Values in {-1, -0, 0, 1}: most windows hold several equal maxima, some of them zeros of both signs."""
    return (rng.integers(-1, 2, shape) * rng.choice([1.0, -1.0], shape)).astype(dtype)


def layouts(a):
    """a (NCHW values) as an NCHW-contiguous array and as the batch-last view the convolutions hand out."""
    batch_last = np.ascontiguousarray(a.transpose(1, 2, 3, 0))
    return {"nchw": np.ascontiguousarray(a), "batch-last": batch_last.transpose(3, 0, 1, 2)}


def plan_run(plan, x, g):
    """(maxima NCHW, flat argmax positions, gradient) of ``plan`` under the current backend."""
    out, state = plan.forward(np, x)
    return out.transpose(3, 0, 1, 2), plan.flat_indices(np, state), plan.backward(np, g, state)


@pytest.mark.parametrize("layout", ["nchw", "batch-last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, kernel, stride, padding, dilation, ceil_mode", CONFIGS)
def test_forward_argmax_and_backward_equal_the_references(x_shape, kernel, stride, padding, dilation, ceil_mode,
                                                          dtype, layout):
    plan = MaxPoolPlan(x_shape, kernel, stride, padding, dilation, ceil_mode)
    out_shape = (plan.geo.n, plan.geo.c, plan.geo.ho, plan.geo.wo)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        values = tie_heavy(rng, x_shape, dtype) if seed < 2 else rng.standard_normal(x_shape).astype(dtype)
        x = layouts(values)[layout]
        g = layouts(rng.standard_normal(out_shape).astype(dtype))[layout]
        with kernels.use("numpy"):
            reference = plan_run(plan, x, g)
        with kernels.use("numba"):
            fast = plan_run(plan, x, g)
        for f, r in zip(fast, reference):
            assert_same_bits(f, r)


@pytest.mark.parametrize("x_shape, kernel, stride, padding, dilation, ceil_mode",
                         [c for c in CONFIGS if c.values[0][0]])
def test_ties_go_to_pytorchs_first_maximum(torch, x_shape, kernel, stride, padding, dilation, ceil_mode):
    """Through ``F.max_pool2d``: maxima, indices and the gradient against PyTorch on tie-heavy data."""
    rng = np.random.default_rng(7)
    values = tie_heavy(rng, x_shape, np.float32)
    x = ember.tensor(values, requires_grad=True)
    with kernels.use("numba"):
        out, idx = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        g = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(ember.tensor(g))
    tx = torch.tensor(values, requires_grad=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(tx, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    t_out.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(out.numpy(), t_out.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    # where windows overlap, an input's gradient is a sum that PyTorch adds in another order
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_windows_with_nan_follow_pytorch(torch):
    """A NaN makes its window's maximum NaN in every path; the kernel then routes the gradient to the window's
    last NaN, as PyTorch does (the two reference paths point elsewhere, and not even at the same element)."""
    windows = np.array([[1, 0, 5, np.nan], [np.nan, 1, 2, 3], [1, np.nan, 3, 0], [np.nan, 2, np.nan, 1],
                        [3, 3, 1, 3], [-np.inf, -np.inf, -np.inf, -np.inf]], np.float32)
    values = np.ascontiguousarray(windows.reshape(-1, 1, 2, 2))  # one 2x2 window per image
    x = ember.tensor(values, requires_grad=True)
    g = np.arange(1, len(windows) + 1, dtype=np.float32).reshape(-1, 1, 1, 1)
    with kernels.use("numba"):
        out, idx = F.max_pool2d(x, 2, return_indices=True)
        out.backward(ember.tensor(g))
    tx = torch.tensor(values, requires_grad=True)
    t_out, t_idx = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
    t_out.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(out.numpy(), t_out.detach().numpy())  # NaN where PyTorch has NaN
    np.testing.assert_array_equal(idx.numpy().ravel(), [3, 0, 1, 2, 0, 0])  # last NaN, else first maximum
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("tiled", [True, False])
def test_non_finite_gradients_spread_as_in_the_reference(tiled):
    """The reference multiplies g by a 0/1 mask, so an inf or NaN gradient reaches the whole window as NaN and a
    negative one leaves -0 beside its maximum: the kernel's products are the same."""
    shape, stride = (3, 2, 4, 6), ((2, 2) if tiled else (1, 1))
    plan = MaxPoolPlan(shape, (2, 2), stride, (0, 0), (1, 1), False)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal((3, 2, plan.geo.ho, plan.geo.wo)).astype(np.float32)
    g.flat[[0, 5, 9]] = [np.inf, np.nan, -np.inf]
    with kernels.use("numpy"), np.errstate(invalid="ignore"):  # inf·0
        reference = plan_run(plan, x, g)
    with kernels.use("numba"):
        fast = plan_run(plan, x, g)
    assert_same_bits(fast[2], reference[2])
    assert np.isnan(fast[2]).sum() >= 4
    assert np.signbit(fast[2][fast[2] == 0]).any() == tiled  # overlapping windows add onto zeros: 0 + -0 = 0


def test_state_from_one_backend_feeds_the_others_backward():
    """A forward under numba and a backward under numpy (or the reverse) still route the gradient correctly
    (equal values: the reference's two backward paths differ in the sign of their zeros, g·0 against 0 + g·0)."""
    shape = (4, 3, 6, 6)
    rng = np.random.default_rng(9)
    x = tie_heavy(rng, shape, np.float32)
    for kernel, stride in [((2, 2), (2, 2)), ((2, 2), (1, 2))]:  # non-overlapping windows, then overlapping
        plan = MaxPoolPlan(shape, kernel, stride, (0, 0), (1, 1), False)
        g = rng.standard_normal((4, 3, plan.geo.ho, plan.geo.wo)).astype(np.float32)
        with kernels.use("numpy"):
            _, ref_state = plan.forward(np, x)
            expected = plan.backward(np, g, ref_state)
        with kernels.use("numba"):
            _, fast_state = plan.forward(np, x)
            from_ref_state = plan.backward(np, g, ref_state)
        with kernels.use("numpy"):
            from_fast_state = plan.backward(np, g, fast_state)
        np.testing.assert_array_equal(from_ref_state, expected)
        np.testing.assert_array_equal(from_fast_state, expected)


def test_integers_take_the_reference_and_any_float_layout_the_kernel():
    """The kernels copy their input batch-last, so strided inputs and broadcast (zero-stride) gradients such as
    ``.sum().backward()``'s take them too; integer inputs stay on the reference."""
    values = np.random.default_rng(4).permutation(2 * 3 * 8 * 6).reshape(2, 3, 8, 6)
    strided = values.astype(np.float32)[:, :, ::2]  # (2, 3, 4, 6), neither layout contiguous
    broadcast = np.broadcast_to(np.float32(1), (2, 3, 2, 3))
    with kernels.use("numba"):
        assert not kernels.accepts(values) and kernels.accepts(strided) and kernels.accepts(broadcast)
        from_ints = F.max_pool2d(ember.tensor(values), 2).numpy()
        from_strided = F.max_pool2d(ember.tensor(strided), 2).numpy()

    def grad():
        x = ember.tensor(strided.copy(), requires_grad=True)
        F.max_pool2d(x, 2).sum().backward()
        return x.grad.numpy()

    with kernels.use("numba"):
        fast = grad()
    with kernels.use("numpy"):
        reference = grad()
    np.testing.assert_array_equal(from_ints, values.reshape(2, 3, 4, 2, 3, 2).max(axis=(3, 5)))
    np.testing.assert_array_equal(from_strided, values[:, :, ::2].reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5)))
    np.testing.assert_array_equal(fast, reference)
    assert fast.sum() == 2 * 3 * 2 * 3  # one 1 per window (distinct values: no ties)
