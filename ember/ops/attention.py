"""Causal multi-head self-attention as one fused op, from the fused q|k|v projection to merged heads.

    qkv (B, T, 3C) -> q, k, v (B, H, T, D) -> S = q kᵀ / sqrt(D) + causal mask -> P = softmax(S)
    -> dropout(P) -> y = P v -> (B, T, C)

Scores are kept key-major, Sᵀ (B, H, T_k, T_q): the softmax's max and sum then reduce over an
outer axis, which NumPy vectorises across the queries, instead of over 64-element rows (a row
max ran 17x faster this way here). Backward is the textbook one, with P (after dropout, if any)
the only T×T arrays saved (plus its dropout mask):

    dV = Pᵀ dy,  dP = dy Vᵀ,  dS = P ⊙ (dP − Σ_k dP ⊙ P) / sqrt(D),  dQ = dS K,  dK = dSᵀ Q.
"""

from __future__ import annotations

import math

from ..autograd import Function


def causal_mask_t(xp, tk: int, tq: int, offset: int = 0, dtype=None):
    """Additive mask in key-major layout (tk, tq): 0 where key j <= query i + offset, -inf after."""
    j = xp.arange(tk)[:, None]
    i = xp.arange(tq)[None, :] + offset
    mask = xp.zeros((tk, tq), dtype=dtype)
    mask[j > i] = -xp.inf
    return mask


def softmax_keys(xp, st):
    """In-place softmax of key-major scores (..., T_k, T_q) over the key axis (-2)."""
    st -= st.max(axis=-2, keepdims=True)
    xp.exp(st, out=st)
    st /= st.sum(axis=-2, keepdims=True)
    return st


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
        st = k @ q.swapaxes(-1, -2)  # (B, H, T_k, T_q)
        st *= scale
        st += causal_mask_t(xp, t, t, dtype=st.dtype)
        p = softmax_keys(xp, st)
        mask = None
        pd = p
        if dropout > 0.0:
            mask = (generator.random(p.shape, dtype=p.dtype) >= dropout).astype(p.dtype)
            mask *= 1.0 / (1.0 - dropout)
            pd = p * mask
        y = pd.swapaxes(-1, -2) @ v  # (B, H, T_q, D)
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
        pd = p if ctx.mask is None else p * ctx.mask  # what multiplied v in the forward
        xp.matmul(pd, gy, out=douts[2])  # dV = Pᵀ dy, with p key-major already (T_k, T_q)
        dpt = v @ gy.swapaxes(-1, -2)  # dPᵀ (B, H, T_k, T_q)
        if ctx.mask is not None:
            dpt *= ctx.mask
        dst = dpt
        dst -= (dpt * p).sum(axis=-2, keepdims=True)
        dst *= p
        dst *= ctx.scale  # dSᵀ
        xp.matmul(dst.swapaxes(-1, -2), k, out=douts[0])  # dQ = dS K
        xp.matmul(dst, q, out=douts[1])  # dK = dSᵀ Q
        return out.reshape(b, t, c3)
