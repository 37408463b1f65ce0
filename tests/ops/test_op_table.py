"""Every op in the table: float64 gradient check, float32 dtype preservation, PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.testing import OPS, check_op, make_inputs

IDS = [c.name for c in OPS]


@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_gradcheck_float64(case):
    result = check_op(case)
    assert result.ok, f"{case.name}: {result}"


@pytest.mark.parametrize("case", OPS, ids=IDS)
def test_float32_in_float32_out(case):
    tensors = [ember.tensor(a, requires_grad=True) for a in make_inputs(case, np.float32)]
    if case.reseed:
        ember.manual_seed(0)
    out = case.fn(*tensors)
    assert out.dtype == np.float32, f"{case.name} returned {out.dtype}"
    out.backward(np.ones(out.shape, dtype=np.float32))
    for t in tensors:
        assert t.grad is not None and t.grad.dtype == np.float32, f"{case.name}: grad dtype {t.grad and t.grad.dtype}"
        assert t.grad.shape == t.shape


@pytest.mark.parametrize("case", [c for c in OPS if c.torch_fn is not None], ids=lambda c: c.name)
def test_matches_torch_forward_and_backward(case, torch):
    arrays = make_inputs(case, np.float64, seed=3)
    ours = [ember.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = case.fn(*ours)
    ref = case.torch_fn(torch, *theirs)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=case.name)
    cotangent = np.random.default_rng(5).standard_normal(out.shape)
    out.backward(cotangent)
    ref.backward(torch.from_numpy(cotangent))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert b.grad is not None
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=f"{case.name}: gradient of input {i}")
