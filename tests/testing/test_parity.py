"""CPU↔device parity on every CI run, against the GPU-free double; and the comparison itself can fail."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ember
from ember import backend
from ember.cli.main import main
from ember.testing import LAYERS, OPS, device_double, parity

OTHER = device_double.DEVICE


def assert_all_within_tolerance(checks):
    bad = [c for c in checks if not c.ok]
    assert checks, "no quantity was compared"
    assert not bad, "\n".join(f"{c.section} {c.name} {c.dtype} {c.quantity}: {c.note or c.max_rel}" for c in bad[:10])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_op_runs_on_another_device_and_matches_the_cpu(dtype):
    checks = list(parity.run(OTHER, (dtype,), ("ops",)))
    assert {c.name for c in checks} == {c.name for c in OPS}
    assert_all_within_tolerance(checks)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_layer_runs_on_another_device_and_matches_the_cpu(dtype):
    checks = list(parity.run(OTHER, (dtype,), ("layers",)))
    assert {c.name for c in checks} == {c.name for c in LAYERS}
    assert_all_within_tolerance(checks)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pooling_argmax_and_training_steps_match(dtype):
    checks = list(parity.run(OTHER, (dtype,), ("pooling", "steps")))
    assert {c.name for c in checks if c.section == "steps"} == set(parity.STEP_MODELS)
    assert any(c.quantity == "argmax" for c in checks)
    assert_all_within_tolerance(checks)


def test_compare_is_norm_relative_and_can_fail():
    ref = np.array([1.0, -2.0, 4.0])
    ok = parity.compare("ops", "x", "output", np.float64, ref, backend.to_device(ref * (1 + 1e-12), OTHER))
    assert ok.ok and ok.max_rel == pytest.approx(4e-12 / 4, rel=1e-3)
    bad = parity.compare("ops", "x", "output", np.float64, ref, backend.to_device(ref + [0, 0, 1e-9], OTHER))
    assert not bad.ok and bad.max_abs == pytest.approx(1e-9, rel=1e-6)
    f32 = parity.compare("steps", "x", "loss", np.float32, ref.astype(np.float32),
                         backend.to_device((ref * (1 + 3e-5)).astype(np.float32), OTHER), kind="step")
    assert f32.ok and f32.tolerance == 1e-4
    assert not parity.compare("ops", "x", "output", np.float32, ref.astype(np.float32),
                              backend.to_device((ref * (1 + 3e-5)).astype(np.float32), OTHER)).ok


def test_compare_refuses_shape_dtype_nan_and_argmax_differences():
    ref = np.array([1.0, np.nan, 3.0])
    assert not parity.compare("ops", "x", "y", np.float64, ref, backend.to_device(ref[:2], OTHER)).ok
    assert not parity.compare("ops", "x", "y", np.float64, ref, backend.to_device(ref.astype(np.float32), OTHER)).ok
    assert not parity.compare("ops", "x", "y", np.float64, ref, backend.to_device(np.array([1.0, 2.0, 3.0]), OTHER)).ok
    idx = np.array([0, 3, 5])
    assert parity.compare("pooling", "p", "argmax", np.float64, idx, backend.to_device(idx, OTHER), exact=True).ok
    assert not parity.compare("pooling", "p", "argmax", np.float64, idx, backend.to_device(idx + [0, 1, 0], OTHER),
                              exact=True).ok


def test_a_result_left_on_the_host_is_a_failure():
    host = ember.tensor([1.0, 2.0])
    [check] = parity._checks("ops", "escape", np.float64, [("output", host, host)])
    assert not check.ok and "on the CPU" in check.note


def test_a_row_that_raises_on_the_device_is_reported_not_crashed(monkeypatch):
    def broken(case, dev, dtype, seed=3):
        raise TypeError("no such kernel")

    monkeypatch.setattr(parity, "op_parity", broken)
    checks = list(parity.run(OTHER, (np.float64,), ("ops",)))
    assert len(checks) == len(OPS) and not any(c.ok for c in checks)
    assert "TypeError: no such kernel" in checks[0].note


def test_parity_command_against_the_double(capsys):
    assert main(["parity", "--device", "cpu:other", "--only", "pooling,steps", "--json"]) == 0
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert {row["name"] for row in lines if row["section"] == "steps"} == set(parity.STEP_MODELS)
    assert "rows within tolerance on cpu:other" in out


def test_parity_command_exits_1_on_a_failure(monkeypatch, capsys):
    real = parity.step_parity

    def off_by_a_little(model, dev, dtype, seed=0, batch=8):
        checks = real(model, dev, dtype, seed, batch)
        checks[0].ok, checks[0].note = False, "planted"
        return checks

    monkeypatch.setattr(parity, "step_parity", off_by_a_little)
    assert main(["parity", "--device", "cpu:other", "--only", "steps", "--dtype", "float64"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.skipif(ember.cuda_available(), reason="a GPU is present: the command runs instead of skipping")
def test_parity_command_skips_without_a_gpu(capsys):
    assert main(["parity"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_parity_command_usage_errors(capsys):
    assert main(["parity", "--device", "cpu:other", "--only", "everything"]) == 2
    assert main(["parity", "--device", "cpu"]) == 2
