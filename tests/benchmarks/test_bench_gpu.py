"""benchmarks/bench_gpu.py without a GPU: its budget arithmetic, its timing rounds, and a dry run of every part.

The GPU run happens once, on a lent machine, inside a hard time limit; whatever breaks there is lost.
So the dry run here goes through every part end to end on ``cpu:other`` (the test double that refuses
host arrays as a GPU does, so a batch left on the host fails here too), on a tiny made-up MNIST and
Shakespeare, and checks the JSON the owner will read; and a run stopped by SIGTERM must leave the
parts it finished and no child process behind.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCH / "bench_gpu.py"
sys.path.insert(0, str(BENCH))
bench_gpu = pytest.importorskip("bench_gpu")
pytest.importorskip("torch", reason="the benchmark's rival is PyTorch")

N_TRAIN, N_TEST = 300, 100  # the made-up MNIST: fewer images than the dry run's subsets, so all are used


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as MNIST ships it (gzipped): magic (0, 0, uint8 type 0x08, ndim), big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """mnist/ with N_TRAIN + N_TEST random images and tinyshakespeare/input.txt with a few kB of text."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    (root / "mnist").mkdir()
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    (root / "tinyshakespeare").mkdir()
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis", "nobler", "in", "mind"]
    lines = [" ".join(rng.choice(words, 8)).capitalize() + "." for _ in range(400)]
    (root / "tinyshakespeare" / "input.txt").write_text("\n".join(lines) + "\n")
    return root


def bench_command(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--device", "cpu:other", "--quick", "--data-dir", str(data_dir),
            "--out", str(out), *extra]


def bench_env() -> dict:
    root = str(BENCH.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


# -- the budget and the rounds ----------------------------------------------------------------------------------
def test_each_part_gets_its_weight_of_the_time_left_when_it_starts(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(bench_gpu.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(bench_gpu, "STARTED", 100.0)
    budget = bench_gpu.Budget(200.0, ["mlp", "elm", "gpt"])  # weights 0.15, 0.25, 0.45 of 0.85
    assert budget.claim("mlp") == pytest.approx(100.0 + 200.0 * 0.15 / 0.85)
    clock[0] = 110.0  # mlp used 10 s of its ~35: elm's share is of the 190 s now left
    assert budget.claim("elm") == pytest.approx(110.0 + 190.0 * 0.25 / 0.70)
    clock[0] = 150.0
    assert budget.claim("gpt") == pytest.approx(300.0)  # the last part takes all that is left
    clock[0] = 400.0
    assert budget.left() == 0.0


def test_rounds_stop_at_the_deadline_but_never_below_the_minimum():
    calls = {"a": 0, "b": 0}
    rounds = {name: (lambda n=name: calls.__setitem__(n, calls[n] + 1)) for name in calls}
    sync = {name: (lambda: None) for name in calls}
    size = {"min_rounds": 2, "max_rounds": 5}
    past = bench_gpu.interleaved_rounds(rounds, sync, size, deadline=time.perf_counter() - 1)
    assert calls == {"a": 2, "b": 2} and all(len(t) == 2 for t in past.per_round.values())
    far = bench_gpu.interleaved_rounds(rounds, sync, size, deadline=time.perf_counter() + 3600)
    assert calls == {"a": 7, "b": 7} and all(len(t) == 5 for t in far.per_round.values())


def test_eval_batches_fit_the_time_and_stay_within_bounds():
    # 30 ms per iteration: a forward is about 10 ms, two splits: 20 ms per evaluation batch
    assert bench_gpu.eval_batches_that_fit(30.0, 2.0, (20, 200)) == 100
    assert bench_gpu.eval_batches_that_fit(30.0, 0.01, (20, 200)) == 20
    assert bench_gpu.eval_batches_that_fit(30.0, 60.0, (20, 200)) == 200


def test_unknown_parts_are_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        bench_gpu.parse_args(["--parts", "mlp,kan"])
    assert "unknown ['kan']" in capsys.readouterr().err


def test_a_dry_run_may_not_write_the_readme(capsys):
    with pytest.raises(SystemExit):
        bench_gpu.parse_args(["--device", "cpu", "--quick", "--update-readme"])
    assert "a dry run's figures are no result" in capsys.readouterr().err


def test_an_unusable_device_is_named_and_nothing_is_measured(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "tpu", "--out", str(out)], capture_output=True,
                          text=True, timeout=120, env=bench_env())
    assert proc.returncode == 2 and "--device tpu" in proc.stdout and "unknown device" in proc.stdout
    assert not out.exists()


# -- the dry run -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dry_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "gpu.json"
    proc = subprocess.run(bench_command(data_dir, out, "--budget-s", "150"), capture_output=True, text=True,
                          timeout=300, env=bench_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), out, proc.stdout


def assert_timed_pair(part: dict, unit: str) -> None:
    """Both contenders timed, and the reported ratio is the median of the per-round ratios."""
    times = part[unit]
    assert set(times) == {"ember", "torch"} and min(times.values()) > 0
    assert part["rounds"] >= 2 and len(part["step_ratios"]) == part["rounds"]
    assert part["step_ratio_median"] == pytest.approx(float(np.median(part["step_ratios"])), abs=2e-3)
    assert min(part["first_step_s"].values()) > 0


@pytest.mark.parametrize("kind", ["mlp", "lenet"])
def test_dry_run_mnist_parts_time_steps_and_train_an_epoch_from_the_same_weights(dry_run, kind):
    report = dry_run[0]
    part = report["results"][kind]
    assert "error" not in part, part.get("error")
    assert_timed_pair(part, "ms_per_step")
    assert part["train_examples"] == N_TRAIN and part["test_examples"] == N_TEST
    assert part["epoch_steps"] == math.ceil(N_TRAIN / part["batch_size"])
    accuracy = part["test_accuracy"]
    # same initial weights, same batches, same optimizer: the two differ by rounding, not by a training run
    assert abs(accuracy["ember"] - accuracy["torch"]) <= 2 / N_TEST
    # the ratio comes from the unrounded seconds, the JSON's seconds are rounded to 0.01: bound it by that rounding
    ember_s, torch_s = part["seconds_per_epoch"]["ember"], part["seconds_per_epoch"]["torch"]
    low, high = (ember_s - 0.005) / (torch_s + 0.005), (ember_s + 0.005) / max(torch_s - 0.005, 1e-9)
    assert low - 1e-3 <= part["epoch_ratio"] <= high + 1e-3


def test_dry_run_gpt_part_times_iterations_and_trains_to_its_planned_end(dry_run, data_dir):
    gpt = dry_run[0]["results"]["gpt"]
    assert "error" not in gpt, gpt.get("error")
    assert_timed_pair(gpt, "ms_per_iter")
    tokens = gpt["recipe"]["batch_size"] * gpt["recipe"]["block_size"]
    for name, ms in gpt["ms_per_iter"].items():
        assert gpt["tokens_per_s"][name] == pytest.approx(tokens / (ms / 1e3), rel=0.01)
    assert gpt["recipe"]["dropout"] == 0.2 and gpt["recipe"]["max_iters"] == 5000
    assert "does not exist yet" in gpt["code_model"]
    training = gpt["training"]
    assert training["iters_done"] == training["planned_iters"] == training["lr_decay_iters"] > 0
    assert not training["stopped_by_budget"]
    vocab = len(set((data_dir / "tinyshakespeare" / "input.txt").read_text()))
    # a small-init GPT starts near uniform, ln(vocab); 20 warm-up iterations must not make it worse than that
    assert 0 < training["val_loss"] < math.log(vocab) + 0.1
    assert "5000" in training["note"]


def test_dry_run_elm_part_runs_on_the_requested_device(dry_run):
    elm = dry_run[0]["results"]["elm"]
    assert "error" not in elm, elm.get("error")
    assert elm["device"] == "cpu:other" and elm["experiment"] == bench_gpu.QUICK_ELM
    assert elm["train_examples"] == N_TRAIN and elm["test_examples"] == N_TEST
    assert 0.0 <= elm["test_accuracy"] <= 1.0 and "activations" not in elm


def test_dry_run_report_is_complete_and_its_table_names_every_part(dry_run):
    report, out, stdout = dry_run
    assert report["complete"] and report["device"] == "cpu:other" and report["gpu"] is None
    assert report["parts"] == ["mlp", "lenet", "elm", "gpt"] and report["elapsed_s"] < 150
    table = out.with_suffix(".md").read_text()
    for label in ("MLP ms per step", "LeNet-5 seconds per MNIST epoch", "GPT ms per iteration", "GPT val loss",
                  "forward-only hebbian2048"):
        assert label in table and label in stdout


# -- a stopped run -----------------------------------------------------------------------------------------------
def test_sigterm_keeps_finished_parts_and_leaves_no_child(data_dir, tmp_path):
    """Stopped while the forward-only child runs (pca-conv-rp takes minutes on a CPU), the run saves the MLP's
    results, says it was interrupted, exits 1, and takes the child down with it."""
    out = tmp_path / "gpu.json"
    cmd = bench_command(data_dir, out, "--parts", "mlp,elm", "--elm-experiment", "pca-conv-rp", "--budget-s", "600")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=bench_env())
    try:
        for line in proc.stdout:
            if "elm: start" in line:
                break
        time.sleep(3.0)  # the child is importing or fitting by now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 1
    finally:
        proc.kill()
        proc.wait()
    report = json.loads(out.read_text())
    assert "SIGTERM" in report["interrupted"] or "15" in report["interrupted"]
    assert not report["complete"] and "ms_per_step" in report["results"]["mlp"]
    children = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    assert not [c for c in children.splitlines() if "--elm-child" in c and str(data_dir) in c]
