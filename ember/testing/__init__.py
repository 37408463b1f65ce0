"""Test support shared by the test suite and ``ember gradcheck``: gradient checks and the op table."""

from __future__ import annotations

import numpy as np

import ember

from . import device_double  # noqa: F401 - registers the test-double device cpu:other
from .gradcheck import GradcheckResult, gradcheck, numerical_gradients
from .op_table import LAYERS, OPS, LayerCase, OpCase, make_inputs


def assert_same_bits(actual, expected):
    """Equal bit patterns (signed zeros included), NaN where the other has NaN: a NaN's sign and payload are not
    defined by the arithmetic (LLVM may swap the operands of an addition of two NaNs, and x86 keeps the first).
    For kernels that must equal their reference exactly."""
    actual, expected = np.ascontiguousarray(actual), np.ascontiguousarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    if actual.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
        actual, expected = np.where(np.isnan(actual), 0, actual), np.where(np.isnan(expected), 0, expected)
    np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))


def _call(case: OpCase, tensors):
    if case.reseed:
        ember.manual_seed(0)
    return case.fn(*tensors)


def check_op(case: OpCase, seed: int = 0) -> GradcheckResult:
    """Float64 gradient check of one op row."""
    tensors = [ember.tensor(a, requires_grad=True) for a in make_inputs(case, np.float64, seed)]
    return gradcheck(lambda: _call(case, tensors), tensors, eps=case.eps, atol=case.atol, rtol=case.rtol)


def layer_input(case: LayerCase, dtype=np.float64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if case.integer_input:
        return rng.integers(0, case.integer_input, size=case.input_shape)
    return rng.standard_normal(case.input_shape).astype(dtype)


def build_layer(case: LayerCase, dtype=np.float64, seed: int = 0):
    ember.manual_seed(seed)
    module = case.build().to(dtype=dtype)
    module.train(case.train)
    return module


def check_layer(case: LayerCase, seed: int = 0) -> GradcheckResult:
    """Float64 gradient check of a layer w.r.t. its input (if float) and every parameter."""
    module = build_layer(case, np.float64, seed)
    x = ember.tensor(layer_input(case, np.float64, seed))
    tensors = list(module.parameters())
    if not case.integer_input:
        tensors.insert(0, x)
    return gradcheck(lambda: module(x), tensors)


__all__ = [
    "assert_same_bits", "GradcheckResult", "LAYERS", "LayerCase", "OPS", "OpCase", "build_layer", "check_layer",
    "check_op", "gradcheck", "layer_input", "make_inputs", "numerical_gradients",
]
