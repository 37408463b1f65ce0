"""Convolution, pooling and interpolation beyond the op table, each against PyTorch: argmax indices and
ties, output sizes over a grid of settings, empty batches, the interpolation index rules over many
sizes, NaN locality, memory layout, inputs left untouched, dtype rules and argument errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ember
import ember.nn.functional as F


def _both(torch, fn, x_np, name, *args, **kw):
    """Run F.<name> and torch.nn.functional.<name> on x; backward a random cotangent through the first output.

    Returns (ember outputs, torch outputs, ember input grad, torch input grad); outputs are tuples.
    """
    x, tx = ember.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    ours, theirs = getattr(F, name)(x, *args, **kw), getattr(torch.nn.functional, name)(tx, *args, **kw)
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    cot = np.random.default_rng(1).standard_normal(ours[0].shape)
    ours[0].backward(cot)
    theirs[0].backward(torch.from_numpy(cot))
    return ours, theirs, x.grad.numpy(), tx.grad.numpy()


def _ties(shape, seed=0):
    """Inputs with many ties (values 0, 1, 2), so the tie rule decides where gradients go."""
    return np.random.default_rng(seed).integers(0, 3, size=shape).astype(np.float64)


MAX_POOLS = [
    ("max_pool2d", (2, 3, 6, 8), (2,), {}),
    ("max_pool2d", (2, 3, 5, 7), ((2, 3),), {}),  # tiled with a remainder
    ("max_pool2d", (1, 2, 7, 7), (3,), {"stride": 2, "padding": 1}),
    ("max_pool2d", (1, 2, 7, 8), (3,), {"stride": 1, "dilation": 2, "padding": 1}),
    ("max_pool2d", (1, 2, 6, 8), (3,), {"stride": 2, "ceil_mode": True}),
    ("max_pool2d", (1, 2, 6, 7), ((3, 2),), {"stride": (2, 1), "padding": (1, 1), "ceil_mode": True}),
    ("max_pool2d", (1, 2, 7, 8), (2,), {"stride": 3}),
    ("max_pool2d", (1, 2, 4, 4), (1,), {}),
    ("max_pool2d", (3, 5, 6), (2,), {"stride": 1}),  # unbatched
    ("max_pool2d", (1, 1, 12, 12), (12,), {}),  # 144 offsets: more than an int8 index holds
    ("max_pool1d", (2, 3, 9), (2,), {}),
    ("max_pool1d", (2, 3, 9), (3,), {"stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}),
    ("max_pool1d", (3, 9), (3,), {}),
]


@pytest.mark.parametrize("name,shape,args,kw", MAX_POOLS, ids=lambda v: str(v))
def test_max_pool_values_indices_and_tie_gradients_match_torch(torch, name, shape, args, kw):
    ours, theirs, g, tg = _both(torch, F, _ties(shape), name, *args, return_indices=True, **kw)
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].detach().numpy())
    assert ours[1].dtype == np.int64 and ours[1].shape == tuple(theirs[1].shape)
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    np.testing.assert_allclose(g, tg, rtol=0, atol=1e-12)  # the first maximum of each window gets it


@pytest.mark.parametrize("name,shape,size", [
    ("adaptive_max_pool2d", (2, 2, 7, 10), (3, 4)),
    ("adaptive_max_pool2d", (1, 2, 5, 3), (7, None)),
    ("adaptive_max_pool2d", (2, 6, 5), 2),
    ("adaptive_max_pool2d", (1, 2, 6, 6), 1),
    ("adaptive_max_pool1d", (2, 3, 7), 3),
    ("adaptive_max_pool1d", (2, 3, 4), 6),
], ids=lambda v: str(v))
def test_adaptive_max_pool_indices_and_ties_match_torch(torch, name, shape, size):
    ours, theirs, g, tg = _both(torch, F, _ties(shape, seed=4), name, size, return_indices=True)
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].detach().numpy())
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    np.testing.assert_allclose(g, tg, rtol=0, atol=1e-12)  # overlapping windows add up on a shared maximum


def test_constant_input_routes_every_gradient_to_the_window_start(torch):
    ours, theirs, g, tg = _both(torch, F, np.zeros((1, 1, 6, 6)), "max_pool2d", 3, stride=1, padding=1)
    np.testing.assert_array_equal(g, tg)
    assert g.sum() != 0


def _same_outcome(torch, name, arrays, *args):
    """F.<name> and PyTorch's on the same arrays and arguments: both refuse, or both return equal arrays."""
    try:
        ref = getattr(torch.nn.functional, name)(*[torch.from_numpy(a) for a in arrays], *args)
    except Exception:  # noqa: BLE001 - any PyTorch refusal must be matched by an ember ValueError
        with pytest.raises(ValueError):
            getattr(F, name)(*[ember.tensor(a) for a in arrays], *args)
        return False
    out = getattr(F, name)(*[ember.tensor(a) for a in arrays], *args)
    assert out.shape == tuple(ref.shape), (name, args)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{name}{args}")
    return True


def test_pool_output_sizes_and_values_match_torch_over_a_grid(torch):
    """Every (size, kernel, stride, padding, dilation, ceil_mode): same refusal or same result, incl. divisors."""
    rng = np.random.default_rng(0)
    compared = 0
    for h, k, s, p, d, ceil in itertools.product(range(1, 8), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2), (False, True)):
        x = rng.standard_normal((1, 2, h, h + 1))
        compared += _same_outcome(torch, "max_pool2d", [x], k, s, p, d, ceil)
        if d == 1:
            for include in (True, False):
                _same_outcome(torch, "avg_pool2d", [x], k, s, p, ceil, include)
    assert compared > 300


def test_conv_output_sizes_match_torch_over_a_grid(torch):
    rng = np.random.default_rng(1)
    compared = 0
    for h, k, s, p, d in itertools.product(range(1, 7), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2)):
        x = rng.standard_normal((1, 2, h, h + 2))
        compared += _same_outcome(torch, "conv2d", [x, rng.standard_normal((3, 2, k, k))], None, s, p, d)
        for op in range(max(s, d)):
            _same_outcome(torch, "conv_transpose2d", [x, rng.standard_normal((2, 3, k, k))], None, s, p, op, 1, d)
    assert compared > 200


@pytest.mark.parametrize("call", [
    lambda F, x, w: F.conv2d(x, w, padding=1),
    lambda F, x, w: F.conv_transpose2d(x, w, stride=2),
    lambda F, x, w: F.max_pool2d(x, 2),
    lambda F, x, w: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
    lambda F, x, w: F.adaptive_avg_pool2d(x, (2, 3)),
    lambda F, x, w: F.adaptive_max_pool2d(x, 3),
    lambda F, x, w: F.interpolate(x, scale_factor=2, mode="bilinear"),
], ids=["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg", "adaptive_max", "interpolate"])
def test_empty_batch_works_like_torch(torch, call):
    x_np, w_np = np.zeros((0, 3, 5, 5)), np.random.default_rng(0).standard_normal((3, 3, 3, 3))
    x, w = ember.tensor(x_np, requires_grad=True), ember.tensor(w_np, requires_grad=True)
    tx, tw = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    out, ref = call(F, x, w), call(torch.nn.functional, tx, tw)
    assert out.shape == tuple(ref.shape)
    out.sum().backward()
    ref.sum().backward()
    assert x.grad.shape == (0, 3, 5, 5)
    if tw.grad is not None:
        np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode,align", [("nearest", None), ("nearest-exact", None), ("linear", False),
                                        ("linear", True), ("bilinear", False), ("bilinear", True)])
def test_interpolate_matches_torch_for_every_small_size(torch, mode, align, dtype):
    """PyTorch's index rules and weights (their float32 arithmetic, the 2x and same-size shortcuts, clamping),
    1-D and 2-D, for every input size 1..19 and output size 1..25."""
    rng = np.random.default_rng(2)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for n_in, n_out in itertools.product(range(1, 20), range(1, 26)):
        cases = []
        if mode != "bilinear":
            cases.append(((1, 2, n_in), n_out))
        if mode != "linear":
            cases.append(((1, 2, 2, n_in), (3, n_out)))
        for shape, size in cases:
            x = rng.standard_normal(shape).astype(dtype)
            ours = F.interpolate(ember.tensor(x), size=size, mode=mode, align_corners=align).numpy()
            ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size, mode=mode, align_corners=align)
            np.testing.assert_allclose(ours, ref.numpy(), rtol=tol, atol=tol, err_msg=f"{shape}->{size}")


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "bilinear", "linear"])
@pytest.mark.parametrize("scale", [0.5, 0.7, 1.3, 1.5, 1.7, 2.0, 2.5, 3.0, 1 / 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_scale_factor_rule_matches_torch(torch, mode, scale, dtype):
    """With scale_factor, the kernels sample with 1/scale_factor (not in/out), in the input's precision."""
    shape = (1, 2, 7) if mode == "linear" else (1, 2, 7, 6)
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    ours = F.interpolate(ember.tensor(x), scale_factor=scale, mode=mode).numpy()
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), scale_factor=scale, mode=mode).numpy()
    assert ours.dtype == dtype and ours.shape == ref.shape
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_keeps_a_nan_where_torch_puts_it(torch, mode):
    x = np.random.default_rng(4).standard_normal((1, 1, 5, 6))
    x[0, 0, 2, 3] = np.nan
    ours = F.interpolate(ember.tensor(x), size=(9, 11), mode=mode).numpy()
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=(9, 11), mode=mode).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert np.isnan(ours).any() and not np.isnan(ours).all()


def test_max_pool2d_takes_integers_like_torch(torch):
    x = np.random.default_rng(0).integers(-5, 5, size=(2, 3, 5, 6))
    for kw in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}):
        ours = F.max_pool2d(ember.tensor(x), **kw).numpy()
        ref = torch.nn.functional.max_pool2d(torch.from_numpy(x), **kw).numpy()
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("call", [
    lambda F, x: F.conv2d(x, x[:1]),
    lambda F, x: F.avg_pool2d(x, 2),
    lambda F, x: F.adaptive_avg_pool2d(x, 2),
    lambda F, x: F.adaptive_max_pool2d(x, 2),
    lambda F, x: F.interpolate(x, size=3),
    lambda F, x: F.max_pool1d(x[0], 2),
], ids=["conv2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "interpolate", "max_pool1d"])
def test_integer_inputs_are_refused_with_a_hint(call):
    """Integer convolution and average pooling are PyTorch features ember leaves out (the rest PyTorch refuses too)."""
    x = np.arange(32).reshape(1, 2, 4, 4)
    with pytest.raises(TypeError, match="floating-point.*float"):
        call(F, ember.tensor(x))
    assert call(F, ember.tensor(x.astype(np.float32))).dtype == np.float32


def test_conv_output_stays_batch_last_in_memory():
    """ember.elm's PCA features rely on conv2d's output being an NCHW view of (C, H, W, N) memory."""
    x = ember.tensor(np.random.default_rng(0).standard_normal((3, 2, 6, 6)).astype(np.float32))
    w = ember.tensor(np.random.default_rng(1).standard_normal((4, 2, 3, 3)).astype(np.float32))
    for out in (F.conv2d(x, w, padding=1), F.conv2d(x, w[:, :1], padding="same", groups=2)):
        assert out.data.transpose(1, 2, 3, 0).flags.c_contiguous


@pytest.mark.parametrize("call", [
    lambda x: F.avg_pool2d(x, 1),
    lambda x: F.max_pool2d(x, 1),
    lambda x: F.interpolate(x, scale_factor=1),
    lambda x: F.adaptive_avg_pool2d(x, (None, None)),
], ids=["avg_pool2d_k1", "max_pool2d_k1", "interpolate_identity", "adaptive_identity"])
def test_identity_shaped_ops_return_new_memory(call):
    """A 1x1 window on a batch-last input is a view of it: the op must still not hand out (or write) that memory."""
    data = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).transpose(1, 2, 3, 0).copy().transpose(3, 0, 1, 2)
    before = data.copy()
    x = ember.tensor(data)
    out = call(x)
    np.testing.assert_array_equal(out.numpy(), before)
    out.data[...] = 7.0
    np.testing.assert_array_equal(data, before)


@pytest.mark.parametrize("call", [
    lambda x, w: F.conv2d(x, w),
    lambda x, w: F.conv_transpose2d(x, w),
    lambda x, w: F.conv1d(x[:, :, 0], w[:, :, 0]),
])
def test_float32_and_float64_are_not_mixed(call):
    x = ember.tensor(np.ones((1, 2, 4, 4), np.float32))
    w = ember.tensor(np.ones((2, 2, 2, 2), np.float64))
    with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
        call(x, w)


def _t(*shape):
    return np.ones(shape)


# (name, call(F, tensor) -> anything, exception ember raises, text its message contains)
ERRORS = [
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 2, 3, 3)), ValueError, "channels"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 4, 5, 5), t(3, 2, 3, 3), groups=2), ValueError, "divisible by groups"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 1, 3, 3), groups=2), ValueError, "channels"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 2, 2), t(4, 3, 3, 3)), ValueError, "smaller than the kernel"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 4, 4), t(4, 3, 2, 2), dilation=4), ValueError, "smaller than the kernel"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=2, padding="same"), ValueError, "strided"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), padding="full"), ValueError, "padding string"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), padding=-1), ValueError, "padding"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=0), ValueError, "stride"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), dilation=0), ValueError, "dilation"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), groups=0), ValueError, "groups"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), t(3)), ValueError, "bias"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3)), ValueError, "weight"),
    ("conv2d", lambda F, t: F.conv2d(t(5, 5), t(4, 3, 3, 3)), ValueError, "input"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=(1, 1, 1)), ValueError, "stride"),
    ("conv2d", lambda F, t: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=1.5), TypeError, "stride"),
    ("conv1d", lambda F, t: F.conv1d(t(1, 3, 5), t(4, 3, 3, 3)), ValueError, "weight"),
    ("conv1d", lambda F, t: F.conv1d(t(1, 3, 5), t(4, 3, 3), stride=2, padding="same"), ValueError, "strided"),
    ("conv_transpose2d", lambda F, t: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 4, 3, 3), stride=2, output_padding=2),
     ValueError, "output_padding"),
    ("conv_transpose2d", lambda F, t: F.conv_transpose2d(t(1, 3, 5, 5), t(2, 4, 3, 3)), ValueError, "channels"),
    ("conv_transpose2d", lambda F, t: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 3, 3, 3), groups=2), ValueError,
     "divisible by groups"),
    ("conv_transpose2d", lambda F, t: F.conv_transpose2d(t(1, 3, 1, 1), t(3, 4, 1, 1), padding=1), ValueError,
     "output of size"),
    ("conv_transpose2d", lambda F, t: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 3, 3, 3), padding="same"), TypeError,
     "padding"),
    ("conv_transpose2d", lambda F, t: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 3, 3, 3), t(4)), ValueError, "bias"),
    ("conv_transpose1d", lambda F, t: F.conv_transpose1d(t(1, 3, 5), t(3, 3, 3), stride=0), ValueError, "stride"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 2, padding=2), ValueError, "half"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 3, padding=2, dilation=2), ValueError, "half"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 0), ValueError, "kernel_size"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 2, stride=0), ValueError, "stride"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 2, dilation=0), ValueError, "dilation"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 2, padding=-1), ValueError, "padding"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), 6), ValueError, "too small"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 2, 5, 5), (2, 2, 2)), ValueError, "kernel_size"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 1, 1, 4, 4), 2), ValueError, "input"),
    ("max_pool2d", lambda F, t: F.max_pool2d(t(1, 0, 4, 4), 2), ValueError, "empty"),
    ("max_pool1d", lambda F, t: F.max_pool1d(t(1, 2, 5), 2, padding=2), ValueError, "half"),
    ("avg_pool2d", lambda F, t: F.avg_pool2d(t(1, 2, 5, 5), 2, divisor_override=0), ValueError, "divisor_override"),
    ("avg_pool2d", lambda F, t: F.avg_pool2d(t(1, 2, 5, 5), 2, padding=2), ValueError, "half"),
    ("avg_pool2d", lambda F, t: F.avg_pool2d(t(1, 2, 5, 5), 6), ValueError, "too small"),
    ("avg_pool1d", lambda F, t: F.avg_pool1d(t(1, 2, 5), 0), ValueError, "kernel_size"),
    ("adaptive_avg_pool2d", lambda F, t: F.adaptive_avg_pool2d(t(1, 2, 5, 5), -1), ValueError, "output_size"),
    ("adaptive_avg_pool2d", lambda F, t: F.adaptive_avg_pool2d(t(1, 2, 5, 5), (1, 2, 3)), ValueError, "output_size"),
    ("adaptive_avg_pool2d", lambda F, t: F.adaptive_avg_pool2d(t(1, 2, 0, 4), 2), ValueError, "empty"),
    ("adaptive_avg_pool2d", lambda F, t: F.adaptive_avg_pool2d(t(1, 2, 5, 5), None), TypeError, "output_size"),
    ("adaptive_max_pool2d", lambda F, t: F.adaptive_max_pool2d(t(1, 2, 5, 5), (2, -1)), ValueError, "output_size"),
    ("adaptive_max_pool1d", lambda F, t: F.adaptive_max_pool1d(t(2, 2, 2, 5), 2), ValueError, "input"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=2, scale_factor=2), ValueError, "only one"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4)), ValueError, "either"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=2, align_corners=True), ValueError,
     "align_corners"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4), size=2, mode="bilinear"), ValueError, "bilinear"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=2, mode="linear"), ValueError, "linear"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=(2, 2, 2)), ValueError, "size"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), scale_factor=(2, 2, 2)), ValueError, "scale_factor"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), scale_factor=0.1), ValueError, "greater than 0"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=3, recompute_scale_factor=True), ValueError,
     "recompute_scale_factor"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=3, mode="cubic"), ValueError, "mode"),
    ("interpolate", lambda F, t: F.interpolate(t(1, 2, 4, 4), size=2.5), TypeError, "size"),
]


@pytest.mark.parametrize("name,call,exc,text", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_argument_errors_are_refused_like_torch(torch, name, call, exc, text):
    with pytest.raises(Exception):  # noqa: B017 - PyTorch refuses it too (its exception types vary)
        call(torch.nn.functional, lambda *s: torch.from_numpy(_t(*s)))
    with pytest.raises(exc, match=text) as info:
        call(F, lambda *s: ember.tensor(_t(*s)))
    assert name in str(info.value)


@pytest.mark.parametrize("mode", ["bicubic", "trilinear"])
def test_unimplemented_interpolation_modes_say_so(mode):
    with pytest.raises(ValueError, match="not supported"):
        F.interpolate(ember.ones(1, 1, 4, 4), size=3, mode=mode)
    with pytest.raises(ValueError, match="antialias"):
        F.interpolate(ember.ones(1, 1, 4, 4), size=3, mode="bilinear", antialias=True)


def test_lists_work_as_tuples(torch):
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 7))
    w = np.random.default_rng(1).standard_normal((3, 2, 2, 3))
    ours = F.conv2d(ember.tensor(x), ember.tensor(w), stride=[2, 1], padding=[1, 0], dilation=[1, 2]).numpy()
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=[2, 1], padding=[1, 0],
                                     dilation=[1, 2]).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    ours = F.max_pool2d(ember.tensor(x), [2, 3], stride=[], padding=[1, 1]).numpy()
    ref = torch.nn.functional.max_pool2d(torch.from_numpy(x), [2, 3], stride=[], padding=[1, 1]).numpy()
    np.testing.assert_array_equal(ours, ref)


def test_nearest_index_rule_uses_torchs_arithmetic(torch):
    """floor(dst·in/out) differs between float32 and float64 arithmetic for some sizes (14 -> 46); PyTorch's
    2-D kernel computes in float32, its 1-D kernel in the input's precision rounded to float32."""
    def differs(n_in, n_out):
        in64 = np.floor(np.arange(n_out) * (n_in / n_out))
        in32 = np.floor(np.arange(n_out, dtype=np.float32) * (np.float32(n_in) / np.float32(n_out)))
        return not np.array_equal(in64, in32)

    pairs = [(n_in, n_out) for n_in in range(2, 40) for n_out in range(1, 60) if differs(n_in, n_out)]
    assert len(pairs) >= 5
    for n_in, n_out in pairs:
        for shape, size in (((1, 1, n_in), n_out), ((1, 1, 1, n_in), (1, n_out))):
            x = np.arange(n_in, dtype=np.float64).reshape(shape)
            ours = F.interpolate(ember.tensor(x), size=size).numpy()
            ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=size).numpy()
            np.testing.assert_array_equal(ours, ref, err_msg=f"{shape}->{size}")
