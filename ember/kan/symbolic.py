"""Symbolic regression on a KAN: fit every edge to a·f(b·x + c) + d and compose the network's formula.

For each library function f, the best (b, c) is searched on a grid, then the grid is narrowed
around the best point a few times; for every (b, c) the optimal a and d are the closed-form
least-squares line of y on f(b·x + c), and the fit's R² is the squared correlation. The
function with the best R² wins; within 1e-6 of it, the simplest one does. ``SymbolicKAN``
evaluates and prints the composed formula, and ``refine`` tunes every (a, b, c, d) jointly by
gradient descent (through ember's autograd) on data, as pykan does after fixing symbolic edges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..autograd import no_grad
from ..functions import stack
from ..tensor import Tensor


@dataclass(frozen=True)
class Primitive:
    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    tensor: Callable[[Tensor], Tensor]  # the same function on Tensors (differentiable)
    template: str  # how it prints, with {} for the argument
    complexity: int
    affine_argument: bool = True  # False: b and c are redundant (the identity)


def _valid(fn, domain):
    def apply(u):
        with np.errstate(all="ignore"):
            out = fn(u)
        if domain is not None:
            out = np.where(domain(u), out, np.nan)
        return out

    return apply


SYMBOLIC_LIBRARY: dict[str, Primitive] = {p.name: p for p in [
    Primitive("x", lambda u: u, lambda u: u, "{}", 1, affine_argument=False),
    Primitive("x^2", lambda u: u * u, lambda u: u * u, "({})**2", 2),
    Primitive("x^3", lambda u: u**3, lambda u: u**3, "({})**3", 3),
    Primitive("1/x", _valid(lambda u: 1.0 / u, lambda u: np.abs(u) > 1e-2), lambda u: 1.0 / u, "1/({})", 2),
    Primitive("sqrt", _valid(np.sqrt, lambda u: u >= 0), lambda u: u.sqrt(), "sqrt({})", 2),
    Primitive("exp", _valid(np.exp, lambda u: u < 30), lambda u: u.exp(), "exp({})", 2),
    Primitive("log", _valid(np.log, lambda u: u > 1e-3), lambda u: u.log(), "log({})", 2),
    Primitive("sin", np.sin, lambda u: u.sin(), "sin({})", 2),
    Primitive("tanh", np.tanh, lambda u: u.tanh(), "tanh({})", 3),
    Primitive("abs", np.abs, lambda u: u.abs(), "abs({})", 3),
    Primitive("gaussian", lambda u: np.exp(-u * u), lambda u: (-(u * u)).exp(), "exp(-({})**2)", 3),
]}


@dataclass
class EdgeFit:
    """y ≈ a·f(b·x + c) + d for one edge, with the R² of the fit."""

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.a * SYMBOLIC_LIBRARY[self.name].numpy(self.b * x + self.c) + self.d

    def tensor(self, x: Tensor, a, b, c, d) -> Tensor:
        """The same function with (a, b, c, d) as tensors, for joint refinement."""
        prim = SYMBOLIC_LIBRARY[self.name]
        return a * prim.tensor(b * x + c) + d

    def formula(self, var: str, digits: int = 4) -> str:
        prim = SYMBOLIC_LIBRARY[self.name]
        inner = _linear(self.b, var, self.c, digits) if prim.affine_argument else var
        return _linear(self.a, prim.template.format(inner), self.d, digits)


def _num(v: float, digits: int) -> str:
    return f"{v:.{digits}g}"


def _linear(scale: float, expr: str, shift: float, digits: int) -> str:
    """'scale*expr + shift' printed compactly (1*, + 0 and +- dropped)."""
    s = expr if abs(scale - 1.0) < 10 ** -digits else f"{_num(scale, digits)}*{expr}"
    if abs(shift) < 10 ** -digits:
        return s
    return f"{s} {'-' if shift < 0 else '+'} {_num(abs(shift), digits)}"


def _line_fit(z: np.ndarray, y: np.ndarray):
    """Rows of z (..., n) against y (n,): slope a, intercept d and R² of the best line, NaN-aware."""
    valid = np.isfinite(z).all(axis=-1)
    z = np.where(valid[..., None], z, 0.0)
    zm, ym = z.mean(axis=-1, keepdims=True), y.mean()
    zc, yc = z - zm, y - ym
    var = (zc * zc).sum(axis=-1)
    cov = (zc * yc).sum(axis=-1)
    ss_tot = float((yc * yc).sum())
    ok = valid & (var > 1e-12 * max(ss_tot, 1e-300))
    with np.errstate(all="ignore"):
        a = np.where(ok, cov / np.where(ok, var, 1.0), 0.0)
        r2 = np.where(ok, cov * cov / np.where(ok, var, 1.0) / max(ss_tot, 1e-300), -np.inf)
    d = ym - a * zm[..., 0]
    return a, d, r2


def fit_primitive(prim: Primitive, x: np.ndarray, y: np.ndarray, b_range=(-10.0, 10.0), c_range=(-10.0, 10.0),
                  grid: int = 41, rounds: int = 4) -> EdgeFit:
    """Best a·f(b·x + c) + d for one function: a (b, c) grid search narrowed ``rounds`` times."""
    if not prim.affine_argument:
        a, d, r2 = _line_fit(prim.numpy(x)[None], y)
        return EdgeFit(prim.name, float(a[0]), 1.0, 0.0, float(d[0]), float(r2[0]))
    b_lo, b_hi = b_range
    c_lo, c_hi = c_range
    best = None
    for _ in range(rounds):
        bs, cs = np.linspace(b_lo, b_hi, grid), np.linspace(c_lo, c_hi, grid)
        u = bs[:, None, None] * x[None, None, :] + cs[None, :, None]  # (grid, grid, n)
        a, d, r2 = _line_fit(prim.numpy(u), y)
        i, j = np.unravel_index(int(np.argmax(r2)), r2.shape)
        if best is None or r2[i, j] > best.r2:
            best = EdgeFit(prim.name, float(a[i, j]), float(bs[i]), float(cs[j]), float(d[i, j]), float(r2[i, j]))
        db, dc = (b_hi - b_lo) / (grid - 1), (c_hi - c_lo) / (grid - 1)
        b_lo, b_hi = best.b - 2 * db, best.b + 2 * db
        c_lo, c_hi = best.c - 2 * dc, best.c + 2 * dc
    return best


def fit_edge(x: np.ndarray, y: np.ndarray, library: list[str] | None = None, **kw) -> tuple[EdgeFit, list[EdgeFit]]:
    """The best library fit of y(x) (and every candidate's fit, best first)."""
    names = library or list(SYMBOLIC_LIBRARY)
    unknown = [n for n in names if n not in SYMBOLIC_LIBRARY]
    if unknown:
        raise ValueError(f"fit_edge: unknown functions {unknown}; the library has {sorted(SYMBOLIC_LIBRARY)}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    fits = [fit_primitive(SYMBOLIC_LIBRARY[n], x, y, **kw) for n in names]
    top = max(f.r2 for f in fits)
    near = [f for f in fits if f.r2 >= top - 1e-6]
    best = min(near, key=lambda f: SYMBOLIC_LIBRARY[f.name].complexity)
    return best, sorted(fits, key=lambda f: -f.r2)


@dataclass
class SymbolicKAN:
    """A KAN with every kept edge replaced by its symbolic fit: ``layers[l][(j, i)] = EdgeFit``."""

    widths: tuple[int, ...]
    layers: list[dict[tuple[int, int], EdgeFit]]
    candidates: list[dict[tuple[int, int], list[EdgeFit]]] = field(default_factory=list)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        for width, edges in zip(self.widths[1:], self.layers):
            out = np.zeros((h.shape[0], width))
            for (j, i), fit in edges.items():
                out[:, j] += fit(h[:, i])
            h = out
        return h

    def formula(self, digits: int = 4, variables: list[str] | None = None) -> list[str]:
        """The composed formula of every output, as Python/NumPy-readable strings in x0, x1, ..."""
        names = variables or [f"x{i}" for i in range(self.widths[0])]
        for width, edges in zip(self.widths[1:], self.layers):
            terms: list[list[str]] = [[] for _ in range(width)]
            for (j, i), fit in sorted(edges.items()):
                var = names[i] if _is_atom(names[i]) else f"({names[i]})"
                terms[j].append(fit.formula(var, digits))
            names = [" + ".join(t) if t else "0" for t in terms]
        return names

    def report(self) -> list[dict]:
        """One row per edge: layer, output j, input i, chosen function, R²."""
        return [{"layer": layer, "out": j, "in": i, "function": f.name, "r2": f.r2}
                for layer, edges in enumerate(self.layers) for (j, i), f in sorted(edges.items())]

    def refine(self, x: np.ndarray, y: np.ndarray, steps: int = 2000, lr: float = 1e-2) -> float:
        """Tune every edge's (a, b, c, d) jointly (Adam on the MSE to y); returns the final MSE.

        The constants are kept only if they lower the MSE (a·exp(b·x + c) is over-parametrised,
        and Adam can wander along such a ridge without improving the fit)."""
        from ..nn import functional as F
        from ..optim import Adam, CosineAnnealingLR

        params = {}
        for l, edges in enumerate(self.layers):
            for key, fit in edges.items():
                params[(l, key)] = [Tensor(np.array(v), requires_grad=True) for v in (fit.a, fit.b, fit.c, fit.d)]
        flat = [p for group in params.values() for p in group]
        opt = Adam(flat, lr=lr)
        sched = CosineAnnealingLR(opt, T_max=steps)
        xt, yt = Tensor(np.asarray(x, dtype=np.float64)), Tensor(np.asarray(y, dtype=np.float64).reshape(len(x), -1))

        def forward():
            h = xt
            for l, (width, edges) in enumerate(zip(self.widths[1:], self.layers)):
                cols = []
                for j in range(width):
                    acc = None
                    for (jj, i), fit in edges.items():
                        if jj == j:
                            term = fit.tensor(h[:, i], *params[(l, (jj, i))])
                            acc = term if acc is None else acc + term
                    cols.append(acc if acc is not None else h[:, 0] * 0.0)
                h = stack(cols, axis=1)
            return h

        with no_grad():
            start = float(F.mse_loss(forward(), yt).item())
        for _ in range(steps):
            opt.zero_grad()
            loss = F.mse_loss(forward(), yt)
            loss.backward()
            opt.step()
            sched.step()
        with no_grad():
            final = float(F.mse_loss(forward(), yt).item())
        if final >= start:
            return start
        for (l, key), (a, b, c, d) in params.items():
            fit = self.layers[l][key]
            fit.a, fit.b, fit.c, fit.d = (float(t.item()) for t in (a, b, c, d))
        return final


def _is_atom(expr: str) -> bool:
    return expr.isidentifier()


@no_grad()
def auto_symbolic(model, x, library: list[str] | None = None, n_points: int = 201, **fit_kw) -> SymbolicKAN:
    """Fit every kept edge of a KAN to the library, on a dense sweep of the range its input takes on x."""
    xt = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if xt.ndim > 2:
        xt = xt.flatten(1)
    layers, candidates = [], []
    for layer in model.layers:
        h = xt.numpy()
        lo, hi = h.min(axis=0), h.max(axis=0)
        sweep = np.linspace(0.0, 1.0, n_points)[:, None] * (hi - lo)[None, :] + lo[None, :]  # (n_points, in)
        phi = layer.edge_activations(Tensor(sweep.astype(h.dtype))).numpy()  # (n_points, out, in)
        mask = layer.edge_mask.numpy() if layer.edge_mask is not None else np.ones(phi.shape[1:])
        edges, cands = {}, {}
        for j in range(phi.shape[1]):
            for i in range(phi.shape[2]):
                if mask[j, i] == 0:
                    continue
                best, all_fits = fit_edge(sweep[:, i], phi[:, j, i], library, **fit_kw)
                edges[(j, i)], cands[(j, i)] = best, all_fits
        layers.append(edges)
        candidates.append(cands)
        xt = layer(xt)
    return SymbolicKAN(tuple(model.config.widths), layers, candidates)
