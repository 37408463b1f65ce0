"""The benchmark harness: its background load really loads the machine and never outlives the body."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
harness = pytest.importorskip("harness")


def test_background_load_runs_busy_children_and_kills_them_even_on_error():
    import subprocess
    import time

    before = os.times().children_user
    with pytest.raises(RuntimeError, match="body failed"):
        with harness.background_load(2):
            time.sleep(0.5)
            raise RuntimeError("body failed")
    assert os.times().children_user - before > 0.5  # reaped children that did burn CPU
    left = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    assert "while" not in left.stdout, left.stdout  # no busy loop outlives the block


def test_loaded_and_idle_result_files_pair_up(tmp_path):
    idle = tmp_path / "mnist.json"
    loaded = harness.loaded_companion(idle)
    assert loaded.name == "mnist_loaded.json" and harness.idle_companion(loaded) == idle
    assert harness.results_path("gpt", 0).name == "gpt.json"
    assert harness.results_path("gpt", 2).name == "gpt_loaded.json"


def test_median_ratios_are_medians_of_per_round_ratios():
    times = {"torch": [1.0, 2.0, 4.0], "ember": [2.0, 2.0, 2.0]}
    assert harness.median_ratios(times) == {"ember": 1.0}  # per round: 2, 1, 0.5
