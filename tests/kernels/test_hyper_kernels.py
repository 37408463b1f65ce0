"""ember.kernels.hyper against the NumPy references of ember/ops/hyper.py: Sinkhorn, stream read and write."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import kernels
from ember.kernels import hyper as hyper_kernels
from ember.nn import functional as F

pytest.importorskip("numba")

# float64: the kernels sum in another order (and Sinkhorn runs in the linear domain); float32: they accumulate
# the maps' gradients in float64 where the reference sums in float32
TOL = {np.float64: 1e-12, np.float32: 2e-6}


def run_both(fn, arrays, dtype, seed=0):
    """fn's output and every input's gradient (random cotangent), on the reference and on the kernels."""
    results = {}
    for backend in ("numpy", "numba"):
        with kernels.use(backend):
            tensors = [ember.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
            out = fn(*tensors)
            cot = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
            out.backward(cot)
            results[backend] = [out.numpy()] + [t.grad.numpy() for t in tensors]
    return results["numpy"], results["numba"]


def assert_close(reference, fast, dtype):
    for i, (r, f) in enumerate(zip(reference, fast)):
        assert r.shape == f.shape and r.dtype == f.dtype, i
        scale = max(np.abs(r).max(initial=0.0), 1e-30)
        assert np.abs(r - f).max(initial=0.0) <= TOL[dtype] * scale, f"result {i}: {np.abs(r - f).max() / scale:.2e}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, iters, spread", [(2, 1, 1.0), (3, 7, 2.0), (4, 20, 3.0), (6, 20, 0.5), (4, 50, 8.0)])
def test_sinkhorn_kernel_matches_the_log_domain_reference(count_calls, dtype, n, iters, spread):
    rng = np.random.default_rng(n * 100 + iters)
    logits = rng.uniform(-spread, spread, (5, 7, n, n))
    fwd, bwd = count_calls(hyper_kernels, "sinkhorn_forward"), count_calls(hyper_kernels, "sinkhorn_backward")
    reference, fast = run_both(lambda a: F.sinkhorn(a, iters), [logits], dtype)
    assert fwd.calls == 1 and bwd.calls == 1
    assert_close(reference, fast, dtype)


def test_sinkhorn_kernel_leaves_far_spread_logits_to_the_log_domain(count_calls):
    logits = np.zeros((3, 2, 2))
    logits[1, 0, 0] = 700.0  # exp(-700) underflows in float64: the linear domain would divide by zero
    fwd = count_calls(hyper_kernels, "sinkhorn_forward")
    reference, fast = run_both(lambda a: F.sinkhorn(a, 5), [logits], np.float64)
    assert fwd.calls == 0
    assert np.isfinite(fast[0]).all()
    assert_close(reference, fast, np.float64)


SHAPES = {  # name -> (fn, shapes)
    "read dynamic": (F.stream_read, [(3, 5, 4), (3, 5, 4, 7)]),
    "read static": (F.stream_read, [(2,), (6, 2, 9)]),
    "write dynamic": (F.stream_write, [(3, 5, 4, 7), (3, 5, 7), (3, 5, 4), (3, 5, 4, 4)]),
    "write static": (F.stream_write, [(6, 3, 9), (6, 9), (3,), (3, 3)]),
    "write one token": (F.stream_write, [(1, 2, 1), (1, 1), (1, 2), (1, 2, 2)]),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(SHAPES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stream_kernels_match_the_reference(count_calls, dtype, name, seed):
    fn, shapes = SHAPES[name]
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    kernel = "read" if name.startswith("read") else "write"
    fwd, bwd = count_calls(hyper_kernels, f"{kernel}_forward"), count_calls(hyper_kernels, f"{kernel}_backward")
    reference, fast = run_both(fn, arrays, dtype, seed)
    assert fwd.calls == 1 and bwd.calls == 1
    assert_close(reference, fast, dtype)


def test_the_first_streams_a_broadcast_view_go_through_the_kernels(count_calls):
    """The GPT's first streams are an expand of the embedding (zero strides): the kernels copy them once."""
    rng = np.random.default_rng(3)
    x = ember.tensor(rng.standard_normal((2, 3, 1, 5)), requires_grad=True)
    h = ember.tensor(rng.standard_normal(4), requires_grad=True)
    fwd = count_calls(hyper_kernels, "read_forward")
    with kernels.use("numba"):
        u = F.stream_read(h, x.expand(2, 3, 4, 5))
        u.sum().backward()
    assert fwd.calls == 1
    np.testing.assert_allclose(u.numpy(), h.numpy().sum() * x.numpy()[:, :, 0], rtol=1e-13)
    np.testing.assert_allclose(x.grad.numpy()[:, :, 0], np.full((2, 3, 5), h.numpy().sum()), rtol=1e-13)
