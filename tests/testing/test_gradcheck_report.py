"""What gradcheck reports: max |a - n| / (|n| + atol) over every element, against hand computations.

The ops below square their input but return a gradient that is off in a known way. Their backward
records the cotangent v it receives, so the analytic gradient a and the true gradient n = 2·x·v are
known here without repeating how gradcheck draws v (central differences of a square are exact up
to rounding, ~1e-10 here).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import ember
import ember.testing
from ember.autograd import Function
from ember.cli.main import main
from ember.tensor import apply
from ember.testing import OpCase, check_op, gradcheck

SHAPE = (3, 4)


def square_with_gradient_error(error, seen: list):
    """x**2 whose backward returns 2·x·v + error(n) with n = 2·x·v the true gradient; records v in ``seen``."""

    class WrongSquare(Function):
        def forward(ctx, a):
            ctx.a = a
            return a * a

        def backward(ctx, g):
            seen.append(np.array(g, dtype=np.float64))
            true = 2.0 * ctx.a * g
            return true + error(true)

    return lambda t: apply(WrongSquare, t)


def check_wrong_square(error, atol: float, rtol: float, seed: int = 3):
    """gradcheck of the wrong square on fixed inputs; returns (result, x, v)."""
    seen: list = []
    x = np.random.default_rng(seed).standard_normal(SHAPE)
    x[0, 0] = 0.0  # an exact zero gradient: the floor keeps it from dividing by zero
    t = ember.tensor(x.copy(), requires_grad=True)
    op = square_with_gradient_error(error, seen)
    result = gradcheck(lambda: op(t), [t], atol=atol, rtol=rtol)
    assert len(seen) == 1, "the backward runs once, with the cotangent"
    return result, x, seen[0]


def test_relative_error_of_a_wrong_gradient_equals_the_hand_computation():
    atol = 0.5  # large, so that a definition without the atol floor would give a different number
    result, x, v = check_wrong_square(lambda n: 0.5 * n, atol=atol, rtol=1e-5)  # a = 3xv, n = 2xv
    n = 2.0 * x * v
    expected_rel = np.max(np.abs(x * v) / (np.abs(n) + atol))  # |a - n| = |x v|
    assert result.max_rel_error == pytest.approx(expected_rel, rel=1e-6)
    assert result.max_abs_error == pytest.approx(np.max(np.abs(x * v)), rel=1e-6)
    assert not result.ok


@pytest.mark.parametrize("fraction, ok", [(0.9, True), (1.1, False)])
def test_pass_rule_is_still_atol_plus_rtol_times_n(fraction, ok):
    """An error of 0.9 (passes) or 1.1 (fails) times atol + rtol·|n| at every element: the rule is unchanged,
    and the relative error is that error over |n| + atol."""
    atol, rtol = 1e-6, 1e-3

    def error(n):
        return fraction * (atol + rtol * np.abs(n))

    result, x, v = check_wrong_square(error, atol=atol, rtol=rtol)
    n = 2.0 * x * v
    assert result.ok is ok
    assert result.max_rel_error == pytest.approx(np.max(error(n) / (np.abs(n) + atol)), rel=1e-4)
    if ok:
        assert result.max_rel_error <= 1.0  # what a passing check always reports (rtol <= 1)


def test_correct_ops_report_a_small_nonzero_relative_error():
    """Finite differences are never exact, so correct rows show a small relative error, not 0 everywhere."""
    rows = [c for c in ember.testing.OPS if c.name in ("mul_broadcast", "tanh", "matmul", "exp", "softmax")]
    assert len(rows) >= 3, [c.name for c in rows]
    for case in rows:
        result = check_op(case)
        assert result.ok, (case.name, str(result))
        assert 0.0 < result.max_rel_error < 1e-2, (case.name, result.max_rel_error)


def test_cli_column_and_json_report_the_relative_error(monkeypatch, capsys):
    """The CLI row of a wrong op: the column is named for what it holds, and it and the JSON carry the value."""
    seen: list = []
    atol = 1e-3
    case = OpCase("wrong_square", square_with_gradient_error(lambda n: 0.5 * n, seen), None, (SHAPE,), atol=atol)
    monkeypatch.setattr(ember.testing, "OPS", [case])
    monkeypatch.setattr(ember.testing, "LAYERS", [])
    assert main(["gradcheck", "--json"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    header, row, record = lines[0], lines[1], json.loads(lines[2])
    assert "max |a-n|/(|n|+atol)" in header and "max rel err" not in header
    (x,) = ember.testing.make_inputs(case)
    (v,) = seen
    expected = np.max(np.abs(x * v) / (2.0 * np.abs(x * v) + atol))
    assert record["name"] == "wrong_square" and record["ok"] is False
    assert record["max_rel_error"] == pytest.approx(expected, rel=1e-6)
    assert row.split()[3] == f"{record['max_rel_error']:.2e}"


def test_cli_json_of_real_rows_has_the_relative_error(capsys):
    assert main(["gradcheck", "--filter", "conv2d", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert records
    for r in records:
        assert r["ok"] and 0.0 <= r["max_rel_error"] <= 1.0, r
        assert (r["max_rel_error"] > 0.0) == (r["max_abs_error"] > 0.0), r
    assert any(r["max_rel_error"] > 0.0 for r in records)
