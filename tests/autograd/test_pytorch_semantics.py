"""Where ember offers what PyTorch offers, it means the same thing: edge cases found against PyTorch.

Each test runs the same expression in ember and in PyTorch (float64 unless the dtype is the point)
and compares values, dtypes, gradients, or that both refuse.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ember
import ember.nn.functional as F


def both(torch, values, requires_grad=True, dtype=np.float64):
    arr = np.asarray(values, dtype=dtype)
    return ember.tensor(arr, requires_grad=requires_grad), torch.tensor(arr, requires_grad=requires_grad)


def assert_same(ours, theirs, rtol=1e-12, atol=1e-14):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = ours.numpy() if isinstance(ours, ember.Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


# -- 0-d tensors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu", "gelu_tanh", "tanh", "exp"])
def test_activations_on_0d_tensors(torch, name, dtype):
    ours = {"sigmoid": lambda x: x.sigmoid(), "silu": F.silu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, "tanh"),
            "tanh": lambda x: x.tanh(), "exp": lambda x: x.exp()}[name]
    TF = torch.nn.functional
    theirs = {"sigmoid": lambda x: x.sigmoid(), "silu": TF.silu, "gelu": TF.gelu,
              "gelu_tanh": lambda x: TF.gelu(x, approximate="tanh"), "tanh": lambda x: x.tanh(),
              "exp": lambda x: x.exp()}[name]
    for v in (-1.3, 0.0, 0.7):
        x, tx = both(torch, v, dtype=dtype)
        y, ty = ours(x), theirs(tx)
        assert y.shape == () and y.dtype == dtype
        y.backward()
        ty.backward()
        tol = 1e-6 if dtype == np.float32 else 1e-12
        assert_same(y, ty, rtol=tol, atol=tol)
        assert_same(x.grad, tx.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("name", ["sum", "mean", "amax", "logsumexp", "squeeze", "argmax"])
def test_reductions_take_axis_0_and_minus_1_on_0d_tensors(torch, name, axis):
    x, tx = both(torch, 2.5)
    y, ty = getattr(x, name)(axis), getattr(tx, name)(axis)
    assert_same(y, ty)
    if name != "argmax":
        y.backward()
        ty.backward()
        assert_same(x.grad, tx.grad)
    values, indices = x.max(axis)
    assert_same(values, tx.max(axis).values)
    assert_same(indices, tx.max(axis).indices)
    with pytest.raises(IndexError, match="out of range"):
        getattr(x, name)(1)


# -- where, division, powers, maximum -------------------------------------------------------------
def test_where_gives_numbers_pytorchs_dtype(torch):
    cond = np.array([True, False, True])
    cases = [
        (np.array([1.0, 2.0, 3.0]), 0.0),  # float64 tensor and a Python float: float64
        (np.array([1.0, 2.0, 3.0], dtype=np.float32), 7),
        (np.array([1, 2, 3], dtype=np.int32), 0.5),  # int tensor and a float: the default float
        (np.array([1, 2, 3], dtype=np.int32), 5),  # int tensor and an int: the tensor's dtype
        (np.array([True, False, False]), 2),
        (1.0, 0.0),
        (1, 0),
        (True, False),
    ]
    for a, b in cases:
        for first, second in ((a, b), (b, a)):
            ours = ember.where(ember.tensor(cond), ember.tensor(first) if isinstance(first, np.ndarray) else first,
                               ember.tensor(second) if isinstance(second, np.ndarray) else second)
            theirs = torch.where(torch.tensor(cond),
                                 torch.tensor(first) if isinstance(first, np.ndarray) else first,
                                 torch.tensor(second) if isinstance(second, np.ndarray) else second)
            assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (first, second)
            assert_same(ours, theirs)


def test_where_refuses_a_non_boolean_condition(torch):
    with pytest.raises(TypeError, match="boolean"):
        ember.where(ember.tensor([1.0, 0.0]), ember.tensor([1.0, 2.0]), 0.0)
    with pytest.raises(RuntimeError):
        torch.where(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0]), 0.0)


def test_integer_true_division_gives_the_default_float(torch):
    a, b = np.array([1, -7, 9]), np.array([2, 2, -4])
    for ours, theirs in (
        (ember.tensor(a) / ember.tensor(b), torch.tensor(a) / torch.tensor(b)),
        (ember.tensor(a) / 2, torch.tensor(a) / 2),
        (3 / ember.tensor(b), 3 / torch.tensor(b)),
        (ember.tensor(a).div(ember.tensor(b)), torch.tensor(a).div(torch.tensor(b))),
    ):
        assert ours.dtype == np.float32 and theirs.dtype == torch.float32
        assert_same(ours, theirs)


@pytest.mark.parametrize("base", [0.0, -2.0, 0.5, 3.0])
def test_number_to_a_tensor_power(torch, base):
    x, tx = both(torch, [-1.0, 0.0, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy warnings escape for the edge values
        y = base**x
        y.backward(np.ones(4))
    ty = base**tx
    ty.backward(torch.ones(4, dtype=torch.float64))
    assert_same(y, ty)
    assert_same(x.grad, tx.grad)


def test_tensor_power_edges(torch):
    a, ta = both(torch, [0.0, 0.0, 2.0, -1.5, 0.0])
    b, tb = both(torch, [0.0, 2.0, 0.0, 2.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a**b).sum().backward()
    (ta**tb).sum().backward()
    assert_same(a.grad, ta.grad)
    assert_same(b.grad, tb.grad)
    for p in (0, 0.5, 2, 3):
        x, tx = both(torch, [0.0, 1.0, 2.0])
        (x**p).sum().backward()
        (tx**p).sum().backward()
        assert_same(x.grad, tx.grad)


def test_maximum_and_minimum_split_ties_with_a_number_too(torch):
    for op in ("maximum", "minimum"):
        for other in (0.0, 1.0):
            x, tx = both(torch, [0.0, 1.0, -1.0, 2.0])
            getattr(ember, op)(x, other).sum().backward()
            getattr(torch, op)(tx, torch.tensor(other, dtype=torch.float64)).sum().backward()
            assert_same(x.grad, tx.grad)
            x2 = ember.tensor(np.array([0.0, 1.0, -1.0, 2.0]), requires_grad=True)
            getattr(x2, op)(ember.tensor(other, dtype=ember.float64)).sum().backward()
            assert_same(x2.grad, tx.grad)  # one rule for the number and the tensor form


# -- creation -------------------------------------------------------------------------------------
def test_linspace_truncates_to_integers_and_refuses_bool(torch):
    for dtype in ("int32", "int64"):
        tdt = getattr(torch, dtype)
        assert_same(ember.linspace(-1.5, 1.5, 4, dtype=dtype), torch.linspace(-1.5, 1.5, 4, dtype=tdt))
        assert_same(ember.linspace(-7, 3, 6, dtype=dtype), torch.linspace(-7, 3, 6, dtype=tdt))
    assert_same(ember.linspace(0, 1, 5, dtype=ember.float64), torch.linspace(0, 1, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="bool"):
        ember.linspace(0, 1, 3, dtype=ember.bool_)


def test_full_infers_the_dtype_from_the_fill_value(torch):
    for value in (4, 4.0, True, -2):
        ours, theirs = ember.full((2, 3), value), torch.full((2, 3), value)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert_same(ours, theirs)


def test_tensor_copies_its_data_as_torch_tensor_does():
    arr = np.array([1.0, 2.0])
    t = ember.tensor(arr)
    arr[0] = 9.0
    assert t.tolist() == [1.0, 2.0]
    u = ember.tensor(t)
    t[1] = 5.0
    assert u.tolist() == [1.0, 2.0]
    shared = ember.from_numpy(arr)
    arr[1] = 7.0
    assert shared.tolist() == [9.0, 7.0]


# -- var and std ----------------------------------------------------------------------------------
@pytest.mark.parametrize("correction", [2, 3])
def test_var_with_no_degrees_of_freedom_is_inf_or_nan_with_a_warning(torch, correction):
    for values in ([1.0, 2.0], [3.0, 3.0]):
        x, tx = both(torch, values)
        with pytest.warns(RuntimeWarning, match="degrees of freedom"):
            y = x.var(correction=correction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ty = tx.var(correction=correction)
        assert_same(y, ty)
        y.backward()
        ty.backward()
        assert_same(x.grad, tx.grad)


def test_std_of_equal_values_has_a_zero_gradient(torch):
    for kwargs in ({"correction": 0}, {}, {"dim": 1, "keepdim": True}):
        x, tx = both(torch, [[3.0, 3.0, 3.0], [1.0, 2.0, 4.0]])
        x.std(**kwargs).sum().backward()
        tx.std(**kwargs).sum().backward()
        assert_same(x.grad, tx.grad)


# -- joining and indexing -------------------------------------------------------------------------
def test_cat_and_stack_refuse_what_torch_refuses(torch):
    zero_d = [ember.tensor(1.0), ember.tensor(2.0)]
    with pytest.raises(ValueError, match="0-d"):
        ember.cat(zero_d)
    with pytest.raises(RuntimeError):
        torch.cat([torch.tensor(1.0), torch.tensor(2.0)])
    a = ember.tensor([1.0, 2.0])
    for call in (lambda: ember.stack([a, a], axis=5), lambda: ember.stack([a, a], dim=-3),
                 lambda: ember.cat([a, a], axis=3), lambda: ember.cat([a, a], dim=-2)):
        with pytest.raises(IndexError, match="out of range"):
            call()
    assert ember.stack([a, a], dim=-1).shape == torch.stack([torch.ones(2)] * 2, dim=-1).shape
    with pytest.raises(ValueError, match="must match"):
        ember.cat([ember.zeros(2, 3), ember.zeros(3, 2)], axis=0)


INDEXES = [
    ([0, 1], slice(None), [1, 2]),  # advanced indices separated by a slice
    (slice(None), [0, 1], [1, 2]),  # adjacent advanced indices
    ([],),  # an empty index list
    ([True, False],),
    (0, None, [0, 1]),  # an integer next to an advanced index: PyTorch selects first
    (0, slice(None), [1, 2]),
    (1, [0, 2], slice(1, 3)),
    (Ellipsis, [0, 1]),
    ([-1, 0, -1],),
    (slice(None), 1, [[0, 1], [2, 3]]),
    (-1, Ellipsis, 2),
]


@pytest.mark.parametrize("index", INDEXES, ids=[str(i) for i in range(len(INDEXES))])
def test_indexing_reads_an_index_as_pytorch_does(torch, index):
    values = np.arange(24.0).reshape(2, 3, 4)
    x, tx = both(torch, values)
    tkey = tuple(torch.tensor(p) if isinstance(p, list) and p and isinstance(p[0], list) else p for p in index)
    tkey = tkey if len(index) > 1 else tkey[0]
    ekey = tuple(ember.tensor(np.array(p)) if isinstance(p, list) and p and isinstance(p[0], list) else p
                 for p in index)
    ekey = ekey if len(index) > 1 else ekey[0]
    y, ty = x[ekey], tx[tkey]
    assert_same(y, ty)
    cot = np.random.default_rng(0).standard_normal(ty.shape)
    y.backward(cot)
    ty.backward(torch.from_numpy(cot))
    assert_same(x.grad, tx.grad)
    with ember.no_grad():  # assignment addresses the same elements
        x2, tx2 = ember.tensor(values), torch.tensor(values)
        x2[ekey] = -1.0
        tx2[tkey] = -1.0
        assert_same(x2, tx2)


def test_a_list_of_lists_index_is_refused_as_ambiguous():
    x = ember.zeros(3, 3)
    with pytest.raises(IndexError, match="ambiguous"):
        x[[[0, 1], [1, 0]]]
    with pytest.raises(IndexError, match="integer or boolean"):
        x[np.array([0.0, 1.0])]


def test_attention_over_an_empty_sequence_is_empty(torch):
    qkv = ember.tensor(np.zeros((2, 0, 12)), requires_grad=True)
    y = F.causal_self_attention(qkv, 2)
    assert y.shape == (2, 0, 4)
    y.sum().backward()
    assert qkv.grad.shape == (2, 0, 12)
    q = torch.zeros(2, 2, 0, 2)
    assert torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).shape == (2, 2, 0, 2)


# -- PyTorch's spellings --------------------------------------------------------------------------
def test_dim_and_keepdim_spell_axis_and_keepdims_everywhere():
    x = ember.tensor(np.arange(24.0).reshape(2, 3, 4))
    pairs = [
        (x.sum(axis=1, keepdims=True), x.sum(dim=1, keepdim=True)),
        (x.mean(axis=(0, 2)), x.mean(dim=(0, 2))),
        (x.amax(axis=-1), x.amax(dim=-1)),
        (x.amin(axis=0, keepdims=True), x.amin(dim=0, keepdim=True)),
        (x.logsumexp(axis=2), x.logsumexp(dim=2)),
        (x.var(axis=1), x.var(dim=1)),
        (x.std(axis=1, keepdims=True), x.std(dim=1, keepdim=True)),
        (x.argmax(axis=2), x.argmax(dim=2)),
        (x.argmin(axis=0, keepdims=True), x.argmin(dim=0, keepdim=True)),
        ((x > 3).any(axis=1), (x > 3).any(dim=1)),
        ((x > 3).all(axis=(0, 1)), (x > 3).all(dim=(0, 1))),
        (x[:, :1].squeeze(axis=1), x[:, :1].squeeze(dim=1)),
        (x.unsqueeze(axis=0), x.unsqueeze(dim=0)),
        (ember.cat([x, x], axis=2), ember.cat([x, x], dim=2)),
        (ember.stack([x, x], axis=1), ember.stack([x, x], dim=1)),
        (x.flatten(1), x.flatten(start_dim=1)),
        (x.flatten(0, 1), x.flatten(start_dim=0, end_dim=1)),
        (x.max(axis=1).values, x.max(dim=1).values),
    ]
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for call in (lambda: x.sum(axis=1, dim=1), lambda: x.mean(keepdims=True, keepdim=True),
                 lambda: ember.cat([x], axis=0, dim=0)):
        with pytest.raises(TypeError, match="give one"):
            call()


def test_max_with_a_dim_returns_values_and_indices_as_pytorch(torch):
    values = [[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]]
    for name in ("max", "min"):
        for kwargs in ({"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1}):
            x, tx = both(torch, values)
            out, tout = getattr(x, name)(**kwargs), getattr(tx, name)(**kwargs)
            assert_same(out.values, tout.values)
            assert_same(out.indices, tout.indices)
            assert out[0] is out.values and out.indices.dtype == np.int64
            cot = np.random.default_rng(1).standard_normal(tout.values.shape)
            out.values.backward(cot)
            tout.values.backward(torch.from_numpy(cot))
            assert_same(x.grad, tx.grad)  # ties: the whole gradient to the first extremum
        x, tx = both(torch, values)
        getattr(x, name)().backward()
        getattr(tx, name)().backward()
        assert_same(x.grad, tx.grad)  # no dim: ties share the gradient
        x, tx = both(torch, values)
        getattr(x, "a" + name)(dim=1).sum().backward()
        getattr(torch, "a" + name)(tx, dim=1).sum().backward()
        assert_same(x.grad, tx.grad)
    x = ember.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.max(ember.tensor([[3.0, 3.0], [3.0, 3.0]])).tolist() == [[3.0, 5.0], [7.0, 3.0]]
    with pytest.raises(IndexError, match="empty"):
        ember.zeros(2, 0).max(dim=1)


def test_mean_of_integers_asks_for_a_float_dtype(torch):
    x = ember.tensor([1, 2, 4])
    with pytest.raises(TypeError, match="floating"):
        x.mean()
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2, 4]).mean()
    assert_same(x.mean(dtype=ember.float64), torch.tensor([1, 2, 4]).mean(dtype=torch.float64))
    assert x.sum().dtype == np.int64 and ember.tensor([True, True]).sum().item() == 2


def test_tensor_methods_that_pytorch_users_reach_for(torch):
    a_np, b_np = np.array([[1.5, -2.0], [0.25, 4.0]]), np.array([[2.0, 0.5], [-1.0, 2.0]])
    a, b = ember.tensor(a_np), ember.tensor(b_np)
    ta, tb = torch.tensor(a_np), torch.tensor(b_np)
    pairs = [
        (a.add(b), ta.add(tb)), (a.add(b, alpha=2), ta.add(tb, alpha=2)), (a.sub(b), ta.sub(tb)),
        (a.sub(b, alpha=0.5), ta.sub(tb, alpha=0.5)), (a.mul(b), ta.mul(tb)), (a.div(b), ta.div(tb)),
        (a.pow(2), ta.pow(2)), (a.abs().pow(b), ta.abs().pow(tb)), (a.neg(), ta.neg()), (a.abs(), ta.abs()),
        (a.int(), ta.int()), (a.long(), ta.long()), (a.float(), ta.float()), (a.double(), ta.double()),
        (a.bool(), ta.bool()), (a.half().float(), ta.half().float()), (a.T.contiguous(), ta.T.contiguous()),
    ]
    for ours, theirs in pairs:
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert_same(ours, theirs)
    assert a.type() == "ember.DoubleTensor" and ta.type() == "torch.DoubleTensor"
    assert a.float().type() == "ember.FloatTensor" and a.long().type() == "ember.LongTensor"
    assert a.type(ember.float32).dtype == np.float32
    assert a.size() == (2, 2) and a.size(1) == 2 and a.numel() == 4 and a.dim() == 2
    assert a[0, 1].item() == -2.0 and a.tolist() == a_np.tolist()
    t = a.T
    assert not t.is_contiguous() and t.contiguous().is_contiguous() and a.contiguous() is a
    with pytest.raises(TypeError, match="reinterpreting"):
        a.view(ember.float32)
