"""The compiled col2im and im2col against ``ConvGeometry``'s NumPy references (bit for bit: the same copies and
the same additions in the same order), then the convolution ops and LeNet-5's gradients under both backends,
and against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import kernels
from ember.models import build
from ember.ops.conv import ConvGeometry

numba = pytest.importorskip("numba")

# (x_shape, w_shape, stride, pads (top, bottom, left, right), dilation, groups)
GEOMETRIES = [
    pytest.param((64, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, id="lenet-conv1"),
    pytest.param((64, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1, id="lenet-conv2"),
    pytest.param((64, 2, 20, 20), (3, 2, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, id="windows-across-chunks"),
    pytest.param((3, 4, 9, 11), (5, 4, 3, 3), (2, 3), (1, 1, 0, 2), (1, 1), 1, id="strided-asymmetric-pad"),
    pytest.param((2, 3, 10, 9), (4, 3, 3, 2), (1, 1), (2, 2, 1, 1), (2, 3), 1, id="dilated"),
    pytest.param((5, 6, 7, 8), (9, 2, 3, 3), (2, 1), (1, 0, 1, 0), (1, 2), 3, id="grouped-strided-dilated"),
    pytest.param((2, 4, 6, 6), (4, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4, id="depthwise"),
    pytest.param((1, 3, 5, 5), (2, 3, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, id="1x1"),
    pytest.param((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, id="one-element"),
    pytest.param((7, 1, 3, 3), (1, 1, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, id="kernel-as-big-as-the-input"),
    pytest.param((0, 2, 5, 5), (3, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, id="empty-batch"),
]


def assert_same_bits(actual, expected):
    """Equal bit patterns: signed zeros and NaNs included."""
    actual, expected = np.ascontiguousarray(actual), np.ascontiguousarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual.view(np.uint8), expected.view(np.uint8))


def padded_shape(geo: ConvGeometry):
    top, bottom, left, right = geo.pads
    return geo.c, top + geo.h + bottom, left + geo.w + right, geo.n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, pads, dilation, groups", GEOMETRIES)
def test_col2im_adds_what_the_reference_adds_in_its_order(x_shape, w_shape, stride, pads, dilation, groups, dtype):
    geo = ConvGeometry(x_shape, w_shape, stride, pads, dilation, groups)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        start = rng.standard_normal(padded_shape(geo)).astype(dtype)  # onto existing values, not zeros
        chunks = [(y0, y1, rng.standard_normal(geo.lead + (geo.k, (y1 - y0) * geo.wo * geo.n)).astype(dtype))
                  for y0, y1 in geo.row_chunks()]
        results = {}
        for backend in ("numpy", "numba"):
            target = start.copy()
            with kernels.use(backend):
                for y0, y1, gcols in chunks:
                    assert kernels.takes(gcols, target) == (backend == "numba")
                    geo.col2im(gcols, target, y0, y1 - y0)
            results[backend] = target
        assert_same_bits(results["numba"], results["numpy"])
        if geo.n:
            assert not np.array_equal(results["numba"], start)  # something was added


@pytest.mark.parametrize("with_ones", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, stride, pads, dilation, groups", GEOMETRIES)
def test_im2col_chunks_equal_the_references(x_shape, w_shape, stride, pads, dilation, groups, dtype, with_ones):
    geo = ConvGeometry(x_shape, w_shape, stride, pads, dilation, groups)
    xpad = np.random.default_rng(1).standard_normal(padded_shape(geo)).astype(dtype)
    results = {}
    for backend in ("numpy", "numba"):
        with kernels.use(backend):
            results[backend] = [(y0, y1, cols.copy()) for y0, y1, cols in geo.chunks(np, xpad, with_ones)]
    assert len(results["numba"]) == len(results["numpy"]) == len(geo.row_chunks())
    for (y0, y1, fast), (r0, r1, ref) in zip(results["numba"], results["numpy"]):
        assert (y0, y1) == (r0, r1)
        assert_same_bits(fast, ref)


def test_strided_and_cupy_like_inputs_take_the_reference():
    image = np.zeros((2, 5, 5, 3), np.float32)
    with kernels.use("numba"):
        assert kernels.takes(image)
        assert not kernels.takes(image[:, ::2])  # a strided view
        assert not kernels.takes(image.astype(np.int32))


def conv_run(fn, x, w, b, cot, **kwargs):
    """Output and the gradients of x, w, b (ember, under the current backend)."""
    xs, ws, bs = (ember.tensor(v, requires_grad=True) for v in (x, w, b))
    y = fn(xs, ws, bs, **kwargs)
    y.backward(ember.tensor(cot))
    return [y.numpy(), xs.grad.numpy(), ws.grad.numpy(), bs.grad.numpy()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, stride, pads, dilation, groups",
                         [g for g in GEOMETRIES if g.values[3][0::2] == g.values[3][1::2] and g.values[0][0]])
def test_conv_ops_equal_the_reference_paths(x_shape, w_shape, stride, pads, dilation, groups, transposed, dtype):
    """Whole ops (forward, and the input, weight and bias gradients) under both backends: the GEMMs see the same
    columns, so everything is bit for bit."""
    rng = np.random.default_rng(2)
    padding = (pads[0], pads[2])
    if transposed:  # the adjoint: x has the convolution's output shape, the weight (C_in, C_out/G, kh, kw)
        geo = ConvGeometry(x_shape, w_shape, stride, pads, dilation, groups)
        x = rng.standard_normal((geo.n, geo.o, geo.ho, geo.wo)).astype(dtype)
        w = rng.standard_normal((w_shape[0], w_shape[1], w_shape[2], w_shape[3])).astype(dtype)
        b = rng.standard_normal(w_shape[1] * groups).astype(dtype)
        out_shape = (geo.n, w_shape[1] * groups) + tuple(
            (s - 1) * st - 2 * p + d * (k - 1) + 1 for s, st, p, d, k in
            zip((geo.ho, geo.wo), stride, padding, dilation, w_shape[2:]))
        kwargs = dict(stride=stride, padding=padding, groups=groups, dilation=dilation)
        fn = F.conv_transpose2d
    else:
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        b = rng.standard_normal(w_shape[0]).astype(dtype)
        geo = ConvGeometry(x_shape, w_shape, stride, pads, dilation, groups)
        out_shape = (geo.n, geo.o, geo.ho, geo.wo)
        kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        fn = F.conv2d
    cot = rng.standard_normal(out_shape).astype(dtype)
    with kernels.use("numpy"):
        reference = conv_run(fn, x, w, b, cot, **kwargs)
    with kernels.use("numba"):
        fast = conv_run(fn, x, w, b, cot, **kwargs)
    for f, r in zip(fast, reference):
        assert_same_bits(f, r)


def lenet_gradients(model, x, cot):
    """The logits and every parameter's gradient for the cotangent ``cot`` (not a loss: its own kernels are
    tested elsewhere, and only the convolutions' and pooling's paths are compared here)."""
    model.zero_grad()
    logits = model(ember.tensor(x))
    logits.backward(ember.tensor(cot))
    return [logits.numpy()] + [p.grad.numpy().copy() for p in model.parameters()]


def test_lenet_gradients_equal_the_reference_paths_and_pytorch(torch):
    """LeNet-5's logits and every parameter's gradient (convolutions, col2im, max-pooling) under both backends,
    bit for bit, and against the same network in PyTorch."""
    model = build("lenet")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    cot = rng.standard_normal((64, 10)).astype(np.float32)
    with kernels.use("numba"):
        fast = lenet_gradients(model, x, cot)
    with kernels.use("numpy"):
        reference = lenet_gradients(model, x, cot)
    for f, r in zip(fast, reference):
        assert_same_bits(f, r)

    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(6, 16, 5),
                        nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    with torch.no_grad():
        for tp, p in zip(net.parameters(), model.parameters()):
            tp.copy_(torch.from_numpy(p.numpy().copy()))
    logits = net(torch.from_numpy(x))
    logits.backward(torch.from_numpy(cot))
    expected = [logits.detach().numpy()] + [tp.grad.numpy() for tp in net.parameters()]
    for f, e in zip(fast, expected):
        assert np.abs(f - e).max() <= 1e-4 * np.abs(e).max()  # float32 sums in other orders
