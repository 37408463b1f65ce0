"""Tensor methods and operators mean what PyTorch's do: each is called the same way on both, and values,
dtypes and gradients compared (the functions behind them are tested in tests/ops)."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import ember

RNG = np.random.default_rng(0)
X = RNG.uniform(0.2, 0.9, size=(3, 4))  # inside every function's domain
INDEX = np.array([[0, 2, 1, 0], [1, 1, 0, 2]])
IDX_ROWS = np.array([2, 0, 2])

FLOAT_METHODS = [
    ("rsqrt", (), {}), ("reciprocal", (), {}), ("square", (), {}), ("erf", (), {}), ("log2", (), {}),
    ("log10", (), {}), ("log1p", (), {}), ("exp2", (), {}), ("expm1", (), {}), ("tan", (), {}), ("sinh", (), {}),
    ("cosh", (), {}), ("asinh", (), {}), ("atanh", (), {}), ("asin", (), {}), ("acos", (), {}), ("atan", (), {}),
    ("arcsin", (), {}), ("sign", (), {}), ("floor", (), {}), ("ceil", (), {}), ("trunc", (), {}),
    ("round", (), {"decimals": 1}), ("cumsum", (1,), {}), ("cumsum", (), {"dim": 0}), ("cumprod", (1,), {}),
    ("prod", (), {}), ("prod", (1,), {"keepdim": True}), ("sum", (), {"dim": 1, "keepdim": True}),
    ("clamp", (0.3, 0.6), {}), ("clip", (), {"min": 0.4}), ("flip", (0, 1), {}), ("flip", ((1,),), {}),
    ("roll", (1, 0), {}), ("roll", (), {"shifts": (1, -1), "dims": (0, 1)}), ("repeat", (2, 1), {}),
    ("repeat_interleave", (2,), {"dim": 1}), ("unflatten", (1, (2, 2)), {}), ("narrow", (1, 1, 2), {}),
    ("softmax", (), {"dim": 0}), ("log_softmax", (1,), {}), ("amax", (), {"dim": 1}), ("var", (1,), {}),
    ("std", (), {"dim": 0, "correction": 0}), ("logsumexp", (1,), {}), ("mean", (), {"dim": (0, 1)}),
]


@pytest.mark.parametrize("name,args,kwargs", FLOAT_METHODS, ids=[f"{m[0]}{i}" for i, m in enumerate(FLOAT_METHODS)])
def test_float_methods_match_torch(torch, name, args, kwargs):
    x, tx = ember.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    y, ty = getattr(x, name)(*args, **kwargs), getattr(tx, name)(*args, **kwargs)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert str(y.dtype) == str(ty.dtype).replace("torch.", "")
    cot = RNG.standard_normal(ty.shape)
    y.backward(cot)
    ty.backward(torch.from_numpy(cot))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_indexing_methods_match_torch(torch):
    calls = [
        ("gather", (1, INDEX[:, :3]), {}), ("index_select", (0, IDX_ROWS), {}),
        ("take_along_dim", (np.array([[0, 3], [1, 1], [2, 0]]),), {"dim": 1}), ("masked_select", (X > 0.5,), {}),
        ("scatter_add", (1, INDEX[:, :3], X[:2, :3]), {}),
        ("scatter", (0, INDEX[:1, :3], X[:1, :3]), {}),
        ("index_add", (0, IDX_ROWS, X), {"alpha": 2.0}),
    ]
    for name, args, kwargs in calls:
        x, tx = ember.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
        ours = [ember.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        theirs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        y, ty = getattr(x, name)(*ours, **kwargs), getattr(tx, name)(*theirs, **kwargs)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, err_msg=name)
        cot = RNG.standard_normal(ty.shape)
        y.backward(cot)
        ty.backward(torch.from_numpy(cot))
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_sorting_methods_return_named_tuples(torch):
    data = np.array([[0.5, 0.1, 0.9], [0.3, 0.7, 0.2]])
    x, tx = ember.tensor(data), torch.tensor(data)
    for name, args, kwargs in (("sort", (1,), {"descending": True}), ("topk", (2,), {"dim": 1}),
                               ("sort", (), {"dim": 0, "stable": True}), ("max", (1,), {}), ("min", (0,), {})):
        ours, theirs = getattr(x, name)(*args, **kwargs), getattr(tx, name)(*args, **kwargs)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(x.argsort(1).numpy(), tx.argsort(1).numpy())
    assert [c.shape for c in x.chunk(2, dim=1)] == [tuple(c.shape) for c in tx.chunk(2, dim=1)]
    assert [c.shape for c in x.split(2, dim=1)] == [tuple(c.shape) for c in tx.split(2, dim=1)]


OPERATORS = {"//": operator.floordiv, "%": operator.mod, "&": operator.and_, "|": operator.or_, "^": operator.xor,
             "<<": operator.lshift, ">>": operator.rshift}
INT_A = np.array([7, -7, 5, -3, 0], dtype=np.int64)
INT_B = np.array([2, 2, -3, -2, 3], dtype=np.int64)


@pytest.mark.parametrize("op", ["//", "%", "&", "|", "^", "<<", ">>"])
def test_integer_operators_match_torch(torch, op):
    a_np, b_np = (INT_A, np.abs(INT_B) % 4) if op in ("<<", ">>") else (INT_A, INT_B)
    for dtype in (np.int64, np.int32):
        f, a, b = OPERATORS[op], a_np.astype(dtype), b_np.astype(dtype)
        ours, theirs = f(ember.tensor(a), ember.tensor(b)), f(torch.from_numpy(a), torch.from_numpy(b))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        for left, right in ((a, 3), (5, b)):  # with a number on either side
            ours = f(*(ember.tensor(v) if isinstance(v, np.ndarray) else v for v in (left, right)))
            theirs = f(*(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in (left, right)))
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal((~ember.tensor(INT_A)).numpy(), (~torch.from_numpy(INT_A)).numpy())


def test_float_floor_division_and_remainder_match_torch(torch):
    a, b = np.array([7.5, -7.5, 3.0, -0.5]), np.array([2.0, 2.0, -2.5, 0.3])
    x, tx = ember.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    np.testing.assert_allclose((x // ember.tensor(b)).numpy(), (tx // torch.tensor(b)).detach().numpy())
    (x % ember.tensor(b)).sum().backward()
    (tx % torch.tensor(b)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_boolean_operators_stay_logical(torch):
    a, b = np.array([True, False, True]), np.array([True, True, False])
    for op in ("&", "|", "^"):
        f = OPERATORS[op]
        ours, theirs = f(ember.tensor(a), ember.tensor(b)), f(torch.from_numpy(a), torch.from_numpy(b))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == np.bool_
    np.testing.assert_array_equal((~ember.tensor(a)).numpy(), (~torch.from_numpy(a)).numpy())
    with pytest.raises(TypeError):
        ~ember.tensor([1.0, 2.0])


def test_in_place_scatter_and_clamp_with_tensors_match_torch(torch):
    for recorded in (False, True):
        x, tx = ember.tensor(X * 1.0), torch.tensor(X * 1.0)
        src, tsrc = ember.tensor(X[:2, :3], requires_grad=recorded), torch.tensor(X[:2, :3], requires_grad=recorded)
        lo, tlo = ember.tensor(np.full(4, 0.4)), torch.tensor(np.full(4, 0.4))
        if recorded:
            x, tx = x * 1.0, tx * 1.0
        x.scatter_add_(1, ember.tensor(INDEX[:, :3]), src)
        tx.scatter_add_(1, torch.from_numpy(INDEX[:, :3]), tsrc)
        x.index_add_(0, ember.tensor(IDX_ROWS), ember.tensor(X))
        tx.index_add_(0, torch.from_numpy(IDX_ROWS), torch.tensor(X))
        x.clamp_(min=lo)
        tx.clamp_(min=tlo)
        x.scatter_(0, ember.tensor(INDEX[:1]), 0.25)
        tx.scatter_(0, torch.from_numpy(INDEX[:1]), 0.25)
        np.testing.assert_allclose(x.numpy(), tx.detach().numpy(), rtol=1e-12)
        assert x._version == tx._version
        if recorded:
            (x * x).sum().backward()
            (tx * tx).sum().backward()
            np.testing.assert_allclose(src.grad.numpy(), tsrc.grad.numpy(), rtol=1e-12)
