"""Moving between devices, mixing them, default devices: checked against the GPU-free double ``cpu:other``."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import backend, nn
from ember.data import DataLoader, TensorDataset
from ember.testing import device_double

OTHER = device_double.DEVICE
CPU = ember.device("cpu")


def test_mixing_devices_in_one_op_names_both():
    a, b = ember.ones(3), ember.ones(3, device="cpu:other")
    for mix in (lambda: a + b, lambda: b * a, lambda: ember.cat([b, a]), lambda: ember.where(a > 0, b, a)):
        with pytest.raises(RuntimeError, match=r"operands on different devices \(cpu, cpu:other\)"):
            mix()


def test_to_moves_and_the_gradient_comes_back():
    x = ember.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.to("cpu:other")
    assert y.device == OTHER and type(y.data) is device_double.OtherArray
    (y * y).sum().backward()
    assert x.grad.device == CPU
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])
    assert x.to(OTHER).to("cpu").device == CPU
    z = x.to("cpu:other", "float64")  # device and dtype in one call
    assert z.device == OTHER and z.dtype == np.float64


def test_with_device_and_set_default_device():
    with ember.device("cpu:other") as dev:
        assert dev is OTHER and ember.default_device() is OTHER
        made = [ember.tensor([1.0]), ember.zeros(2), ember.randn(2), ember.arange(3), nn.Linear(2, 2).weight]
    assert all(t.device == OTHER for t in made)
    assert ember.default_device() == CPU and ember.ones(1).device == CPU
    try:
        ember.set_default_device("cpu:other")
        assert ember.tensor(np.ones(2)).device == OTHER
        assert ember.tensor([1.0], device="cpu").device == CPU  # an explicit device wins
    finally:
        ember.set_default_device("cpu")
    assert ember.tensor([1.0]).device == CPU


def test_module_to_moves_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    model.to("cpu:other")
    assert all(t.device == OTHER for t in list(model.parameters()) + list(model.buffers()))
    out = model(ember.randn(2, 1, 5, 5, device="cpu:other"))
    assert out.device == OTHER
    model.to(CPU)
    assert all(t.device == CPU for t in list(model.parameters()) + list(model.buffers()))


def test_optimizer_state_loads_onto_the_parameters_device():
    ember.manual_seed(0)
    cpu_model = nn.Linear(3, 2)
    opt = ember.optim.Adam(cpu_model.parameters(), lr=0.1)
    cpu_model(ember.randn(4, 3)).sum().backward()
    opt.step()
    saved = opt.state_dict()
    dev_model = nn.Linear(3, 2).to("cpu:other")
    dev_model.load_state_dict(cpu_model.state_dict())
    dev_opt = ember.optim.Adam(dev_model.parameters(), lr=0.1)
    dev_opt.load_state_dict(saved)
    for p in dev_model.parameters():
        arrays = [v for v in dev_opt.state[id(p)].values() if hasattr(v, "shape") and np.ndim(v) > 0]
        assert arrays and all(backend.device_of(v) == OTHER for v in arrays)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    for model, optimizer, dev in ((cpu_model, opt, CPU), (dev_model, dev_opt, OTHER)):
        optimizer.zero_grad()
        model(ember.tensor(x, device=dev)).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(dev_model.weight.numpy(), cpu_model.weight.numpy(), rtol=1e-6)


def test_dataloader_moves_batches():
    data = TensorDataset(ember.tensor(np.arange(10.0).reshape(5, 2)), ember.tensor(np.arange(5)))
    batches = list(DataLoader(data, batch_size=2, device="cpu:other"))
    assert len(batches) == 3
    for x, y in batches:
        assert x.device == OTHER and y.device == OTHER
    np.testing.assert_array_equal(batches[0][0].numpy(), [[0.0, 1.0], [2.0, 3.0]])


def test_host_index_arrays_follow_the_tensor_as_in_pytorch():
    x = ember.tensor(np.arange(12.0).reshape(3, 4), device="cpu:other")
    np.testing.assert_array_equal(x[np.array([2, 0])].numpy(), [[8, 9, 10, 11], [0, 1, 2, 3]])
    np.testing.assert_array_equal(x[ember.tensor([1])].numpy(), [[4, 5, 6, 7]])  # a CPU index tensor too


def test_unknown_and_unregistered_devices_are_clear_errors():
    with pytest.raises(ValueError, match="bad CUDA device"):
        ember.device("cuda:x")
    with pytest.raises(ValueError, match="unknown device"):
        ember.device("cpu:nowhere")
    assert backend.is_device_name("cpu:other") and backend.is_device_name("cuda:1")
    assert not backend.is_device_name("float64")
