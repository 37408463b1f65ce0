"""Tensor API: creation, dtype policy, errors, comparisons, devices, seeding."""

from __future__ import annotations

import numpy as np
import pytest

import ember


def test_python_floats_default_to_float32_and_float64_on_request():
    assert ember.tensor([1.0, 2.0]).dtype == np.float32
    assert ember.tensor([1.0], dtype=ember.float64).dtype == np.float64
    assert ember.tensor(np.zeros(2)).dtype == np.float64  # arrays keep their dtype
    assert ember.tensor([1, 2]).dtype == np.int64
    assert ember.zeros(2, 3).dtype == np.float32 and ember.zeros(2, dtype="float64").dtype == np.float64
    assert ember.randn(2).dtype == np.float32 and ember.rand(2, dtype=ember.float64).dtype == np.float64


def test_creation_functions():
    assert ember.ones(2, 3).shape == (2, 3) and ember.ones((2, 3)).numpy().sum() == 6
    np.testing.assert_array_equal(ember.arange(5).numpy(), np.arange(5))
    assert ember.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_allclose(ember.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(ember.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(ember.full((2,), 7.0).numpy(), [7.0, 7.0])
    x = ember.randn(3, 4)
    assert ember.zeros_like(x).shape == (3, 4) and ember.ones_like(x).dtype == np.float32
    r = ember.randint(0, 5, (100,))
    assert r.dtype == np.int64 and 0 <= r.numpy().min() and r.numpy().max() < 5
    a = np.arange(3.0)
    assert ember.from_numpy(a).data is a


def test_scalars_never_upcast_float32():
    x = ember.tensor([1.0, 2.0])
    for y in (x + 1, x * 2.5, x / 3, 2.0 - x, 1.0 / x, x ** 2, x * np.float64(2.0), np.float64(2.0) * x):
        assert y.dtype == np.float32


def test_int_tensor_with_float_scalar_becomes_default_float():
    assert (ember.tensor([1, 2]) * 0.5).dtype == np.float32
    assert (ember.tensor([1, 2]) / 2).dtype == np.float32


def test_mixed_float_dtypes_are_an_error_naming_both():
    a, b = ember.ones(2), ember.ones(2, dtype=ember.float64)
    with pytest.raises(TypeError, match="float32 vs float64"):
        a + b


def test_int_operand_meets_float_as_float():
    x = ember.tensor([1.0, 2.0])
    mask = ember.tensor([1, 0])
    assert (x * mask).dtype == np.float32
    assert (x * ember.tensor([True, False])).dtype == np.float32


def test_shape_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"ember\.add.*\(2, 3\).*\(4,\)"):
        ember.ones(2, 3) + ember.ones(4)
    with pytest.raises(ValueError, match=r"matmul"):
        ember.ones(2, 3) @ ember.ones(2, 3)


def test_comparisons_are_boolean_without_grad():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for m in (x > 1.5, x >= 2, x < 2, x <= 2, x == 2, x != 2):
        assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal((x > 1.5).numpy(), [False, True, True])
    assert x.argmax().item() == 2 and not x.argmax().requires_grad


def test_argmax_argmin_axes():
    a = np.random.default_rng(0).standard_normal((3, 4))
    t = ember.tensor(a)
    np.testing.assert_array_equal(t.argmax(axis=1).numpy(), a.argmax(axis=1))
    np.testing.assert_array_equal(t.argmin(axis=0, keepdims=True).numpy(), a.argmin(axis=0, keepdims=True))


def test_item_and_bool_of_non_scalars_raise():
    with pytest.raises(ValueError, match="2 elements"):
        ember.ones(2).item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(ember.ones(2))


def test_repr_shows_dtype_and_grad():
    assert "dtype=float32" in repr(ember.ones(2))
    assert "requires_grad=True" in repr(ember.ones(2, requires_grad=True))
    assert "grad_fn=<MulScalar>" in repr(ember.ones(2, requires_grad=True) * 2.0)


def test_devices():
    assert ember.device("cpu") == ember.ones(1).device
    assert str(ember.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        ember.device("tpu")


def test_cuda_without_cupy_is_a_clear_error():
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed; this checks the error without it")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        ember.device("cuda")
    with pytest.raises(RuntimeError, match="CuPy"):
        ember.ones(2).to("cuda")


def test_manual_seed_repeats_draws_and_initialisation():
    import ember.nn as nn

    ember.manual_seed(123)
    a, la = ember.randn(5).numpy(), nn.Linear(4, 3).weight.numpy().copy()
    ember.manual_seed(123)
    b, lb = ember.randn(5).numpy(), nn.Linear(4, 3).weight.numpy().copy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    ember.manual_seed(124)
    assert not np.array_equal(a, ember.randn(5).numpy())


def test_training_is_bit_reproducible_on_the_cpu():
    import ember.nn.functional as F
    from ember.models import LeNet5

    def run():
        ember.manual_seed(7)
        model = LeNet5()
        opt = ember.optim.Adam(model.parameters())
        x = ember.randn(8, 1, 28, 28)
        y = ember.randint(0, 10, 8)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        return [p.numpy().copy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_reshape_view_flatten_squeeze_unsqueeze():
    x = ember.arange(24).reshape(2, 3, 4)
    assert x.view(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert ember.ones(1, 3, 1).squeeze().shape == (3,) and ember.ones(1, 3, 1).squeeze(0).shape == (3, 1)
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    assert x.permute(2, 0, 1).shape == (4, 2, 3)
    with pytest.raises(ValueError, match="permutation"):
        x.permute(0, 0, 1)


def test_split_and_chunk():
    x = ember.arange(10)
    assert [t.shape[0] for t in x.split(4)] == [4, 4, 2]
    assert [t.shape[0] for t in x.split([3, 7])] == [3, 7]
    assert [t.shape[0] for t in x.chunk(3)] == [4, 4, 2]
    with pytest.raises(ValueError, match="add up"):
        x.split([3, 3])


def test_cat_stack_errors():
    with pytest.raises(ValueError, match="same shape"):
        ember.stack([ember.ones(2), ember.ones(3)])
    with pytest.raises(TypeError, match="different dtypes"):
        ember.cat([ember.ones(2), ember.ones(2, dtype=ember.float64)])
    with pytest.raises(ValueError, match="at least one"):
        ember.cat([])


def test_pad_accepts_numpy_and_torch_forms():
    x = ember.ones(2, 3)
    assert ember.pad(x, ((1, 1), (0, 2))).shape == (4, 5)
    assert ember.pad(x, (0, 2, 1, 1)).shape == (4, 5)
    with pytest.raises(ValueError):
        ember.pad(x, (1, 2, 3))


def test_to_and_casts_are_differentiable():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.to("cpu") is x and x.to("float32") is x
