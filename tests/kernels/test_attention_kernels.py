"""The compiled one-token decode attention against its reference (``ops.attention.attend_cached_rows`` on the
NumPy path): rows in any order, at any length (one key included), float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

from ember import kernels
from ember.models.gpt import _row_mask
from ember.ops.attention import attend_cached_rows

pytest.importorskip("numba")


def attend(kv, q, rows, starts):
    """What forward_cached runs for one new token per row: the reference masks each row past its position."""
    mask = _row_mask(np, starts[:, None], int(starts.max()) + 1, kv.dtype)
    return attend_cached_rows(np, kv, q, rows, starts, 0.25, mask)


def case(dtype, seed=0, cache_rows=7, heads=3, t_max=40, d=16):
    rng = np.random.default_rng(seed)
    kv = rng.standard_normal((2, cache_rows, heads, t_max, d)).astype(dtype)
    rows = np.array([5, 0, 3, 6])
    starts = np.array([0, 17, 39, 8])  # a row at position 0 sees one key; one sees the whole cache
    q = rng.standard_normal((rows.size, heads, 1, d)).astype(dtype) * 3
    return kv, q, rows, starts


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_attention_equals_the_reference(dtype, tol, seed):
    kv, q, rows, starts = case(dtype, seed)
    with kernels.use("numpy"):
        want = attend(kv, q, rows, starts)
    with kernels.use("numba"):
        got = attend(kv, q, rows, starts)
    assert got.shape == want.shape == (4, 3, 1, 16) and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())
    # the row at position 0 attends to its one key: the output is that key's value exactly
    np.testing.assert_allclose(got[0, :, 0], kv[1, 5, :, 0], rtol=0, atol=tol)


def test_the_kernel_reads_no_key_past_a_rows_position():
    kv, q, rows, starts = case(np.float64)
    poisoned = kv.copy()
    for row, start in zip(rows, starts):
        poisoned[:, row, :, start + 1:] = np.nan  # stale keys of an earlier request
    with kernels.use("numba"):
        clean = attend(kv, q, rows, starts)
        dirty = attend(poisoned, q, rows, starts)
    np.testing.assert_array_equal(dirty, clean)
