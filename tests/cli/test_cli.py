"""The ``ember`` command: usage errors, gradcheck, sanity, and train -> eval on a tiny synthetic MNIST."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ember.cli.main import main
from ember.io.checkpoint import read_checkpoint, save_checkpoint
from ember.models import MLP

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, then the bytes."""
    assert array.dtype == np.uint8
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def synthetic_digits(n: int, seed: int, label_noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 28x28 images whose class is a bright 5x5 block at one of ten positions (two rows of five).

    A fraction ``label_noise`` of the labels is then redrawn at random, so a perfect model scores
    about 1 - 0.9·label_noise, not 100%, and two evaluations agreeing means something.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, col = 3 + (c // 5) * 13, 1 + (c % 5) * 5
        r += rng.integers(0, 3)  # a little jitter, so it is not a lookup table
        images[i, r : r + 5, col : col + 5] = 255
    flip = rng.random(n) < label_noise
    labels[flip] = rng.integers(0, 10, int(flip.sum()))
    return images, labels


def write_mnist(root: Path, n_train: int = 512, n_test: int = 256) -> Path:
    folder = root / "mnist"
    folder.mkdir(parents=True)
    train, test = synthetic_digits(n_train, seed=0), synthetic_digits(n_test, seed=1, label_noise=0.3)
    for name, array in zip(MNIST_FILES, (*train, *test)):
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
    return root


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """No dataset anywhere but where the test puts it: $EMBER_DATA, the cache and the system folder are empty."""
    import ember.data.registry as registry

    empty_env, cache = tmp_path / "env-data", tmp_path / "cache"
    empty_env.mkdir()
    monkeypatch.setenv("EMBER_DATA", str(empty_env))
    monkeypatch.setenv("EMBER_CACHE_DIR", str(cache))
    monkeypatch.setattr(registry, "SYSTEM_DIR", tmp_path / "system-datasets")
    return {"env": empty_env, "cache": cache, "system": tmp_path / "system-datasets"}


@pytest.fixture
def mnist_root(tmp_path, isolated_data):
    return write_mnist(tmp_path / "data")


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ember.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


# ----------------------------------------------------------------------------- usage errors


BAD_ARGS = {
    "no_command": [],
    "unknown_command": ["frobnicate"],
    "unknown_model": ["train", "resnet"],
    "no_model": ["train"],
    "zero_epochs": ["train", "mlp", "--epochs", "0"],
    "negative_lr": ["train", "mlp", "--lr", "-1"],
    "zero_lr": ["train", "lenet", "--lr", "0"],
    "text_batch_size": ["train", "mlp", "--batch-size", "many"],
    "unknown_dataset": ["train", "mlp", "--dataset", "imagenet"],
    "unknown_eval_dataset": ["eval", "x.safetensors", "--dataset", "cifar100"],
    "eval_without_checkpoint": ["eval"],
    "negative_seed": ["sanity", "--seed", "-3"],
    "sanity_unknown_model": ["sanity", "--model", "gpt"],
}


@pytest.mark.parametrize("argv", BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: ember" in err and "error:" in err


@pytest.mark.parametrize("argv, says", [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["train", "resnet"], "invalid choice: 'resnet'"),
    (["train", "mlp", "--epochs", "0"], "expected a positive integer, got 0"),
    (["train", "mlp", "--lr", "-1"], "expected a positive number, got -1.0"),
    (["train", "mlp", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
], ids=["unknown_command", "unknown_model", "zero_epochs", "negative_lr", "unknown_dataset"])
def test_bad_arguments_real_exit_status(tmp_path, argv, says):
    result = run_cli(*argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert result.stdout == ""


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "eval", "sanity", "gradcheck"):
        assert command in out


# ----------------------------------------------------------------------------- gradcheck, sanity


def test_gradcheck_filter_conv(capsys):
    assert main(["gradcheck", "--filter", "conv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    header, rows, footer = lines[0], lines[1:-1], lines[-1]
    assert header.split()[:2] == ["kind", "name"] and "status" in header
    assert rows, "no rows printed"
    for row in rows:
        fields = row.split()
        assert "conv" in fields[1] and fields[-1] == "ok", row
        assert float(fields[2]) < 1e-5  # max abs error
    assert footer == f"{len(rows)}/{len(rows)} passed"


def test_gradcheck_json_and_no_match(capsys):
    assert main(["gradcheck", "--filter", "conv2d", "--json"]) == 0
    records = json_lines(capsys.readouterr().out)
    assert records and all(r["ok"] and "conv2d" in r["name"] for r in records)
    assert main(["gradcheck", "--filter", "no-such-op-anywhere"]) == 1
    assert "no op or layer matches 'no-such-op-anywhere'" in capsys.readouterr().out


def test_sanity_ok(capsys):
    assert main(["sanity", "--steps", "100"]) == 0
    out = capsys.readouterr().out
    (record,) = json_lines(out)
    assert record["event"] == "sanity" and record["ok"] is True
    assert record["accuracy"] == 1.0 and 1 <= record["steps"] <= 100
    assert "memorised" in out


def test_sanity_fails_when_budget_too_small(capsys):
    assert main(["sanity", "--steps", "1", "--lr", "1e-6"]) == 1
    (record,) = json_lines(capsys.readouterr().out)
    assert record["ok"] is False and record["steps"] == 1


# ----------------------------------------------------------------------------- train -> eval


def test_train_then_eval_on_synthetic_mnist(mnist_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "ckpt.safetensors"
    status = main(["train", "mlp", "--data-dir", str(mnist_root), "--epochs", "2", "--batch-size", "32",
                   "--no-download", "--no-progress", "--save", str(ckpt), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    out = captured.out
    assert "512 train / 256 test images" in out
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
    records = json_lines(out)
    epochs = [r for r in records if r.get("event") == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    summary = records[-1]
    assert out.strip().splitlines()[-1].startswith("{")  # the summary is the last line
    assert summary["event"] == "summary" and summary["epochs"] == 2 and summary["model"] == "mlp"
    assert summary["test_accuracy"] == pytest.approx(epochs[-1]["test_accuracy"], abs=1e-6)
    assert 0.6 < summary["test_accuracy"] < 0.95  # learnable (chance is 0.1), capped by the noisy test labels
    assert summary["checkpoint"] == str(ckpt)
    assert ckpt.is_file()
    _, meta = read_checkpoint(ckpt)
    assert meta["model"] == "mlp" and meta["extra"]["dataset"] == "mnist" and meta["extra"]["epochs"] == 2
    assert len(meta["extra"]["normalization"]["mean"]) == 1

    assert main(["eval", str(ckpt), "--data-dir", str(mnist_root), "--no-download"]) == 0
    out = capsys.readouterr().out
    (record,) = json_lines(out)
    assert record["event"] == "eval" and record["model"] == "mlp" and record["checkpoint"] == str(ckpt)
    assert record["test_accuracy"] == summary["test_accuracy"]
    assert f"accuracy {summary['test_accuracy']:.2%}" in out


def test_eval_real_exit_status(mnist_root, tmp_path, isolated_data):
    """The installed entry point in a fresh process: exit 0 for a good checkpoint, 1 for a missing one."""
    ckpt = save_checkpoint(tmp_path / "untrained.safetensors", MLP())
    env = {"EMBER_DATA": str(isolated_data["env"]), "EMBER_CACHE_DIR": str(isolated_data["cache"])}
    good = run_cli("eval", str(ckpt), "--data-dir", str(mnist_root), "--no-download", cwd=tmp_path, env=env)
    assert good.returncode == 0, good.stderr
    (record,) = json_lines(good.stdout)
    assert 0.0 <= record["test_accuracy"] <= 1.0
    gone = run_cli("eval", str(tmp_path / "gone.safetensors"), "--data-dir", str(mnist_root), cwd=tmp_path, env=env)
    assert gone.returncode == 1
    assert str(tmp_path / "gone.safetensors") in gone.stderr and "Traceback" not in gone.stderr


# ----------------------------------------------------------------------------- missing or broken files


def test_train_without_data_returns_1_and_lists_folders(tmp_path, isolated_data, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    status = main(["train", "mlp", "--data-dir", str(empty), "--no-download", "--epochs", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert status == 1
    err = captured.err
    assert err.startswith("ember train: error: ")
    assert "cannot find train-images-idx3-ubyte" in err
    for folder in (empty / "mnist", empty, isolated_data["cache"] / "mnist", isolated_data["system"] / "mnist"):
        assert f"  {folder}\n" in err, f"{folder} not listed in:\n{err}"
    assert str(isolated_data["env"]) not in err  # an explicit --data-dir replaces $EMBER_DATA
    assert "Downloading is disabled" in err
    assert not isolated_data["cache"].exists() or not any(isolated_data["cache"].rglob("*"))  # nothing fetched


@pytest.mark.parametrize("content", [None, b"", b"not a safetensors file at all", "truncated"],
                         ids=["missing", "empty", "garbage", "truncated"])
def test_eval_of_missing_or_corrupt_checkpoint_returns_1(tmp_path, mnist_root, capsys, content):
    path = tmp_path / "model.safetensors"
    if content == "truncated":
        save_checkpoint(path, MLP())
        path.write_bytes(path.read_bytes()[:1000])
    elif content is not None:
        path.write_bytes(content)
    status = main(["eval", str(path), "--data-dir", str(mnist_root), "--no-download"])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.startswith("ember eval: error: ")
    assert str(path) in captured.err
    assert captured.out == ""
