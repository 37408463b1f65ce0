"""One decode step's attention for rows of a KV cache at different lengths: ``GPT.forward_cached``'s fast path.

With one new token per row, attention is, for every row b and head h, a dot product of the query with each of
the row's first n_b cached keys, a softmax and a weighted sum of as many values: a few thousand multiply-adds.
NumPy runs it as a batched matmul over (rows x heads) tiny matrices, twice, plus the softmax's passes over a
padded (rows, heads, keys) array, and the per-matrix overhead dominates (16 rows x 6 heads x 6 layers of the
code model: 5.5 ms of an 18 ms step). Here each (row, head) is one loop over its own keys, reading the cache in
place (no padding to the longest row, no mask).

Accuracy: as the reference's BLAS products, dot products and weighted sums accumulate in the cache's dtype (the
loops vectorise over the head dimension); the softmax's normaliser in float64. The zero the sums start from is
``q.dtype.type(0)``: ``q[0, 0, 0] * 0``, used until 2026-11-30, is float64 in numba and made every float32 dot
product a float64 one, 1.7x slower (156 against 92 µs for 16 rows of 40 keys, standalone). The reference
(``ember.ops.attention.attend_cached_rows``) stays the definition.

Two cores: a step's queries are independent, so from ``SPLIT_KEYS`` of work on, half of them (alternating by
length, for equal work) run on ``kernels.pair``'s helper thread while this thread runs the rest; the outputs are
the one-core outputs bit for bit. A 16-row step of the code model at 40 cached positions per row: 1.05-1.06x
faster as a whole (``bench_serve_engine.py``'s step parts). It needs OpenBLAS's workers asleep between products
(``OPENBLAS_THREAD_TIMEOUT=4``, ember's runtime setting): a worker still spinning on the second core made the
split 3% slower.
"""

from __future__ import annotations

import math

import numpy as np

from . import jit, pair, takes

SPLIT_KEYS = 2048  # (keys x heads) summed over the queries from which the queries are split over two cores


@jit(reassoc=True)
def _decode_attention(q, keys, values, rows, visible, order, scale, out):
    """out[b, h] = softmax(q[b, h] · keys[rows[b], h, :visible[b]] · scale) @ values[rows[b], h, :visible[b]],
    for the queries b in ``order`` (the others' outputs are left alone)."""
    n_heads, d = q.shape[1], q.shape[2]
    scores = np.empty(keys.shape[2], dtype=q.dtype)
    acc = np.empty(d, dtype=q.dtype)
    zero = q.dtype.type(0)  # the dtype's zero: float32 sums stay float32 (q[0, 0, 0] * 0 is float64 in numba)
    for i in range(order.shape[0]):
        b = order[i]
        r, n = rows[b], visible[b]
        for h in range(n_heads):
            qv = q[b, h]
            top = -np.inf
            for j in range(n):
                kr = keys[r, h, j]
                s = zero
                for k in range(d):
                    s += qv[k] * kr[k]
                scores[j] = s * scale
                if scores[j] > top:
                    top = scores[j]
            total = 0.0
            for j in range(n):
                p = math.exp(scores[j] - top)
                scores[j] = p
                total += p
            acc[:] = zero
            for j in range(n):
                p = scores[j]
                vr = values[r, h, j]
                for k in range(d):
                    acc[k] += p * vr[k]
            inv = 1.0 / total
            for k in range(d):
                out[b, h, k] = acc[k] * inv


def applies(kv) -> bool:
    """Whether one-token decode steps over the cache ``kv`` take this kernel (numba on; a C-contiguous float32 or
    float64 NumPy cache)."""
    return _decode_attention is not None and takes(kv)


def decode_attention(q: np.ndarray, keys: np.ndarray, values: np.ndarray, rows: np.ndarray, visible: np.ndarray,
                     scale: float) -> np.ndarray:
    """(B, H, D) attention outputs of one query per row. q (B, H, D); keys, values: one layer's cache
    (rows, H, T_max, D), C-contiguous; ``rows`` the cache rows of the B queries; ``visible`` how many keys each
    sees (its position + 1)."""
    out = np.empty_like(q)
    rows, visible, scale = rows.astype(np.int64, copy=False), visible.astype(np.int64, copy=False), q.dtype.type(scale)
    if q.shape[0] < 2 or int(visible.sum()) * q.shape[1] < SPLIT_KEYS:
        _decode_attention(q, keys, values, rows, visible, np.arange(q.shape[0]), scale, out)
        return out
    by_length = np.argsort(visible, kind="stable")  # alternate queries by length: halves of equal work
    pair.run_both(_decode_attention, (q, keys, values, rows, visible, by_length[0::2], scale, out),
                  (q, keys, values, rows, visible, by_length[1::2], scale, out))
    return out
