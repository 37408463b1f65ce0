"""B-spline bases and the fused KAN layer."""

from __future__ import annotations

from ... import backend
from ...ops import bspline as BS
from ...ops import kan as K
from ...tensor import Tensor, apply
from .checks import _same_dtype

__all__ = [
    "bspline_basis",
    "kan_linear",
]


def bspline_basis(x: Tensor, knots, k: int, uniform: bool | None = None) -> Tensor:
    """B-spline bases of order k: x (..., n_inputs) with knots (n_inputs, G+2k+1) -> (..., n_inputs, G+k).

    Differentiable in x (analytic derivative). ``uniform`` (evenly spaced rows) is detected when None.
    """
    knots_arr = knots.data if isinstance(knots, Tensor) else backend.device_of(x.data).xp.asarray(knots)
    _check_knots(knots_arr, k, x.shape[-1] if x.ndim else 1, "bspline_basis")
    if uniform is None:
        uniform = BS.is_uniform(backend.to_device(knots_arr, backend.CPU))
    return apply(BS.BSplineBasis, x, knots=knots_arr.astype(x.dtype, copy=False), k=int(k), uniform=bool(uniform))


def _check_knots(knots, k, n_inputs, name):
    if k < 1:
        raise ValueError(f"{name}: spline order k must be >= 1, got {k}")
    if knots.ndim != 2 or knots.shape[0] != n_inputs or knots.shape[1] < 2 * k + 2:
        raise ValueError(
            f"{name}: knots must be (n_inputs={n_inputs}, G+2k+1 >= {2 * k + 2}) for order {k}, got {knots.shape}"
        )
    if not bool((knots[:, 1:] > knots[:, :-1]).all()):
        raise ValueError(f"{name}: knots must be strictly increasing along each row")


def kan_linear(x: Tensor, base_weight: Tensor, spline_weight: Tensor, spline_scaler: Tensor | None, knots,
               k: int, uniform: bool | None = None) -> Tensor:
    """The KAN layer y = silu(x) @ w_bᵀ + B(x) @ (c·w_s)ᵀ as one fused op (see ember/ops/kan.py)."""
    _same_dtype("kan_linear", x, base_weight, spline_weight, spline_scaler)
    knots_arr = knots.data if isinstance(knots, Tensor) else backend.device_of(x.data).xp.asarray(knots)
    if spline_weight.ndim != 3:
        raise ValueError(f"kan_linear: spline_weight must be (out, in, G+k), got {spline_weight.shape}")
    out_f, in_f, n_basis = spline_weight.shape
    _check_knots(knots_arr, k, in_f, "kan_linear")
    expected = {
        "base_weight": ((out_f, in_f), base_weight.shape),
        "spline_weight": ((out_f, in_f, knots_arr.shape[1] - k - 1), spline_weight.shape),
        "input": ((in_f,), tuple(x.shape[-1:])),
    }
    if spline_scaler is not None:
        expected["spline_scaler"] = ((out_f, in_f), spline_scaler.shape)
    for name, (want, got) in expected.items():
        if tuple(got) != want:
            raise ValueError(f"kan_linear: {name} has shape {tuple(got)}, expected {want} for knots "
                             f"{tuple(knots_arr.shape)} of order k={k} (G+k = {knots_arr.shape[1] - k - 1} bases)")
    if uniform is None:
        uniform = BS.is_uniform(backend.to_device(knots_arr, backend.CPU))
    args = (x, base_weight, spline_weight) + ((spline_scaler,) if spline_scaler is not None else ())
    return apply(K.KANLinear, *args, knots=knots_arr, k=int(k), uniform=bool(uniform))
