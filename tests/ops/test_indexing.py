"""Gather/scatter, index_select/index_add, rearranging, sorting, one_hot and pad against PyTorch: integer
results, duplicates and ties, views, 0-d and empty tensors, and argument errors (out-of-range dims and
indices, index dtypes, mismatched shapes). The differentiable paths are also op-table rows
(op_table/indexing.py)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F

# PyTorch deprecates scatter(..., reduce=); ember keeps it as PyTorch still accepts it
pytestmark = pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")


def _pair(torch, array):
    array = np.asarray(array)
    return ember.tensor(array), torch.from_numpy(array.copy())


def assert_same(ours, theirs):
    ref = theirs.detach().numpy()
    assert ours.dtype == ref.dtype, f"dtype {ours.dtype} vs PyTorch {ref.dtype}"
    assert ours.shape == ref.shape, f"shape {ours.shape} vs PyTorch {ref.shape}"
    np.testing.assert_array_equal(ours.numpy(), ref)


def assert_both_raise(our_call, torch_call, error, match=None):
    with pytest.raises(error, match=match):
        our_call()
    with pytest.raises(Exception):  # noqa: B017 - PyTorch raises RuntimeError, IndexError or TypeError
        torch_call()


X = np.arange(12.0).reshape(3, 4)


# ----------------------------------------------------------------------------- gather / scatter


def test_gather_and_scatters_of_integer_tensors_match_torch(torch):
    (x, tx) = _pair(torch, np.arange(12).reshape(3, 4))
    (i, ti) = _pair(torch, np.array([[0, 3, 3], [1, 1, 0]]))
    (s, ts) = _pair(torch, -np.arange(6).reshape(2, 3))
    assert_same(ember.gather(x, 1, i), torch.gather(tx, 1, ti))
    assert_same(ember.scatter(x, 1, i, s), torch.scatter(tx, 1, ti, ts))
    assert_same(ember.scatter(x, 1, i, value=-7), torch.scatter(tx, 1, ti, -7))
    assert_same(ember.scatter_add(x, 1, i, s), torch.scatter_add(tx, 1, ti, ts))
    out = ember.gather(x, 1, i)
    assert not out.requires_grad


def test_index_int32_is_accepted_where_torch_accepts_it(torch):
    (x, tx) = _pair(torch, X)
    (i, ti) = _pair(torch, np.array([[0, 3], [2, 2]], dtype=np.int32))
    (v, tv) = _pair(torch, np.array([2, 0], dtype=np.int32))
    assert_same(ember.gather(x, 1, i), torch.gather(tx, 1, ti))
    assert_same(ember.index_select(x, 1, v), torch.index_select(tx, 1, tv))
    assert_both_raise(lambda: ember.take_along_dim(x, i, 1), lambda: torch.take_along_dim(tx, ti, 1), TypeError)


def test_scatter_with_duplicate_indices_writes_the_last_and_grads_as_torch(torch):
    index = np.array([[1, 1, 3, 1], [0, 2, 0, 2]])
    x, src = np.zeros((2, 4)), np.arange(8.0).reshape(2, 4)
    ex, es = ember.tensor(x, requires_grad=True), ember.tensor(src, requires_grad=True)
    tx, ts = torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)
    out = ember.scatter(ex, 1, ember.tensor(index), es)
    ref = torch.scatter(tx, 1, torch.from_numpy(index), ts)
    np.testing.assert_array_equal(out.numpy(), [[0, 3, 0, 2], [6, 0, 7, 0]])  # last in row-major order
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    cot = np.arange(1.0, 9.0).reshape(2, 4)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    np.testing.assert_array_equal(ex.grad.numpy(), tx.grad.numpy())
    np.testing.assert_array_equal(es.grad.numpy(), ts.grad.numpy())


def test_scatter_reduce_integer_mean_rounds_down_and_include_self(torch):
    (x, tx) = _pair(torch, np.array([-1, 2, 3]))
    (i, ti) = _pair(torch, np.array([0, 0, 2]))
    (s, ts) = _pair(torch, np.array([-2, -4, 8]))
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            assert_same(ember.scatter_reduce(x, 0, i, s, reduce, include_self=include_self),
                  torch.scatter_reduce(tx, 0, ti, ts, reduce, include_self=include_self))


@pytest.mark.parametrize("reduce", ["amax", "amin", "prod", "mean"])
def test_scatter_reduce_gradients_with_ties_and_zeros_match_torch(torch, reduce):
    x = np.array([3.0, 0.0, 5.0, 1.0])
    src = np.array([3.0, 1.0, 3.0, 0.0, 2.0, 0.0, 5.0])  # ties with x and among src, zeros
    index = np.array([0, 0, 0, 1, 1, 2, 2])
    for include_self in (True, False):
        ex, es = ember.tensor(x, requires_grad=True), ember.tensor(src, requires_grad=True)
        tx, ts = torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)
        out = ember.scatter_reduce(ex, 0, ember.tensor(index), es, reduce, include_self=include_self)
        ref = torch.scatter_reduce(tx, 0, torch.from_numpy(index), ts, reduce, include_self=include_self)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
        cot = np.array([1.0, 2.0, 3.0, 4.0])
        out.backward(cot)
        ref.backward(torch.from_numpy(cot))
        np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-12, err_msg=f"input {include_self}")
        np.testing.assert_allclose(es.grad.numpy(), ts.grad.numpy(), rtol=1e-12, err_msg=f"src {include_self}")


def test_scatter_reduce_argument_errors(torch):
    (x, tx), (i, ti) = _pair(torch, X), _pair(torch, np.array([[0, 1]]))
    (s, ts) = _pair(torch, np.ones((1, 2)))
    assert_both_raise(lambda: ember.scatter_reduce(x, 1, i, s, "median"),
                lambda: torch.scatter_reduce(tx, 1, ti, ts, "median"), ValueError)
    assert_both_raise(lambda: ember.scatter(x, 1, i, s, reduce="mean"),
                lambda: torch.scatter(tx, 1, ti, ts, reduce="mean"), ValueError)
    with pytest.raises(TypeError, match="src"):
        ember.scatter(x, 1, i)


def test_scatter_reduce_add_and_multiply_as_in_torch(torch):
    (x, tx), (i, ti) = _pair(torch, X), _pair(torch, np.array([[0, 0, 2]]))
    (s, ts) = _pair(torch, np.array([[2.0, 3.0, 4.0]]))
    for reduce in ("add", "multiply"):
        assert_same(ember.scatter(x, 1, i, s, reduce=reduce), torch.scatter(tx, 1, ti, ts, reduce=reduce))
        assert_same(ember.scatter(x, 1, i, value=2.0, reduce=reduce), torch.scatter(tx, 1, ti, 2.0, reduce=reduce))


GATHER_ERRORS = [
    ("dim out of range", lambda m, x: m.gather(x, 2, m.tensor(np.array([[0]]))), IndexError),
    ("negative index", lambda m, x: m.gather(x, 1, m.tensor(np.array([[0, -1]]))), IndexError),
    ("index too large", lambda m, x: m.gather(x, 1, m.tensor(np.array([[0, 4]]))), IndexError),
    ("float index", lambda m, x: m.gather(x, 1, m.tensor(np.array([[0.0]]))), TypeError),
    ("int16 index", lambda m, x: m.gather(x, 1, m.tensor(np.array([[0]], dtype=np.int16))), TypeError),
    ("ndim mismatch", lambda m, x: m.gather(x, 1, m.tensor(np.array([0, 1]))), ValueError),
    ("larger outside dim", lambda m, x: m.gather(x, 1, m.tensor(np.zeros((4, 2), dtype=np.int64))), ValueError),
    ("scatter index too large",
     lambda m, x: m.scatter(x, 1, m.tensor(np.array([[0, 5]])), m.ones(1, 2, dtype=x.dtype)), IndexError),
    ("scatter src smaller than index",
     lambda m, x: m.scatter(x, 1, m.tensor(np.array([[0, 1]])), m.ones(1, 1, dtype=x.dtype)), ValueError),
    ("scatter src dtype", lambda m, x: m.scatter(x, 1, m.tensor(np.array([[0, 1]])), m.ones(1, 2)), TypeError),
    ("scatter_add dim", lambda m, x: m.scatter_add(x, -3, m.tensor(np.array([[0]])), x), IndexError),
    ("scatter_add negative", lambda m, x: m.scatter_add(x, 0, m.tensor(np.array([[-1]])), x), IndexError),
]


@pytest.mark.parametrize("label, call, error", GATHER_ERRORS, ids=[e[0] for e in GATHER_ERRORS])
def test_gather_and_scatter_errors_match_torch(torch, label, call, error):
    x = np.arange(12.0).reshape(3, 4)  # float64 (ember.ones / torch.ones are float32: the dtype error case)
    assert_both_raise(lambda: call(ember, ember.tensor(x)), lambda: call(torch, torch.from_numpy(x)), error)


def test_an_index_changed_in_place_after_forward_is_caught():
    x = ember.tensor(X, requires_grad=True)
    index = ember.tensor(np.array([[0, 1], [2, 3], [1, 1]]))
    out = ember.gather(x, 1, index)
    index[0, 0] = 3
    with pytest.raises(RuntimeError, match="in-place"):
        out.sum().backward()


def test_0d_gather_index_select_and_scatter(torch):
    (x, tx), (i, ti) = _pair(torch, np.array(5.0)), _pair(torch, np.array(0))
    assert_same(ember.gather(x, 0, i), torch.gather(tx, 0, ti))
    assert_same(ember.gather(x, 0, ember.tensor(np.array([0, 0]))), torch.gather(tx, 0, torch.tensor([0, 0])))
    assert_same(ember.index_select(x, 0, i), torch.index_select(tx, 0, ti))
    assert_same(ember.scatter(x, 0, i, value=2.0), torch.scatter(tx, 0, ti, 2.0))


# ----------------------------------------------------------------------------- index_select / index_add / take / mask


INDEX_ERRORS = [
    ("select dim", lambda m, x: m.index_select(x, 2, m.tensor(np.array([0]))), IndexError),
    ("select negative", lambda m, x: m.index_select(x, 1, m.tensor(np.array([-1]))), IndexError),
    ("select too large", lambda m, x: m.index_select(x, 1, m.tensor(np.array([4]))), IndexError),
    ("select 2-d index", lambda m, x: m.index_select(x, 1, m.tensor(np.array([[0]]))), IndexError),
    ("select int16", lambda m, x: m.index_select(x, 1, m.tensor(np.array([0], dtype=np.int16))), TypeError),
    ("add source length", lambda m, x: m.index_add(x, 1, m.tensor(np.array([0, 0])), m.zeros(3, 3,
                                                                                          dtype=x.dtype)), ValueError),
    ("add source shape", lambda m, x: m.index_add(x, 1, m.tensor(np.array([0, 0])), m.zeros(2, 2,
                                                                                         dtype=x.dtype)), ValueError),
    ("add index range", lambda m, x: m.index_add(x, 1, m.tensor(np.array([0, 5])), m.zeros(3, 2,
                                                                                        dtype=x.dtype)), IndexError),
    ("add source dtype", lambda m, x: m.index_add(x, 1, m.tensor(np.array([0, 1])), m.zeros(3, 2)), TypeError),
    ("take ndim", lambda m, x: m.take_along_dim(x, m.tensor(np.array([0, 1])), 1), ValueError),
    ("take broadcast", lambda m, x: m.take_along_dim(x, m.tensor(np.zeros((2, 1), dtype=np.int64)), 1), ValueError),
    ("take range", lambda m, x: m.take_along_dim(x, m.tensor(np.array([12]))), IndexError),
    ("take dim", lambda m, x: m.take_along_dim(x, m.tensor(np.array([[0]])), 2), IndexError),
    ("mask dtype", lambda m, x: m.masked_select(x, m.tensor(np.array([1, 0, 1, 0]))), TypeError),
    ("mask shape", lambda m, x: m.masked_select(x, m.tensor(np.ones(5, dtype=bool))), ValueError),
]


@pytest.mark.parametrize("label, call, error", INDEX_ERRORS, ids=[e[0] for e in INDEX_ERRORS])
def test_index_errors_match_torch(torch, label, call, error):
    assert_both_raise(lambda: call(ember, ember.tensor(X)), lambda: call(torch, torch.from_numpy(X.copy())), error)


def test_index_add_and_take_along_dim_on_integers(torch):
    (x, tx) = _pair(torch, np.arange(12).reshape(3, 4))
    (i, ti) = _pair(torch, np.array([3, 3]))
    (s, ts) = _pair(torch, np.ones((3, 2), dtype=np.int64))
    assert_same(ember.index_add(x, 1, i, s, alpha=3), torch.index_add(tx, 1, ti, ts, alpha=3))
    (j, tj) = _pair(torch, np.array([[1], [0], [3]]))
    assert_same(ember.take_along_dim(x, j, dim=1), torch.take_along_dim(tx, tj, dim=1))
    assert_same(ember.take_along_dim(x, j), torch.take_along_dim(tx, tj))


# ----------------------------------------------------------------------------- rearranging


def test_flip_roll_repeat_errors_match_torch(torch):
    (x, tx) = _pair(torch, X)
    assert_both_raise(lambda: ember.flip(x, (0, 0)), lambda: torch.flip(tx, (0, 0)), ValueError)
    assert_both_raise(lambda: ember.flip(x, (2,)), lambda: torch.flip(tx, (2,)), IndexError)
    assert_both_raise(lambda: ember.roll(x, (1, 2)), lambda: torch.roll(tx, (1, 2)), ValueError)
    assert_both_raise(lambda: ember.roll(x, 1, (0, 1)), lambda: torch.roll(tx, 1, (0, 1)), ValueError)
    assert_both_raise(lambda: ember.roll(x, 1, 2), lambda: torch.roll(tx, 1, 2), IndexError)
    assert_both_raise(lambda: ember.roll(x, ()), lambda: torch.roll(tx, ()), ValueError)
    assert_both_raise(lambda: ember.repeat(x, 2), lambda: tx.repeat(2), ValueError)
    assert_both_raise(lambda: ember.repeat(x, -1, 2), lambda: tx.repeat(-1, 2), ValueError)
    assert_both_raise(lambda: ember.repeat(x), lambda: tx.repeat(), TypeError)


def test_flip_roll_repeat_on_integers_0d_and_empty(torch):
    for data in (np.arange(12).reshape(3, 4), np.zeros((0, 3), dtype=np.int32)):
        (x, tx) = _pair(torch, data)
        assert_same(ember.flip(x, (0, 1)), torch.flip(tx, (0, 1)))
        assert_same(ember.flip(x, ()), torch.flip(tx, ()))
        assert_same(ember.roll(x, -7), torch.roll(tx, -7))
        assert_same(ember.roll(x, (2, -5), (1, 1)), torch.roll(tx, (2, -5), (1, 1)))
        assert_same(ember.repeat(x, 2, 0, 3), tx.repeat(2, 0, 3))
    (z, tz) = _pair(torch, np.array(1.5))
    assert_same(ember.flip(z, (0,)), torch.flip(tz, (0,)))
    assert_same(ember.roll(z, 3), torch.roll(tz, 3))
    assert_same(ember.repeat(z, 2, 3), tz.repeat(2, 3))
    flipped = ember.flip(ember.tensor(X), 0)
    assert not np.shares_memory(flipped.numpy(), X)


def test_repeat_interleave_matches_torch(torch):
    (x, tx) = _pair(torch, np.arange(6).reshape(3, 2))
    (r, tr) = _pair(torch, np.array([1, 0, 2]))
    assert_same(ember.repeat_interleave(x, 2), torch.repeat_interleave(tx, 2))
    assert_same(ember.repeat_interleave(x, r, dim=0), torch.repeat_interleave(tx, tr, dim=0))
    assert_same(ember.repeat_interleave(x, ember.tensor(np.array([3])), dim=1),
          torch.repeat_interleave(tx, torch.tensor([3]), dim=1))
    assert_same(ember.repeat_interleave(x, ember.tensor(np.array(2)), dim=-1),
          torch.repeat_interleave(tx, torch.tensor(2), dim=-1))
    assert_same(ember.repeat_interleave(r), torch.repeat_interleave(tr))
    assert_same(ember.repeat_interleave(x, r.to(ember.int32), 0, output_size=3),
          torch.repeat_interleave(tx, tr.int(), 0, output_size=3))


def test_repeat_interleave_errors_match_torch(torch):
    (x, tx) = _pair(torch, np.arange(6.0).reshape(3, 2))
    bad = [
        (lambda m, t: m.repeat_interleave(t, -1, dim=0), ValueError),
        (lambda m, t: m.repeat_interleave(t, m.tensor(np.array([1, -1, 1])), dim=0), ValueError),
        (lambda m, t: m.repeat_interleave(t, m.tensor(np.array([1, 2])), dim=0), ValueError),
        (lambda m, t: m.repeat_interleave(t, m.tensor(np.array([1.0, 2.0, 1.0])), dim=0), TypeError),
        (lambda m, t: m.repeat_interleave(t, m.tensor(np.array([[1, 2, 1]])), dim=0), ValueError),
        (lambda m, t: m.repeat_interleave(t, 2, dim=2), IndexError),
        (lambda m, t: m.repeat_interleave(t, 2, dim=0, output_size=5), ValueError),
    ]
    for call, error in bad:
        assert_both_raise(lambda c=call: c(ember, x), lambda c=call: c(torch, tx), error)


def test_unflatten_is_a_view_and_checks_sizes_as_torch(torch):
    (x, tx) = _pair(torch, np.arange(24.0).reshape(2, 12))
    for sizes in ((3, 4), (-1, 6), (2, 3, 2), (12,)):
        out = ember.unflatten(x, -1, sizes)
        assert_same(out, torch.unflatten(tx, -1, sizes))
        assert np.shares_memory(out.numpy(), x.numpy())
    for sizes, error in (((5, -1), ValueError), ((-1, -1), ValueError), ((), ValueError), ((3, 3), ValueError)):
        assert_both_raise(lambda s=sizes: ember.unflatten(x, 1, s), lambda s=sizes: torch.unflatten(tx, 1, s), error)
    assert_both_raise(lambda: ember.unflatten(x, 2, (2, 6)), lambda: torch.unflatten(tx, 2, (2, 6)), IndexError)


def test_narrow_is_a_view_sharing_versions_and_checks_as_torch(torch):
    (x, tx) = _pair(torch, X.copy())
    for start, length in ((1, 2), (-2, 2), (4, 0), (-4, 4), (0, 4)):
        out = ember.narrow(x, 1, start, length)
        assert_same(out, torch.narrow(tx, 1, start, length))
        assert np.shares_memory(out.numpy(), x.numpy()) or out.numpy().size == 0
    assert_same(ember.narrow(x, 0, ember.tensor(1), 2), torch.narrow(tx, 0, torch.tensor(1), 2))
    for start, length, error in ((3, 2, ValueError), (-5, 1, IndexError), (5, 0, IndexError), (0, -1, ValueError)):
        assert_both_raise(lambda s=start, n=length: ember.narrow(x, 1, s, n),
                    lambda s=start, n=length: torch.narrow(tx, 1, s, n), error)
    assert_both_raise(lambda: ember.narrow(x, 2, 0, 1), lambda: torch.narrow(tx, 2, 0, 1), IndexError)
    (z, tz) = _pair(torch, np.array(1.0))
    assert_both_raise(lambda: ember.narrow(z, 0, 0, 1), lambda: torch.narrow(tz, 0, 0, 1), ValueError)
    view = ember.narrow(x, 0, 1, 1)
    before = x._version
    view.add_(1.0)
    assert x._version == before + 1 and x.numpy()[1, 0] == X[1, 0] + 1


@pytest.mark.parametrize("n", [0, 1, 2, 5, 6, 7, 10])
@pytest.mark.parametrize("chunks", [1, 2, 3, 4, 6, 11])
def test_chunk_gives_torchs_number_and_sizes(torch, n, chunks):
    (x, tx) = _pair(torch, np.arange(2 * n).reshape(2, n))
    ours, theirs = ember.chunk(x, chunks, 1), torch.chunk(tx, chunks, 1)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_same(a, b)


def test_chunk_errors_match_torch(torch):
    (x, tx), (z, tz) = _pair(torch, X), _pair(torch, np.array(1.0))
    assert_both_raise(lambda: ember.chunk(x, 0), lambda: torch.chunk(tx, 0), ValueError)
    assert_both_raise(lambda: ember.chunk(z, 1), lambda: torch.chunk(tz, 1), ValueError)
    assert_both_raise(lambda: ember.chunk(x, 2, 2), lambda: torch.chunk(tx, 2, 2), IndexError)


# ----------------------------------------------------------------------------- sorting


TIES = np.array([[3.0, 1.0, np.nan, 1.0, 2.0, 3.0], [0.0, -0.0, 5.0, 5.0, -1.0, np.inf]])


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sort_is_stable_with_ties_nan_and_signed_zeros_as_torch(torch, descending, dim):
    (x, tx) = _pair(torch, TIES)
    values, indices = ember.sort(x, dim=dim, descending=descending, stable=True)
    ref = torch.sort(tx, dim=dim, descending=descending, stable=True)
    assert_same(values, ref.values)
    assert_same(indices, ref.indices)
    assert_same(ember.argsort(x, dim, descending, True), torch.argsort(tx, dim=dim, descending=descending, stable=True))
    unstable = ember.sort(x, dim=dim, descending=descending)  # ties in any order: same values, valid indices
    assert_same(unstable.values, ref.values)
    np.testing.assert_array_equal(np.take_along_axis(TIES, unstable.indices.numpy(), dim), ref.values.numpy())


def test_sort_of_integers_bools_and_0d(torch):
    for data in (np.array([[3, -1, 3, 0], [7, 7, 2, 2]], dtype=np.int16), np.array([True, False, True]),
                 np.array(2.5)):
        (x, tx) = _pair(torch, data)
        result = ember.sort(x, descending=True, stable=True)
        ref = torch.sort(tx, descending=True, stable=True)
        assert_same(result.values, ref.values)
        assert_same(result.indices, ref.indices)
        assert not result.values.requires_grad


def test_topk_matches_torch_without_ties_and_is_valid_with_them(torch):
    x = np.random.default_rng(6).standard_normal((4, 7))
    (e, t) = _pair(torch, x)
    for k, dim, largest in ((3, -1, True), (2, 0, False), (0, 1, True), (7, 1, False)):
        ours, ref = ember.topk(e, k, dim, largest), torch.topk(t, k, dim, largest)
        assert_same(ours.values, ref.values)
        assert_same(ours.indices, ref.indices)
    ties = np.array([[1.0, 3.0, 3.0, np.nan, 3.0, 2.0, 3.0], [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, -1.0]])
    (e, t) = _pair(torch, ties)
    for k, largest in ((3, True), (5, True), (2, False), (7, True), (4, False)):
        ours, ref = ember.topk(e, k, largest=largest), torch.topk(t, k, largest=largest)
        assert_same(ours.values, ref.values)  # the same values; which of the tied elements is unspecified
        indices = ours.indices.numpy()
        np.testing.assert_array_equal(np.take_along_axis(ties, indices, 1), ref.values.numpy())
        assert all(len(set(row)) == k for row in indices.tolist())
        for row, values in zip(indices, np.take_along_axis(ties, indices, 1)):  # equal values: lower index first
            for i in range(k - 1):
                if values[i] == values[i + 1]:
                    assert row[i] < row[i + 1]
    (z, tz) = _pair(torch, np.array(4.0))
    assert_same(ember.topk(z, 1).values, torch.topk(tz, 1).values)


def test_topk_and_sort_errors_match_torch(torch):
    (x, tx) = _pair(torch, X)
    for k in (5, -1):
        assert_both_raise(lambda k=k: ember.topk(x, k), lambda k=k: torch.topk(tx, k), ValueError)
    assert_both_raise(lambda: ember.sort(x, 2), lambda: torch.sort(tx, 2), IndexError)
    assert_both_raise(lambda: ember.argsort(x, -3), lambda: torch.argsort(tx, -3), IndexError)


def test_sort_and_topk_return_named_tuples():
    result = ember.sort(ember.tensor(X))
    assert result._fields == ("values", "indices") and result[0] is result.values
    assert ember.topk(ember.tensor(X), 1)._fields == ("values", "indices")


# ----------------------------------------------------------------------------- one_hot


def test_one_hot_matches_torch(torch):
    for data, classes in ((np.array([0, 2, 1]), -1), (np.array([[0, 2], [1, 1]]), 5), (np.array(3), -1),
                          (np.zeros((0,), dtype=np.int64), 3)):
        (x, tx) = _pair(torch, data)
        assert_same(F.one_hot(x, classes), torch.nn.functional.one_hot(tx, classes))


ONE_HOT_ERRORS = [
    (np.array([0, 2], dtype=np.int32), -1, TypeError),
    (np.array([0.0, 2.0]), -1, TypeError),
    (np.array([0, -1]), -1, ValueError),
    (np.array([0, 3]), 3, ValueError),
    (np.zeros(0, dtype=np.int64), -1, ValueError),
    (np.array([1]), 0, ValueError),
]


@pytest.mark.parametrize("data, classes, error", ONE_HOT_ERRORS)
def test_one_hot_errors_match_torch(torch, data, classes, error):
    (x, tx) = _pair(torch, data)
    assert_both_raise(lambda: F.one_hot(x, classes), lambda: torch.nn.functional.one_hot(tx, classes), error)


# ----------------------------------------------------------------------------- pad


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_integer_tensors_match_torch(torch, mode):
    data = np.arange(48).reshape(1, 2, 2, 3, 4)
    for p, x in (((1, 2), data[0, 0]), ((3, -1), data[0, 0, 0]), ((2, 0, 1, 2), data[0]), ((-1, 3, 2, -1), data[0]),
                 ((0, 0), data[0, 0]), ((1, 1, 0, 1, 1, 1), data)):
        (e, t) = _pair(torch, x)
        assert_same(F.pad(e, p, mode=mode), torch.nn.functional.pad(t, p, mode=mode))


def test_pad_with_zero_widths_copies():
    x = ember.tensor(X[None])
    for mode in ("constant", "reflect", "circular"):
        out = F.pad(x, (0, 0), mode=mode)
        assert not np.shares_memory(out.numpy(), x.numpy())


PAD_ERRORS = [
    ((2, 3, 4), (1,), "constant", None, ValueError),  # odd length
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", None, ValueError),  # more dims than the input
    ((2, 3, 4), (-3, -2), "constant", None, ValueError),  # negative size
    ((2, 3, 4), (1, 1), "wrap", None, ValueError),  # unknown mode
    ((2, 3, 4), (4, 0), "reflect", None, ValueError),  # reflect needs pad < size
    ((2, 3, 4), (0, 4), "reflect", None, ValueError),
    ((2, 3, 4), (5, 0), "circular", None, ValueError),  # wraps more than once
    ((4,), (1, 1), "reflect", None, ValueError),  # 1-d input: no channel dimension
    ((1, 2, 3, 4), (1, 1), "replicate", None, ValueError),  # 2 values pad 2-d or 3-d inputs only
    ((2, 3, 4), (1, 1, 1, 1, 1, 1), "circular", None, ValueError),  # 6 values need 4-d or 5-d
    ((2, 3, 4), (1, 1), "reflect", 1.0, ValueError),  # a value with a non-constant mode
    ((2, 3, 4), (-2, -2), "replicate", None, ValueError),  # empty result
    ((2, 0, 4), (1, 1), "reflect", None, ValueError),  # empty channels
    ((2, 3, 4), (), "reflect", None, ValueError),
]


@pytest.mark.parametrize("shape, p, mode, value, error", PAD_ERRORS, ids=[f"{e[2]}-{e[1]}-{e[0]}" for e in PAD_ERRORS])
def test_pad_errors_match_torch(torch, shape, p, mode, value, error):
    x = np.zeros(shape)
    assert_both_raise(lambda: F.pad(ember.tensor(x), p, mode=mode, value=value),
                lambda: torch.nn.functional.pad(torch.from_numpy(x), p, mode=mode, value=value), error)


def test_pad_accepts_value_zero_for_other_modes_and_empty_batches(torch):
    (x, tx) = _pair(torch, np.zeros((0, 2, 3)))
    for mode in ("reflect", "replicate", "circular"):
        assert_same(F.pad(x, (1, 1), mode=mode, value=0.0), torch.nn.functional.pad(tx, (1, 1), mode=mode, value=0.0))


# ----------------------------------------------------------------------------- the hook for in-place methods


def _is_src(value) -> bool:
    return isinstance(value, str) and value == "src"


@pytest.mark.parametrize("name, args, kwargs", [
    ("scatter", (1, np.array([[3, 0], [1, 2], [0, 3]]), "src"), {}),
    ("scatter", (1, np.array([[3, 0], [1, 2], [0, 3]])), {"value": 2.5}),
    ("scatter_add", (1, np.array([[1, 1], [0, 2], [3, 3]]), "src"), {}),
    ("scatter_reduce", (1, np.array([[1, 1], [0, 2], [3, 3]]), "src", "amax"), {"include_self": False}),
    ("index_add", (1, np.array([2, 2]), "src"), {"alpha": 3.0}),
])
def test_inplace_args_records_in_place_methods_as_torch(torch, name, args, kwargs):
    """``inplace_args`` gives Tensor methods such as ``x.scatter_(...)`` their op: recorded in place, the
    gradients equal PyTorch's in-place method's."""
    from ember.functions.indexing import inplace_args

    rng = np.random.default_rng(8)
    a, src = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    ea, es = ember.tensor(a, requires_grad=True), ember.tensor(src, requires_grad=True)
    ta, ts = torch.tensor(a, requires_grad=True), torch.tensor(src, requires_grad=True)

    def convert(to_tensor, source):
        return [source if _is_src(v) else to_tensor(v) if isinstance(v, np.ndarray) else v for v in args]

    y = ea * 1.0
    cls, others, attrs = inplace_args(name, y, *convert(ember.tensor, es), **kwargs)
    assert y._inplace_recorded(cls, others, attrs, name + "_") is y
    z = ta * 1.0
    getattr(z, name + "_")(*convert(torch.from_numpy, ts), **kwargs)
    np.testing.assert_allclose(y.numpy(), z.detach().numpy(), rtol=1e-12)
    cot = rng.standard_normal((3, 4))
    y.backward(cot)
    z.backward(torch.from_numpy(cot))
    np.testing.assert_allclose(ea.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    if any(_is_src(v) for v in args):
        np.testing.assert_allclose(es.grad.numpy(), ts.grad.numpy(), rtol=1e-12)
