"""Every layer in the table: float64 gradient check (input and parameters) and PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.testing import LAYERS, build_layer, check_layer, layer_input


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: c.name)
def test_layer_gradcheck(case):
    result = check_layer(case)
    assert result.ok, f"{case.name}: {result}"


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: c.name)
def test_layer_matches_torch(case, torch):
    module = build_layer(case, np.float64)
    twin = case.torch_build(torch, module)
    twin.train(case.train)
    x_np = layer_input(case, np.float64, seed=1)
    if case.integer_input:
        x, tx = ember.tensor(x_np), torch.from_numpy(x_np)
    else:
        x, tx = ember.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    out, ref = module(x), twin(tx)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    cot = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(cot)
    ref.backward(torch.from_numpy(cot))
    if not case.integer_input:
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs = dict(twin.named_parameters())
    for name, p in module.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    for name, b in module.named_buffers():  # running statistics follow the same update
        ref_buf = dict(twin.named_buffers())[name]
        np.testing.assert_allclose(b.numpy(), ref_buf.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: c.name)
def test_layer_state_dict_round_trip(case):
    a = build_layer(case, np.float32, seed=0)
    b = build_layer(case, np.float32, seed=1)
    b.load_state_dict(a.state_dict())
    x = ember.tensor(layer_input(case, np.float32, seed=4))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: c.name)
def test_layer_float32_in_float32_out(case):
    module = build_layer(case, np.float32)
    x = ember.tensor(layer_input(case, np.float32, seed=2), requires_grad=not case.integer_input)
    out = module(x)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    grads = [p.grad for p in module.parameters()] + ([] if case.integer_input else [x.grad])
    assert all(g is not None and g.dtype == np.float32 for g in grads)
