"""benchmarks/bench_code_model.py: a dry run on tiny shapes writes every figure the README table needs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCH / "bench_code_model.py"
sys.path.insert(0, str(BENCH))
bench = pytest.importorskip("bench_code_model")
harness = pytest.importorskip("harness")
pytest.importorskip("torch", reason="the benchmark's rival is PyTorch")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "bench.json"
    root = str(BENCH.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--torch-threads", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), out


def test_the_dry_run_records_the_machine_and_its_shape(dry_run):
    report, _ = dry_run
    assert report["machine"] == harness.machine_line(report["machine_info"])
    assert report["machine_info"]["cpu_model"] == harness.cpu_model()
    assert report["quick"] is True and report["shape"] == bench.QUICK_MODEL and report["batch"] == bench.QUICK_BATCH
    assert report["torch_threads"] == 1


def test_each_mode_is_timed_in_both_frameworks_from_the_same_weights(dry_run):
    training = dry_run[0]["training"]
    assert set(training["modes"]) == {"plain", "mhc4", "mhc2"} and training["rounds"] == 2
    assert training["tokens_per_iter"] == bench.QUICK_BATCH * bench.QUICK_MODEL["block_size"]
    for name, m in training["modes"].items():
        rounds = m["ms_per_round"]
        assert len(rounds["ember"]) == len(rounds["torch"]) == 2 and min(rounds["ember"] + rounds["torch"]) > 0
        assert m["ember_ms_per_iter"] == pytest.approx(np.median(rounds["ember"]))
        assert m["ember_tokens_per_s"] == pytest.approx(training["tokens_per_iter"] / m["ember_ms_per_iter"] * 1e3)
        assert m["torch_tokens_per_s"] == pytest.approx(training["tokens_per_iter"] / m["torch_ms_per_iter"] * 1e3)
        ratios = np.array(rounds["ember"]) / np.array(rounds["torch"])
        assert m["ember_over_torch_median"] == pytest.approx(np.median(ratios))
        loss = m["first_step_loss"]  # same weights, same batch: the same loss, near ln(vocab) at initialisation
        assert loss["ember"] == pytest.approx(loss["torch"], rel=1e-5), name
        assert abs(loss["ember"] - math.log(bench.QUICK_MODEL["vocab_size"])) < 0.5
        assert m["params"] > 0 and m["streams"] == {"plain": 1, "mhc4": 4, "mhc2": 2}[name]


def test_the_mhc_step_cost_is_the_median_of_per_round_ratios_to_plain(dry_run):
    training = dry_run[0]["training"]
    modes = training["modes"]
    assert set(training["step_cost_over_plain"]) == {"mhc4", "mhc2"}
    for name, cost in training["step_cost_over_plain"].items():
        for framework in ("ember", "torch"):
            mode_ms, plain_ms = modes[name]["ms_per_round"][framework], modes["plain"]["ms_per_round"][framework]
            ratios = np.array(mode_ms) / np.array(plain_ms)
            assert cost[framework] == pytest.approx(np.median(ratios)), (name, framework)


def test_decoding_fits_the_context_and_ember_cache_equals_its_full_forward(dry_run):
    decoding = dry_run[0]["decoding"]
    assert decoding["new_tokens"] == bench.QUICK_MODEL["block_size"]  # 256 asked, cut to the context after 1 token
    assert decoding["prompt_tokens"] + decoding["new_tokens"] - 1 <= decoding["block_size"]
    assert set(decoding["modes"]) == {"plain", "mhc4"}
    for name, d in decoding["modes"].items():
        assert set(d["tokens_per_s"]) == {"ember_cached", "ember_uncached", "torch_uncached"}
        assert min(d["tokens_per_s"].values()) > 0
        assert d["cached_equals_uncached"] is True, name


def test_the_markdown_table_is_written_beside_the_json(dry_run):
    _, out = dry_run
    table = out.with_suffix(".md").read_text()
    assert "mHC n = 4: step time over plain's" in table and "decoding, tokens/s with the KV cache" in table
    assert table.count("\n| ") >= 12  # two rows per mode, a cost row per mHC mode, two decoding rows per mode


def test_a_dry_run_may_not_write_the_readme(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--update-readme"])
    assert "do not belong in the README" in capsys.readouterr().err
