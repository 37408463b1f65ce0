"""Ridge regression from streamed sufficient statistics: W = (HᵀH + λI)⁻¹HᵀT without ever holding H.

Rows arrive in chunks; each chunk adds its Gram HᵀH and cross term HᵀT (float32 GEMMs summed
into float64, after subtracting a fixed shift so the products stay well scaled). The intercept is
not regularised: the solve works on centred statistics, G_c = G − N·μμᵀ, B_c = B − N·μt̄ᵀ, and
adds back b = t̄ − μW. Memory is O(d²) however many rows are added, and two accumulators over
disjoint rows simply add up (the basis of augmentation views and of distributed solves).

λ is given, or chosen by generalised cross-validation from one eigendecomposition of G_c
(Golub, Heath and Wahba 1979): with G_c = V diag(s) Vᵀ and Q = VᵀB_c, for every λ
  RSS(λ) = τ − Σ_i ||q_i||²·(s_i + 2λ)/(s_i + λ)²,  df(λ) = 1 + Σ_i s_i/(s_i + λ),
  GCV(λ) = (RSS/N) / (1 − df/N)²,
in O(d·c) each, and the weights for the winner come from the same decomposition.

Device: the statistics live where the first chunk of rows lives (NumPy on the CPU, CuPy on a GPU),
and every product and solve runs there with that array module; only scalars (λ, the GCV curve for
reporting) come back to the host. The CPU path keeps SciPy's Cholesky; on a device the Cholesky
factor comes from ``xp.linalg.cholesky`` and the two triangular systems from ``xp.linalg.solve``
(CuPy has no ``cho_solve`` in its main namespace).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .. import backend


class MemoryBudgetError(ValueError):
    """A solve that would need more memory than the budget; raised before anything is allocated."""


class SingularGramWarning(UserWarning):
    """The Cholesky factorisation failed (λ below the Gram's numerical noise): an eigen-solve was used."""


def memory_budget() -> int:
    """Bytes the ELM solvers may use: $EMBER_ELM_MEMORY_BUDGET, else 75% of physical memory."""
    env = os.environ.get("EMBER_ELM_MEMORY_BUDGET")
    if env:
        return int(float(env))
    try:
        return int(0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_memory(what: str, nbytes: int, budget: int | None = None) -> None:
    budget = memory_budget() if budget is None else budget
    if nbytes > budget:
        raise MemoryBudgetError(
            f"{what} needs about {nbytes / 2**30:.2f} GiB, over the memory budget of {budget / 2**30:.2f} GiB "
            "(set EMBER_ELM_MEMORY_BUDGET in bytes to change it, or use fewer features)"
        )


def solver_bytes(d: int, c: int, chunk_rows: int, gcv: bool) -> int:
    """Memory of an accumulator and its solve: G (+ its factor or eigenvectors) in float64 and a chunk."""
    return 8 * d * d * (3 if gcv else 2) + 8 * d * c * 3 + 4 * chunk_rows * d * 2


@dataclass
class GCVResult:  # host arrays, for reporting
    lambdas: np.ndarray
    gcv: np.ndarray
    df: np.ndarray
    best: float


class RidgeAccumulator:
    """Streaming ridge regression: ``add(H, T)`` chunk by chunk, then ``solve(lam)`` or ``solve_gcv()``.

    Args:
        d: feature width; c: number of targets (10 for one-hot digits).
        budget: memory budget in bytes (checked at construction, before the d×d matrices exist).
    """

    def __init__(self, d: int, c: int, budget: int | None = None, chunk_rows: int = 4096, gcv: bool = True):
        if d <= 0 or c <= 0:
            raise ValueError(f"RidgeAccumulator: d and c must be positive, got d={d}, c={c}")
        check_memory(f"a ridge solve with {d} features", solver_bytes(d, c, chunk_rows, gcv), budget)
        self.d, self.c = d, c
        self.G = np.zeros((d, d))
        self.B = np.zeros((d, c))
        self.h_sum = np.zeros(d)
        self.t_sum = np.zeros(c)
        self.t_sq = 0.0
        self.n = 0
        self.shift: np.ndarray | None = None  # subtracted from every row before the float32 products
        self.W: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self.lam: float | None = None

    def _follow(self, H) -> object:
        """The array module of ``H``; before the first rows, the statistics move to ``H``'s device."""
        xp = backend.array_module(H)
        dev = backend.device_of(H)
        if self.n == 0 and self.shift is None and backend.device_of(self.G) != dev:
            self.G, self.B, self.h_sum, self.t_sum = (backend.to_device(a, dev)
                                                      for a in (self.G, self.B, self.h_sum, self.t_sum))
        return xp

    def add(self, H: np.ndarray, T: np.ndarray) -> RidgeAccumulator:
        """Accumulate rows H (n, d) with targets T (n, c), on H's device (T may be on the host)."""
        xp = self._follow(H) if hasattr(H, "shape") else np
        H = xp.asarray(H)
        T = xp.asarray(T, dtype=np.float64)
        if H.ndim != 2 or H.shape[1] != self.d or T.shape != (H.shape[0], self.c):
            raise ValueError(f"RidgeAccumulator.add: expected H (n, {self.d}) and T (n, {self.c}), "
                             f"got {H.shape} and {T.shape}")
        if not xp.isfinite(H).all():
            raise ValueError(f"RidgeAccumulator.add: {int((~xp.isfinite(H)).sum())} NaN or inf feature value(s)")
        if self.shift is None:
            self.shift = H.mean(axis=0).astype(H.dtype)
        Hs = H - self.shift
        self.G += Hs.T @ Hs  # float32 GEMM when H is float32, summed into float64
        self.B += Hs.T.astype(np.float64) @ T
        self.h_sum += Hs.sum(axis=0, dtype=np.float64)
        self.t_sum += T.sum(axis=0)
        self.t_sq += float((T * T).sum())
        self.n += H.shape[0]
        return self

    def merge(self, other: RidgeAccumulator) -> RidgeAccumulator:
        """Add another accumulator's rows (e.g. from another process); both must share a shift."""
        if other.n == 0:
            return self
        if self.n == 0:
            self.shift = other.shift
        elif not bool(backend.array_module(self.shift).array_equal(self.shift, other.shift)):
            raise ValueError("RidgeAccumulator.merge: the accumulators were shifted differently; set .shift first")
        self.G += other.G
        self.B += other.B
        self.h_sum += other.h_sum
        self.t_sum += other.t_sum
        self.t_sq += other.t_sq
        self.n += other.n
        return self

    def centred(self):
        """(G_c, B_c, τ_c, μ_shifted, t̄): the statistics of the centred problem."""
        if self.n < 2:
            raise ValueError("RidgeAccumulator: needs at least 2 rows")
        xp = backend.array_module(self.G)
        mu = self.h_sum / self.n
        tbar = self.t_sum / self.n
        G = self.G - self.n * xp.outer(mu, mu)
        B = self.B - self.n * xp.outer(mu, tbar)
        tau = self.t_sq - self.n * float(tbar @ tbar)
        return G, B, tau, mu, tbar

    def _finish(self, W: np.ndarray, mu: np.ndarray, tbar: np.ndarray, lam: float) -> RidgeAccumulator:
        self.W = W
        self.bias = tbar - (mu + self.shift.astype(np.float64)) @ W
        self.lam = lam
        return self

    def solve(self, lam: float) -> RidgeAccumulator:
        """Weights for a given λ > 0 by Cholesky; a symmetric eigen-solve (with a warning) if that fails."""
        if not lam > 0:
            raise ValueError(f"ridge: λ must be > 0, got {lam}")
        G, B, _, mu, tbar = self.centred()
        xp = backend.array_module(G)
        diagonal = xp.arange(G.shape[0])
        G[diagonal, diagonal] += lam
        try:
            W = _cholesky_solve(G, B, xp)
        except np.linalg.LinAlgError:
            warnings.warn(f"ridge: the Gram matrix plus λ={lam:.3g} is not numerically positive definite "
                          "(duplicate or dependent features); solving by symmetric eigendecomposition",
                          SingularGramWarning, stacklevel=2)
            G, B, _, mu, tbar = self.centred()
            s, V = xp.linalg.eigh(G)
            denom = s + lam
            tol = max(float(s.max()), 0.0) * len(s) * np.finfo(np.float64).eps
            keep = denom > tol  # directions below the noise floor get no weight (minimum-norm solution)
            W = V[:, keep] @ ((V[:, keep].T @ B) / denom[keep][:, None])
        return self._finish(W, mu, tbar, lam)

    def gcv(self, lambdas: np.ndarray | None = None, n: int = 60) -> tuple[GCVResult, np.ndarray, np.ndarray]:
        """GCV over ``lambdas`` (default: a log grid of ``n`` values over [1e-8, 1e2]·mean eigenvalue)."""
        G, B, tau, _, _ = self.centred()
        xp = backend.array_module(G)
        s, V = xp.linalg.eigh(G)
        s = xp.maximum(s, 0.0)
        if lambdas is None:
            scale = max(float(s.mean()), 1e-300)
            lambdas = np.logspace(-8, 2, n) * scale
        lambdas = np.asarray(backend.to_device(xp.asarray(lambdas), backend.CPU), dtype=np.float64)
        if (lambdas <= 0).any():
            raise ValueError(f"ridge: every λ must be > 0, got min {lambdas.min()}")
        lambdas_d = xp.asarray(lambdas)  # the grid where the eigenvalues live
        Q = V.T @ B
        q2 = (Q * Q).sum(axis=1)  # ||q_i||²
        sl = s[None, :] + lambdas_d[:, None]
        rss = xp.maximum(tau - (q2[None, :] * (s[None, :] + 2 * lambdas_d[:, None]) / sl**2).sum(axis=1), 0.0)
        df = backend.to_device(1.0 + (s[None, :] / sl).sum(axis=1), backend.CPU)
        rss = backend.to_device(rss, backend.CPU)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = (rss / self.n) / (1.0 - df / self.n) ** 2
        score = np.where(df < self.n, score, np.inf)
        best = float(lambdas[int(np.argmin(score))])
        return GCVResult(lambdas, score, df, best), s, V

    def solve_gcv(self, lambdas: np.ndarray | None = None) -> RidgeAccumulator:
        """Choose λ by GCV and solve with the same eigendecomposition."""
        result, s, V = self.gcv(lambdas)
        _, B, _, mu, tbar = self.centred()
        W = V @ ((V.T @ B) / (s + result.best)[:, None])
        self.gcv_result = result
        return self._finish(W, mu, tbar, result.best)

    def predict(self, H: np.ndarray) -> np.ndarray:
        if self.W is None:
            raise RuntimeError("RidgeAccumulator: call solve() or solve_gcv() first")
        return backend.array_module(self.W).asarray(H, dtype=np.float64) @ self.W + self.bias


def _cholesky_solve(G, B, xp):
    """(G)⁻¹B for symmetric positive definite G (overwritten on the CPU); LinAlgError if G is not.

    The CPU keeps SciPy's factor-and-solve; a device factors with ``xp.linalg.cholesky`` (which on a GPU
    returns NaNs rather than raising, hence the finiteness check) and solves L y = B, Lᵀ W = y."""
    if xp is np:
        factor = scipy.linalg.cho_factor(G, lower=False, overwrite_a=True, check_finite=False)
        return scipy.linalg.cho_solve(factor, B, check_finite=False)
    L = xp.linalg.cholesky(G)
    if not bool(xp.isfinite(L).all()):
        raise np.linalg.LinAlgError("Cholesky factor is not finite: the matrix is not positive definite")
    return xp.linalg.solve(L.T, xp.linalg.solve(L, B))


def ridge(H: np.ndarray, T: np.ndarray, lam: float | str = "gcv", chunk: int = 4096) -> RidgeAccumulator:
    """One-shot convenience: accumulate H, T in chunks and solve (λ given or 'gcv')."""
    acc = RidgeAccumulator(H.shape[1], T.shape[1], chunk_rows=chunk, gcv=lam == "gcv")
    for i in range(0, len(H), chunk):
        acc.add(H[i:i + chunk], T[i:i + chunk])
    return acc.solve_gcv() if lam == "gcv" else acc.solve(float(lam))


def one_hot(labels: np.ndarray, classes: int, dtype=np.float32) -> np.ndarray:
    """(n, classes) one-hot targets on the labels' device."""
    xp = backend.array_module(labels)
    out = xp.zeros((len(labels), classes), dtype=dtype)
    out[xp.arange(len(labels)), labels] = 1
    return out
