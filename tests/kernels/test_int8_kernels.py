"""The int8 decode product (``kernels.int8``: its own loop for one row, ``kernels.rows``' blocks for more) against its
reference, the dequantized weight's product: any number of rows up to the decode loop's, square and wide and tall
weights, one core and two threads (bit for bit alike)."""

from __future__ import annotations

import numpy as np
import pytest

from ember.kernels import int8, pair
from ember.kernels import rows as rows_kernels

pytest.importorskip("numba")


def case(rows, n_out, n_in, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n_in)).astype(np.float32)
    q = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    scale = (rng.random(n_out) * 0.02 + 1e-4).astype(np.float32)
    return x, q, scale


def bound(x, q, scale):
    """float32 rounding of sums in another order: relative to the sum of the terms' magnitudes."""
    return 1e-5 * float((np.abs(x) @ (np.abs(q.astype(np.float32)) * scale[:, None]).T).max())


@pytest.mark.parametrize("rows", [1, 2, 5, 16, 32])
@pytest.mark.parametrize("n_out,n_in", [(48, 48), (150, 40), (40, 300)])
@pytest.mark.parametrize("seed", [0, 1])
def test_int8_matmul_equals_the_dequantized_product(rows, n_out, n_in, seed):
    x, q, scale = case(rows, n_out, n_in, seed)
    assert int8.applies(x, q, scale)
    got = int8.int8_matmul(x, q, scale)
    want = int8.reference(x, q, scale)
    assert got.shape == want.shape == (rows, n_out) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=bound(x, q, scale))


@pytest.mark.parametrize("rows", [1, 3, 16])
def test_two_threads_give_one_cores_answer_bit_for_bit(rows, monkeypatch):
    x, q, scale = case(rows, 301, 64, 7)  # an odd number of outputs: halves of 150 and 151
    for module in (int8, rows_kernels):  # one row: int8's own kernel; more: kernels.rows' blocks
        monkeypatch.setattr(module, "SPLIT_WORK", 1 << 60)
    one = int8.int8_matmul(x, q, scale)
    for module in (int8, rows_kernels):
        monkeypatch.setattr(module, "SPLIT_WORK", 0)
    monkeypatch.setattr(pair, "second_core", lambda: True)
    helped = []
    run_both = pair.run_both
    monkeypatch.setattr(pair, "run_both", lambda *a: helped.append(run_both(*a)) or helped[-1])
    two = int8.int8_matmul(x, q, scale)
    assert helped == [True]
    np.testing.assert_array_equal(two, one)


def test_only_what_it_computes_right_is_taken():
    x, q, scale = case(2, 8, 4, 0)
    assert int8.applies(x, q, scale)
    refused = [(x.astype(np.float64), q, scale), (np.asfortranarray(x), q, scale),
               (x, q.astype(np.int16), scale), (x, q, scale.astype(np.float64)), (x, q[:, :3], scale),
               (x, q, scale[:4]), (x[:0], q, scale), (x[:, ::2], q[:, :2], scale)]
    for args in refused:
        assert not int8.applies(*args)
