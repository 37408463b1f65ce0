"""Forward-only learning over ranks: one Gram matrix summed from every rank's rows, ensembles spread over ranks.

A ridge readout needs only sums over the training rows (``RidgeAccumulator``: HᵀH, HᵀT, the row and target sums),
and sums over disjoint rows add up. So ``fit_elm`` fits the feature map on every rank (it learns from a fixed
sample, the same everywhere), accumulates the statistics of chunk j on rank j mod size, adds them over the ranks
(one reduction of the Gram matrix, one of the small rest), solves once (on rank 0, with all of this machine's
cores, while the others wait; or on every rank) and shares the readout. All ranks use rank 0's first chunk's
feature mean as the shift a single process would use, so the solution equals the single-process one up to the
order of the float64 sums (round-off).

``SpreadEnsemble`` fits ensemble member m on rank m mod size, each on all the rows; its class scores are summed
over the ranks, so every rank must call ``decision_function``/``score``/``predict`` together.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from .. import backend
from ..elm.features import shifted_views
from ..elm.learners import ELMClassifier, Ensemble, Learner
from ..elm.solver import RidgeAccumulator, one_hot
from ..threads import blas_threads, set_blas_threads
from .comm import World, get_world

SOLVE_TIMEOUT_S = 3600.0  # how long the other ranks wait for rank 0's solve (an eigendecomposition of d×d)


def fit_elm(learner: ELMClassifier, X, y, world: World | None = None, solve_on: int | None = 0,
            solve_timeout: float = SOLVE_TIMEOUT_S) -> ELMClassifier:
    """Fit ``learner`` (an ``ELMClassifier``) on rows X, labels y (the same arrays on every rank), its Gram
    matrix shared out over the ranks; every rank ends with the same readout.

    ``solve_on``: the rank that solves (the others wait up to ``solve_timeout`` s for it), or None: every rank
    solves (no wait, but every rank holds the d×d matrices and spends the time). The seconds of each phase (this
    rank's) are left in ``learner.phase_seconds``: features (fitting the map), accumulate, reduce, solve."""
    world = world or get_world()
    if not isinstance(learner, ELMClassifier):
        raise TypeError(f"fit_elm: expected an ELMClassifier (a ridge readout on features), got "
                        f"{type(learner).__name__}")
    if solve_on is not None:
        world._check_root(solve_on, "fit_elm: solve_on")
    clock = _PhaseClock()
    learner.features.fit(X)
    clock.lap("features")
    acc = accumulate_shard(learner, X, y, world)
    clock.lap("accumulate")
    gcv = learner.lam == "gcv"
    sum_statistics(acc, world, root=solve_on)
    clock.lap("reduce")
    if solve_on is None:
        learner.readout = acc.solve_gcv() if gcv else acc.solve(float(learner.lam))
    else:
        solved = None
        if world.rank == solve_on:
            with all_local_cores(world):
                acc.solve_gcv() if gcv else acc.solve(float(learner.lam))
            solved = {"W": acc.W, "bias": acc.bias, "lam": acc.lam, "shift": acc.shift}
        else:
            acc.G = None  # the summed Gram lives on the solving rank only
        solved = world.broadcast_object(solved, root=solve_on, timeout=solve_timeout)
        for name, value in solved.items():
            setattr(acc, name, value)
        learner.readout = acc
    clock.lap("solve")
    learner.phase_seconds = clock.seconds
    return learner


class _PhaseClock:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self._last, 3)
        self._last = now


def accumulate_shard(learner: ELMClassifier, X, y, world: World) -> RidgeAccumulator:
    """This rank's rows' statistics: chunk j (of ``learner.chunk`` rows, with its shifted views) on rank j mod
    size, shifted by the mean of the first chunk's features as computed on rank 0."""
    T = one_hot(y, learner.classes)
    acc = RidgeAccumulator(learner.features.out_dim, learner.classes, budget=learner.budget,
                           chunk_rows=learner.chunk, gcv=learner.lam == "gcv")
    first = None
    if world.rank == 0:
        first = learner.features(X[:learner.chunk])  # the single process's first add: its mean is the shift
        acc.shift = first.mean(axis=0).astype(first.dtype)
    shift = world.broadcast_object(None if acc.shift is None else backend.to_device(acc.shift, backend.CPU))
    if acc.shift is None:
        acc.shift = shift
    for start in range(world.rank * learner.chunk, len(X), world.size * learner.chunk):
        rows = slice(start, start + learner.chunk)
        for v, view in enumerate(shifted_views(X[rows], learner.shift_views)):
            H = first if (start == 0 and v == 0 and first is not None) else learner.features(view)
            if acc.n == 0 and backend.device_of(H) != backend.CPU:
                acc.shift = backend.to_device(acc.shift, backend.device_of(H))
            acc.add(H, T[rows])
    return acc


def sum_statistics(acc: RidgeAccumulator, world: World, root: int | None) -> None:
    """Add every rank's statistics into ``root``'s accumulator (every rank's with root None): the Gram matrix in
    place, then the rest (HᵀT, sums, the sum of squares, the row count) packed in one float64 vector."""
    xp = backend.array_module(acc.G)
    small = xp.concatenate([acc.B.reshape(-1), acc.h_sum, acc.t_sum, xp.asarray([acc.t_sq, float(acc.n)])])
    if root is None:
        world.all_reduce(acc.G)
        world.all_reduce(small)
    else:
        world.reduce(acc.G, root=root)
        world.reduce(small, root=root)
    d, c = acc.B.shape
    acc.B = small[:d * c].reshape(d, c)
    acc.h_sum = small[d * c:d * c + d]
    acc.t_sum = small[d * c + d:d * c + d + c]
    acc.t_sq = float(small[-2])
    acc.n = int(round(float(small[-1])))


@contextlib.contextmanager
def all_local_cores(world: World):
    """While one rank solves and this machine's other ranks wait (napping), let its BLAS use their cores too."""
    before = blas_threads()
    if world.local_size > 1:
        set_blas_threads(before * world.local_size)
    try:
        yield
    finally:
        if world.local_size > 1:
            set_blas_threads(before)


class SpreadEnsemble(Learner):
    """An ``Ensemble`` whose members are fitted on different ranks (member m on rank m mod size); class scores are
    the members' mean, summed over the ranks (a collective: every rank calls it with the same rows)."""

    def __init__(self, ensemble: Ensemble, world: World | None = None):
        self.ensemble = ensemble
        self.world = world or get_world()
        self.classes = ensemble.classes

    @property
    def mine(self) -> list[int]:
        """The indices of the members this rank fits and holds."""
        return list(range(self.world.rank, len(self.ensemble.members), self.world.size))

    def fit(self, X, y, on_progress=None):
        for m in self.mine:
            self.ensemble.members[m].fit(X, y)
        self.world.barrier(timeout=SOLVE_TIMEOUT_S)  # the ranks' shares take different times
        return self

    def decision_function(self, X):
        total = np.zeros((len(X), self.classes), dtype=np.float64)
        for m in self.mine:
            total += backend.to_device(self.ensemble.members[m].decision_function(X), backend.CPU)
        self.world.all_reduce(total)
        total /= len(self.ensemble.members)
        return backend.array_module(X).asarray(total) if backend.device_of(X) != backend.CPU else total


def score(learner: Learner, X, y, world: World | None = None, chunk: int = 5000) -> float:
    """Accuracy over X, y with the rows shared out over the ranks (a learner fitted the same on every rank)."""
    world = world or get_world()
    hits = np.zeros(1, dtype=np.int64)
    for start in range(world.rank * chunk, len(X), world.size * chunk):
        rows = slice(start, start + chunk)
        hits += int((backend.to_device(learner.predict(X[rows]), backend.CPU)
                     == backend.to_device(y[rows], backend.CPU)).sum())
    return int(world.all_reduce(hits)[0]) / len(X)


def run_experiment(name: str, world: World | None = None, dataset: str = "mnist", seed: int = 0, data=None,
                   data_dir=None, download: bool = True) -> dict:
    """A registered forward-only experiment (``ember elm list``) over the ranks: an ELM's Gram summed over them,
    an ensemble's members spread over them. Returns the test accuracy and the fit's wall time (every rank)."""
    from ..elm.experiments import get, load_images

    world = world or get_world()
    exp = get(name)
    if data is None:
        with world.rank_zero_first():
            data = load_images(dataset, data_dir, download)
    X, y, Xt, yt = data
    learner = exp.build(seed)
    world.barrier()
    start = time.perf_counter()
    phases = None
    if isinstance(learner, ELMClassifier):
        phases = fit_elm(learner, X, y, world).phase_seconds
        scorer = learner
    elif isinstance(learner, Ensemble):
        scorer = SpreadEnsemble(learner, world).fit(X, y)
    else:
        raise TypeError(f"experiment {name}: a {type(learner).__name__} has no distributed fit (ELMClassifier "
                        "and Ensemble do)")
    world.barrier()
    seconds = time.perf_counter() - start
    test_accuracy = score(scorer, Xt, yt, world) if isinstance(scorer, ELMClassifier) else scorer.score(Xt, yt)
    return {"experiment": name, "dataset": dataset, "seed": seed, "ranks": world.size,
            "test_accuracy": test_accuracy, "seconds": round(seconds, 2), "phase_seconds": phases}
