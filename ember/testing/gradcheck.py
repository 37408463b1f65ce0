"""Finite-difference gradient checks in float64, over the full Jacobian with a random cotangent.

A check picks a random cotangent v (not all ones: a permutation bug survives ``.sum()``),
backpropagates it through ``fn`` once, and compares each input's gradient, element by
element, with the central difference of <fn(x), v>.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


@dataclass
class GradcheckResult:
    """How far the analytic gradient a is from the numerical n, over every element of every input.

    ``max_rel_error`` is max |a - n| / (|n| + atol): the relative error, with the check's ``atol`` as a
    floor so that an exact zero (n = 0) gives |a| / atol instead of a division by zero. It is
    reported, not judged: ``ok`` is the rule |a - n| <= atol + rtol·|n| at every element, so a
    passing check (rtol <= 1) always has max_rel_error <= 1; it is rarely 0, as finite differences are inexact.
    """

    max_abs_error: float  # max |a - n|
    max_rel_error: float  # max |a - n| / (|n| + atol)
    ok: bool
    worst: str  # which tensor and element disagreed most (in absolute terms)

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (f"{verdict}: max |a-n| {self.max_abs_error:.2e}, max |a-n|/(|n|+atol) {self.max_rel_error:.2e} "
                f"({self.worst})")


def numerical_gradients(fn: Callable[[], Tensor], tensors: Sequence[Tensor], cotangent, eps: float):
    """d<fn(), cotangent>/d t for each tensor t, by central differences (perturbing t.data in place)."""
    grads = []
    with no_grad():
        for t in tensors:
            data = t.data
            flat = data.reshape(-1)  # a view: tensors are made contiguous by gradcheck
            g = np.zeros(data.size, dtype=np.float64)
            for i in range(data.size):
                orig = flat[i].item()
                flat[i] = orig + eps
                plus = float((np.asarray(fn().numpy(), dtype=np.float64) * cotangent).sum())
                flat[i] = orig - eps
                minus = float((np.asarray(fn().numpy(), dtype=np.float64) * cotangent).sum())
                flat[i] = orig
                g[i] = (plus - minus) / (2 * eps)
            grads.append(g.reshape(data.shape))
    return grads


def gradcheck(
    fn: Callable[[], Tensor],
    tensors: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
) -> GradcheckResult:
    """Compare analytic and numerical gradients of ``fn()`` w.r.t. ``tensors`` (float64 leaves).

    ``fn`` takes no arguments and reads the tensors (a closure), so layers' parameters can be
    checked as easily as op inputs.
    """
    for t in tensors:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 tensors, got {t.dtype} of shape {t.shape}")
        t.grad = None
        t.requires_grad_(True)
        if not t.data.flags.c_contiguous:
            t.data = np.ascontiguousarray(t.data)
    out = fn()
    rng = np.random.default_rng(seed)
    cotangent = rng.standard_normal(out.shape)
    out.backward(cotangent)
    analytic = [np.zeros(t.shape) if t.grad is None else t.grad.numpy().astype(np.float64) for t in tensors]
    numeric = numerical_gradients(fn, tensors, cotangent, eps)
    max_abs = max_rel = 0.0
    worst, ok = "", True
    for k, (a, n) in enumerate(zip(analytic, numeric)):
        err = np.abs(a - n)
        if err.size == 0:
            continue
        bound = atol + rtol * np.abs(n)
        idx = int(np.argmax(err - bound))
        if err.reshape(-1)[idx] > bound.reshape(-1)[idx]:
            ok = False
        if err.max() >= max_abs:
            max_abs = float(err.max())
            pos = np.unravel_index(int(np.argmax(err)), err.shape)
            worst = f"input {k} at {tuple(int(i) for i in pos)}: analytic {a[pos]:.6g}, numeric {n[pos]:.6g}"
        max_rel = max(max_rel, float((err / (np.abs(n) + atol)).max()))
    return GradcheckResult(max_abs, max_rel, ok, worst)
