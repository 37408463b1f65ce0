"""Element-wise math, logical/bitwise ops, scans, products, sums, clamp, lerp and einsum against PyTorch:
integer and bool results, type promotion, edge values (NaN, inf, ±0, .5 ties), gradients at zeros and
ties, and argument errors. The differentiable paths are also rows of the op table (op_table/pointwise.py)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.testing import gradcheck

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8"]
SIGNED = ["int8", "int16", "int32", "int64"]


def _pair(torch, array):
    """The same data as an ember tensor and a torch tensor."""
    array = np.asarray(array)
    return ember.tensor(array), torch.from_numpy(array.copy())


def assert_same(ours, theirs, exact=True):
    """Same dtype, shape and values (NaN-aware), and ours carries no gradient unless it is float."""
    ref = theirs.detach().numpy()
    assert ours.dtype == ref.dtype, f"dtype {ours.dtype} vs PyTorch {ref.dtype}"
    assert ours.shape == ref.shape
    if exact:
        np.testing.assert_array_equal(ours.numpy(), ref)
    else:
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, atol=1e-7)


def assert_both_raise(our_call, torch_call, error):
    with pytest.raises(error):
        our_call()
    with pytest.raises(Exception):  # noqa: B017 - PyTorch raises RuntimeError, TypeError or NotImplementedError
        torch_call()


# ----------------------------------------------------------------------------- integer division


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod"])
def test_integer_division_matches_torch_with_negative_operands(torch, name, dtype):
    rng = np.random.default_rng(0)
    lo = 0 if dtype == "uint8" else -20
    a = rng.integers(lo, 20, size=(4, 5)).astype(dtype)
    b = rng.integers(1, 7, size=(5,)).astype(dtype)
    if dtype != "uint8":
        b[::2] *= -1
    (ea, ta), (eb, tb) = _pair(torch, a), _pair(torch, b)
    ours = getattr(ember, name)(ea, eb)
    assert_same(ours, getattr(torch, name)(ta, tb))
    assert not ours.requires_grad


@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod"])
def test_float_division_matches_torch_at_signs_zeros_and_infinities(torch, name):
    a = np.array([-7.5, 7.5, -7.5, 7.5, 0.5, -0.0, 3.0, -3.0, np.inf, 1.0, 6.0, -6.0])
    b = np.array([2.0, -2.0, -2.0, 2.0, 0.0, 3.0, np.inf, np.inf, 2.0, -0.0, 3.0, 3.0])
    (ea, ta), (eb, tb) = _pair(torch, a), _pair(torch, b)
    with np.errstate(all="ignore"):  # NumPy warns about x / 0 (IEEE inf or nan), PyTorch does not
        ours = getattr(ember, name)(ea, eb)
    assert_same(ours, getattr(torch, name)(ta, tb))


@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod"])
def test_integer_division_by_zero_raises_as_in_torch(torch, name):
    (ea, ta), (eb, tb) = _pair(torch, np.array([3, 4])), _pair(torch, np.array([1, 0]))
    assert_both_raise(lambda: getattr(ember, name)(ea, eb), lambda: getattr(torch, name)(ta, tb), ZeroDivisionError)


@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod"])
def test_division_of_bools_is_rejected_as_in_torch(torch, name):
    (ea, ta) = _pair(torch, np.array([True, False]))
    assert_both_raise(lambda: getattr(ember, name)(ea, ea), lambda: getattr(torch, name)(ta, ta), TypeError)


def test_remainder_and_floor_divide_take_a_number_on_either_side(torch):
    (ea, ta) = _pair(torch, np.array([-3, 2, 5]))
    assert_same(ember.remainder(7, ea), torch.remainder(7, ta))
    assert_same(ember.floor_divide(7, ea), torch.floor_divide(7, ta))
    assert_same(ember.remainder(ea, -2), torch.remainder(ta, -2))
    assert_same(ember.remainder(ea, 2.5), torch.remainder(ta, 2.5))  # int tensor with a float: default float
    assert_same(ember.fmod(ea, 2), torch.fmod(ta, 2))


def test_floor_divide_has_no_gradient_and_remainder_has_torchs():
    x = ember.tensor([5.5, -3.25], requires_grad=True)
    y = ember.tensor([2.0, 2.0], requires_grad=True)
    assert not ember.floor_divide(x, y).requires_grad
    r = ember.remainder(x, y)
    r.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(y.grad.numpy(), [-2.0, 2.0])  # -floor(x / y)


# ----------------------------------------------------------------------------- type promotion


PROMOTION_CASES = [
    ("int8 tensor, python int", lambda m: (m.tensor(np.array([1, 2], dtype=np.int8)), 3)),
    ("int8 tensor, 0-d int64 tensor", lambda m: (m.tensor(np.array([1, 2], dtype=np.int8)), m.tensor(np.array(3)))),
    ("uint8 and int8", lambda m: (m.tensor(np.array([1, 2], dtype=np.uint8)), m.tensor(np.array([3, 1], np.int8)))),
    ("int32 and int64", lambda m: (m.tensor(np.array([1, 2], dtype=np.int32)), m.tensor(np.array([3, 1])))),
    ("bool and python int", lambda m: (m.tensor(np.array([True, False])), 3)),
    ("0-d bool and int16", lambda m: (m.tensor(np.array(True)), m.tensor(np.array([3, 1], dtype=np.int16)))),
    ("int16 and python float", lambda m: (m.tensor(np.array([1, 2], dtype=np.int16)), 2.5)),
    ("int64 0-d and float64 0-d", lambda m: (m.tensor(np.array(4)), m.tensor(np.array(1.5)))),
    ("float64 and python int", lambda m: (m.tensor(np.array([1.0, 2.0])), 3)),
]


@pytest.mark.parametrize("label, make", PROMOTION_CASES, ids=[c[0] for c in PROMOTION_CASES])
def test_result_dtypes_follow_torchs_promotion(torch, label, make):
    ours, theirs = make(ember), make(torch)
    assert_same(ember.remainder(*ours), torch.remainder(*theirs))
    if all(getattr(o, "dtype", np.dtype(int)).kind != "f" and not isinstance(o, float) for o in ours):
        assert_same(ember.bitwise_or(*ours), torch.bitwise_or(*theirs))


def test_two_float_dtypes_are_a_type_error_naming_both():
    a = ember.tensor(np.ones(3, dtype=np.float32))
    b = ember.tensor(np.ones(3, dtype=np.float64))
    with pytest.raises(TypeError, match="float32.*float64"):
        ember.remainder(a, b)
    with pytest.raises(TypeError, match="float"):
        ember.atan2(a, b)


# ----------------------------------------------------------------------------- unary math


FLOAT_UNARY = ["rsqrt", "reciprocal", "erf", "log2", "log10", "log1p", "exp2", "expm1", "tan", "sinh", "cosh",
               "asinh", "acosh", "atanh", "asin", "acos", "atan"]


@pytest.mark.parametrize("name", FLOAT_UNARY)
def test_float_functions_of_integers_give_the_default_float(torch, name):
    (e, t) = _pair(torch, np.array([[0, 1, 2], [-1, 3, 1]]))
    with np.errstate(all="ignore"):  # PyTorch returns NaN and inf silently outside the domains
        ours = getattr(ember, name)(e)
    assert_same(ours, getattr(torch, name)(t), exact=False)
    assert ours.dtype == np.float32 and not ours.requires_grad


@pytest.mark.parametrize("name", FLOAT_UNARY + ["square"])
def test_float32_values_match_torch_at_edges(torch, name):
    x = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 3.0, np.inf, -np.inf, np.nan], dtype=np.float32)
    (e, t) = _pair(torch, x)
    with np.errstate(all="ignore"):
        ours = getattr(ember, name)(e)
    ref = getattr(torch, name)(t).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=2e-6, atol=1e-7, equal_nan=True)


def test_square_keeps_integers_and_turns_bools_into_int64(torch):
    for data in (np.array([-3, 2], dtype=np.int16), np.array([True, False])):
        (e, t) = _pair(torch, data)
        assert_same(ember.square(e), torch.square(t))


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rounding_matches_torch_at_halves(torch, name, dtype):
    x = np.array([-2.5, -1.5, -0.5, -0.0, 0.5, 1.5, 2.5, 0.49999997, -3.7, 1e20, np.nan, np.inf], dtype=dtype)
    (e, t) = _pair(torch, x)
    assert_same(getattr(ember, name)(e), getattr(torch, name)(t))


@pytest.mark.parametrize("decimals", [-2, -1, 1, 2, 3])
def test_round_decimals_matches_torch(torch, decimals):
    x = np.array([1234.5678, -0.125, 0.135, 2.675, -45.55, 15.0, 25.0, 0.0], dtype=np.float32)
    (e, t) = _pair(torch, x)
    assert_same(ember.round(e, decimals=decimals), torch.round(t, decimals=decimals))


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round"])
def test_rounding_integers_copies_and_bools_are_rejected(torch, name):
    (e, t) = _pair(torch, np.array([-3, 4], dtype=np.int32))
    out = getattr(ember, name)(e)
    assert_same(out, getattr(torch, name)(t))
    assert not np.shares_memory(out.numpy(), e.numpy())
    (eb, tb) = _pair(torch, np.array([True]))
    assert_both_raise(lambda: getattr(ember, name)(eb), lambda: getattr(torch, name)(tb), TypeError)


def test_round_with_decimals_rejects_integers_as_torch(torch):
    (e, t) = _pair(torch, np.array([1, 2]))
    assert_both_raise(lambda: ember.round(e, decimals=1), lambda: torch.round(t, decimals=1), TypeError)


def test_rounding_functions_have_zero_gradient_as_in_torch(torch):
    x = np.array([0.3, -1.7, 2.5])
    for name in ("floor", "ceil", "trunc", "round", "sign"):
        e = ember.tensor(x, requires_grad=True)
        t = torch.tensor(x, requires_grad=True)
        out = getattr(ember, name)(e)
        assert out.requires_grad
        out.backward(np.ones(3))
        getattr(torch, name)(t).backward(torch.ones(3, dtype=torch.float64))
        np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


def test_sign_of_nan_and_zeros_and_integers_and_bools(torch):
    for data in (np.array([-0.0, 0.0, np.nan, -np.inf, 3.0]), np.array([-5, 0, 7], dtype=np.int8),
                 np.array([0, 200], dtype=np.uint8), np.array([True, False])):
        (e, t) = _pair(torch, data)
        assert_same(ember.sign(e), torch.sign(t))


def test_nan_inf_finite_tests_give_bools(torch):
    for data in (np.array([np.nan, np.inf, -np.inf, 0.0, -1.5], dtype=np.float32), np.array([1, -2]),
                 np.array([True, False])):
        (e, t) = _pair(torch, data)
        for name in ("isnan", "isinf", "isfinite"):
            out = getattr(ember, name)(e)
            assert_same(out, getattr(torch, name)(t))
            assert not out.requires_grad


def test_outputs_without_gradient_do_not_require_grad():
    x = ember.tensor([1.5, np.nan], requires_grad=True)
    for out in (ember.isnan(x), ember.isfinite(x), ember.logical_not(x), ember.floor_divide(x, 2.0)):
        assert not out.requires_grad and out.grad_fn is None


# ----------------------------------------------------------------------------- logical and bitwise


def test_logical_ops_match_torch_on_floats_ints_and_bools(torch):
    a = np.array([[0.0, 1.5, np.nan, -0.0]])
    b = np.array([[0], [3]])
    (ea, ta), (eb, tb) = _pair(torch, a), _pair(torch, b)
    for name in ("logical_and", "logical_or", "logical_xor"):
        assert_same(getattr(ember, name)(ea, eb), getattr(torch, name)(ta, tb))
    assert_same(ember.logical_not(ea), torch.logical_not(ta))
    assert_same(ember.logical_not(eb), torch.logical_not(tb))


def test_logical_ops_take_tensors_only_as_torch(torch):
    (e, t) = _pair(torch, np.array([1, 0]))
    assert_both_raise(lambda: ember.logical_xor(e, 0.5), lambda: torch.logical_xor(t, 0.5), TypeError)


@pytest.mark.parametrize("dtype", INT_DTYPES + ["bool"])
def test_bitwise_ops_match_torch(torch, dtype):
    rng = np.random.default_rng(1)
    if dtype == "bool":
        a, b = rng.random((3, 4)) > 0.5, rng.random(4) > 0.5
    else:
        lo = 0 if dtype == "uint8" else -100
        a, b = rng.integers(lo, 100, (3, 4)).astype(dtype), rng.integers(lo, 100, 4).astype(dtype)
    (ea, ta), (eb, tb) = _pair(torch, a), _pair(torch, b)
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        assert_same(getattr(ember, name)(ea, eb), getattr(torch, name)(ta, tb))
        assert_same(getattr(ember, name)(ea, 5), getattr(torch, name)(ta, 5))
    assert_same(ember.bitwise_not(ea), torch.bitwise_not(ta))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_shifts_match_torch_including_wide_and_negative_amounts(torch, dtype):
    values = np.array([1, 3, 100, 127, 0, 5, 64, 2], dtype=dtype)
    if dtype != "uint8":
        values[4:] *= -1
    amounts = np.array([0, 1, 3, 7, 8, 63, 64, -1], dtype=dtype if dtype != "uint8" else "int64")
    (ea, ta), (eb, tb) = _pair(torch, values), _pair(torch, amounts)
    assert_same(ember.bitwise_left_shift(ea, eb), torch.bitwise_left_shift(ta, tb))
    assert_same(ember.bitwise_right_shift(ea, eb), torch.bitwise_right_shift(ta, tb))
    assert_same(ember.bitwise_left_shift(ea, 2), torch.bitwise_left_shift(ta, 2))
    assert_same(ember.bitwise_right_shift(ea, 1), torch.bitwise_right_shift(ta, 1))


def test_bool_shifted_by_an_int_becomes_int64_as_torch(torch):
    (e, t) = _pair(torch, np.array([True, False]))
    assert_same(ember.bitwise_left_shift(e, 1), torch.bitwise_left_shift(t, 1))
    assert_both_raise(lambda: ember.bitwise_left_shift(e, e), lambda: torch.bitwise_left_shift(t, t), TypeError)


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                                  "bitwise_right_shift"])
def test_bitwise_ops_reject_floats_as_torch(torch, name):
    (ef, tf), (ei, ti) = _pair(torch, np.array([1.0, 2.0])), _pair(torch, np.array([1, 2]))
    assert_both_raise(lambda: getattr(ember, name)(ef, ei), lambda: getattr(torch, name)(tf, ti), TypeError)
    assert_both_raise(lambda: getattr(ember, name)(ei, 1.5), lambda: getattr(torch, name)(ti, 1.5), TypeError)


def test_bitwise_not_rejects_floats_as_torch(torch):
    (e, t) = _pair(torch, np.array([1.0]))
    assert_both_raise(lambda: ember.bitwise_not(e), lambda: torch.bitwise_not(t), TypeError)


# ----------------------------------------------------------------------------- sums, scans, products: dtypes


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int32", "int64"])
def test_integer_accumulations_default_to_int64_as_torch(torch, dtype):
    data = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    (e, t) = _pair(torch, data)
    assert_same(ember.sum(e), torch.sum(t))
    assert_same(ember.sum(e, dim=1, keepdim=True), torch.sum(t, dim=1, keepdim=True))
    assert_same(ember.cumsum(e, 0), torch.cumsum(t, 0))
    assert_same(ember.cumprod(e, 1), torch.cumprod(t, 1))
    assert_same(ember.prod(e), torch.prod(t))
    assert_same(ember.prod(e, 0), torch.prod(t, 0))


def test_dtype_argument_accumulates_in_that_dtype(torch):
    data = np.array([[200, 100], [50, 7]], dtype=np.uint8)
    (e, t) = _pair(torch, data)
    assert_same(ember.sum(e, dtype=ember.uint8), torch.sum(t, dtype=torch.uint8))
    assert_same(ember.cumsum(e, 1, dtype="int16"), torch.cumsum(t, 1, dtype=torch.int16))
    assert_same(ember.prod(e, 1, dtype=np.float32), torch.prod(t, 1, dtype=torch.float32))


def test_float32_summed_as_float64_is_differentiable_in_float32(torch):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    for fn, ref in ((lambda a: ember.sum(a, dtype=ember.float64), lambda a: torch.sum(a, dtype=torch.float64)),
                    (lambda a: ember.cumsum(a, 1, dtype=ember.float64),
                     lambda a: torch.cumsum(a, 1, dtype=torch.float64)),
                    (lambda a: ember.prod(a, 0, dtype=ember.float64),
                     lambda a: torch.prod(a, 0, dtype=torch.float64))):
        e, t = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, expected = fn(e), ref(t)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12)
        cot = np.random.default_rng(3).standard_normal(out.shape)
        out.backward(cot)
        expected.backward(torch.from_numpy(cot))
        assert e.grad.dtype == np.float32
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-6)


def test_integer_dtype_of_a_float_that_requires_grad_is_an_error_as_torch(torch):
    x = np.array([1.5, 2.5])
    e, t = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    assert_both_raise(lambda: ember.sum(e, dtype=ember.int64), lambda: torch.sum(t, dtype=torch.int64), TypeError)
    with ember.no_grad(), torch.no_grad():
        assert_same(ember.sum(e, dtype=ember.int64), torch.sum(t, dtype=torch.int64))


def test_sum_dims_like_torch(torch):
    x = np.arange(24.0).reshape(2, 3, 4)
    (e, t) = _pair(torch, x)
    assert_same(ember.sum(e, dim=()), torch.sum(t, dim=()))
    assert_same(ember.sum(e, (2, 0)), torch.sum(t, (2, 0)))
    assert_same(ember.sum(e, axis=-1, keepdims=True), torch.sum(t, dim=-1, keepdim=True))
    (z, tz) = _pair(torch, np.array(3.0))
    assert_same(ember.sum(z, 0), torch.sum(tz, 0))
    assert_both_raise(lambda: ember.sum(e, 3), lambda: torch.sum(t, 3), IndexError)
    assert_both_raise(lambda: ember.sum(e, (0, 0)), lambda: torch.sum(t, (0, 0)), ValueError)
    with pytest.raises(TypeError, match="both"):
        ember.sum(e, 0, dim=1)


def test_scans_need_a_dimension_in_range(torch):
    (e, t) = _pair(torch, np.ones((2, 3)))
    with pytest.raises(TypeError, match="dim"):
        ember.cumsum(e)
    assert_both_raise(lambda: ember.cumsum(e, 2), lambda: torch.cumsum(t, 2), IndexError)
    assert_both_raise(lambda: ember.cumprod(e, -3), lambda: torch.cumprod(t, -3), IndexError)
    assert_both_raise(lambda: ember.prod(e, 5), lambda: torch.prod(t, 5), IndexError)


# ----------------------------------------------------------------------------- products with zeros (gradients)


ZERO_CASES = {
    "one zero": [[2.0, 0.0, 3.0, -1.5, 0.5]],
    "zero first": [[0.0, 2.0, 3.0, -1.5, 0.5]],
    "zero last": [[2.0, 1.5, 3.0, -1.5, 0.0]],
    "two zeros": [[2.0, 0.0, 3.0, 0.0, 0.5]],
    "three zeros, rows without": [[0.0, 0.0, 3.0, 0.0, 0.5], [1.0, 2.0, -3.0, 0.5, 0.25]],
    "all zeros": [[0.0, 0.0, 0.0]],
}


def _check_against_torch_and_fd(torch, fn, torch_fn, x):
    e, t = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = fn(e), torch_fn(t)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    cot = np.random.default_rng(4).standard_normal(out.shape)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    leaf = ember.tensor(x)
    result = gradcheck(lambda: fn(leaf), [leaf])
    assert result.ok, result


@pytest.mark.parametrize("case", list(ZERO_CASES), ids=list(ZERO_CASES))
def test_cumprod_gradient_at_zero_inputs(torch, case):
    x = np.array(ZERO_CASES[case])
    _check_against_torch_and_fd(torch, lambda a: ember.cumprod(a, 1), lambda a: torch.cumprod(a, 1), x)
    _check_against_torch_and_fd(torch, lambda a: ember.cumprod(a.T, 0), lambda a: torch.cumprod(a.T, 0), x)


@pytest.mark.parametrize("case", list(ZERO_CASES), ids=list(ZERO_CASES))
def test_prod_gradient_at_zero_inputs(torch, case):
    x = np.array(ZERO_CASES[case])
    _check_against_torch_and_fd(torch, lambda a: ember.prod(a, 1), lambda a: torch.prod(a, 1), x)
    _check_against_torch_and_fd(torch, lambda a: ember.prod(a), lambda a: torch.prod(a), x)
    _check_against_torch_and_fd(torch, lambda a: ember.prod(a, 0, keepdim=True),
                                lambda a: torch.prod(a, 0, keepdim=True), x)


def test_empty_and_0d_products_and_scans(torch):
    for data in (np.zeros((0, 3)), np.array(2.5)):
        (e, t) = _pair(torch, data)
        assert_same(ember.prod(e), torch.prod(t))
        assert_same(ember.cumsum(e, 0), torch.cumsum(t, 0))
        assert_same(ember.cumprod(e, -1), torch.cumprod(t, -1))
        assert_same(ember.sum(e), torch.sum(t))


# ----------------------------------------------------------------------------- clamp and lerp


def test_clamp_gradients_at_ties_and_crossed_bounds_match_torch(torch):
    x = np.array([1.0, 2.0, 3.0, 0.5, 5.0, 1.5, 4.0])
    lo = np.array([1.0, 1.0, 3.0, 2.0, 4.0, 2.0, 4.0])
    hi = np.array([2.0, 2.0, 3.0, 1.0, 4.0, 2.0, 3.0])  # ties with x, lo == hi == x, lo > hi
    cot = np.arange(1.0, 8.0)
    for use_lo, use_hi in ((True, True), (True, False), (False, True)):
        ours = [ember.tensor(v, requires_grad=True) for v in (x, lo, hi)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (x, lo, hi)]
        out = ember.clamp(ours[0], ours[1] if use_lo else None, ours[2] if use_hi else None)
        ref = torch.clamp(theirs[0], theirs[1] if use_lo else None, theirs[2] if use_hi else None)
        np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
        out.backward(cot)
        ref.backward(torch.from_numpy(cot))
        for name, a, b in zip(("x", "min", "max"), ours, theirs):
            got = None if a.grad is None else a.grad.numpy()
            want = None if b.grad is None else b.grad.numpy()
            if want is None:
                assert got is None or not got.any(), name
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{name} ({use_lo}, {use_hi})")


def test_clamp_with_number_bounds_at_ties_matches_torch(torch):
    x = np.array([0.5, 1.0, 2.0, 3.0, 3.5])
    e, t = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ember.clamp(e, 1.0, 3.0).backward(np.ones(5))
    torch.clamp(t, 1.0, 3.0).backward(torch.ones(5, dtype=torch.float64))
    np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


def test_clamp_dtypes_and_errors_like_torch(torch):
    (e, t) = _pair(torch, np.array([1, 5, 9]))
    assert_same(ember.clamp(e, 2, 6), torch.clamp(t, 2, 6))
    assert_same(ember.clamp(e, min=1.5), torch.clamp(t, min=1.5))
    (lo, tlo), (hi, thi) = _pair(torch, np.array([2.5])), _pair(torch, np.array([6]))
    assert_same(ember.clamp(e, lo, None), torch.clamp(t, tlo, None))
    assert_same(ember.clamp(e, max=hi), torch.clamp(t, max=thi))
    assert_both_raise(lambda: ember.clamp(e), lambda: torch.clamp(t), ValueError)
    assert_both_raise(lambda: ember.clamp(e, lo, 7), lambda: torch.clamp(t, tlo, 7), TypeError)
    f32 = ember.tensor(np.ones(3, dtype=np.float32))
    with pytest.raises(TypeError, match="float32.*float64"):
        ember.clamp(f32, ember.tensor(np.zeros(3)))


def test_lerp_is_exact_at_the_ends_and_checks_dtypes(torch):
    a, b = np.array([1.0, -2.0, 1e8]), np.array([3.0, 5.0, 1.0])
    (ea, ta), (eb, tb) = _pair(torch, a), _pair(torch, b)
    for w in (0.0, 1.0, 0.5, 2.0, -1.0):
        assert_same(ember.lerp(ea, eb, w), torch.lerp(ta, tb, w))
    (ew, tw) = _pair(torch, np.array([0.0, 1.0, 0.75]))
    assert_same(ember.lerp(ea, eb, ew), torch.lerp(ta, tb, tw))
    (ei, ti) = _pair(torch, np.array([1, 2, 3]))
    assert_both_raise(lambda: ember.lerp(ei, ei, 0.5), lambda: torch.lerp(ti, ti, 0.5), TypeError)
    (e32, t32) = _pair(torch, b.astype(np.float32))
    assert_both_raise(lambda: ember.lerp(ea, e32, 0.5), lambda: torch.lerp(ta, t32, 0.5), TypeError)


# ----------------------------------------------------------------------------- einsum


def test_einsum_of_integers_matches_torch(torch):
    a = np.arange(12).reshape(3, 4)
    (ea, ta) = _pair(torch, a)
    assert_same(ember.einsum("ij,kj->ik", ea, ea), torch.einsum("ij,kj->ik", ta, ta))
    assert_same(ember.einsum("ij->", ea), torch.einsum("ij->", ta))


def test_einsum_result_is_not_a_view_of_its_operand():
    x = ember.tensor(np.arange(6.0).reshape(2, 3))
    out = ember.einsum("ij->ji", x)
    x.data[0, 0] = 100.0
    assert out.numpy()[0, 0] == 0.0


def test_einsum_gradient_with_repeated_and_summed_letters_in_float32(torch):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 3, 2)).astype(np.float32), rng.standard_normal((2, 4)).astype(np.float32)
    eq = "iij,jk->k"
    ea, eb = ember.tensor(a, requires_grad=True), ember.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, ref = ember.einsum(eq, ea, eb), torch.einsum(eq, ta, tb)
    out.backward(np.ones(4, dtype=np.float32))
    ref.sum().backward()
    assert out.dtype == ea.grad.dtype == np.float32
    np.testing.assert_allclose(ea.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(eb.grad.numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-6)


EINSUM_ERRORS = [
    ("ij,jk->ik", [(3, 4)]),  # fewer operands than the equation names
    ("ij->ij", [(3, 4), (4, 5)]),  # more
    ("ij,jk->ikk", [(3, 4), (4, 5)]),  # output letter twice
    ("ij,jk->iz", [(3, 4), (4, 5)]),  # output letter in no operand
    ("i1->i", [(3, 4)]),  # not a letter
    ("i->i->i", [(3,)]),  # two arrows
    ("ij,ik->ik", [(3, 4), (4, 5)]),  # sizes that do not broadcast
    ("ii->i", [(3, 4)]),  # a repeated letter with two sizes
    ("ijk->ij", [(3, 4)]),  # more letters than dimensions, no ellipsis
    ("i", [()]),
    ("......->", [(3,)]),
]


@pytest.mark.parametrize("equation, shapes", EINSUM_ERRORS, ids=[e for e, _ in EINSUM_ERRORS])
def test_einsum_rejects_what_torch_rejects(torch, equation, shapes):
    ours = [ember.ones(s, dtype=ember.float64) for s in shapes]
    theirs = [torch.ones(s, dtype=torch.float64) for s in shapes]
    assert_both_raise(lambda: ember.einsum(equation, *ours), lambda: torch.einsum(equation, *theirs), ValueError)


def test_einsum_operand_types(torch):
    a32, a64 = ember.ones(2, 2), ember.ones(2, 2, dtype=ember.float64)
    assert_both_raise(lambda: ember.einsum("ij,jk", a32, a64),
                lambda: torch.einsum("ij,jk", torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64)), TypeError)
    with pytest.raises(TypeError, match="string"):
        ember.einsum(a32, [0, 1])
    with pytest.raises(TypeError, match="bool"):
        ember.einsum("i->i", ember.tensor(np.array([True])))
    with pytest.raises(TypeError, match="Tensor"):
        ember.einsum("i->i", np.ones(3))
