"""Activations against PyTorch where finite differences cannot look: exactly at the kinks, in the far
tails, on 0-d and empty tensors, in place, and with bad arguments."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

# name -> (ember function, torch function name, kwargs, points where the derivative jumps or regions meet)
KINKS = {
    "leaky_relu": (F.leaky_relu, "leaky_relu", dict(negative_slope=0.2), [0.0, -0.0]),
    "leaky_relu_negative": (F.leaky_relu, "leaky_relu", dict(negative_slope=-0.3), [0.0]),
    "elu": (F.elu, "elu", dict(alpha=1.5), [0.0, -0.0]),
    "selu": (F.selu, "selu", {}, [0.0]),
    "celu": (F.celu, "celu", dict(alpha=0.5), [0.0]),
    "hardtanh": (F.hardtanh, "hardtanh", {}, [-1.0, 1.0]),
    "hardtanh_bounds": (F.hardtanh, "hardtanh", dict(min_val=-2.5, max_val=0.5), [-2.5, 0.5]),
    "hardtanh_equal_bounds": (F.hardtanh, "hardtanh", dict(min_val=0.5, max_val=0.5), [0.5]),
    "relu6": (F.relu6, "relu6", {}, [0.0, 6.0]),
    "hardswish": (F.hardswish, "hardswish", {}, [-3.0, 3.0, 0.0]),
    "softplus_threshold": (F.softplus, "softplus", {}, [20.0]),  # beta·x == threshold: the log branch
    "softplus_beta_threshold": (F.softplus, "softplus", dict(beta=2.0, threshold=6.0), [3.0]),
    "softsign": (F.softsign, "softsign", {}, [0.0]),
    "mish": (F.mish, "mish", {}, [0.0]),
    "logsigmoid": (F.logsigmoid, "logsigmoid", {}, [0.0]),
}

OFFSETS = np.array([-1e-3, 0.0, 1e-3])


def assert_matches_torch(torch, fn, torch_fn, x, dtype, rtol, atol=0.0):
    a = ember.tensor(x.astype(dtype), requires_grad=True)
    ta = torch.tensor(x.astype(dtype), requires_grad=True)
    out, ref = fn(a), torch_fn(ta)
    cot = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    assert out.dtype == dtype and a.grad.dtype == dtype
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(KINKS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kinks_match_torch(name, dtype, torch):
    fn, torch_name, kwargs, points = KINKS[name]
    x = np.concatenate([p + OFFSETS for p in points] + [np.array(points)])
    tol = 1e-12 if dtype == np.float64 else 1e-6
    reference = getattr(torch.nn.functional, torch_name)
    assert_matches_torch(torch, lambda a: fn(a, **kwargs), lambda a: reference(a, **kwargs), x, dtype, tol,
                         atol=tol * 1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hardsigmoid_kinks_match_torch(dtype, torch):
    """PyTorch's float64 kernel uses 1/6 rounded to float32 for the slope; ember uses the exact 1/6."""
    x = np.concatenate([p + OFFSETS for p in (-3.0, 3.0)] + [np.array([-3.0, 3.0, 0.0])])
    assert_matches_torch(torch, F.hardsigmoid, torch.nn.functional.hardsigmoid, x, dtype, rtol=1e-6, atol=1e-12)


def test_gradients_at_the_kinks_are_pytorchs_conventions():
    """The side each kink belongs to, stated directly (PyTorch's values, checked above against PyTorch)."""
    def grad_at(fn, value):
        x = ember.tensor([value], dtype=ember.float64, requires_grad=True)
        fn(x).sum().backward()
        return x.grad.item()

    assert grad_at(lambda x: F.leaky_relu(x, 0.2), 0.0) == pytest.approx(0.2)
    assert grad_at(F.hardtanh, -1.0) == 0.0 and grad_at(F.hardtanh, 1.0) == 0.0
    assert grad_at(F.relu6, 0.0) == 0.0 and grad_at(F.relu6, 6.0) == 0.0
    assert grad_at(F.hardswish, -3.0) == 0.0 and grad_at(F.hardswish, 3.0) == 1.0
    assert grad_at(F.hardsigmoid, -3.0) == 0.0 and grad_at(F.hardsigmoid, 3.0) == 0.0
    assert grad_at(lambda x: F.elu(x, 1.5), 0.0) == pytest.approx(1.5)


TAILS = {
    "elu": (F.elu, "elu"), "selu": (F.selu, "selu"), "celu": (F.celu, "celu"), "softplus": (F.softplus, "softplus"),
    "mish": (F.mish, "mish"), "logsigmoid": (F.logsigmoid, "logsigmoid"), "softsign": (F.softsign, "softsign"),
    "hardswish": (F.hardswish, "hardswish"), "leaky_relu": (F.leaky_relu, "leaky_relu"),
}


@pytest.mark.parametrize("name", sorted(TAILS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_far_tails_are_finite_without_warnings_and_match_torch(name, dtype, torch):
    """float32 is held to PyTorch's float64 values (PyTorch's own float32 softsign gradient cancels badly here)."""
    fn, torch_name = TAILS[name]
    x = np.array([-1e4, -800.0, -90.0, -30.0, 30.0, 90.0, 800.0, 1e4])
    a = ember.tensor(x.astype(dtype), requires_grad=True)
    ta = torch.tensor(x.astype(dtype).astype(np.float64), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / divide warnings from NumPy
        out = fn(a)
        out.backward(np.ones(x.shape, dtype=dtype))
    ref = getattr(torch.nn.functional, torch_name)(ta)
    ref.sum().backward()
    assert out.dtype == dtype and a.grad.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=1e-30)
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=rtol, atol=1e-30)


ZERO_D = {
    "leaky_relu": (F.leaky_relu, "leaky_relu"), "elu": (F.elu, "elu"), "selu": (F.selu, "selu"),
    "celu": (F.celu, "celu"), "softplus": (F.softplus, "softplus"), "softsign": (F.softsign, "softsign"),
    "hardtanh": (F.hardtanh, "hardtanh"), "relu6": (F.relu6, "relu6"), "hardswish": (F.hardswish, "hardswish"),
    "mish": (F.mish, "mish"), "logsigmoid": (F.logsigmoid, "logsigmoid"), "softmin": (F.softmin, "softmin"),
}


@pytest.mark.parametrize("name", sorted(ZERO_D))
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3)])
def test_zero_d_and_empty_inputs(name, shape, torch):
    fn, torch_name = ZERO_D[name]
    x = np.full(shape, -0.7)
    kwargs = {"dim": -1} if name == "softmin" else {}
    reference = getattr(torch.nn.functional, torch_name)
    assert_matches_torch(torch, fn, lambda a: reference(a, **kwargs), x, np.float64, 1e-12)


MODULES = [
    ("LeakyReLU", dict(negative_slope=0.1)), ("ELU", dict(alpha=0.5)), ("SELU", {}), ("CELU", dict(alpha=1.5)),
    ("Hardtanh", dict(min_val=-0.5, max_val=0.25)), ("ReLU6", {}), ("Hardswish", {}), ("Hardsigmoid", {}),
    ("Mish", {}), ("ReLU", {}), ("SiLU", {}),
]


@pytest.mark.parametrize("name, kwargs", MODULES, ids=[m[0] for m in MODULES])
def test_inplace_module_writes_into_a_non_leaf_and_backpropagates_like_torch(name, kwargs, torch):
    x_np = np.random.default_rng(1).standard_normal((3, 4)) * 4
    x = ember.tensor(x_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    h, th = x * 1.5, tx * 1.5
    out = getattr(nn, name)(inplace=True, **kwargs)(h)
    ref = getattr(torch.nn, name)(inplace=True, **kwargs)(th)
    assert out is h, "inplace=True returns the input tensor"
    tol = 1e-7 if name == "Hardsigmoid" else 1e-12  # PyTorch's float32 1/6 in its float64 gradient
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), rtol=1e-12)
    (out * out).sum().backward()
    (ref * ref).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=1e-14)


def test_inplace_on_a_leaf_that_requires_grad_raises_as_in_torch(torch):
    x = ember.tensor([-1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        nn.LeakyReLU(inplace=True)(x)
    with pytest.raises(RuntimeError):
        torch.nn.LeakyReLU(inplace=True)(torch.tensor([-1.0, 2.0], requires_grad=True))


def test_inplace_without_a_graph_changes_the_data():
    x = ember.tensor([-2.0, 0.5, 8.0])
    out = F.relu6(x, inplace=True)
    assert out is x
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.5, 6.0])
    leaf = ember.tensor([-2.0, 3.0], requires_grad=True)
    with ember.no_grad():
        F.elu(leaf, inplace=True)
    np.testing.assert_allclose(leaf.numpy(), [np.expm1(-2.0), 3.0], rtol=1e-6)


def test_inplace_result_is_recorded_so_later_reads_see_the_new_values():
    x = ember.tensor([-1.0, 2.0], dtype=ember.float64, requires_grad=True)
    h = x * 1.0
    F.leaky_relu(h, 0.5, inplace=True)
    (h * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.5, 3.0])


def test_float32_stays_float32_through_every_activation():
    x = ember.tensor(np.linspace(-8, 8, 17, dtype=np.float32), requires_grad=True)
    for name in sorted(nn.layers.ACTIVATIONS):
        out = nn.activation(name)(x)
        assert out.dtype == np.float32, name
        out.backward(np.ones(17, dtype=np.float32))
        assert x.grad.dtype == np.float32, name
        x.grad = None


def test_activation_by_name_builds_every_registered_module():
    expected = {"relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "hardtanh",
                "hardswish", "hardsigmoid", "softplus", "softsign", "tanh", "sigmoid", "logsigmoid"}
    assert set(nn.layers.ACTIVATIONS) == expected
    assert isinstance(nn.activation("mish"), nn.Mish)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.activation("swish")


def test_argument_errors(torch):
    x = ember.tensor([0.5, -0.5])
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(x, min_val=1.0, max_val=0.0)
    with pytest.raises(ValueError):
        torch.nn.functional.hardtanh(torch.tensor([0.5]), min_val=1.0, max_val=0.0)
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        F.celu(x, alpha=0.0)
    with pytest.raises(RuntimeError):
        torch.nn.functional.celu(torch.tensor([0.5]), alpha=0.0)


def test_softmax_family_takes_dim_and_dtype(torch):
    a = np.random.default_rng(2).standard_normal((2, 3, 4))
    x, tx = ember.tensor(a), torch.from_numpy(a)
    for fn, ref in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax),
                    (F.softmin, torch.nn.functional.softmin)):
        for d in (0, 1, -1, -3):
            np.testing.assert_allclose(fn(x, dim=d).numpy(), ref(tx, dim=d).numpy(), rtol=1e-12)
            np.testing.assert_allclose(fn(x, d).numpy(), ref(tx, dim=d).numpy(), rtol=1e-12)
        assert fn(x.float(), dim=1, dtype=ember.float64).dtype == np.float64
        with pytest.raises(TypeError, match="both axis"):
            fn(x, 1, dim=1)
        with pytest.raises(IndexError, match="out of range"):
            fn(x, dim=3)
    for module, twin in ((nn.Softmax, torch.nn.Softmax), (nn.LogSoftmax, torch.nn.LogSoftmax),
                         (nn.Softmin, torch.nn.Softmin)):
        m = module(dim=1)
        assert m.dim == 1 and m.axis == 1
        np.testing.assert_allclose(m(x).numpy(), twin(dim=1)(tx).numpy(), rtol=1e-12)
        assert module()(x).numpy() == pytest.approx(twin(dim=-1)(tx).numpy(), rel=1e-12)


def test_softmin_is_softmax_of_the_negation():
    x = ember.tensor(np.random.default_rng(3).standard_normal((3, 5)), requires_grad=True)
    np.testing.assert_allclose(F.softmin(x, dim=1).numpy(), F.softmax(-x, dim=1).numpy(), rtol=1e-14)
