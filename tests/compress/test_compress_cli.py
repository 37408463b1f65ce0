"""``ember compress``: each method on a small synthetic MNIST (and a tiny GPT), the table and JSON it prints, the
checkpoint it writes that ``ember eval`` and ``load_model`` read, and its one-line errors."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

import ember
from ember.cli.main import main
from ember.compress import QuantizedLinear, count_macs
from ember.io import load_model, read_checkpoint

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 noise with a bright 5x5 block whose position is the class (easy to learn in one epoch)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        r, col = 3 + (c // 5) * 13, 1 + (c % 5) * 5
        images[i, r : r + 5, col : col + 5] = 255
    return images, labels


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "mnist"
    folder.mkdir()
    for name, array in zip(MNIST_FILES, (*synthetic_digits(384, 0), *synthetic_digits(128, 1))):
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (folder / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    return root


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_root):
    """An MLP and a LeNet-5 trained for an epoch on the synthetic digits: {name: checkpoint path}."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for model in ("mlp", "lenet"):
        paths[model] = folder / f"{model}.safetensors"
        assert main(["train", model, "--data-dir", str(mnist_root), "--no-download", "--epochs", "1",
                     "--batch-size", "32", "--no-progress", "--save", str(paths[model])]) == 0
    return paths


def compress(capsys, mnist_root, *args: str) -> tuple[dict, str]:
    """Run ``ember compress`` in-process; returns its JSON summary and its text."""
    status = main(["compress", *args, "--data-dir", str(mnist_root), "--no-download", "--json", "--timing-rounds",
                   "2", "--batch-size", "32"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    record = json.loads(captured.out.strip().splitlines()[-1])
    assert record["event"] == "compress"
    return record, captured.out


def eval_accuracy(capsys, mnist_root, path) -> float:
    assert main(["eval", str(path), "--data-dir", str(mnist_root), "--no-download"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["test_accuracy"]


def test_quantize_writes_a_4x_smaller_checkpoint_that_eval_reads(trained, mnist_root, tmp_path, capsys):
    out = tmp_path / "mlp-int8.safetensors"
    record, text = compress(capsys, mnist_root, str(trained["mlp"]), "--quantize", "int8", "--out", str(out),
                            "--calibration-batches", "2")
    before, after = record["before"], record["after"]
    assert after["bytes"] == out.stat().st_size and before["bytes"] == trained["mlp"].stat().st_size
    assert before["bytes"] / after["bytes"] > 3.9
    assert "(3.9" in text and "x smaller)" in text and "test accuracy" in text.splitlines()[0]
    assert abs(after["test_accuracy"] - before["test_accuracy"]) <= 0.02
    assert eval_accuracy(capsys, mnist_root, out) == after["test_accuracy"]
    model, meta = load_model(out)
    assert isinstance(model.net[1], QuantizedLinear) and model.net[1].input_quantized
    assert meta["extra"]["dataset"] == "mnist" and "int8" in meta["extra"]["compressed"]["method"]


def test_unstructured_pruning_keeps_a_tenth_of_the_weights(trained, mnist_root, tmp_path, capsys):
    out = tmp_path / "mlp-pruned.safetensors"
    record, _ = compress(capsys, mnist_root, str(trained["mlp"]), "--prune", "0.9", "--rounds", "2", "--out", str(out))
    model, _ = load_model(out)
    linear = [m.weight.numpy() for m in model.net if hasattr(m, "weight")]
    zeros = sum(int((w == 0).sum()) for w in linear)
    assert zeros == round(0.9 * sum(w.size for w in linear))  # held through the fine-tuning
    assert record["after"]["nonzero"] == record["before"]["nonzero"] - zeros
    assert eval_accuracy(capsys, mnist_root, out) == record["after"]["test_accuracy"]


def test_structured_pruning_of_lenet_writes_a_narrower_model(trained, mnist_root, tmp_path, capsys):
    out = tmp_path / "lenet-small.safetensors"
    record, _ = compress(capsys, mnist_root, str(trained["lenet"]), "--prune", "0.5", "--structured", "--out",
                         str(out))
    model, _ = load_model(out)
    assert model.conv1.out_channels == 3 and model.conv2.weight.shape == (8, 3, 5, 5) and model.fc1.in_features == 200
    assert record["after"]["macs_per_sample"] == count_macs(model, ember.zeros(1, 1, 28, 28))
    assert record["after"]["macs_per_sample"] < record["before"]["macs_per_sample"] / 2
    assert eval_accuracy(capsys, mnist_root, out) == record["after"]["test_accuracy"]


def test_distillation_into_a_new_small_mlp(trained, mnist_root, tmp_path, capsys):
    out = tmp_path / "student.safetensors"
    record, text = compress(capsys, mnist_root, "--distill-from", str(trained["lenet"]), "--student-hidden", "16",
                            "--epochs", "2", "--out", str(out))
    assert set(record) >= {"teacher", "after"} and "student_before" not in record
    model, meta = load_model(out)
    assert model.config.sizes == (784, 16, 10) and meta["extra"]["distilled_from"] == str(trained["lenet"])
    assert record["after"]["weights"] < record["teacher"]["weights"] / 4
    assert record["after"]["test_accuracy"] > 0.5  # learnable digits (chance: 0.1)
    assert eval_accuracy(capsys, mnist_root, out) == record["after"]["test_accuracy"]
    rows = [line.split()[0] for line in text.splitlines() if line.startswith(("teacher", "student", "before", "after"))]
    assert rows == ["teacher", "after"]


def test_distillation_continues_a_given_student(trained, mnist_root, tmp_path, capsys):
    out = tmp_path / "mlp-distilled.safetensors"
    record, _ = compress(capsys, mnist_root, str(trained["mlp"]), "--distill-from", str(trained["lenet"]),
                         "--epochs", "1", "--out", str(out))
    assert record["student_before"]["file"] == str(trained["mlp"])
    _, meta = read_checkpoint(out)
    assert meta["model"] == "mlp"


@pytest.mark.parametrize("args, says", [
    (["--prune", "0.5", "--structured", "--quantize", "int8"], "not allowed with argument"),
    (["--quantize", "int8", "--structured"], "--structured applies to pruning"),
    (["--distill-from", "t.safetensors", "--student-hidden", "8"], "not both"),
    (["--quantize", "int8", "--student-hidden", "8"], "--student-hidden applies to distillation"),
    (["--prune", "1.0"], "expected a number in [0, 1)"),
])
def test_usage_errors_exit_2_and_write_nothing(trained, tmp_path, capsys, args, says):
    try:
        status = main(["compress", str(trained["mlp"]), *args, "--out", str(tmp_path / "x.safetensors")])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


def test_a_checkpoint_that_is_missing_is_one_line(tmp_path, capsys):
    status = main(["compress", str(tmp_path / "nothing.safetensors"), "--quantize", "int8", "--out",
                   str(tmp_path / "x.safetensors")])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "no such checkpoint" in err


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt")
    corpus = root / "words.txt"
    corpus.write_text(" ".join(np.random.default_rng(0).choice(["ab", "cd", "ef", "gh\n"], 2000)), encoding="utf-8")
    out = root / "run"
    assert main(["train", "gpt", "--data", str(corpus), "--tokenizer", "char", "--out", str(out), "--max-iters", "4",
                 "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--no-progress"]) == 0
    return out


def test_gpt_quantized_into_a_folder_that_eval_reads(gpt_run, tmp_path, capsys):
    out = tmp_path / "int8"
    assert main(["compress", str(gpt_run), "--quantize", "int8", "--out", str(out), "--json", "--timing-rounds",
                 "1"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors", "tokenizer.json"]
    assert abs(record["after"]["val_loss"] - record["before"]["val_loss"]) < 0.05
    model, meta = load_model(out / "model.safetensors")
    assert isinstance(model.transformer["h"][0].mlp.c_fc, QuantizedLinear)
    assert not model.transformer["h"][0].mlp.c_fc.input_quantized  # weights only: decoding reads them directly
    assert record["method"] == meta["extra"]["compressed"]["method"] == "int8 (weights)"
    assert main(["eval", str(out)]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["loss"] == pytest.approx(record["after"]["val_loss"], abs=1e-6)


def test_gpt_cannot_be_pruned(gpt_run, tmp_path, capsys):
    status = main(["compress", str(gpt_run), "--prune", "0.5", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status == 1 and "a GPT model; it can be quantized (--quantize int8), not pruned" in err
