"""The CUDA kernels of ``ember.kernels.cuda`` on a real GPU, against the same op's reference path on the GPU
(``kernels.use("numpy")``) and against the CPU: im2col, col2im and max pooling (argmax included) bit for bit,
the reductions (layer/group norm, cross-entropy, attention softmax) within 1e-5 relative in float32 and
1e-10 in float64, the B-spline scatter and gather bit for bit against the GPU reference.

Each test also checks that the CUDA kernel did run (a counter on its launcher), so a test cannot pass on
the reference alone. Skipped without CuPy and a GPU (CI has none)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels
from ember.kernels.cuda import bspline as cuda_bspline
from ember.kernels.cuda import conv as cuda_conv
from ember.kernels.cuda import loss as cuda_loss
from ember.kernels.cuda import norm as cuda_norm
from ember.kernels.cuda import pool as cuda_pool
from ember.kernels.cuda import softmax as cuda_softmax
from ember.ops.conv import ConvGeometry
from ember.ops.pool import MaxPoolPlan
from ember.testing import assert_same_bits

pytestmark = [
    pytest.mark.skipif(not ember.backend.cuda_available(),
                       reason="no CUDA GPU (CuPy with a visible GPU) on this machine"),
    pytest.mark.skipif(kernels.available() == ("numpy",),
                       reason="numba is not installed, so the kernel backend is 'numpy' and the CUDA kernels are off"),
]
ON = kernels.available()[0]  # the kernel backend that turns the CUDA kernels on ("numba")
DTYPES = [np.float32, np.float64]
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}


@pytest.fixture
def cupy():
    import cupy

    return cupy


@pytest.fixture
def launches(monkeypatch):
    """``launches(module, name)`` counts the calls of a CUDA launcher for the test."""

    def install(module, name):
        calls = []
        original = getattr(module, name)

        def counted(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
        return calls

    return install



def assert_close(actual, expected, what, condition: float = 1.0):
    """Within the dtype's parity tolerance, relative to the result's scale (its largest magnitude).

    ``condition`` widens it for ill-conditioned inputs: rows with mean 50 and spread 3 lose log2(1 + 50/3)
    bits when centred, so their float32 results carry that much more round-off on any device (an H200 run
    found 2.5e-5 on 3-element rows)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    rtol = RTOL[expected.dtype] * condition
    scale = float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def run(fn, arrays, device, backend, grad_seed=0):
    """(output, gradients of each array) of ``fn`` on tensors made from ``arrays`` on ``device``, as NumPy."""
    with kernels.use(backend):
        tensors = [ember.tensor(a, requires_grad=True, device=device) for a in arrays]
        out = fn(*tensors)
        g = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(arrays[0].dtype)
        out.backward(ember.tensor(g, device=device))
    return [out.numpy()] + [t.grad.numpy() for t in tensors]


# ----------------------------------------------------------------------------- im2col / col2im

CONV_CASES = [  # (x_shape, w_shape, stride, pads, dilation, groups)
    ((4, 3, 12, 12), (6, 3, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((3, 4, 9, 11), (8, 2, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2),
    ((2, 3, 10, 9), (4, 3, 3, 2), (1, 2), (2, 2, 0, 0), (2, 1), 1),
    ((5, 2, 7, 7), (2, 2, 1, 1), (3, 3), (0, 0, 0, 0), (1, 1), 1),
    ((64, 3, 20, 20), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # several chunks of output rows
    ((48, 4, 16, 16), (4, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),  # several chunks, grouped
]


def padded_input(rng, geo, dtype):
    top, bottom, left, right = geo.pads
    return rng.standard_normal((geo.c, geo.h + top + bottom, geo.w + left + right, geo.n)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("with_ones", [False, True])
def test_im2col_copies_exactly_what_the_reference_copies(cupy, launches, case, dtype, with_ones):
    geo = ConvGeometry(*case)
    xpad = padded_input(np.random.default_rng(1), geo, dtype)
    calls = launches(cuda_conv, "im2col")
    with kernels.use(ON):
        gpu = [(y0, y1, cupy.asnumpy(c)) for y0, y1, c in geo.chunks(cupy, cupy.asarray(xpad), with_ones)]
    with kernels.use("numpy"):
        cpu = [(y0, y1, c.copy()) for y0, y1, c in geo.chunks(np, xpad, with_ones)]
    assert calls and len(gpu) == len(cpu)
    for (gy0, gy1, g), (cy0, cy1, c) in zip(gpu, cpu):
        assert (gy0, gy1) == (cy0, cy1)
        assert_same_bits(g, c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im_sums_exactly_as_the_reference(cupy, launches, case, dtype):
    geo = ConvGeometry(*case)
    rng = np.random.default_rng(2)
    start = padded_input(rng, geo, dtype)
    calls = launches(cuda_conv, "col2im")
    gpu, cpu = cupy.asarray(start), start.copy()
    for y0, y1 in geo.row_chunks():
        gcols = rng.standard_normal(geo.lead + (geo.k, (y1 - y0) * geo.wo * geo.n)).astype(dtype)
        with kernels.use(ON):
            geo.col2im(cupy.asarray(gcols), gpu, y0, y1 - y0)
        with kernels.use("numpy"):
            geo.col2im(gcols, cpu, y0, y1 - y0)
    assert calls
    assert_same_bits(cupy.asnumpy(gpu), cpu)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_the_gpu_reference_and_the_cpu(launches, case, dtype):
    x_shape, w_shape, stride, pads, dilation, groups = case
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
              rng.standard_normal(w_shape[0]).astype(dtype)]
    padding = (pads[0], pads[2])  # the cases' pads are symmetric

    def conv(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    calls = launches(cuda_conv, "col2im")
    fast = run(conv, arrays, "cuda", ON)
    assert calls
    for expected in (run(conv, arrays, "cuda", "numpy"), run(conv, arrays, "cpu", ON)):
        for a, e, what in zip(fast, expected, ("out", "dx", "dw", "db")):
            assert_close(a, e, what)


# ----------------------------------------------------------------------------- max pooling

POOL_CASES = [  # (x_shape, kernel, stride, padding, dilation, ceil_mode)
    ((8, 6, 28, 28), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 2, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 3, 6, 7), (3, 3), (1, 1), (0, 0), (1, 1), False),
    ((2, 3, 9, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 2, 9, 10), (3, 2), (1, 2), (1, 1), (2, 3), False),
    ((2, 3, 8, 6), (3, 3), (2, 2), (1, 0), (1, 1), True),
    ((1, 2, 12, 11), (12, 11), (12, 11), (0, 0), (1, 1), False),  # 132 offsets: int32 argmax
    ((0, 2, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), False),
]


def tie_heavy(rng, shape, dtype):
    """Values in {-1, -0, 0, 1}: most windows hold several equal maxima, some of them zeros of both signs."""
    return (rng.integers(-1, 2, shape) * rng.choice([1.0, -1.0], shape)).astype(dtype)


def pool_run(xp, plan, x, g):
    out, state = plan.forward(xp, x)
    return [out, plan.flat_indices(xp, state), plan.backward(xp, g, state)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("data", ["ties", "normal", "nan", "subnormal"])
def test_max_pool_equals_the_cpu_bit_for_bit(cupy, launches, case, dtype, data):
    """Maxima, argmax and gradient identical to the CPU kernels (PyTorch's first maximum; a NaN window's last NaN)."""
    plan = MaxPoolPlan(*case)
    geo = plan.geo
    rng = np.random.default_rng(4)
    x = tie_heavy(rng, case[0], dtype) if data != "normal" else rng.standard_normal(case[0]).astype(dtype)
    if data == "nan":
        x[rng.random(x.shape) < 0.1] = np.nan
    if data == "subnormal":  # float32 subnormals, which CuPy's -ftz=true would flush in plain arithmetic
        x = x * np.asarray(np.finfo(dtype).smallest_subnormal, dtype) * rng.integers(1, 4, x.shape).astype(dtype)
    g = rng.standard_normal((geo.n, geo.c, geo.ho, geo.wo)).astype(dtype)
    forward, backward = launches(cuda_pool, "max_pool_forward"), launches(cuda_pool, "max_pool_backward_add")
    tiled = launches(cuda_pool, "max_pool_backward_tiled")
    with kernels.use(ON):
        gpu = [cupy.asnumpy(a) for a in pool_run(cupy, plan, cupy.asarray(x), cupy.asarray(g))]
        cpu = pool_run(np, plan, x, g)
    assert forward and (backward or tiled or x.size == 0)
    for a, e in zip(gpu, cpu):
        assert_same_bits(a, e)


# ----------------------------------------------------------------------------- layer norm, group norm

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, normalized", [((6, 37, 128), (128,)), ((5, 700), (700,)), ((3, 4, 5, 6), (5, 6)),
                                               ((9, 3), (3,))])
@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_layer_norm_matches_the_gpu_reference_and_the_cpu(launches, shape, normalized, dtype, offset):
    rng = np.random.default_rng(5)
    arrays = [(rng.standard_normal(shape) * 3 + offset).astype(dtype), rng.standard_normal(normalized).astype(dtype),
              rng.standard_normal(normalized).astype(dtype)]
    calls = launches(cuda_norm, "normalize_rows"), launches(cuda_norm, "normalized_rows_grad")

    def norm(x, w, b):
        return F.layer_norm(x, normalized, w, b)

    fast = run(norm, arrays, "cuda", ON)
    assert all(calls)
    for expected in (run(norm, arrays, "cuda", "numpy"), run(norm, arrays, "cpu", ON)):
        for a, e, what in zip(fast, expected, ("out", "dx", "dw", "db")):
            assert_close(a, e, what, condition=1 + offset / 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_norm_matches_the_gpu_reference_and_the_cpu(launches, dtype):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((4, 6, 5, 5)).astype(dtype), rng.standard_normal(6).astype(dtype),
              rng.standard_normal(6).astype(dtype)]
    calls = launches(cuda_norm, "normalize_rows"), launches(cuda_norm, "normalized_rows_grad")

    def norm(x, w, b):
        return F.group_norm(x, 3, w, b)

    fast = run(norm, arrays, "cuda", ON)
    assert all(calls)
    for expected in (run(norm, arrays, "cuda", "numpy"), run(norm, arrays, "cpu", ON)):
        for a, e, what in zip(fast, expected, ("out", "dx", "dw", "db")):
            assert_close(a, e, what)


# ----------------------------------------------------------------------------- cross-entropy

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(768, 65), (7, 5), (5, 1000), (3, 1), (2, 5, 3, 2)])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_matches_the_gpu_reference_and_the_cpu(launches, shape, dtype, eps, reduction):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t[rng.random(t.shape) < 0.2] = -100  # ignored
    calls = launches(cuda_loss, "softmax_cross_entropy"), launches(cuda_loss, "cross_entropy_grad")

    def loss(x):
        target = ember.tensor(t, device=x.device)
        return F.cross_entropy(x, target, reduction=reduction, label_smoothing=eps, ignore_index=-100)

    fast = run(loss, [z], "cuda", ON)
    assert all(calls)
    for expected in (run(loss, [z], "cuda", "numpy"), run(loss, [z], "cpu", ON)):
        for a, e, what in zip(fast, expected, ("loss", "dz")):
            assert_close(a, e, what)


# ----------------------------------------------------------------------------- attention softmax

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masked", ["none", "causal", "with-empty-rows"])
def test_attention_softmax_matches_the_gpu_reference_and_the_cpu(launches, dtype, masked):
    rng = np.random.default_rng(8)
    b, h, lq, s, e = 2, 3, 33, 40, 16
    arrays = [rng.standard_normal((b, h, lq, e)).astype(dtype) for _ in range(3)]
    arrays[1] = rng.standard_normal((b, h, s, e)).astype(dtype)
    arrays[2] = rng.standard_normal((b, h, s, e)).astype(dtype)
    allowed = None
    if masked == "causal":
        allowed = np.tril(np.ones((lq, s), dtype=bool))
    elif masked == "with-empty-rows":  # some queries see no key: the "safe" softmax gives them zeros
        allowed = rng.random((lq, s)) < 0.5
        allowed[::5] = False
    calls = launches(cuda_softmax, "softmax_keys")

    def attention(q, k, v):
        mask = None if allowed is None else ember.tensor(allowed, device=q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    fast = run(attention, arrays, "cuda", ON)
    assert calls
    if masked == "with-empty-rows":
        assert not np.isnan(fast[0]).any() and (fast[0][:, :, ::5] == 0).all()
    for expected in (run(attention, arrays, "cuda", "numpy"), run(attention, arrays, "cpu", ON)):
        for a, e, what in zip(fast, expected, ("y", "dq", "dk", "dv")):
            assert_close(a, e, what)


# ----------------------------------------------------------------------------- B-spline basis

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("uniform", [True, False])
def test_bspline_basis_matches_the_gpu_reference_bitwise_and_the_cpu(launches, dtype, k, uniform):
    rng = np.random.default_rng(9)
    grid, n_inputs = 5, 7
    knots = np.tile(np.linspace(-1.0, 1.0, grid + 1), (n_inputs, 1))
    step = knots[:, 1:2] - knots[:, :1]
    below, above = knots[:, :1] - step * np.arange(k, 0, -1), knots[:, -1:] + step * np.arange(1, k + 1)
    knots = np.concatenate([below, knots, above], axis=1)
    if not uniform:
        knots = np.sort(knots + rng.uniform(-0.02, 0.02, knots.shape), axis=1)
    x = rng.uniform(-1.4, 1.4, (64, n_inputs)).astype(dtype)
    x[0] = -1.0  # exactly on the first grid knot, as MNIST's pixels
    calls = launches(cuda_bspline, "scatter_local"), launches(cuda_bspline, "gather_local_dot")

    def basis(t):
        return F.bspline_basis(t, knots.astype(dtype), k, uniform=uniform)

    fast = run(basis, [x], "cuda", ON)
    assert all(calls)
    basis_ref, dx_ref = run(basis, [x], "cuda", "numpy")
    assert_same_bits(fast[0], basis_ref)  # the scatter only moves values
    assert_close(fast[1], dx_ref, "dx")  # the gather sums products: CuPy's reference sums in another order
    for a, e, what in zip(fast, run(basis, [x], "cpu", ON), ("basis", "dx")):
        assert_close(a, e, what)
