"""The GPU-free test double ``cpu:other``: it must refuse host arrays as CuPy does, or it proves nothing."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import backend, kernels, nn
from ember.testing import device_double
from ember.testing.device_double import OtherArray

OTHER = device_double.DEVICE


def on_other(a) -> OtherArray:
    return backend.to_device(np.asarray(a, dtype=np.float64), OTHER)


def test_the_double_is_a_registered_device():
    assert ember.device("cpu:other") is OTHER
    assert str(OTHER) == "cpu:other" and OTHER != ember.device("cpu")
    assert backend.device_of(on_other([1.0])) is OTHER
    assert backend.array_module(on_other([1.0])) is device_double.xp


@pytest.mark.parametrize("mix", [
    lambda d, h: d + h,
    lambda d, h: np.add(h, d),
    lambda d, h: np.concatenate([d, h]),
    lambda d, h: device_double.xp.stack([d, h]),
    lambda d, h: d[h.astype(np.int64) % 3],
], ids=["operator", "ufunc", "numpy function", "array module", "host index"])
def test_mixing_with_a_host_array_raises_like_cupy(mix):
    d, h = on_other([1.0, 2.0, 3.0]), np.ones(3)
    with pytest.raises(TypeError, match="device 'cpu:other' was mixed with a host"):
        mix(d, h)


def test_writing_a_host_array_into_it_raises():
    d = on_other(np.zeros(3))
    with pytest.raises(TypeError, match="index assignment"):
        d[...] = np.ones(3)


def test_results_stay_on_the_device_and_reductions_are_0d_arrays():
    d = on_other([[1.0, 2.0], [3.0, 4.0]])
    for result in (d * 2, np.exp(d), d.T @ d, device_double.xp.zeros(3), d.sum(), np.max(d), d[0]):
        assert type(result) is OtherArray, type(result)
    assert d.sum().shape == ()  # CuPy returns 0-d arrays, not NumPy scalars
    np.testing.assert_array_equal(d.get(), [[1.0, 2.0], [3.0, 4.0]])
    assert type(d.get()) is np.ndarray


def test_compiled_kernels_never_take_its_arrays():
    d = on_other(np.ones((4, 4), dtype=np.float32))
    assert not kernels.takes(d) and not kernels.accepts(d)


def test_seeded_draws_equal_the_cpus():
    ember.manual_seed(7)
    cpu = ember.randn(5).numpy()
    ember.manual_seed(7)
    other = ember.randn(5, device="cpu:other")
    assert other.device == OTHER
    np.testing.assert_array_equal(other.numpy(), cpu)


def test_an_op_that_computes_on_the_host_is_caught():
    """The bug the double exists for: an op that calls NumPy's host functions inside forward."""
    from ember.autograd import Function
    from ember.tensor import apply

    class HostOp(Function):
        def forward(ctx, a):
            return np.asarray(a) * 2  # np.asarray drops the device: on CuPy this raises, here it leaves the device

    x = ember.tensor([1.0, 2.0], device="cpu:other")
    y = apply(HostOp, x)
    assert y.device == ember.device("cpu")  # the escape is visible ...
    with pytest.raises(RuntimeError, match="operands on different devices"):
        y + x  # ... and the next op refuses it


def test_a_model_trains_on_it_with_state_on_the_device():
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to("cpu:other")
    opt = ember.optim.AdamW(model.parameters(), lr=1e-2)
    x = ember.randn(16, 4, device="cpu:other")
    y = ember.randint(0, 3, (16,), device="cpu:other")
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for p in model.parameters():
        assert p.device == OTHER and p.grad.device == OTHER
        for value in opt.state[id(p)].values():
            if hasattr(value, "shape") and value.ndim:
                assert backend.device_of(value) == OTHER, "optimizer state left the parameters' device"
