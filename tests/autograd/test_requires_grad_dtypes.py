"""Only floating-point tensors can require gradients, on every path that sets the flag (ember issue 11, case 8).

An integer or bool tensor that requires grad gets an integer gradient: ``[2, 2, 2]`` where the true
gradient is 2.5. PyTorch refuses ("only Tensors of floating point and complex dtype can require
gradients"), and so must the ``requires_grad`` setter, the constructors, ``Parameter`` and
``Module.to``; a cast to an integer dtype leaves the graph, as PyTorch's does.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import ember
from ember import nn

NON_FLOAT = ["int64", "int32", "uint8", "bool"]
REFUSAL = "only floating-point tensors can require gradients, not {}"


def non_float(dtype: str) -> ember.Tensor:
    return ember.tensor(np.array([1, 0, 1]).astype(dtype))


@pytest.mark.parametrize("dtype", NON_FLOAT)
def test_the_requires_grad_setter_refuses_a_non_float_tensor(torch, dtype):
    t = non_float(dtype)
    with pytest.raises(TypeError, match=REFUSAL.format(dtype)):
        t.requires_grad = True
    assert t.requires_grad is False
    reference = torch.tensor([1, 0, 1], dtype=getattr(torch, dtype))
    with pytest.raises(RuntimeError, match="only Tensors of floating point and complex dtype can require gradients"):
        reference.requires_grad = True


@pytest.mark.parametrize("dtype", NON_FLOAT)
def test_the_setter_and_requires_grad_underscore_refuse_alike(dtype):
    with pytest.raises(TypeError) as by_setter:
        non_float(dtype).requires_grad = True
    with pytest.raises(TypeError) as by_method:
        non_float(dtype).requires_grad_()
    assert str(by_setter.value) == str(by_method.value)


@pytest.mark.parametrize("dtype", NON_FLOAT)
def test_setting_requires_grad_false_on_a_non_float_tensor_is_fine(dtype):
    t = non_float(dtype)
    t.requires_grad = False
    t.requires_grad_(False)
    assert t.requires_grad is False


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_the_setter_still_works_on_floats_and_gives_the_true_gradient(torch, dtype):
    values = np.array([1.0, 2.0, 3.0], dtype=dtype)
    x = ember.tensor(values)
    x.requires_grad = True
    (x * 2.5).sum().backward()
    ref = torch.tensor(values.astype(np.float64), requires_grad=True)
    (ref * 2.5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy().astype(np.float64), ref.grad.numpy())
    x.requires_grad = False
    assert x.requires_grad is False


@pytest.mark.parametrize("make", [
    lambda: ember.tensor([1, 2, 3], requires_grad=True),
    lambda: ember.tensor([True, False], requires_grad=True),
    lambda: ember.Tensor(np.arange(3), requires_grad=True),
    lambda: ember.zeros(3, dtype="int64", requires_grad=True),
    lambda: ember.ones(3, dtype="int32", requires_grad=True),
    lambda: ember.full((2,), 7, dtype="int64", requires_grad=True),
    lambda: ember.zeros_like(ember.tensor([1, 2]), requires_grad=True),
    lambda: nn.Parameter(np.arange(3)),
    lambda: nn.Parameter(np.array([True, False])),
    lambda: nn.Parameter(np.ones(3), dtype="int64"),
], ids=["tensor-int", "tensor-bool", "Tensor-int", "zeros", "ones", "full", "zeros_like", "Parameter-int",
        "Parameter-bool", "Parameter-dtype"])
def test_every_constructor_refuses_a_non_float_tensor_that_requires_grad(make):
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        make()


def test_a_non_float_parameter_without_gradient_is_fine():
    p = nn.Parameter(np.arange(3), requires_grad=False)
    assert p.dtype == np.int64 and p.requires_grad is False


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_module_to_refuses_a_non_float_dtype(torch, dtype):
    model = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=f"Linear.to: only floating-point dtypes, got {dtype}"):
        model.to(dtype)
    assert model.weight.dtype == np.float32 and model.weight.requires_grad  # unchanged
    with pytest.raises(TypeError, match="floating point"):  # PyTorch refuses too
        torch.nn.Linear(2, 3).to(getattr(torch, dtype))


# each cast, given the tensor and its library (ember or torch); astype is ember's only
CASTS = {
    "long": lambda t, lib: t.long(),
    "int": lambda t, lib: t.int(),
    "bool": lambda t, lib: t.bool(),
    "to": lambda t, lib: t.to(lib.int64),
    "type": lambda t, lib: t.type(lib.int32),
    "astype": lambda t, lib: t.astype("int64") if lib is ember else t.long(),
}


@pytest.mark.parametrize("name", CASTS)
def test_a_cast_to_integers_leaves_the_graph_as_in_pytorch(torch, name):
    cast = CASTS[name]
    y = cast(ember.tensor([1.5, 2.5, 3.5], requires_grad=True), ember)
    ref = cast(torch.tensor([1.5, 2.5, 3.5], requires_grad=True), torch)
    assert y.requires_grad is ref.requires_grad is False
    assert y.grad_fn is None and ref.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), ref.numpy())
    with pytest.raises(RuntimeError, match="does not require grad"):  # no rounded gradient reaches x
        (y.float() * 2.5).sum().backward()


def test_a_cast_to_integers_does_not_mark_the_source_as_viewed():
    x = ember.tensor([1.5, 2.5], requires_grad=True)
    h = x * 1.0
    h.long()
    h.add_(1.0)  # an in-place op after the cast is still allowed (no alias of h was made)
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_a_float_cast_stays_differentiable():
    x = ember.tensor([1.5, 2.5], dtype="float32", requires_grad=True)
    (x.double() * 2.5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.5, 2.5])


def test_copies_keep_the_flag():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    assert copy.deepcopy(x).requires_grad is True
    assert pickle.loads(pickle.dumps(x)).requires_grad is True
    assert copy.deepcopy(non_float("int64")).requires_grad is False
