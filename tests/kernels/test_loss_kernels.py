"""Softmax cross-entropy through ``ember.kernels.loss`` (numba) against the NumPy reference and long-double math.

Tolerances are in ulps of the dtype times each result's scale: the magnitudes it is computed from.
A probability p = exp(z - m) inherits the rounding of z - m, relatively |z - m|·eps/2, so the
gradient's scale carries p·(1 + |z - m|) and the loss's the largest |z - m| of its row.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import kernels
from ember.kernels import loss as loss_kernels
from ember.nn import functional as F

pytest.importorskip("numba")

# float64 results are checked against long double, which is wider only on some platforms (x86-64: 80-bit)
LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
DTYPES = (np.float32, pytest.param(np.float64, marks=pytest.mark.skipif(
    not LONG_DOUBLE_IS_WIDER, reason="long double is float64 here: no wider reference for float64 results")))
SHAPES = [
    (96, 65),  # GPT's rows (a slice of its 768)
    (7, 5),
    (5, 200),
    (3, 1),  # one class: loss 0, gradient 0
    (1, 1),
    (9,),  # one sample, (C,) logits
    (2, 4, 3),  # classes on axis 1, (N, d1) targets
    (2, 5, 3, 2),
]


def target_shape(shape):
    return () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])


def random_case(shape, dtype, seed, ignore_index=None):
    """Logits (spread like a trained model's), class targets (a third ignored when ``ignore_index`` is given)."""
    rng = np.random.default_rng(seed)
    classes = shape[0] if len(shape) == 1 else shape[1]
    z = (rng.standard_normal(shape) * rng.uniform(0.5, 4.0)).astype(dtype)
    t = rng.integers(0, classes, target_shape(shape))
    if ignore_index is not None and t.ndim:
        t[rng.random(t.shape) < 1 / 3] = ignore_index
    return z, t


def cross_entropy_run(backend, z, t, upstream=None, **kw):
    """(loss, d loss/d logits) of ``F.cross_entropy`` under ``backend``; ``upstream`` is the cotangent."""
    with kernels.use(backend):
        tz = ember.tensor(z, requires_grad=True)
        loss = F.cross_entropy(tz, ember.tensor(t), **kw)
        loss.backward(upstream)
    return loss.numpy(), tz.grad.numpy()


def to_rows(a):
    """(C,) -> (1, C); (N, C, d...) -> (N·d..., C), as the op sees its logits."""
    return a[None] if a.ndim == 1 else np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def cross_entropy_exact(z, t, upstream, reduction, eps, valid):
    """Loss and gradient in long double, with their scales, for class targets ``t`` counted where ``valid``
    (NaN where the logits are not finite, or for a mean over nothing)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _cross_entropy_exact(z, t, upstream, reduction, eps, valid)


def _cross_entropy_exact(z, t, upstream, reduction, eps, valid):
    Z = to_rows(z).astype(np.longdouble)
    rows, classes = Z.shape
    t, valid = t.reshape(-1), valid.reshape(-1).astype(np.longdouble)
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    lse = np.log(e.sum(axis=1))
    p = e / e.sum(axis=1, keepdims=True)
    picked = shifted[np.arange(rows), np.where(valid > 0, t, 0)]
    loss = (1 - eps) * (lse - picked) + eps * (lse - shifted.mean(axis=1))
    loss_scale = np.abs(lse) + np.abs(shifted).max(axis=1)
    onehot = np.zeros_like(p)
    onehot[np.arange(rows), np.where(valid > 0, t, 0)] = 1
    up = np.asarray(upstream, np.longdouble).reshape(-1)
    if reduction == "none":
        coef = up * valid
        value, value_scale = loss * valid, loss_scale * valid
    else:
        count = valid.sum() if reduction == "mean" else 1
        coef = up * valid / count
        value, value_scale = (loss * valid).sum() / count, (loss_scale * valid).sum() / count
        value_scale *= 1 + np.log2(rows)  # the reduction's own float sum (NumPy's pairwise sum)
    grad = coef[:, None] * (p - (1 - eps) * onehot - eps / classes)
    grad_scale = np.abs(coef)[:, None] * (p * (1 + np.abs(shifted)) + onehot + eps / classes)
    return value, value_scale, grad, grad_scale


def assert_within_ulps(actual, expected, scale, ulps, what):
    """|actual - expected| <= ulps · eps(dtype) · scale, element-wise (scale broadcasts)."""
    eps = np.finfo(actual.dtype).eps
    err = np.abs(np.asarray(actual, np.longdouble) - expected)
    ratio = err / (eps * np.asarray(scale, np.longdouble) + np.finfo(actual.dtype).tiny)
    assert not np.any(ratio > ulps), f"{what}: error up to {float(ratio.max()):.1f} ulps of its scale (allowed {ulps})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_kernel_matches_the_reference_and_exact_math(shape, reduction, smoothing, dtype):
    for seed, ignore_index in ((0, None), (1, -1), (2, -100)):
        z, t = random_case(shape, dtype, seed, ignore_index)
        upstream = np.random.default_rng(seed).standard_normal(target_shape(shape) if reduction == "none" else ())
        upstream = upstream.astype(dtype)
        kw = dict(reduction=reduction, label_smoothing=smoothing)
        if ignore_index is not None:
            kw["ignore_index"] = ignore_index
        fast_loss, fast_grad = cross_entropy_run("numba", z, t, upstream, **kw)
        ref_loss, ref_grad = cross_entropy_run("numpy", z, t, upstream, **kw)
        assert fast_loss.dtype == fast_grad.dtype == dtype
        assert fast_loss.shape == ref_loss.shape and fast_grad.shape == ref_grad.shape == z.shape
        valid = t != kw.get("ignore_index", -100)
        value, value_scale, grad, grad_scale = cross_entropy_exact(z, t, upstream, reduction, smoothing, valid)
        if not valid.any() and reduction == "mean":  # 0/0, as PyTorch; nothing pulls the logits
            assert np.isnan(fast_loss) and np.isnan(ref_loss) and not fast_grad.any() and not ref_grad.any()
            continue
        # the kernel: float64 row sums, then NumPy's exp (a few ulps in its SIMD loops), the division by the sum, the
        # product with the upstream factor and the one-hot subtraction, each rounded (seen: up to 2.6 ulps)
        assert_within_ulps(fast_loss.reshape(-1), value.reshape(-1), value_scale, 4, "kernel loss")
        assert_within_ulps(to_rows(fast_grad), grad, grad_scale, 6, "kernel grad")
        # against the reference: both errors
        assert_within_ulps(fast_loss.reshape(-1), ref_loss.reshape(-1), value_scale, 8, "kernel vs reference loss")
        assert_within_ulps(to_rows(fast_grad), to_rows(ref_grad), grad_scale, 8, "kernel vs reference grad")


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_backward_kernel_equals_the_reference_backward_bit_for_bit(dtype, smoothing):
    """Given the same saved softmax, both backwards do the same operations in the same order."""
    z, t = random_case((20, 11), dtype, seed=3, ignore_index=-1)
    with kernels.use("numba"):
        tz = ember.tensor(z, requires_grad=True)
        loss = F.cross_entropy(tz, ember.tensor(t), ignore_index=-1, label_smoothing=smoothing)
    grads = {}
    for backend in ("numpy", "numba"):
        tz.grad = None
        with kernels.use(backend):
            loss.backward(np.asarray(1.7, dtype), retain_graph=True)
        grads[backend] = tz.grad.numpy()
    np.testing.assert_array_equal(grads["numba"], grads["numpy"])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_masked_rows_neither_count_nor_pull(backend):
    z, t = random_case((8, 6), np.float32, seed=4)
    mask = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    with kernels.use(backend):
        tz = ember.tensor(z, requires_grad=True)
        loss = F.masked_cross_entropy(tz, ember.tensor(t), mask)
        loss.backward()
    expected, _, grad, grad_scale = cross_entropy_exact(z, t, 1.0, "mean", 0.0, mask)
    assert_within_ulps(loss.numpy(), expected, abs(expected) + np.abs(z).max(), 8, "loss")
    assert_within_ulps(tz.grad.numpy(), grad, grad_scale, 8, "grad")
    assert not tz.grad.numpy()[~mask].any()


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_an_out_of_range_target_is_refused_on_both_backends(backend):
    z, _ = random_case((4, 5), np.float32, seed=5)
    t = np.array([1, 0, 5, 2])
    with kernels.use(backend), pytest.raises(IndexError, match=r"target class out of range \[0, 5\) \(min 0, max 5\)"):
        F.cross_entropy(ember.tensor(z, requires_grad=True), ember.tensor(t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", [1, 2, 5, 13, 65])
def test_a_huge_logit_anywhere_in_the_row_is_found_as_the_max(classes, dtype):
    """exp(z - m) overflows unless m is the row's true max: put a logit of 1000 at every position in turn."""
    rng = np.random.default_rng(11)
    z = rng.standard_normal((classes, classes)).astype(dtype)
    z[np.arange(classes), np.arange(classes)] = 1000
    t = rng.integers(0, classes, classes)
    loss, grad = cross_entropy_run("numba", z, t, np.ones(classes, dtype), reduction="none")
    expected, scale, exact_grad, grad_scale = cross_entropy_exact(z, t, np.ones(classes), "none", 0.0,
                                                                  np.ones(classes, bool))
    assert_within_ulps(loss, expected, scale, 4, "loss")
    assert_within_ulps(grad, exact_grad, grad_scale, 6, "grad")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_non_finite_logits_spoil_only_their_rows(backend):
    """NaN or +inf in a row makes its loss and gradient NaN (as NumPy's max and PyTorch do); -inf on a wrong class
    is a legitimate mask, giving a finite loss and a zero probability there."""
    z, t = random_case((5, 7), np.float32, seed=6)
    t[3] = 0
    z[1, 2], z[2, 4], z[3, 5:] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        loss, grad = cross_entropy_run(backend, z, t, np.ones(5, np.float32), reduction="none")
    assert np.isnan(loss[[1, 2]]).all() and np.isnan(grad[[1, 2]]).all()
    assert np.isfinite(loss[[0, 3, 4]]).all() and np.isfinite(grad[[0, 3, 4]]).all()
    assert not grad[3, 5:].any()
    finite = [0, 3, 4]
    expected, scale, exact_grad, grad_scale = cross_entropy_exact(z[finite], t[finite], np.ones(3), "none", 0.0,
                                                                  np.ones(3, bool))
    assert_within_ulps(loss[finite], expected, scale, 4, "loss")
    assert_within_ulps(grad[finite], exact_grad, np.nan_to_num(grad_scale), 4, "grad")


@pytest.fixture
def counted(count_calls):
    """The cross-entropy kernels wrapped in call counters: (forward's first pass, backward)."""
    return count_calls(loss_kernels, "shift_rows"), count_calls(loss_kernels, "cross_entropy_grad")


def test_the_kernel_takes_class_indices_and_leaves_the_rest_to_the_reference(counted):
    forward, backward = counted
    z, t = random_case((6, 4), np.float32, seed=7)
    cross_entropy_run("numpy", z, t)
    assert (forward.calls, backward.calls) == (0, 0)
    cross_entropy_run("numba", z, t)
    assert (forward.calls, backward.calls) == (1, 1)
    weight = np.linspace(0.5, 2.0, 4).astype(np.float32)
    cross_entropy_run("numba", z, t, weight=ember.tensor(weight))  # class weights: the reference
    soft = np.full(z.shape, 0.25, np.float32)
    with kernels.use("numba"):
        tz = ember.tensor(z, requires_grad=True)
        F.cross_entropy(tz, ember.tensor(soft)).backward()  # probability targets: the reference
    cross_entropy_run("numba", z.astype(np.float16), t)  # not a kernel dtype
    assert (forward.calls, backward.calls) == (1, 1)
    loss, grad = cross_entropy_run("numba", np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert forward.calls == 1, "no rows: the reference forward"
    assert np.isnan(loss) and grad.shape == (0, 4)


@pytest.mark.parametrize("forward_backend,backward_backend", [("numba", "numpy"), ("numpy", "numba")])
def test_forward_and_backward_may_run_on_different_backends(forward_backend, backward_backend):
    """Both forwards save the same state (softmax, targets, row weights, scale), read by either backward."""
    z, t = random_case((10, 6), np.float64, seed=8, ignore_index=-100)
    with kernels.use(forward_backend):
        tz = ember.tensor(z, requires_grad=True)
        loss = F.cross_entropy(tz, ember.tensor(t), label_smoothing=0.1)
    with kernels.use(backward_backend):
        loss.backward()
    ref_loss, ref_grad = cross_entropy_run("numpy", z, t, label_smoothing=0.1)
    np.testing.assert_allclose(loss.numpy(), ref_loss, rtol=1e-13)
    np.testing.assert_allclose(tz.grad.numpy(), ref_grad, rtol=1e-12, atol=1e-15)


def test_int32_targets_take_the_kernel_and_give_the_int64_results(counted):
    forward, _ = counted
    z, t = random_case((12, 9), np.float32, seed=9, ignore_index=-100)
    narrow = cross_entropy_run("numba", z, t.astype(np.int32))
    wide = cross_entropy_run("numba", z, t)
    assert forward.calls == 2
    np.testing.assert_array_equal(narrow[0], wide[0])
    np.testing.assert_array_equal(narrow[1], wide[1])


def test_a_float32_gpt_gradient_agrees_on_both_backends():
    """One backward pass of a small float32 GPT (with the tanh GELU, leaving out the exact GELU's own kernel):
    LayerNorm's and cross-entropy's kernels change only rounding, so every gradient agrees with the reference
    path to float32 round-off amplified through the network (1e-5 of the parameter's largest gradient, about
    80 ulps; seen: 4e-7)."""
    from ember.models.gpt import GPT, GPTConfig

    rng = np.random.default_rng(10)
    idx, tgt = rng.integers(0, 65, (4, 32)), rng.integers(0, 65, (4, 32))
    tgt[1, :5] = -1
    grads = {}
    for backend in ("numba", "numpy"):
        ember.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=32, gelu="tanh"))
        with kernels.use(backend):
            _, loss = model(idx, tgt)
            loss.backward()
        grads[backend] = (loss.item(), {name: p.grad.numpy().copy() for name, p in model.named_parameters()})
    assert abs(grads["numba"][0] - grads["numpy"][0]) <= 8 * np.finfo(np.float32).eps * grads["numpy"][0]
    for name, ref in grads["numpy"][1].items():
        np.testing.assert_allclose(grads["numba"][1][name], ref, rtol=0, atol=1e-5 * np.abs(ref).max(), err_msg=name)
