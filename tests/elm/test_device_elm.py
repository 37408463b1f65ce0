"""Forward-only learners on a second device (the GPU-free test double ``cpu:other``): features, Gram
accumulation and solves stay on the device, and every learner agrees with its CPU run."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ember
from ember import backend
from ember.cli.main import main
from ember.elm import experiments
from ember.elm.features import Chain, PCAConv, RandomConv, RandomFourier, RandomProjection, Standardize
from ember.elm.learners import DeepELM, DeltaRuleReadout, ELMClassifier, Ensemble, HebbianReadout, ProximalALS
from ember.elm.solver import RidgeAccumulator, SingularGramWarning
from ember.testing import device_double

OTHER = device_double.DEVICE

LEARNERS = {
    "dense": lambda: ELMClassifier(RandomProjection(96, "relu", 0)),
    "dense-fixed-lambda": lambda: ELMClassifier(RandomProjection(64, "tanh", 1), lam=1e-1),
    "rff": lambda: ELMClassifier(RandomFourier(96, seed=0)),
    "conv": lambda: ELMClassifier(RandomConv(4, 5, 2, seed=0), chunk=500),
    "pca-conv-shifts": lambda: ELMClassifier(Standardize(PCAConv((3, 2), 5, pool=2, n_images=200,
                                                                 n_patches=5000)), shift_views=4),
    "pca-conv-rp": lambda: ELMClassifier(Chain(Standardize(PCAConv((3,), 5, pool=2, n_images=200, n_patches=5000)),
                                               RandomProjection(80, "relu", 0))),
    "ensemble": lambda: Ensemble([ELMClassifier(RandomProjection(48, "relu", s)) for s in (0, 1)]),
    "hebbian": lambda: HebbianReadout(RandomProjection(64, "relu", 0), batch=300),
    "delta": lambda: DeltaRuleReadout(RandomProjection(64, "relu", 0), epochs=2, batch=128),
    "deep-elm": lambda: DeepELM(RandomProjection(64, "relu", 0), hidden=(48,), cycles=1),
    "prox-als": lambda: ProximalALS(RandomProjection(64, "relu", 0), hidden=(48,), cycles=1),
}


def on_other(*arrays):
    return tuple(backend.to_device(np.ascontiguousarray(a), OTHER) for a in arrays)


def assert_on_other(array, what: str) -> None:
    assert backend.device_of(array) == OTHER, f"{what} is on {backend.device_of(array)}, expected {OTHER}"


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_learner_computes_on_the_device_and_matches_the_cpu(name, toy_images):
    X, y, Xt, yt = toy_images
    cpu = LEARNERS[name]().fit(X, y)
    other = LEARNERS[name]().fit(*on_other(X, y))  # on_other would raise if any step mixed host and device arrays
    Xt_other, yt_other = on_other(Xt, yt)
    scores = other.decision_function(Xt_other)
    assert_on_other(scores, f"{name}'s class scores")
    expected = cpu.decision_function(Xt)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(backend.to_device(scores, backend.CPU), expected, rtol=0, atol=2e-4 * scale)
    assert abs(other.score(Xt_other, yt_other) - cpu.score(Xt, yt)) <= 1 / len(yt)


def test_the_solver_accumulates_and_solves_on_the_device():
    rng = np.random.default_rng(0)
    H = rng.standard_normal((300, 20)).astype(np.float32)
    T = rng.standard_normal((300, 3))
    cpu, other = RidgeAccumulator(20, 3), RidgeAccumulator(20, 3)
    for i in range(0, 300, 100):
        cpu.add(H[i:i + 100], T[i:i + 100])
        other.add(*on_other(H[i:i + 100], T[i:i + 100]))
    assert_on_other(other.G, "the Gram matrix")
    for solve in (lambda acc: acc.solve(0.5), lambda acc: acc.solve_gcv()):
        solve(cpu), solve(other)
        assert_on_other(other.W, "the ridge weights")
        np.testing.assert_allclose(backend.to_device(other.W, backend.CPU), cpu.W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(backend.to_device(other.bias, backend.CPU), cpu.bias, rtol=1e-9, atol=1e-12)
    assert isinstance(other.lam, float) and other.lam == pytest.approx(cpu.lam, rel=1e-12)
    assert type(other.gcv_result.gcv) is np.ndarray  # the GCV curve comes back to the host for reporting


def test_a_singular_gram_on_the_device_falls_back_to_the_eigen_solve():
    # duplicated columns and a λ far below round-off: Cholesky fails on both devices, the eigen-solve answers
    H = np.repeat(np.random.default_rng(1).standard_normal((50, 3)), 2, axis=1)
    T = H[:, :1] * 2.0
    acc = RidgeAccumulator(6, 1).add(*on_other(H, T))
    with pytest.warns(SingularGramWarning, match="not numerically positive definite"):
        acc.solve(1e-300)
    assert_on_other(acc.W, "the weights")
    fitted = backend.to_device(acc.predict(backend.to_device(H, OTHER)), backend.CPU)
    np.testing.assert_allclose(fitted, T, atol=1e-6)  # T lies in H's column space: an exact fit


def test_the_runner_on_the_device_reports_the_cpu_numbers_as_python_values(toy_images, monkeypatch):
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny", experiments.Experiment(
        "tiny", "a tiny ELM", lambda s: ELMClassifier(RandomProjection(64, "relu", s))))
    cpu = experiments.run("tiny", data=toy_images)
    other = experiments.run("tiny", data=toy_images, device="cpu:other")
    assert (cpu["device"], other["device"]) == ("cpu", "cpu:other")
    assert type(other["test_accuracy"]) is float and type(other["train_accuracy"]) is float
    assert abs(other["test_accuracy"] - cpu["test_accuracy"]) <= 1 / len(toy_images[3])
    for a, b in zip(cpu["activations"], other["activations"]):
        assert a["layer"] == b["layer"] and b["mean"] == pytest.approx(a["mean"], rel=1e-4, abs=1e-4)
    json.dumps(other)  # every reported value is a plain Python value


def test_the_gradient_step_learners_refuse_a_device(toy_images):
    with pytest.raises(ValueError, match="dfa .*runs on the CPU only, not on cpu:other"):
        experiments.run("dfa", data=toy_images, device="cpu:other")


def test_cli_elm_run_device(toy_images, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "load_images", lambda *a, **k: toy_images)
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny", experiments.Experiment(
        "tiny", "a tiny ELM", lambda s: ELMClassifier(RandomProjection(64, "relu", s))))
    lines = {}
    for device in ("cpu", "cpu:other"):
        assert main(["elm", "run", "tiny", "--json", "--device", device]) == 0
        lines[device] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert lines["cpu:other"]["device"] == "cpu:other"
    assert abs(lines["cpu:other"]["test_accuracy"] - lines["cpu"]["test_accuracy"]) <= 1 / len(toy_images[3])
    assert main(["elm", "run", "dfa", "--device", "cpu:other"]) == 2
    assert "runs on the CPU only" in capsys.readouterr().err


@pytest.mark.skipif(ember.cuda_available(), reason="a GPU is present, so --device cuda works here")
def test_cli_elm_run_on_a_missing_gpu_fails_before_any_work(monkeypatch, capsys):
    monkeypatch.setattr(experiments, "load_images", lambda *a, **k: pytest.fail("loaded data before the device check"))
    assert main(["elm", "run", "dense4096", "--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda" in err[0] and ("CuPy" in err[0] or "GPU" in err[0])
