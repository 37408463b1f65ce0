"""benchmarks/bench_distributed.py's bookkeeping: a run of some parts keeps the others from the results on file, each
with the date it was measured, and speed-ups are medians of per-round ratios."""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
bench = pytest.importorskip("bench_distributed")


def train_runs(rounds: dict) -> dict:
    """A train part's runs from per-round s/epoch of each configuration."""
    return {name: {"epoch_seconds": seconds, "round_seconds": seconds,
                   "median_epoch_s": sorted(seconds)[len(seconds) // 2], "test_accuracy": [0.9]}
            for name, seconds in rounds.items()}


def test_speed_ups_are_medians_of_per_round_ratios():
    one, two, ranks = "1 process, 1 thread, batch 8", "1 process, 2 threads, batch 8", "2 processes, 1 thread each"
    runs = train_runs({one: [1.0, 4.0, 2.0], two: [1.0, 2.0, 2.0], ranks: [1.0, 1.0, 2.0]})
    ups = bench.speedups(runs, "median_epoch_s")
    assert ups[ranks]["vs_1_thread"] == pytest.approx(1.0)  # rounds 1, 4, 1 (the medians' ratio: 2 / 1)
    assert ups[ranks]["vs_2_threads"] == pytest.approx(1.0)  # rounds 1, 2, 1
    legacy = {k: {kk: vv for kk, vv in v.items() if kk != "round_seconds"} for k, v in runs.items()}
    assert bench.speedups(legacy, "median_epoch_s")[ranks]["vs_1_thread"] == pytest.approx(2.0)  # without rounds


def test_a_run_of_some_parts_keeps_the_others_with_their_dates(tmp_path):
    out = tmp_path / "distributed.json"
    earlier = {"date": "2026-11-01", "load_average": [0.1, 0.2, 0.3], "quick": False,
               "train": {"mlp": {"batch": 128, "runs": {}}, "lenet": {"batch": 64, "runs": {}}},
               "gpt": {"iters": 100, "runs": {}}, "gpt_params": 123, "allreduce": {"rows": []},
               "elm": {"experiment": "old", "runs": {}}}
    out.write_text(json.dumps(earlier))
    report = {"date": "2026-11-30", "load_average": [0.0, 0.0, 0.0], "quick": False,
              "elm": {"experiment": "new", "runs": {}, "measured": {"date": "2026-11-30"}},
              "train": {"mlp": {"batch": 128, "runs": {"fresh": {}}}}}
    bench.carry_over(report, Namespace(out=out))
    assert report["elm"]["experiment"] == "new"  # what this run measured is not replaced
    assert report["train"]["mlp"]["runs"] == {"fresh": {}}
    old = {"date": "2026-11-01", "load_average": [0.1, 0.2, 0.3]}
    assert report["train"]["lenet"]["measured"] == old and report["gpt"]["measured"] == old
    assert report["allreduce"]["measured"] == old and report["gpt_params"] == 123
    note = bench.part_note(report["gpt"], report)
    assert "2026-11-01" in note and note.startswith("\n")  # a blank line ends the table above it
    assert bench.part_note({"measured": {"date": "2026-11-30", "load_average": [0.0, 0.0, 0.0]}}, report) == ""


def test_results_of_a_dry_run_are_not_carried_into_a_real_one(tmp_path):
    out = tmp_path / "distributed.json"
    out.write_text(json.dumps({"date": "2026-11-01", "load_average": [0, 0, 0], "quick": True,
                               "gpt": {"iters": 10, "runs": {}}}))
    report = {"date": "2026-11-30", "load_average": [0, 0, 0], "quick": False}
    bench.carry_over(report, Namespace(out=out))
    assert "gpt" not in report


def test_the_run_without_exchange_is_compared_at_the_same_batch_and_never_taken_for_the_headline():
    one, two = "1 process, 1 thread, batch 8", "1 process, 2 threads, batch 8"
    half, same = "2 processes, 1 thread each, batch 4 each (global 8)", "2 processes, 1 thread each, batch 8 each"
    alone = f"2 processes, batch 8 each, {bench.NO_EXCHANGE}"
    runs = train_runs({one: [2.0, 2.0, 2.0], two: [2.0, 2.0, 2.0], half: [1.0, 1.0, 1.0], same: [1.6, 1.0, 1.25],
                       alone: [0.8, 0.9, 1.0]})
    for name, batch in ((one, 8), (two, 8), (half, 4), (same, 8), (alone, 8)):
        runs[name]["batch_per_process"] = batch
    assert bench.against_no_exchange(runs) == pytest.approx(0.8)  # rounds 0.5, 0.9, 0.8: against `same`, not `half`
    assert bench.against_no_exchange({k: v for k, v in runs.items() if k != alone}) is None
    report = {"train": {"mlp": {"runs": runs}}}
    assert bench.headline(report) == "mlp 2 processes 2.00x vs 1 thread"  # `half`, not the unexchanged run (2.5x)
