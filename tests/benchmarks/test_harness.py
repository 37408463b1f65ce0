"""The background load really loads the machine and never outlives the body; benchmarks/harness.py and
benchmarks/readme.py still give the scripts beside the entries the library's functions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ember.benchmarking as library

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
harness = pytest.importorskip("harness")
readme = pytest.importorskip("readme")


def test_background_load_runs_busy_children_and_kills_them_even_on_error():
    before = os.times().children_user
    with pytest.raises(RuntimeError, match="body failed"):
        with library.background_load(2):
            time.sleep(0.5)
            raise RuntimeError("body failed")
    assert os.times().children_user - before > 0.5  # reaped children that did burn CPU
    left = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    assert "while" not in left.stdout, left.stdout  # no busy loop outlives the block


def test_load_words_and_record():
    assert library.describe_load(1) == "1 busy process" and library.describe_load(2) == "2 busy processes"
    record = library.load_record(3)
    assert record["busy_processes"] == 3 and record["blas_threads_at_end"] >= 1


def test_harness_and_readme_are_the_librarys_functions():
    for name in ("rounds", "median_ratios", "machine_info", "machine_line", "background_load", "publish",
                 "results_path", "loaded_companion", "idle_companion", "add_load_argument", "accuracy_epochs",
                 "on_reference_path", "has_avx512", "openblas_kernels", "describe_load", "load_record", "shown"):
        assert getattr(harness, name) is getattr(library, name), name
    assert harness.REPO == library.REPO and harness.RESULTS == library.RESULTS
    assert readme.update_readme is library.write_readme_section and readme.README == library.README
