"""The compiled one-token decode attention against its reference (``ops.attention.attend_cached_rows`` on the
NumPy path): rows in any order, at any length (one key included), float32 and float64, on one core and with the
queries split over two threads (``kernels.pair``)."""

from __future__ import annotations

import numpy as np
import pytest

from ember import kernels
from ember.kernels import attention as attention_kernels
from ember.kernels import pair
from ember.models.gpt import _row_mask
from ember.ops.attention import attend_cached_rows

pytest.importorskip("numba")


def attend(kv, q, rows, starts):
    """What forward_cached runs for one new token per row: the reference masks each row past its position."""
    mask = _row_mask(np, starts[:, None], int(starts.max()) + 1, kv.dtype)
    return attend_cached_rows(np, kv, q, rows, starts, 0.25, mask)


@pytest.fixture(params=["one core", "two threads"])
def split(request, monkeypatch):
    """Run the kernel on one core, or force the two-thread split (whatever the machine's BLAS threads) and count
    the calls whose second half the helper thread ran."""
    helped = []
    if request.param == "one core":
        monkeypatch.setattr(attention_kernels, "SPLIT_KEYS", 1 << 60)
    else:
        monkeypatch.setattr(attention_kernels, "SPLIT_KEYS", 0)
        monkeypatch.setattr(pair, "second_core", lambda: True)
        run_both = pair.run_both
        monkeypatch.setattr(pair, "run_both", lambda *a: helped.append(run_both(*a)) or helped[-1])
    return request.param, helped


def case(dtype, seed=0, cache_rows=7, heads=3, t_max=40, d=16):
    rng = np.random.default_rng(seed)
    kv = rng.standard_normal((2, cache_rows, heads, t_max, d)).astype(dtype)
    rows = np.array([5, 0, 3, 6])
    starts = np.array([0, 17, 39, 8])  # a row at position 0 sees one key; one sees the whole cache
    q = rng.standard_normal((rows.size, heads, 1, d)).astype(dtype) * 3
    return kv, q, rows, starts


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decode_attention_equals_the_reference(dtype, tol, seed, split):
    kv, q, rows, starts = case(dtype, seed)
    with kernels.use("numpy"):
        want = attend(kv, q, rows, starts)
    with kernels.use("numba"):
        got = attend(kv, q, rows, starts)
    assert split[1] == ([True] if split[0] == "two threads" else [])
    assert got.shape == want.shape == (4, 3, 1, 16) and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())
    # the row at position 0 attends to its one key: the output is that key's value exactly
    np.testing.assert_allclose(got[0, :, 0], kv[1, 5, :, 0], rtol=0, atol=tol)


def test_the_kernel_reads_no_key_past_a_rows_position(split):
    kv, q, rows, starts = case(np.float64)
    poisoned = kv.copy()
    for row, start in zip(rows, starts):
        poisoned[:, row, :, start + 1:] = np.nan  # stale keys of an earlier request
    with kernels.use("numba"):
        clean = attend(kv, q, rows, starts)
        dirty = attend(poisoned, q, rows, starts)
    np.testing.assert_array_equal(dirty, clean)


@pytest.mark.parametrize("seed", range(6))
def test_two_threads_give_one_cores_answer_bit_for_bit(seed, monkeypatch):
    """The split only shares out whole queries: each output is the same arithmetic as on one core. Random row
    counts, lengths (one key to the whole cache) and row order."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    kv = rng.standard_normal((2, 12, 4, 64, 8)).astype(np.float32)
    rows = rng.permutation(12)[:n]
    starts = rng.integers(0, 64, n)
    q = rng.standard_normal((n, 4, 8)).astype(np.float32)
    with kernels.use("numba"):
        monkeypatch.setattr(attention_kernels, "SPLIT_KEYS", 1 << 60)
        one = attention_kernels.decode_attention(q, kv[0], kv[1], rows, starts + 1, 0.3)
        monkeypatch.setattr(attention_kernels, "SPLIT_KEYS", 0)
        monkeypatch.setattr(pair, "second_core", lambda: True)
        two = attention_kernels.decode_attention(q, kv[0], kv[1], rows, starts + 1, 0.3)
    np.testing.assert_array_equal(two, one)
