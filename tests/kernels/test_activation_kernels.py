"""The compiled GELU (exact, and GPT-2's tanh form) against its references: the same rational erf and tanh in
NumPy (bit for bit), float64 math (float32 round-off), the NumPy op path and PyTorch (gradients of a model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels

numba = pytest.importorskip("numba")
from scipy.special import erf  # noqa: E402

from ember.kernels import activation as K  # noqa: E402


def gelu64(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def gelu_grad64(x, g):
    x = x.astype(np.float64)
    return g * (0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))


def gelu_tanh64(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_tanh_grad64(x, g):
    x = x.astype(np.float64)
    t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
    return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x))


def gelu_tanh_op_backward(x, g):
    """The tanh form's backward as the op runs it after the compiled forward (the reference's formula)."""
    t = ember.tensor(x.copy(), requires_grad=True)
    with kernels.use("numba"):
        F.gelu(t, approximate="tanh").backward(ember.tensor(g))
    return t.grad.numpy()


FORMS = {"none": (K.gelu_forward, K.gelu_backward, gelu64, gelu_grad64),
         "tanh": (K.gelu_tanh_forward, gelu_tanh_op_backward, gelu_tanh64, gelu_tanh_grad64)}


@pytest.mark.parametrize("seed", range(5))
def test_kernel_tanh_is_the_numpy_rational_tanh_bit_for_bit(seed):
    x = (np.random.default_rng(seed).standard_normal(3001) * 4).astype(np.float32)
    x[:7] = [0.0, -0.0, 1e-5, -3e-4, 7.9, -9.0, 40.0]
    y = np.array([K._tanh_kernel(v) for v in x], np.float32)
    np.testing.assert_array_equal(y, K.tanh_reference(x))
    assert np.array_equal(np.signbit(y[:2]), [False, True])
    assert np.abs(y.astype(np.float64) - np.tanh(x.astype(np.float64))).max() < 3.5e-7  # about 6 ulp near ±1


@pytest.mark.parametrize("seed", range(5))
def test_kernel_erf_is_the_numpy_rational_erf_bit_for_bit(seed):
    x = (np.random.default_rng(seed).standard_normal(3001) * 3).astype(np.float32)
    x[:4] = [0.0, -0.0, 4.5, -12.0]
    y = np.empty_like(x)
    for i, v in enumerate(x):
        y[i] = K._erf_kernel(v)
    np.testing.assert_array_equal(y, K.erf_reference(x))
    assert np.abs(y.astype(np.float64) - erf(x.astype(np.float64))).max() < 4e-7  # a few float32 ulp


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape", [(393216,), (7, 13), (1,), (0,), (), (3, 1, 5)])
def test_forward_and_backward_within_float32_round_off(form, shape):
    forward, backward, value64, grad64 = FORMS[form]
    rng = np.random.default_rng(sum(shape) + 1)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    y, dx = forward(x), backward(x, g)
    assert y.dtype == dx.dtype == np.float32 and y.shape == dx.shape == x.shape
    scale = np.maximum(1.0, np.abs(x))  # float32 round-off of x·Φ(x) is relative to |x|
    assert np.all(np.abs(y - value64(x)) <= 4e-7 * scale)
    assert np.all(np.abs(dx - grad64(x, g)) <= 4e-7 * scale * np.maximum(1.0, np.abs(g)))


@pytest.mark.parametrize("form", FORMS)
def test_special_values_match_the_reference_path(form):
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, -10.0, 10.0, 4.0, -4.0, 3e38], np.float32)

    def run():
        x = ember.tensor(values.copy(), requires_grad=True)
        with np.errstate(invalid="ignore", over="ignore"):
            y = F.gelu(x, approximate=form)
            y.backward(ember.tensor(np.ones_like(values)))
        return y.numpy(), x.grad.numpy()

    with kernels.use("numba"):
        fast = run()
    with kernels.use("numpy"):
        reference = run()
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        finite = np.isfinite(a) & np.isfinite(b)
        assert np.array_equal(a[~finite], b[~finite], equal_nan=True)
        assert np.all(np.abs(a[finite] - b[finite]) <= 4e-7 * np.maximum(1.0, np.abs(values[finite])))
        assert np.array_equal(np.signbit(a[3:5]), np.signbit(b[3:5]))  # GELU(±0) = ±0


@pytest.mark.parametrize("form", FORMS)
def test_gpt_gradients_equal_the_reference_paths_and_pytorch(torch, form):
    """A GPT-sized MLP block (Linear, GELU, Linear) under both paths and in PyTorch, same weights."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 64, 128)).astype(np.float32)
    w1 = (rng.standard_normal((512, 128)) * 0.05).astype(np.float32)
    w2 = (rng.standard_normal((128, 512)) * 0.05).astype(np.float32)
    cot = rng.standard_normal((12, 64, 128)).astype(np.float32)

    def ember_grads():
        xs, a, b = (ember.tensor(v, requires_grad=True) for v in (x, w1, w2))
        F.linear(F.gelu(F.linear(xs, a), approximate=form), b).backward(ember.tensor(cot))
        return [t.grad.numpy() for t in (xs, a, b)]

    with kernels.use("numba"):
        fast = ember_grads()
    with kernels.use("numpy"):
        reference = ember_grads()
    tx, ta, tb = (torch.tensor(v, requires_grad=True) for v in (x, w1, w2))
    torch.nn.functional.linear(torch.nn.functional.gelu(torch.nn.functional.linear(tx, ta), approximate=form),
                               tb).backward(torch.tensor(cot))
    for f, r, t in zip(fast, reference, (tx.grad.numpy(), ta.grad.numpy(), tb.grad.numpy())):
        scale = np.abs(t).max()
        assert np.abs(f - t).max() <= 1e-5 * scale
        assert np.abs(f - r).max() <= 1e-5 * scale


def test_float64_and_strided_inputs_take_the_reference():
    x64 = np.linspace(-3, 3, 11)
    with kernels.use("numba"):
        fast = F.gelu(ember.tensor(x64)).numpy()
    np.testing.assert_allclose(fast, gelu64(x64), rtol=1e-15, atol=1e-16)  # SciPy's erf: float64 exact
    strided = np.linspace(-3, 3, 22, dtype=np.float32)[::2]
    assert not kernels.takes(strided)
    with kernels.use("numba"):
        np.testing.assert_allclose(F.gelu(ember.tensor(strided)).numpy(), gelu64(strided), atol=4e-7)


def test_the_table_exp_is_float32_accurate_over_its_whole_range():
    t = np.concatenate([np.linspace(0, 20, 20001), [0.0, 0.125, 17.999, 18.0, np.inf, np.nan]]).astype(np.float32)
    got = np.array([K._exp_neg_kernel(v) for v in t], np.float64)
    want = np.exp(-t.astype(np.float64))
    finite = np.isfinite(t) & (t < 18)
    assert np.all(np.abs(got[finite] - want[finite]) <= 6e-8 + 2e-7 * want[finite])  # a few ulp
    assert np.all(got[~finite | (t >= 18)] == 0.0) and np.all(want[t >= 18] < 1.6e-8)
