"""Normalisation, Identity and Unflatten: edge cases (empty batches, eps=None, tiny inputs) and
argument errors, compared with PyTorch where it answers."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F


def _pair(torch, a, grad=True):
    return ember.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


# ----------------------------------------------------------------------------- batch norm, empty batch


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (0, 3, 2, 2)])
def test_batch_norm_training_on_an_empty_batch_matches_torch(shape, torch):
    layer = (nn.BatchNorm1d if len(shape) < 4 else nn.BatchNorm2d)(3).to(ember.float64)
    twin = (torch.nn.BatchNorm1d if len(shape) < 4 else torch.nn.BatchNorm2d)(3).double()
    x, tx = _pair(torch, np.zeros(shape))
    out, ref = layer(x), twin(tx)
    assert out.shape == tuple(ref.shape) == shape
    out.backward(np.zeros(shape))
    ref.backward(torch.zeros(shape, dtype=torch.float64))
    assert x.grad.shape == shape
    np.testing.assert_array_equal(layer.weight.grad.numpy(), twin.weight.grad.numpy())  # zeros
    np.testing.assert_array_equal(layer.bias.grad.numpy(), twin.bias.grad.numpy())
    np.testing.assert_array_equal(layer.running_mean.numpy(), twin.running_mean.numpy())  # unchanged
    np.testing.assert_array_equal(layer.running_var.numpy(), twin.running_var.numpy())
    layer.eval()
    assert layer(x).shape == shape


def test_batch_norm_functional_empty_batch_and_empty_positions(torch):
    for shape in [(0, 3), (2, 3, 0), (2, 0, 3)]:
        out = F.batch_norm(ember.zeros(*shape, dtype=ember.float64), None, None, training=True)
        ref = torch.nn.functional.batch_norm(torch.zeros(shape, dtype=torch.float64), None, None, training=True)
        assert out.shape == tuple(ref.shape)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1)])
def test_batch_norm_training_still_refuses_one_value_per_channel(shape, torch):
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(ember.zeros(*shape), None, None, training=True)
    with pytest.raises(ValueError):
        torch.nn.functional.batch_norm(torch.zeros(shape), None, None, training=True)


# ----------------------------------------------------------------------------- group norm


def test_group_norm_matches_torch_on_empty_inputs(torch):
    """An empty batch as PyTorch. With no positions (N, C, 0) PyTorch's weight gradient is NaN (its
    statistics of nothing leak into it); ember gives the empty sum, 0, deliberately."""
    x = F.group_norm(ember.zeros(2, 4, 0, requires_grad=True), 2, ember.ones(4, requires_grad=True))
    assert x.shape == (2, 4, 0)
    w = ember.ones(4, dtype=ember.float64, requires_grad=True)
    F.group_norm(ember.zeros(2, 4, 0, dtype=ember.float64), 2, w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(4))
    for shape in [(0, 4, 3)]:
        x, tx = _pair(torch, np.zeros(shape))
        w, tw = _pair(torch, np.ones(4))
        b, tb = _pair(torch, np.zeros(4))
        out, ref = F.group_norm(x, 2, w, b), torch.nn.functional.group_norm(tx, 2, tw, tb)
        assert out.shape == tuple(ref.shape) == shape
        out.backward(np.zeros(shape))
        ref.backward(torch.zeros(shape, dtype=torch.float64))
        np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())
        np.testing.assert_array_equal(b.grad.numpy(), tb.grad.numpy())


def test_group_norm_float32_and_constant_groups(torch):
    a = np.random.default_rng(0).standard_normal((2, 6, 5)).astype(np.float32)
    a[0, :3] = 2.5  # a constant group: variance 0, normalised to 0 (eps keeps it finite)
    out = F.group_norm(ember.tensor(a), 2)
    ref = torch.nn.functional.group_norm(torch.from_numpy(a), 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("args, match", [
    (((4,), 2), "at least 2 dimensions"),
    (((3, 4), 3), "divisible"),
    (((3, 4), 0), "positive"),
    (((1, 4), 4), "more than 1 value per channel"),
    (((1, 4, 1), 4), "more than 1 value per channel"),
])
def test_group_norm_argument_errors(args, match, torch):
    shape, groups = args
    with pytest.raises(ValueError, match=match):
        F.group_norm(ember.zeros(*shape), groups)
    with pytest.raises((ValueError, RuntimeError, ZeroDivisionError)):
        torch.nn.functional.group_norm(torch.zeros(shape), groups)


def test_group_norm_weight_of_the_wrong_length(torch):
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.group_norm(ember.zeros(3, 4), 2, ember.ones(3))
    with pytest.raises(RuntimeError):
        torch.nn.functional.group_norm(torch.zeros(3, 4), 2, torch.ones(3))
    with pytest.raises(TypeError, match="dtype mismatch"):
        F.group_norm(ember.zeros(3, 4), 2, ember.ones(4, dtype=ember.float64))


def test_group_norm_module(torch):
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError):
        torch.nn.GroupNorm(3, 4)
    m = nn.GroupNorm(2, 4)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in torch.nn.GroupNorm(2, 4).named_parameters()]
    np.testing.assert_array_equal(m.weight.numpy(), np.ones(4))
    np.testing.assert_array_equal(m.bias.numpy(), np.zeros(4))
    assert nn.GroupNorm(2, 4, affine=False).weight is None
    no_bias = nn.GroupNorm(2, 4, bias=False)
    assert no_bias.bias is None and no_bias.weight is not None
    assert "2, 4" in repr(m)


# ----------------------------------------------------------------------------- rms norm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rms_norm_default_eps_is_the_dtypes_machine_epsilon(dtype, torch):
    """Tiny inputs make eps dominate, so the default eps shows in the output."""
    a = (np.random.default_rng(1).standard_normal((3, 4)) * 1e-4).astype(dtype)
    w_np = np.random.default_rng(2).uniform(0.5, 1.5, 4).astype(dtype)
    x, tx = _pair(torch, a)
    w, tw = _pair(torch, w_np)
    out, ref = F.rms_norm(x, (4,), w), torch.nn.functional.rms_norm(tx, (4,), tw)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol)
    out.backward(np.ones((3, 4), dtype=dtype))
    ref.backward(torch.ones(3, 4, dtype=ref.dtype))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol * 10, atol=1e-30)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=rtol * 10)
    eps = float(np.finfo(dtype).eps)
    expected = a / np.sqrt((a.astype(np.float64) ** 2).mean(axis=-1, keepdims=True) + eps) * w_np
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5)


def test_rms_norm_zero_rows_empty_inputs_and_errors(torch):
    np.testing.assert_array_equal(F.rms_norm(ember.zeros(2, 3), 3).numpy(), np.zeros((2, 3)))
    for shape, norm in [((0, 3), (3,)), ((2, 0), (0,))]:
        x, tx = _pair(torch, np.zeros(shape))
        out, ref = F.rms_norm(x, norm), torch.nn.functional.rms_norm(tx, norm)
        assert out.shape == tuple(ref.shape) == shape
        out.backward(np.zeros(shape))
        assert x.grad.shape == shape
    with pytest.raises(ValueError, match="does not end with"):
        F.rms_norm(ember.zeros(2, 3), (4,))
    with pytest.raises(RuntimeError):
        torch.nn.functional.rms_norm(torch.zeros(2, 3), (4,))
    with pytest.raises(ValueError, match="weight must have"):
        F.rms_norm(ember.zeros(2, 3), (3,), ember.ones(4))
    with pytest.raises(ValueError, match="at least one"):
        F.rms_norm(ember.tensor(2.0), ())


def test_rms_norm_module(torch):
    m, twin = nn.RMSNorm([2, 3]), torch.nn.RMSNorm([2, 3])
    assert m.eps is None and twin.eps is None and m.normalized_shape == tuple(twin.normalized_shape)
    assert m.weight.shape == tuple(twin.weight.shape)
    assert nn.RMSNorm(3, elementwise_affine=False).weight is None
    assert nn.RMSNorm(3, eps=1e-3)(ember.ones(2, 3)).shape == (2, 3)


# ----------------------------------------------------------------------------- identity, unflatten


def test_identity_returns_its_input_and_ignores_arguments():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    m = nn.Identity(54, unused_argument=0.1)
    assert m(x) is x and list(m.parameters()) == []


@pytest.mark.parametrize("axis, sizes, shape", [
    (1, (2, 3), (4, 6)), (-1, (2, -1), (4, 6)), (0, [2, 2], (4, 6)), (1, (1, 6, 1), (4, 6)), (1, (0, 5), (2, 0)),
    (-2, (3, 1), (2, 3, 4)),
])
def test_unflatten_matches_torch(axis, sizes, shape, torch):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    x = ember.tensor(a, requires_grad=True)
    out = nn.Unflatten(axis, sizes)(x)
    ref = torch.nn.Unflatten(axis, sizes)(torch.from_numpy(a))
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    out.backward(np.ones(out.shape))
    assert x.grad.shape == shape
    assert nn.Unflatten(dim=axis, unflattened_size=sizes)(x).shape == tuple(ref.shape)


def test_unflatten_errors(torch):
    x = ember.zeros(4, 6)
    with pytest.raises(ValueError, match="multiply"):
        nn.Unflatten(1, (4, 2))(x)
    with pytest.raises(RuntimeError):
        torch.nn.Unflatten(1, (4, 2))(torch.zeros(4, 6))
    with pytest.raises(IndexError, match="out of range"):
        nn.Unflatten(3, (2, 3))(x)
    with pytest.raises(TypeError, match="tuple or list"):
        nn.Unflatten(1, 6)
    with pytest.raises(TypeError):
        torch.nn.Unflatten(1, 6)
    with pytest.raises(ValueError, match="one -1"):
        nn.Unflatten(1, (-1, -1))
    with pytest.raises(ValueError, match="empty"):
        nn.Unflatten(1, ())
    with pytest.raises(ValueError, match="infer"):
        nn.Unflatten(1, (0, -1))(ember.zeros(4, 0))
    with pytest.raises(TypeError, match="both axis"):
        nn.Unflatten(1, (2, 3), dim=1)
