"""The few-rows product (``kernels.rows``) against float64: every shape its blocks and leftovers cover (rows that are
and are not multiples of 4, outputs that are and are not multiples of 6), one core and two threads (bit for bit
alike), and the decode loop's Linear taking it only where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from ember import nn
from ember.kernels import pair, rows
from ember.models import gpt

pytest.importorskip("numba")


def case(n_rows, n_out, n_in, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_rows, n_in)).astype(np.float32),
            rng.standard_normal((n_out, n_in)).astype(np.float32))


def bound(x, w):
    """float32 rounding of sums in another order: relative to the sum of the terms' magnitudes."""
    return 2e-6 * float((np.abs(x).astype(np.float64) @ np.abs(w).T.astype(np.float64)).max())


@pytest.mark.parametrize("n_rows", [2, 3, 4, 5, 7, 8, 13, 16])
@pytest.mark.parametrize("n_out,n_in", [(1, 9), (3, 40), (4, 4), (6, 5), (7, 33), (13, 8), (48, 48), (150, 40),
                                        (40, 300), (1027, 64)])
@pytest.mark.parametrize("seed", [0, 1])
def test_rows_matmul_equals_the_product_in_float64(n_rows, n_out, n_in, seed):
    x, w = case(n_rows, n_out, n_in, seed)
    assert rows.applies(x, w)
    got = rows.rows_matmul(x, w)
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    assert got.shape == (n_rows, n_out) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=bound(x, w))
    np.testing.assert_allclose(got, rows.reference(x, w), rtol=0, atol=2 * bound(x, w))


@pytest.mark.parametrize("n_rows", [2, 6, 16])
@pytest.mark.parametrize("n_out", [301, 306, 13])
def test_two_threads_give_one_cores_answer_bit_for_bit(n_rows, n_out, monkeypatch):
    x, w = case(n_rows, n_out, 64, 7)
    monkeypatch.setattr(rows, "SPLIT_WORK", 1 << 60)
    one = rows.rows_matmul(x, w)
    monkeypatch.setattr(rows, "SPLIT_WORK", 0)
    monkeypatch.setattr(pair, "second_core", lambda: True)
    helped = []
    run_both = pair.run_both
    monkeypatch.setattr(pair, "run_both", lambda *a: helped.append(run_both(*a)) or helped[-1])
    two = rows.rows_matmul(x, w)
    assert helped == [True]
    np.testing.assert_array_equal(two, one)


def test_only_what_it_computes_right_is_taken():
    x, w = case(4, 8, 6, 0)
    assert rows.applies(x, w)
    refused = [(x[:1], w), (np.concatenate([x] * 5), w), (x.astype(np.float64), w), (x, w.astype(np.float64)),
               (np.asfortranarray(x), w), (x, np.asfortranarray(w)), (x, w[:, :5]), (x[:, ::2], w[:, :3]),
               (x, w[:0]), (x.reshape(2, 2, 6), w)]
    for args in refused:
        assert not rows.applies(*args)


@pytest.mark.parametrize("n_rows", [1, 2, 5, 16, 17, 32])
@pytest.mark.parametrize("bias", [True, False])
def test_the_decode_loops_linear_takes_it_for_2_to_16_rows(n_rows, bias, count_calls):
    rng = np.random.default_rng(n_rows)
    layer = nn.Linear(24, 37, bias=bias)
    if bias:
        layer.bias.data[...] = rng.standard_normal(37).astype(np.float32)
    x = rng.standard_normal((n_rows, 1, 24)).astype(np.float32)
    counter = count_calls(rows, "rows_matmul")
    got = gpt._linear(x, layer)
    want = x.astype(np.float64) @ layer.weight.data.T.astype(np.float64)
    if bias:
        want += layer.bias.data
    assert got.shape == (n_rows, 1, 37)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert counter.calls == (1 if 2 <= n_rows <= rows.MOST_ROWS else 0)
