"""Named forward-only experiments, and the runner behind ``ember elm run`` and benchmarks/bench_elm.py.

Each experiment builds a learner from a seed; the runner loads the dataset (standardised images),
fits, reports train and test accuracy, seconds and the process's peak memory during the run, plus
per-stage activation statistics on a sample. ``gradient_steps`` marks the learners that are there
for comparison and do use gradients (ELM + fine-tuning, DFA, Forward-Forward).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import backend
from .features import Chain, PCAConv, RandomConv, RandomFourier, RandomProjection, Standardize
from .learners import (
    DeepELM,
    DeltaRuleReadout,
    DirectFeedbackAlignment,
    ELMClassifier,
    Ensemble,
    FineTunedELM,
    ForwardForward,
    HebbianReadout,
    Learner,
    ProximalALS,
)

IMAGE_DATASETS = ("mnist", "fashion-mnist")


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    build: Callable[[int], Learner]
    datasets: tuple[str, ...] = IMAGE_DATASETS
    gradient_steps: bool = False
    slow: bool = False  # far beyond the 15-minute budget on 2 cores: run only when asked


def _ens(n, make):
    return lambda seed: Ensemble([make(seed * 100 + m) for m in range(n)])


def _pca_rp(seed, pool=3, width=10240, views=0):
    """The best no-gradient configuration found here: two PCA filter stages (8 x 8 filters, 7x7, learned
    from patches without labels), |.|, 3x3 average pooling (5,184 features), standardised, a random ReLU
    layer of ``width``, and a ridge readout with λ by GCV. (Shift views helped the linear PCA features,
    +0.16%, but not this wider nonlinear readout; a second ensemble member added 0.03%.)"""
    feats = Chain(Standardize(PCAConv((8, 8), 7, pool=pool, seed=seed)), RandomProjection(width, "relu", seed))
    return ELMClassifier(feats, lam="gcv", shift_views=views)


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("dense4096", "random ReLU projection of the pixels, 4,096 units, ridge (GCV)",
               lambda s: ELMClassifier(RandomProjection(4096, "relu", s))),
    Experiment("rff4096", "random Fourier features (Gaussian kernel, gamma='scale'), 4,096, ridge (GCV)",
               lambda s: ELMClassifier(RandomFourier(4096, seed=s))),
    Experiment("conv64", "random conv 64 filters 5x5, ReLU, 2x2 max-pool (9,216 features), ridge (GCV)",
               lambda s: ELMClassifier(RandomConv(64, 5, 2, seed=s))),
    Experiment("conv64-ens5", "5 conv64 members with independent seeds, logits averaged",
               _ens(5, lambda s: ELMClassifier(RandomConv(64, 5, 2, seed=s)))),
    Experiment("conv128-aug5-ens10", "the reference system's best: 10 members of random conv 128 (18,432 features) "
               "with 5 shift views (about 2 CPU-hours here)",
               _ens(10, lambda s: ELMClassifier(RandomConv(128, 5, 2, seed=s), shift_views=4)), slow=True),
    Experiment("pca-conv", "PCA filters (8 x 8, 7x7, two stages), |.|, 3x3 average pooling (5,184), 5 shift views",
               lambda s: ELMClassifier(Standardize(PCAConv((8, 8), 7, pool=3, seed=s)), shift_views=4)),
    Experiment("pca-conv-rp", "PCA conv features (5,184) -> random ReLU layer of 10,240 -> ridge (GCV): "
               "the best here", _pca_rp),
    Experiment("hebbian2048", "supervised Hebbian readout (row-normalised) on a random ReLU layer of 2,048",
               lambda s: HebbianReadout(RandomProjection(2048, "relu", s), epochs=1)),
    Experiment("delta2048", "delta rule (LMS) readout on a random ReLU layer of 2,048, 5 epochs",
               lambda s: DeltaRuleReadout(RandomProjection(2048, "relu", s), epochs=5, seed=s)),
    Experiment("deep-elm4096", "deep ELM by target propagation: random ReLU 4,096 -> solved ReLU 4,096 -> readout, "
               "2 cycles", lambda s: DeepELM(RandomProjection(4096, "relu", s), hidden=(4096,), cycles=2, seed=s)),
    Experiment("prox-als2048", "multi-layer ELM by proximal ALS: random ReLU 2,048 -> LeakyReLU 2,048 (solved) "
               "-> readout, 3 cycles", lambda s: ProximalALS(RandomProjection(2048, "relu", s), hidden=(2048,),
                                                             cycles=3, seed=s)),
    Experiment("elm-finetune", "ELM warm start (random ReLU 2,048 + ridge), then 2 epochs of Adam on all weights",
               lambda s: FineTunedELM(2048, epochs=2, seed=s), gradient_steps=True),
    Experiment("dfa", "direct feedback alignment, tanh MLP 784-800-800-10, 10 epochs",
               lambda s: DirectFeedbackAlignment(epochs=10, seed=s), gradient_steps=True),
    Experiment("forward-forward", "Forward-Forward, ReLU 784-500-500, 10 epochs", lambda s: ForwardForward(seed=s),
               gradient_steps=True),
    Experiment("cifar-conv64-ens5", "CIFAR-10: 5 members of random conv 64 (3x5x5 filters, 12,544 features)",
               _ens(5, lambda s: ELMClassifier(RandomConv(64, 5, 2, seed=s))), datasets=("cifar10",)),
]}


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; `ember elm list` shows {len(EXPERIMENTS)} of them")
    return EXPERIMENTS[name]


def _peak_rss_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def load_images(dataset: str, data_dir=None, download: bool = True):
    """(X_train, y_train, X_test, y_test) as float32 images standardised per channel (train statistics)."""
    from ..data import image_classification

    train, stats = image_classification(dataset, "train", data_dir, download)
    test, _ = image_classification(dataset, "test", data_dir, download, stats=stats)
    return train.arrays[0], train.arrays[1], test.arrays[0], test.arrays[1]


def check_device(exp: Experiment, device) -> None:
    """The gradient-step learners (there for comparison) compute with NumPy on the host only."""
    if exp.gradient_steps and backend.device(device) != backend.CPU:
        raise ValueError(f"experiment {exp.name} takes gradient steps with host NumPy code and runs on the CPU "
                         f"only, not on {backend.device(device)}")


def run(name: str, dataset: str = "mnist", seed: int = 0, data_dir=None, download: bool = True,
        data=None, on_progress=None, device="cpu") -> dict:
    """Fit experiment ``name`` on ``dataset``; returns accuracies, seconds, peak memory, activation stats.

    ``device``: where the features, the Gram accumulation and the solves run (images and labels are moved
    there once); every reported number is a Python value. Peak memory is the host process's."""
    from ..nn.activation_stats import ActivationStats
    from ..tensor import Tensor

    exp = get(name)
    if dataset not in exp.datasets:
        raise ValueError(f"experiment {name} runs on {list(exp.datasets)}, not {dataset!r}")
    check_device(exp, device)
    dev = backend.device(device)
    X, y, Xt, yt = data if data is not None else load_images(dataset, data_dir, download)
    X, y, Xt, yt = (backend.to_device(np.ascontiguousarray(a), dev) for a in (X, y, Xt, yt))
    _peak_rss_reset()
    start = time.perf_counter()
    learner = exp.build(seed)
    learner.fit(X, y, on_progress=on_progress) if on_progress else learner.fit(X, y)
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    train_acc, test_acc = learner.score(X, y), learner.score(Xt, yt)
    pipeline = learner.pipeline()
    with ActivationStats(pipeline) as stats:
        pipeline(Tensor(backend.array_module(Xt).ascontiguousarray(Xt[:500])))
    return {"experiment": name, "dataset": dataset, "seed": seed, "device": str(dev), "train_accuracy": train_acc,
            "test_accuracy": test_acc, "seconds": round(seconds, 2), "peak_memory_bytes": peak,
            "gradient_steps": exp.gradient_steps, "activations": stats.report()}
