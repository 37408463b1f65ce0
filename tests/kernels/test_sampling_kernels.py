"""The compiled draw (``kernels.sampling``) returns the reference's ids exactly: the same sequential sums, the
same division and comparison, for any probabilities, including the edges where a uniform meets a cumulative
value exactly."""

from __future__ import annotations

import numpy as np
import pytest

from ember import kernels
from ember.kernels import sampling

needs_numba = pytest.mark.skipif("numba" not in kernels.available(), reason="numba is not installed")


def both(p, u):
    with kernels.use("numpy"), np.errstate(invalid="ignore"):  # a row of zeros or NaN: 0/0 in the reference
        want = sampling.draw(p, u)
    with kernels.use("numba"):
        got = sampling.draw(p, u)
    return got, want


@needs_numba
@pytest.mark.parametrize("seed", range(12))
def test_the_kernel_draws_the_references_ids(seed):
    rng = np.random.default_rng(seed)
    rows, n = int(rng.integers(1, 20)), int(rng.choice([1, 2, 7, 300, 8192]))
    p = rng.random((rows, n)) ** rng.uniform(1, 30)  # from flat to a few dominant entries
    p[rng.random(p.shape) < 0.3] = 0
    u = rng.random(rows)
    got, want = both(p, u)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64


@needs_numba
def test_exact_meetings_and_edges():
    p = np.full((4, 4), 0.25)
    u = np.array([0.0, 0.25, 0.5, 0.75])  # each exactly a normalised cumulative value: side="right"
    got, want = both(p, u)
    np.testing.assert_array_equal(want, [0, 1, 2, 3])  # u = 0.25 = cdf[0] is past entry 0: the next one
    np.testing.assert_array_equal(got, want)
    zeros_first = np.array([[0.0, 0.0, 1.0, 0.0]])
    assert both(zeros_first, np.array([0.0]))[0].tolist() == [2]
    nan_row = np.array([[np.nan, 1.0, 2.0]])
    got, want = both(nan_row, np.array([0.3]))
    np.testing.assert_array_equal(got, want)


def test_the_draw_checks_its_shapes():
    with pytest.raises(ValueError, match=r"p \(R, V\) and u \(R,\)"):
        sampling.draw(np.ones((2, 3)), np.ones(3))
