"""Symbolic fits: known functions are recovered, formulas evaluate to the model, pykan's example end to end."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.kan import SymbolicKAN, auto_symbolic, fit_edge, prune
from ember.kan.symbolic import EdgeFit
from ember.models import KAN
from ember.train.regression import fit_regression, get_task, sample

NUMPY_NAMES = {n: getattr(np, n) for n in ("sin", "exp", "tanh", "sqrt", "log", "abs")}


@pytest.mark.parametrize("name, fn, lo, hi", [
    ("sin", lambda x: 1.5 * np.sin(3.0 * x + 0.5) - 0.2, -1, 1),
    ("x^2", lambda x: 0.7 * (x - 0.3) ** 2 + 1.0, -1, 1),
    ("exp", lambda x: 0.3 * np.exp(1.2 * x) - 0.5, -1, 1),
    ("tanh", lambda x: 2.0 * np.tanh(4.0 * x - 1.0), -1, 1),
    ("gaussian", lambda x: np.exp(-((2.0 * x) ** 2)), -1, 1),
    ("log", lambda x: np.log(2.0 * x + 3.0), -1, 1),
    ("x", lambda x: -3.0 * x + 2.0, -1, 1),
])
def test_fit_edge_recovers_library_functions(name, fn, lo, hi):
    x = np.linspace(lo, hi, 201)
    best, candidates = fit_edge(x, fn(x))
    assert best.name == name, [(c.name, c.r2) for c in candidates[:3]]
    assert best.r2 > 0.99999
    np.testing.assert_allclose(best(x), fn(x), atol=1e-3 * np.abs(fn(x)).max())


def test_fit_edge_rejects_unknown_functions():
    with pytest.raises(ValueError, match="unknown functions"):
        fit_edge(np.linspace(0, 1, 10), np.zeros(10), library=["sinc"])


def test_formula_string_evaluates_to_the_symbolic_network():
    net = SymbolicKAN(
        widths=(2, 1, 1),
        layers=[{(0, 0): EdgeFit("sin", 0.5, 3.1, 0.1, -0.2, 1.0), (0, 1): EdgeFit("x^2", 1.2, 1.0, -0.3, 0.0, 1.0)},
                {(0, 0): EdgeFit("exp", 2.0, 0.8, 0.0, 0.1, 1.0)}],
    )
    (formula,) = net.formula(digits=12)
    x = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    values = eval(formula, {"__builtins__": {}}, {**NUMPY_NAMES, "x0": x[:, 0], "x1": x[:, 1]})  # noqa: S307
    np.testing.assert_allclose(values, net(x)[:, 0], rtol=1e-9)


@pytest.mark.slow
def test_pykan_example_is_recovered_as_a_formula():
    """f(x, y) = exp(sin(πx) + y²): train [2, 5, 1] with sparsity, prune, fit, check held-out RMSE < 1e-2."""
    task = get_task("exp-sin")
    ember.manual_seed(0)
    model = KAN(widths=(2, 5, 1), grid_size=5).double()
    fit_regression(model, task, steps=3000, lr=1e-2, regularization=1e-2, grid_schedule={})
    x, y = sample(task, 1000, 0, dtype=np.float64)
    small = prune(model, ember.tensor(x), threshold=0.05)
    assert small.config.widths == (2, 1, 1)
    fit_regression(small, task, steps=3000, lr=3e-3, grid_schedule={1000: 10, 2000: 20})
    symbolic = auto_symbolic(small, ember.tensor(x))
    assert sorted(r["function"] for r in symbolic.report()) == ["exp", "sin", "x^2"]
    assert min(r["r2"] for r in symbolic.report()) > 0.9999
    symbolic.refine(x, y, steps=300, lr=1e-3)
    x_test, y_test = sample(task, 2000, 99, dtype=np.float64)
    (formula,) = symbolic.formula(digits=8)
    pred = eval(formula, {"__builtins__": {}}, {**NUMPY_NAMES, "x0": x_test[:, 0], "x1": x_test[:, 1]})  # noqa: S307
    rmse = float(np.sqrt(np.mean((pred - y_test[:, 0]) ** 2)))
    assert rmse < 1e-2, (formula, rmse)
