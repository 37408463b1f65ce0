"""The real GPU: device placement, transfers, seeded draws, mixing errors and a training step's parity.

Marked ``gpu``: skipped where CuPy sees no CUDA GPU (CI); run on a lent GPU by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import backend, nn
from ember.testing import parity

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda():
    return ember.device("cuda")


def test_tensors_live_on_the_gpu_and_come_back(cuda):
    import cupy

    x = ember.tensor(np.arange(6.0).reshape(2, 3), device=cuda, requires_grad=True)
    assert isinstance(x.data, cupy.ndarray) and x.device == cuda and str(cuda) == "cuda:0"
    y = (x * x).sum()
    y.backward()
    assert isinstance(x.grad.data, cupy.ndarray)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(6.0).reshape(2, 3))
    host = x.to("cpu")
    assert type(host.data) is np.ndarray and host.device == ember.device("cpu")


def test_mixing_gpu_and_cpu_names_both(cuda):
    with pytest.raises(RuntimeError, match=r"operands on different devices \(cpu, cuda:0\)"):
        ember.ones(3, device=cuda) + ember.ones(3)


def test_seeded_draws_repeat_on_the_gpu(cuda):
    ember.manual_seed(11)
    a = ember.randn(1000, device=cuda).numpy()
    ember.manual_seed(11)
    b = ember.randn(1000, device=cuda).numpy()
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 0.15 and 0.85 < a.std() < 1.15


def test_dropout_on_the_gpu_is_seeded_and_scaled(cuda):
    ember.manual_seed(3)
    x = ember.ones(10000, device=cuda)
    y = nn.functional.dropout(x, 0.25, training=True).numpy()
    kept = y != 0
    assert 0.72 < kept.mean() < 0.78
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)


def test_optimizer_state_and_module_to(cuda):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.Linear(7, 2)).to(cuda)
    opt = ember.optim.AdamW(model.parameters(), lr=1e-2)
    x = ember.randn(8, 5, device=cuda)
    nn.functional.cross_entropy(model(x), ember.randint(0, 2, (8,), device=cuda)).backward()
    opt.step()
    for p in model.parameters():
        assert p.device == cuda
        assert all(backend.device_of(v) == cuda for v in opt.state[id(p)].values()
                   if hasattr(v, "shape") and v.ndim)


@pytest.mark.parametrize("model", sorted(parity.STEP_MODELS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_step_parity(cuda, model, dtype):
    checks = parity.step_parity(model, cuda, dtype)
    bad = [f"{c.quantity}: {c.note or c.max_rel}" for c in checks if not c.ok]
    assert not bad, bad


def test_pooling_argmax_identical(cuda):
    checks = parity.pooling_parity(cuda, np.float32)
    bad = [f"{c.name} {c.quantity}" for c in checks if not c.ok]
    assert not bad, bad
