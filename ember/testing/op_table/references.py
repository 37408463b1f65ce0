"""PyTorch formulations of ember ops that PyTorch has no single function for (the rows' references)."""

from __future__ import annotations

import numpy as np

from .case import _t


def torch_bspline(T, x, knots, k):
    """efficient-kan's Cox–de Boor recursion (PyTorch autograd differentiates it): the reference."""
    grid = T.from_numpy(np.asarray(knots)).to(x.dtype)
    x = x.unsqueeze(-1)
    bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
    for p in range(1, k + 1):
        left = (x - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)]) * bases[..., :-1]
        right = (grid[:, p + 1 :] - x) / (grid[:, p + 1 :] - grid[:, 1:-p]) * bases[..., 1:]
        bases = left + right
    return bases


def torch_kan_linear(T, x, wb, sw, sc, knots, k):
    """The KAN layer equation written directly in PyTorch (efficient-kan style)."""
    n, out_f = x.shape[0], wb.shape[0]
    coef = sw * sc.unsqueeze(-1) if sc is not None else sw
    spline = torch_bspline(T, x, knots, k).reshape(n, -1) @ coef.reshape(out_f, -1).T
    return T.nn.functional.silu(x) @ wb.T + spline


def torch_causal_attention(T, qkv, n_head):
    """PyTorch's fused attention on the same (B, T, 3C) layout as ember's op."""
    b, t, c3 = qkv.shape
    q, k, v = (z.reshape(b, t, n_head, -1).transpose(1, 2) for z in qkv.split(c3 // 3, dim=2))
    y = T.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(b, t, c3 // 3)


def _masked_mean_torch(torch, loss, mask):
    m = _t(torch, mask).to(loss.dtype)
    return (loss * m).sum() / m.sum()
