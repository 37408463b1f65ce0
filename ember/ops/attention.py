"""Attention as fused ops: one kernel (``attend``/``attend_backward``) behind two ops.

``CausalSelfAttention`` goes from the fused q|k|v projection to merged heads (the GPT's layer):

    qkv (B, T, 3C) -> q, k, v (B, H, T, D) -> S = q kᵀ / sqrt(D) + causal mask -> P = softmax(S)
    -> dropout(P) -> y = P v -> (B, T, C)

``ScaledDotProductAttention`` is PyTorch's ``F.scaled_dot_product_attention`` on separate q (..., L, E),
k (..., S, E), v (..., S, Ev), with an additive mask (a boolean mask becomes 0/-inf), any scale, and
rows with no allowed key giving zeros (PyTorch's "safe softmax") instead of nan.

Scores are kept key-major, Sᵀ (..., S, L): the softmax's max and sum then reduce over an
outer axis, which NumPy vectorises across the queries, instead of over 64-element rows (a row
max ran 17x faster this way here). Backward is the textbook one, with P (after dropout, if any)
the only L×S arrays saved (plus its dropout mask):

    dV = Pᵀ dy,  dP = dy Vᵀ,  dS = P ⊙ (dP − Σ_k dP ⊙ P) / sqrt(D),  dQ = dS K,  dK = dSᵀ Q.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..autograd import Function
from ..kernels import attention as attention_kernels
from ..kernels import cuda as cuda_kernels
from ..kernels.cuda import softmax as cuda_softmax_kernels
from .util import unbroadcast


def causal_mask_t(xp, tk: int, tq: int, offset: int = 0, dtype=None):
    """Additive mask in key-major layout (tk, tq): 0 where key j <= query i + offset, -inf after.

    NumPy masks are cached (read-only): every step of a training run or of uncached generation asks
    for the same few shapes, and building one cost as much as the softmax it feeds."""
    if xp is np:
        return _cached_causal_mask(tk, tq, offset, np.dtype(dtype) if dtype is not None else np.dtype(np.float64))
    return _causal_mask(xp, tk, tq, offset, dtype)


def _causal_mask(xp, tk, tq, offset, dtype):
    j = xp.arange(tk)[:, None]
    i = xp.arange(tq)[None, :] + offset
    mask = xp.zeros((tk, tq), dtype=dtype)
    mask[j > i] = -xp.inf
    return mask


@functools.lru_cache(maxsize=16)
def _cached_causal_mask(tk: int, tq: int, offset: int, dtype: np.dtype) -> np.ndarray:
    mask = _causal_mask(np, tk, tq, offset, dtype)
    mask.flags.writeable = False
    return mask


def softmax_keys(xp, st, safe: bool = False):
    """In-place softmax of key-major scores (..., S, L) over the key axis (-2).

    ``safe``: a query whose keys are all masked (-inf) gets zero probabilities, not nan.
    """
    if cuda_kernels.takes(st):
        return cuda_softmax_kernels.softmax_keys(st, safe)
    m = st.max(axis=-2, keepdims=True)
    if safe:
        m[~xp.isfinite(m)] = 0
    st -= m
    xp.exp(st, out=st)
    total = st.sum(axis=-2, keepdims=True)
    if safe:
        total[total == 0] = 1
    st /= total
    return st


def attend_cached_rows(xp, kv, q, rows: np.ndarray, starts: np.ndarray, scale: float, mask):
    """Attention of the new queries q (B, H, t, D) of KV-cache rows ``rows`` (one layer's cache kv: (2, rows, H,
    T_max, D), the new keys already written), each row's queries at positions starts[b] .. starts[b] + t - 1;
    ``mask``: the additive key-major mask for t > 1 (None for one query per row, which sees every written key).

    One query per row takes the compiled loop (``kernels.attention``) when it applies. Otherwise the cache is read
    through views of the span of rows min..max, never gathered: copying each row's keys and values cost more than
    the rest of a batched decode step. Rows in that span but not asked for cost a few wasted dot products (a
    server keeps its active rows packed low); queries and probabilities are scattered into the span and the
    answers taken back, which moves only (t x keys)-sized arrays.
    """
    t = q.shape[2]
    if t == 1 and attention_kernels.applies(kv):
        out = attention_kernels.decode_attention(np.ascontiguousarray(q[:, :, 0]), kv[0], kv[1], rows, starts + 1,
                                                 scale)
        return out[:, :, None]
    end = int(starts.max()) + t
    lo, hi = int(rows.min()), int(rows.max()) + 1
    keys, values = kv[0, lo:hi, :, :end], kv[1, lo:hi, :, :end]
    packed = hi - lo == rows.size and bool((np.diff(rows) == 1).all())  # lo, lo+1, ..., hi-1 in order
    at = None if packed else xp.asarray(rows - lo)
    if at is not None:
        q = _scatter(xp, q, at, hi - lo)
    st = keys @ q.swapaxes(-1, -2)  # key-major scores (span, H, T_k, t)
    if at is not None:
        st = st[at]
    st *= scale
    if mask is not None:
        st += mask
    p = softmax_keys(xp, st)
    if at is None:
        return p.swapaxes(-1, -2) @ values
    return (_scatter(xp, p, at, hi - lo).swapaxes(-1, -2) @ values)[at]


def _scatter(xp, a, at, n: int):
    """a (B, ...) placed at rows ``at`` of a zero array (n, ...)."""
    out = xp.zeros((n,) + a.shape[1:], dtype=a.dtype)
    out[at] = a
    return out


def attend(xp, q, k, v, scale, bias_t=None, dropout=0.0, generator=None, safe=False):
    """The attention kernel: (y (..., L, Ev), P key-major (..., S, L), dropout mask or None).

    ``bias_t`` is an additive mask already in key-major layout, broadcastable to (..., S, L).
    """
    st = k @ q.swapaxes(-1, -2)  # (..., S, L)
    st *= scale
    if bias_t is not None:
        st += bias_t
    p = softmax_keys(xp, st, safe)
    mask, pd = None, p
    if dropout > 0.0:
        mask = (generator.random(p.shape, dtype=p.dtype) >= dropout).astype(p.dtype)
        mask *= 1.0 / (1.0 - dropout)
        pd = p * mask
    return pd.swapaxes(-1, -2) @ v, p, mask


def attend_backward(xp, gy, q, k, v, p, mask, scale, out=(None, None, None)):
    """(dQ, dK, dV, dSᵀ) from dy (..., L, Ev); dSᵀ is the gradient of the additive mask (key-major).

    ``out`` may give arrays to write dQ, dK, dV into (views of one buffer, say).
    """
    pd = p if mask is None else p * mask  # what multiplied v in the forward
    dv = xp.matmul(pd, gy, out=out[2])  # dV = Pᵀ dy, with p key-major already (S, L)
    dpt = v @ gy.swapaxes(-1, -2)  # dPᵀ (..., S, L)
    if mask is not None:
        dpt *= mask
    dst = dpt
    dst -= (dpt * p).sum(axis=-2, keepdims=True)
    dst *= p  # the gradient of the scores after scaling (and of an additive mask)
    scaled = dst * scale
    dq = xp.matmul(scaled.swapaxes(-1, -2), k, out=out[0])  # dQ = dS K
    dk = xp.matmul(scaled, q, out=out[1])  # dK = dSᵀ Q
    return dq, dk, dv, dst


class CausalSelfAttention(Function):
    """y = softmax(q kᵀ/√D + causal) v per head, from qkv (B, T, 3C); returns (B, T, C)."""

    saves = (0,)

    def forward(ctx, qkv, n_head, dropout, generator):
        xp = ctx.xp
        b, t, c3 = qkv.shape
        c = c3 // 3
        if c3 != 3 * c or c % n_head:
            raise ValueError(f"attention: qkv width {c3} is not 3·C with C divisible by {n_head} heads")
        d = c // n_head
        ctx.qkv, ctx.n_head = qkv, n_head
        if t == 0:  # an empty sequence attends to nothing: an empty result (PyTorch's), no softmax of nothing
            ctx.p = None
            return xp.zeros((b, 0, c), dtype=qkv.dtype)
        heads = qkv.reshape(b, t, 3, n_head, d).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, D) view
        q, k, v = heads[0], heads[1], heads[2]
        scale = 1.0 / math.sqrt(d)
        y, p, mask = attend(xp, q, k, v, scale, causal_mask_t(xp, t, t, dtype=qkv.dtype), dropout, generator)
        ctx.qkv, ctx.p, ctx.mask, ctx.n_head, ctx.scale = qkv, p, mask, n_head, scale
        return y.transpose(0, 2, 1, 3).reshape(b, t, c)

    def backward(ctx, g):
        xp = ctx.xp
        qkv, p, n_head = ctx.qkv, ctx.p, ctx.n_head
        if p is None:
            return xp.zeros(qkv.shape, dtype=g.dtype)
        b, t, c3 = qkv.shape
        c = c3 // 3
        d = c // n_head
        heads = qkv.reshape(b, t, 3, n_head, d).transpose(2, 0, 3, 1, 4)
        q, k, v = heads[0], heads[1], heads[2]
        gy = g.reshape(b, t, n_head, d).transpose(0, 2, 1, 3)  # (B, H, T_q, D)
        out = xp.empty((b, t, 3, n_head, d), dtype=g.dtype)
        douts = out.transpose(2, 0, 3, 1, 4)  # (3, B, H, T, D) view to write into
        attend_backward(xp, gy, q, k, v, p, ctx.mask, ctx.scale, out=(douts[0], douts[1], douts[2]))
        return out.reshape(b, t, c3)


class ScaledDotProductAttention(Function):
    """softmax(q kᵀ·scale + mask) v over the last two axes; q (..., L, E), k (..., S, E), v (..., S, Ev).

    Batch axes broadcast. The mask is an optional input 3 (a float tensor, differentiable, (..., L, S)
    broadcastable) or ``bias_t``, a constant additive mask already key-major (..., S, L).
    """

    saves = (0, 1, 2)

    def forward(ctx, q, k, v, *mask, bias_t, scale, dropout, generator):
        xp = ctx.xp
        ctx.q, ctx.k, ctx.v, ctx.mask_shape = q, k, v, mask[0].shape if mask else None
        if q.shape[-2] == 0 or k.shape[-2] == 0:  # no queries, or no keys to attend to: zeros (PyTorch's)
            ctx.p = None
            shape = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]) + (q.shape[-2], v.shape[-1])
            return xp.zeros(shape, dtype=q.dtype)
        bias = bias_t
        if mask:
            m = mask[0].swapaxes(-1, -2)
            bias = m if bias is None else bias + m
        y, p, drop = attend(xp, q, k, v, scale, bias, dropout, generator, safe=bias is not None)
        ctx.p, ctx.drop, ctx.scale = p, drop, scale
        return y

    def backward(ctx, g):
        xp, q, k, v = ctx.xp, ctx.q, ctx.k, ctx.v
        if ctx.p is None:
            zeros = [xp.zeros(a.shape, dtype=g.dtype) for a in (q, k, v)]
            return tuple(zeros + ([xp.zeros(ctx.mask_shape, dtype=g.dtype)] if ctx.mask_shape else []))
        dq, dk, dv, dst = attend_backward(xp, g, q, k, v, ctx.p, ctx.drop, ctx.scale)
        needs = ctx.needs_input_grad
        grads = [unbroadcast(dq, q.shape) if needs[0] else None, unbroadcast(dk, k.shape) if needs[1] else None,
                 unbroadcast(dv, v.shape) if needs[2] else None]
        if ctx.mask_shape is not None:
            grads.append(unbroadcast(dst.swapaxes(-1, -2), ctx.mask_shape) if needs[3] else None)
        return tuple(grads)
