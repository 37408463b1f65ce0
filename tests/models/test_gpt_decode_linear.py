"""The decode loop's Linear (``(W @ x.T).T`` for a few rows, the layout OpenBLAS runs fastest there; the Linear op
above ``FEW_ROWS``) is ``x @ W.T + b``."""

from __future__ import annotations

import numpy as np
import pytest

from ember import nn
from ember.models.gpt import FEW_ROWS, _linear, _linear_transposed


@pytest.mark.parametrize("linear", [_linear, _linear_transposed])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("shape", [(1, 1, 24), (16, 1, 24), (1, FEW_ROWS, 24), (1, FEW_ROWS + 1, 24), (1, 128, 24),
                                   (3, 5, 24), (7, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_the_decode_linear_is_x_times_w_transposed_plus_b(linear, dtype, tol, shape, bias):
    rng = np.random.default_rng(len(shape) * 1000 + shape[0] * 10 + shape[-2])
    layer = nn.Linear(24, 40, bias=bias).to(dtype=dtype)
    x = rng.standard_normal(shape).astype(dtype)
    out = linear(x, layer)
    expected = x @ layer.weight.data.T + (layer.bias.data if bias else 0)
    assert out.shape == shape[:-1] + (40,) and out.dtype == np.dtype(dtype)
    assert out.flags.c_contiguous  # the compiled kernels after it take C-contiguous rows
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
