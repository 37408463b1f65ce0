"""The Kolmogorov–Arnold layer as one fused op (efficient-kan's equation, hand-derived backward).

    y_j = Σ_i  w_b[j,i]·silu(x_i)  +  Σ_i Σ_m  c'[j,i,m]·B_m(x_i),     c' = c·w_s[..., None]

computed as two GEMMs, silu(x) @ w_bᵀ and B(x) (n, in·(G+k)) @ c' (out, in·(G+k))ᵀ, so the
(n, out, in) tensor of per-edge activations never exists. Backward keeps only x, sigmoid(x)
and the dense basis: the coefficient and base-weight gradients are the two transposed GEMMs,
and the input gradient uses the analytic derivative of the k+1 nonzero bases (recomputed from
x), so no Cox–de Boor intermediate is ever stored.
"""

from __future__ import annotations

from ..autograd import Function
from .bspline import check_finite, gather_local_dot, local_basis, scatter_local
from .elementwise import sigmoid


class KANLinear(Function):
    """x (..., in), base_weight (out, in), spline_weight (out, in, G+k) [, spline_scaler (out, in)]."""

    saves = ("inputs",)

    def forward(ctx, x, base_weight, spline_weight, *scaler, knots, k, uniform):
        xp = ctx.xp
        out_f, in_f, n_basis = spline_weight.shape
        if x.shape[-1] != in_f:
            raise ValueError(f"kan_linear: input has {x.shape[-1]} features, the layer expects {in_f}")
        check_finite(xp, x, "kan_linear")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, in_f)
        s, N, _ = local_basis(xp, x2, knots, k, uniform)
        bases = scatter_local(xp, s, N, k, n_basis).reshape(x2.shape[0], in_f * n_basis)
        sig = sigmoid(xp, x2)
        silu = x2 * sig
        coef = spline_weight * scaler[0][..., None] if scaler else spline_weight
        coef2 = coef.reshape(out_f, in_f * n_basis)
        y = bases @ coef2.T
        y += silu @ base_weight.T
        ctx.x2, ctx.sig, ctx.silu, ctx.bases, ctx.s = x2, sig, silu, bases, s
        ctx.base_weight, ctx.spline_weight, ctx.coef2 = base_weight, spline_weight, coef2
        ctx.scaler = scaler[0] if scaler else None
        ctx.knots, ctx.k, ctx.uniform, ctx.lead = knots, k, uniform, lead
        return y.reshape(lead + (out_f,))

    def backward(ctx, g):
        xp = ctx.xp
        out_f, in_f, n_basis = ctx.spline_weight.shape
        g2 = g.reshape(-1, out_f)
        needs = ctx.needs_input_grad
        gx = gwb = gsw = gsc = None
        if needs[0]:
            x2, sig = ctx.x2, ctx.sig
            gx = (g2 @ ctx.base_weight) * (sig * (1 + x2 * (1 - sig)))  # silu'(x)
            _, _, dN = local_basis(xp, x2, ctx.knots, ctx.k, ctx.uniform, derivative=True)
            gbasis = (g2 @ ctx.coef2).reshape(-1, in_f, n_basis)
            gx += gather_local_dot(xp, gbasis, ctx.s, dN, ctx.k)
            gx = gx.reshape(ctx.lead + (in_f,))
        if needs[1]:
            gwb = g2.T @ ctx.silu
        if needs[2] or (ctx.scaler is not None and needs[3]):
            gcoef = (g2.T @ ctx.bases).reshape(out_f, in_f, n_basis)
            if ctx.scaler is None:
                gsw = gcoef
            else:
                gsw = gcoef * ctx.scaler[..., None] if needs[2] else None
                gsc = (gcoef * ctx.spline_weight).sum(axis=-1) if needs[3] else None
        if ctx.scaler is None:
            return gx, gwb, gsw
        return gx, gwb, gsw, gsc


def spline_edge_values(xp, x, spline_weight, knots, k, uniform):
    """Per-edge spline outputs Σ_m c[j,i,m]·B_m(x_i) as (n, in, out), without autograd (for refits)."""
    out_f, in_f, n_basis = spline_weight.shape
    s, N, _ = local_basis(xp, x, knots, k, uniform)
    bases = scatter_local(xp, s, N, k, n_basis)  # (n, in, W)
    return xp.einsum("niw,oiw->nio", bases, spline_weight)


def fit_coefficients(xp, x, y, knots, k, uniform):
    """Least-squares spline coefficients (out, in, G+k) with Σ_m c[j,i,m]·B_m(x_i) ≈ y[:, i, j].

    x (n, in) samples, y (n, in, out); one minimum-norm least-squares problem per input,
    solved in float64 (pseudo-inverse, so inputs with few distinct samples still get a fit).
    """
    n_basis = knots.shape[1] - k - 1
    x64 = xp.asarray(x, dtype=xp.float64)
    s, N, _ = local_basis(xp, x64, xp.asarray(knots, dtype=xp.float64), k, uniform)
    A = scatter_local(xp, s, N, k, n_basis).transpose(1, 0, 2)  # (in, n, W)
    B = xp.asarray(y, dtype=xp.float64).transpose(1, 0, 2)  # (in, n, out)
    coef = xp.linalg.pinv(A) @ B  # (in, W, out)
    return coef.transpose(2, 0, 1)
