"""``ember train ... --distributed`` under ``mpirun -np 2`` (each rank in a folder of its own, so that anything rank
1 wrote would show), against the same command in one process with the doubled batch; and its usage errors."""

from __future__ import annotations

import gzip
import json
import struct
import sys

import numpy as np
import pytest
from mpi_jobs import explain, needs_mpi, run_mpi_per_rank

from ember.cli.main import main

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
GPT_TINY = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--eval-iters", "2", "--eval-interval", "5", "--warmup-iters", "2", "--no-progress", "--json"]


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 28x28 images whose class is a bright 5x5 block at one of ten positions."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, col = 3 + (c // 5) * 13 + rng.integers(0, 3), 1 + (c % 5) * 5
        images[i, r:r + 5, col:col + 5] = 255
    flip = rng.random(n) < 0.3  # noisy labels: accuracy stays below 100%, so two curves agreeing means something
    labels[flip] = rng.integers(0, 10, int(flip.sum()))
    return images, labels


@pytest.fixture
def mnist_dir(tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name, array in zip(MNIST_FILES, (*synthetic_digits(512, 0), *synthetic_digits(256, 1))):
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    return tmp_path / "data"


def rank_folders(tmp_path):
    folders = [tmp_path / "rank0", tmp_path / "rank1"]
    for folder in folders:
        folder.mkdir()
    return folders


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@needs_mpi
def test_mlp_trains_over_two_ranks_as_one_process_with_the_doubled_batch(tmp_path, mnist_dir, capsys):
    common = ["train", "mlp", "--data-dir", str(mnist_dir), "--no-download", "--epochs", "3", "--json",
              "--no-progress", "--lr", "3e-3"]
    folders = rank_folders(tmp_path)
    command = [sys.executable, "-m", "ember", *common, "--batch-size", "32", "--distributed", "--save",
               "mlp.safetensors", "--log-dir", "logs"]
    proc = run_mpi_per_rank([command, command], folders)
    assert proc.returncode == 0, explain(proc)
    two = records(proc.stdout)
    assert proc.stdout.count("training mlp") == 1  # rank 0 alone prints
    assert "batch 32 per process x 2 processes = 64" in proc.stdout
    summary = two[-1]
    assert summary["event"] == "summary" and summary["processes"] == 2 and summary["global_batch_size"] == 64
    assert sorted(p.name for p in folders[0].iterdir()) == ["logs", "mlp.safetensors"]
    assert list(folders[1].iterdir()) == []  # rank 1 wrote nothing

    assert main([*common, "--batch-size", "64"]) == 0
    one = records(capsys.readouterr().out)
    epochs_two = [r for r in two if r["event"] == "epoch"]
    epochs_one = [r for r in one if r["event"] == "epoch"]
    assert len(epochs_two) == len(epochs_one) == 3
    for a, b in zip(epochs_two, epochs_one):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3)
        assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 2 / 256  # two test images
        assert abs(a["train_accuracy"] - b["train_accuracy"]) <= 2 / 512
    assert epochs_two[-1]["test_accuracy"] > 0.4  # learned (chance: 10%; the noisy labels cap it near 73%)


@needs_mpi
def test_gpt_trains_and_resumes_over_two_ranks_and_only_rank_0_writes(tmp_path, capsys):
    text = tmp_path / "words.txt"
    text.write_text(" ".join(np.random.default_rng(0).choice(["ab", "cd", "ef", "gh"], 2000)), encoding="utf-8")
    folders = rank_folders(tmp_path)
    command = [sys.executable, "-m", "ember", "train", "gpt", "--data", str(text), "--max-iters", "10",
               "--batch-size", "4", "--out", "run", "--distributed", *GPT_TINY]
    proc = run_mpi_per_rank([command, command], folders)
    assert proc.returncode == 0, explain(proc)
    two = records(proc.stdout)
    assert sorted(p.name for p in (folders[0] / "run").iterdir()) == ["log.jsonl", "model.safetensors",
                                                                      "tokenizer.json", "train_state.safetensors"]
    assert list(folders[1].iterdir()) == []
    assert two[-1]["processes"] == 2 and two[-1]["global_batch_size"] == 8

    assert main(["train", "gpt", "--data", str(text), "--max-iters", "10", "--batch-size", "8", "--out",
                 str(tmp_path / "one"), *GPT_TINY]) == 0
    one = records(capsys.readouterr().out)
    evals_two = [(r["iter"], r["train_loss"], r["val_loss"]) for r in two if r["event"] == "eval"]
    evals_one = [(r["iter"], r["train_loss"], r["val_loss"]) for r in one if r["event"] == "eval"]
    assert [e[0] for e in evals_two] == [e[0] for e in evals_one] == [0, 5, 10]
    np.testing.assert_allclose([e[1:] for e in evals_two], [e[1:] for e in evals_one], rtol=1e-5)

    out = str(folders[0] / "run")  # a shared folder: every rank reads it, rank 0 appends
    resume = [sys.executable, "-m", "ember", "train", "gpt", "--resume", "--out", out, "--max-iters", "15",
              "--no-progress", "--json", "--distributed"]
    proc = run_mpi_per_rank([resume, resume], folders)
    assert proc.returncode == 0, explain(proc)
    assert records(proc.stdout)[-1]["iters"] == 15
    logged = [json.loads(line)["iter"] for line in (folders[0] / "run" / "log.jsonl").read_text().splitlines()]
    assert logged.count(15) == 2  # one train record and one eval, written once
    assert list(folders[1].iterdir()) == []


def test_distributed_outside_a_launcher_is_an_error_that_names_mpirun(fresh_world, mnist_dir, capsys):
    status = main(["train", "mlp", "--data-dir", str(mnist_dir), "--epochs", "1", "--distributed", "--no-progress"])
    assert status == 1
    assert "--distributed: this process was not started by an MPI launcher" in capsys.readouterr().err


def test_distributed_function_fits_are_a_usage_error(fresh_world, capsys):
    assert main(["train", "kan", "--task", "sinusoid", "--steps", "2", "--distributed"]) == 2
    assert "--task sinusoid fits a function full-batch in one process" in capsys.readouterr().err


def test_copies_started_by_a_launcher_without_distributed_are_warned(fresh_world, mnist_dir, monkeypatch, capsys):
    monkeypatch.setenv("PMI_SIZE", "2")  # what mpirun -np 2 sets in each copy's environment
    assert main(["train", "mlp", "--data-dir", str(mnist_dir), "--epochs", "1", "--no-progress"]) == 0
    assert "2 copies of this command were started by an MPI launcher and each trains alone" in \
        capsys.readouterr().err
