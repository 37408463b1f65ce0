"""LayerNorm and GroupNorm through ``ember.kernels.norm`` (numba) against the NumPy reference and long-double math.

Tolerances are in ulps of the dtype times the magnitudes a result is computed from (its "scale"), not
of the result itself: dx is a difference of terms of size rstd·|g·w|, so its error is relative to them.
The reference and the kernel sum in different orders (BLAS float32 dot products against float64
accumulators), so they agree to rounding, not bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import kernels
from ember.kernels import norm as norm_kernels
from ember.nn import functional as F

pytest.importorskip("numba")

# float64 results are checked against long double, which is wider only on some platforms (x86-64: 80-bit)
LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps
DTYPES = (np.float32, pytest.param(np.float64, marks=pytest.mark.skipif(
    not LONG_DOUBLE_IS_WIDER, reason="long double is float64 here: no wider reference for float64 results")))
LAYER_SHAPES = [  # (input shape, normalized_shape)
    ((4, 16, 128), (128,)),  # GPT's rows
    ((3, 5, 7), (7,)),
    ((2, 33), (33,)),  # not a multiple of any vector width
    ((2, 3, 4), (3, 4)),  # two normalised axes
    ((3, 1000), (1000,)),
    ((5,), (5,)),  # one row
    ((6, 1), (1,)),  # rows of one element: xhat is 0
    ((1, 1), (1,)),
    ((0, 8), (8,)),  # no rows
]
AFFINE = [(True, True), (True, False), (False, True), (False, False)]


def random_case(shape, param_shape, dtype, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    x = (offset + rng.standard_normal(shape) * rng.uniform(0.5, 3.0)).astype(dtype)
    w = (1 + 0.3 * rng.standard_normal(param_shape)).astype(dtype)
    b = (0.5 * rng.standard_normal(param_shape)).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    return x, w, b, g


def norm_run(backend, norm, x, w, b, g):
    """(out, dx, dweight, dbias) of ``norm(x, weight, bias)`` under ``backend`` for the cotangent ``g`` (None for an
    absent parameter)."""
    with kernels.use(backend):
        tx = ember.tensor(x, requires_grad=True)
        tw, tb = (None if a is None else ember.tensor(a, requires_grad=True) for a in (w, b))
        out = norm(tx, tw, tb)
        out.backward(g)
    return (out.numpy(), tx.grad.numpy()) + tuple(None if t is None else t.grad.numpy() for t in (tw, tb))


def layer_norm_run(backend, x, normalized_shape, w, b, g, eps=1e-5):
    return norm_run(backend, lambda tx, tw, tb: F.layer_norm(tx, normalized_shape, tw, tb, eps), x, w, b, g)


def layer_norm_exact(x, d, w, b, g, eps=1e-5):
    """The same in long double (64-bit mantissa), with the scales of each result's terms."""
    X = x.reshape(-1, d).astype(np.longdouble)
    G = g.reshape(-1, d).astype(np.longdouble)
    W = np.ones(d, np.longdouble) if w is None else w.reshape(-1).astype(np.longdouble)
    B = np.zeros(d, np.longdouble) if b is None else b.reshape(-1).astype(np.longdouble)
    centred = X - X.mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt((centred * centred).mean(axis=1, keepdims=True) + np.longdouble(eps))
    xhat = centred * rstd
    gx = G * W
    mean_g, mean_gx = gx.mean(axis=1, keepdims=True), (gx * xhat).mean(axis=1, keepdims=True)
    exact = dict(out=xhat * W + B, dx=rstd * (gx - mean_g - xhat * mean_gx), dweight=(G * xhat).sum(axis=0),
                 dbias=G.sum(axis=0))
    scale = dict(out=np.abs(xhat * W) + np.abs(B) + 1,  # + 1: a row of one element has xhat 0 up to rounding
                 dx=rstd * (np.abs(gx).max(axis=1, keepdims=True) + np.abs(mean_g)
                            + np.abs(xhat).max(axis=1, keepdims=True) * np.abs(mean_gx)),
                 dweight=np.abs(G * xhat).sum(axis=0) + 1, dbias=np.abs(G).sum(axis=0) + 1)
    return exact, scale


def assert_within_ulps(actual, expected, scale, ulps, what):
    """|actual - expected| <= ulps · eps(dtype) · scale, element-wise (scale broadcasts)."""
    eps = np.finfo(actual.dtype).eps
    err = np.abs(np.asarray(actual, np.longdouble) - expected)
    ratio = err / (eps * np.asarray(scale, np.longdouble))
    assert not np.any(ratio > ulps), f"{what}: error up to {float(ratio.max()):.1f} ulps of its scale (allowed {ulps})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("has_weight,has_bias", AFFINE)
@pytest.mark.parametrize("shape,normalized_shape", LAYER_SHAPES)
def test_layer_norm_kernel_matches_the_reference_and_exact_math(shape, normalized_shape, has_weight, has_bias, dtype):
    d = int(np.prod(normalized_shape))
    for seed in range(2):
        x, w, b, g = random_case(shape, normalized_shape, dtype, seed)
        w, b = (w if has_weight else None), (b if has_bias else None)
        fast = layer_norm_run("numba", x, normalized_shape, w, b, g)
        ref = layer_norm_run("numpy", x, normalized_shape, w, b, g)
        exact, scale = layer_norm_exact(x, d, w, b, g)
        for name, k, r in zip(("out", "dx", "dweight", "dbias"), fast, ref):
            if r is None:
                assert k is None, name
                continue
            assert k.dtype == dtype and k.shape == r.shape, name
            k, r = k.reshape(exact[name].shape), r.reshape(exact[name].shape)  # rows (R, D), or (D,)
            # the kernel: float64 statistics, then two or three roundings of the dtype per element (seen: under 2)
            assert_within_ulps(k, exact[name], scale[name], 4, f"kernel {name}")
            # against the reference: both errors; the reference's float32 sums over R rows may add √R ulps
            rows = max(1, x.size // d)
            assert_within_ulps(k, r, scale[name], 8 + np.sqrt(rows), f"kernel vs reference {name}")


def test_layer_norm_kernel_keeps_float32_accuracy_on_rows_with_a_large_mean():
    """Rows of mean 1000 and std 1 in float32: the reference rounds the mean to float32 before subtracting it and
    loses up to ulp(1000)/2·rstd in xhat, hundreds of ulps; the kernel subtracts in float64 and rounds once.
    (In float64 both lose alike: the float64 mean itself carries ulp(1000)-sized error.)"""
    x, w, b, g = random_case((64, 128), (128,), np.float32, seed=3, offset=1000.0)
    exact, scale = layer_norm_exact(x, 128, w, b, g)  # x is already (R, D)
    out, dx, dw, db = layer_norm_run("numba", x, (128,), w, b, g)
    assert_within_ulps(out, exact["out"], scale["out"], 8, "out")
    assert_within_ulps(dx, exact["dx"], scale["dx"], 8, "dx")
    assert_within_ulps(dw, exact["dweight"], scale["dweight"], 8, "dweight")
    reference_out = layer_norm_run("numpy", x, (128,), w, b, g)[0]
    with pytest.raises(AssertionError, match="ulps of its scale"):  # the bound is tight enough to tell the two apart
        assert_within_ulps(reference_out, exact["out"], scale["out"], 8, "reference out")


def test_layer_norm_kernel_sums_long_rows_in_float64():
    """Rows of 2^20 float32 values of mean 5 and std 1: a running float32 sum (what a plain loop in the dtype does)
    puts the mean off by 9e-5 here, 700 float32 ulps of a unit xhat; float64 accumulators keep xhat within a few."""
    rng = np.random.default_rng(4)
    x = (5 + rng.standard_normal((2, 1 << 20))).astype(np.float32)
    _, xhat, rstd = norm_kernels.normalize_rows(x, 1e-5, affine=False)
    exact, scale = layer_norm_exact(x, x.shape[1], None, None, np.zeros_like(x))
    assert_within_ulps(xhat, exact["out"], scale["out"], 8, "xhat")
    X = x.astype(np.longdouble)
    exact_rstd = 1 / np.sqrt(X.var(axis=1, keepdims=True) + np.longdouble(1e-5))
    assert_within_ulps(rstd, exact_rstd, exact_rstd, 4, "rstd")


def test_layer_norm_kernel_column_sums_stay_accurate_over_many_rows():
    """dweight and dbias over 20000 rows: float64 accumulators, so within a few ulps of Σ|terms|, where a float32
    running sum may drift by up to 20000 ulps."""
    x, w, b, g = random_case((20000, 16), (16,), np.float32, seed=5)
    g += np.float32(3)  # same-signed terms: the sums' magnitudes are their sizes
    _, _, dw, db = layer_norm_run("numba", x, (16,), w, b, g)
    exact, scale = layer_norm_exact(x, 16, w, b, g)
    assert_within_ulps(dw, exact["dweight"], scale["dweight"], 4, "dweight")
    assert_within_ulps(db, exact["dbias"], scale["dbias"], 2, "dbias")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_a_non_finite_value_spoils_only_its_own_row(backend):
    x, w, b, g = random_case((4, 9), (9,), np.float32, seed=6)
    x[1, 3], x[2, 0] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        out, dx, _, _ = layer_norm_run(backend, x, (9,), w, b, g)
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all() and np.isnan(dx[1]).all()
    assert np.isfinite(out[[0, 3]]).all() and np.isfinite(dx[[0, 3]]).all()


@pytest.fixture
def counted(count_calls):
    """The norm kernels wrapped in call counters: (forward, backward)."""
    return count_calls(norm_kernels, "layer_norm_forward"), count_calls(norm_kernels, "layer_norm_backward")


def test_the_kernel_runs_only_on_the_numba_backend(counted):
    forward, backward = counted
    x, w, b, g = random_case((3, 8), (8,), np.float32, seed=7)
    layer_norm_run("numpy", x, (8,), w, b, g)
    assert (forward.calls, backward.calls) == (0, 0)
    layer_norm_run("numba", x, (8,), w, b, g)
    assert (forward.calls, backward.calls) == (1, 1)
    layer_norm_run("numba", x.astype(np.float16), (8,), w.astype(np.float16), b.astype(np.float16),
                   g.astype(np.float16))
    assert (forward.calls, backward.calls) == (1, 1), "float16 is not the kernel's: the reference runs"


def test_a_strided_upstream_gradient_goes_to_the_reference_backward(counted):
    """A gradient that is not C-contiguous (here Fortran-ordered) is the reference's: the kernel's forward state
    must serve the reference backward too."""
    forward, backward = counted
    x, w, b, g = random_case((5, 6), (6,), np.float64, seed=8)
    fast = layer_norm_run("numba", x, (6,), w, b, np.asfortranarray(g))
    assert (forward.calls, backward.calls) == (1, 0)
    for got, ref in zip(fast, layer_norm_run("numpy", x, (6,), w, b, g)):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("forward_backend,backward_backend", [("numba", "numpy"), ("numpy", "numba")])
def test_forward_and_backward_may_run_on_different_backends(forward_backend, backward_backend):
    """Both paths save the same state (xhat, rstd (R, 1), the 1/D vector), so either backward reads either forward."""
    x, w, b, g = random_case((7, 10), (10,), np.float64, seed=9)
    with kernels.use(forward_backend):
        tx, tw, tb = (ember.tensor(a, requires_grad=True) for a in (x, w, b))
        out = F.layer_norm(tx, 10, tw, tb)
    with kernels.use(backward_backend):
        out.backward(g)
    ref = layer_norm_run("numpy", x, (10,), w, b, g)
    for got, expected in zip((out.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()), ref):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_only_the_gradients_asked_for_are_computed():
    """A frozen weight gets no gradient, and x's gradient is still right (the kernel skips the column sums)."""
    x, w, b, g = random_case((6, 12), (12,), np.float64, seed=10)
    results = {}
    for backend in ("numba", "numpy"):
        with kernels.use(backend):
            tx, tw, tb = ember.tensor(x, requires_grad=True), ember.tensor(w), ember.tensor(b, requires_grad=True)
            F.layer_norm(tx, 12, tw, tb).backward(g)
        assert tw.grad is None
        results[backend] = (tx.grad.numpy(), tb.grad.numpy())
    for fast, ref in zip(results["numba"], results["numpy"]):
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- GroupNorm

GROUP_SHAPES = [  # (input shape, num_groups)
    ((3, 4, 2, 3), 2),
    ((2, 6, 5), 3),
    ((2, 3, 4), 1),
    ((3, 6), 2),
    ((1, 4, 3), 4),
    ((2, 8, 16, 16), 4),  # rows of 512
    ((0, 4, 3), 2),  # no samples
]


def group_norm_run(backend, x, groups, w, b, g, eps=1e-5):
    return norm_run(backend, lambda tx, tw, tb: F.group_norm(tx, groups, tw, tb, eps), x, w, b, g)


def group_norm_exact(x, groups, w, b, g, eps=1e-5):
    """GroupNorm's output and dx in long double: LayerNorm over each (sample, group) row, then the per-channel
    affine (dx's scale as LayerNorm's, with g·w per channel)."""
    n, c = x.shape[:2]
    d = c // groups * int(np.prod(x.shape[2:]))
    per_channel = int(np.prod(x.shape[2:]))
    W = np.ones(c) if w is None else w
    B = np.zeros(c) if b is None else b
    W_rows = np.broadcast_to(np.repeat(W, per_channel).reshape(groups, d), (n, groups, d)).reshape(-1, d)
    B_rows = np.broadcast_to(np.repeat(B, per_channel).reshape(groups, d), (n, groups, d)).reshape(-1, d)
    rows_x, rows_g = x.reshape(-1, d), g.reshape(-1, d).astype(np.longdouble)
    exact, scale = layer_norm_exact(rows_x, d, None, None, rows_g * W_rows.astype(np.longdouble), eps)
    exact["out"] = exact["out"] * W_rows + B_rows
    scale["out"] = scale["out"] * np.abs(W_rows) + np.abs(B_rows) + 1
    return exact, scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("has_weight,has_bias", AFFINE)
@pytest.mark.parametrize("shape,groups", GROUP_SHAPES)
def test_group_norm_kernel_matches_the_reference_and_exact_math(shape, groups, has_weight, has_bias, dtype):
    x, w, b, g = random_case(shape, (shape[1],), dtype, seed=11)
    w, b = (w if has_weight else None), (b if has_bias else None)
    fast = group_norm_run("numba", x, groups, w, b, g)
    ref = group_norm_run("numpy", x, groups, w, b, g)
    for name, k, r in zip(("out", "dx", "dweight", "dbias"), fast, ref):
        assert (k is None) == (r is None), name
        if r is not None:
            assert k.dtype == dtype and k.shape == r.shape, name
    if x.size == 0:
        return
    exact, scale = group_norm_exact(x, groups, w, b, g)
    d = exact["out"].shape[1]
    for name, k, r in zip(("out", "dx"), fast, ref):
        assert_within_ulps(k.reshape(-1, d), exact[name], scale[name], 4, f"kernel {name}")
        assert_within_ulps(k.reshape(-1, d), r.reshape(-1, d), scale[name], 8, f"vs reference {name}")
    for name, k, r in zip(("dweight", "dbias"), fast[2:], ref[2:]):  # the reference's NumPy sums, on both backends
        if r is not None:
            np.testing.assert_allclose(k, r, rtol=64 * np.finfo(dtype).eps, atol=64 * np.finfo(dtype).eps, err_msg=name)


# ----------------------------------------------------------------------------- end to end


def test_a_gpt_gradient_is_the_same_on_both_backends_in_float64():
    """Every parameter's gradient of a small float64 GPT (LayerNorms with biases, cross-entropy with ignored
    positions) agrees to float64 rounding, 1e-12 of the parameter's largest gradient (seen: 1e-15): the backends
    differ only in summation order."""
    from ember.models.gpt import GPT, GPTConfig

    rng = np.random.default_rng(12)
    idx, tgt = rng.integers(0, 13, (3, 11)), rng.integers(0, 13, (3, 11))
    tgt[0, :4] = -1
    grads = {}
    for backend in ("numba", "numpy"):
        ember.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=8, bias=True)).to(
            dtype="float64")
        for p in model.parameters():  # non-trivial gains and biases
            p.data += np.random.default_rng(p.numel()).standard_normal(p.shape) * 0.1
        with kernels.use(backend):
            _, loss = model(idx, tgt)
            loss.backward()
        grads[backend] = (loss.item(), {name: p.grad.numpy().copy() for name, p in model.named_parameters()})
    assert abs(grads["numba"][0] - grads["numpy"][0]) < 1e-12
    for name, ref in grads["numpy"][1].items():
        np.testing.assert_allclose(grads["numba"][1][name], ref, rtol=0, atol=1e-12 * np.abs(ref).max(), err_msg=name)
