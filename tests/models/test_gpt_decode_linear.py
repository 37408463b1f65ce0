"""The decode loop's Linear (``(W @ x.T).T``, the layout OpenBLAS runs fastest for a few rows) is ``x @ W.T + b``."""

from __future__ import annotations

import numpy as np
import pytest

from ember import nn
from ember.models.gpt import _linear


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("shape", [(1, 1, 24), (16, 1, 24), (1, 128, 24), (3, 5, 24), (7, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_the_decode_linear_is_x_times_w_transposed_plus_b(dtype, tol, shape, bias):
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    layer = nn.Linear(24, 40, bias=bias).to(dtype=dtype)
    x = rng.standard_normal(shape).astype(dtype)
    out = _linear(x, layer)
    expected = x @ layer.weight.data.T + (layer.bias.data if bias else 0)
    assert out.shape == shape[:-1] + (40,) and out.dtype == np.dtype(dtype)
    assert out.flags.c_contiguous  # the compiled kernels after it take C-contiguous rows
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
