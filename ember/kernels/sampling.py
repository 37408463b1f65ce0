"""The draw at the end of sampling a token: the id ``Generator.choice(V, p=p)`` returns for a uniform ``u``.

``Generator.choice`` takes the cumulative sum of p, divides it by its last element, and returns the first id
whose normalised cumulative probability is above ``u`` (``searchsorted(side="right")``). NumPy does that per row
in three passes over V float64s (the cumulative sum alone is about 32 µs at V = 8,192) plus Python per row; a
decode step of 16 rows spent about 1.4 ms there. The kernel makes the same additions in the same order (a
sequential sum, then the scan with the same division and comparison), so its ids are the reference's exactly
(tested), for a batch of rows in one call: the first pass sums all rows at once (independent chains, which the
processor overlaps), the second stops at each row's crossing.

Reference: ``draw_reference`` (NumPy), the definition.
"""

from __future__ import annotations

import numpy as np

from . import jit, takes


def draw_reference(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each row of p (R, V), the number of entries of cumsum(row) / cumsum(row)[-1] that are <= u[row]:
    ``searchsorted(..., side="right")``, i.e. ``Generator.choice``'s id for the uniform u."""
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:].copy()
    return (cdf <= u[:, None]).sum(axis=1)


@jit
def _draw(p, u, out):
    n_rows, n = p.shape
    total = np.zeros(n_rows, dtype=p.dtype)
    for i in range(n):  # all rows' sequential sums at once: R independent chains of additions
        for r in range(n_rows):
            total[r] += p[r, i]
    for r in range(n_rows):
        out[r] = 0  # what the reference gives when no entry passes (a NaN row)
        s = p.dtype.type(0)  # sums in p's dtype, as the reference's cumsum (p[r, 0] * 0 is float64 in numba)
        for i in range(n):
            s += p[r, i]  # the cumulative sum's i-th entry, the same additions in the same order
            if s / total[r] > u[r]:
                out[r] = i
                break


def draw(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``draw_reference(p, u)`` (int64 ids), compiled when the kernels are on: p (R, V) float64 C-contiguous
    probabilities (not necessarily normalised), u (R,) uniforms in [0, 1)."""
    u = np.ascontiguousarray(u, dtype=np.float64)
    if p.ndim != 2 or u.shape != (p.shape[0],):
        raise ValueError(f"draw: need p (R, V) and u (R,), got {p.shape} and {u.shape}")
    if p.dtype != np.float64 or not takes(p, u) or p.shape[1] == 0:
        return draw_reference(p, u)
    out = np.empty(p.shape[0], dtype=np.int64)
    _draw(p, u, out)
    return out
