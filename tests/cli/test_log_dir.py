"""``--log-dir`` and ``--plot`` on every ``ember train`` command: the event files read back by TensorBoard's reader
hold the tags and steps of the run with the values it printed, the CSV the same values, the plot is a PNG, and a
GPT run interrupted and resumed with the same --log-dir shows every iteration once."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from ember.cli.main import main
from ember.io.jsonl import read_jsonl
from ember.train.lm import LMTrainer
from ember.train.scalars import CSV_FILE, EVENTS_PREFIX, read_scalars_csv

IMAGES = ["--batch-size", "32", "--no-progress", "--json", "--no-download"]
GPT_TINY = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-iters", "2", "--eval-interval", "5", "--warmup-iters", "2", "--no-progress",
            "--log-interval", "1", "--json"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAIN_IMAGES = 512  # write_mnist's default


def printed(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator.EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def csv_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for row in read_scalars_csv(folder / CSV_FILE):
        out.setdefault(row.tag, []).append((row.step, row.value))
    return out


def assert_logged(folder, expected: dict[str, list[tuple[int, float]]]) -> None:
    """The CSV holds exactly ``expected``; TensorBoard's reader the same tags and steps, values as float32."""
    assert csv_scalars(folder) == expected
    as_float32 = {tag: [(s, float(np.float32(v))) for s, v in points] for tag, points in expected.items()}
    assert tensorboard_scalars(folder) == as_float32


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000, f"{path} is not a PNG"


def cosine_lr(base: float, step: int, total: int) -> float:
    """CosineAnnealingLR's rate at ``step`` (eta_min 0), from its formula."""
    return base * 0.5 * (1.0 + math.cos(math.pi * step / total))


@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_image_classifier_logs_every_epoch_and_plots(model, data_dir, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("matplotlib")
    logs, plot = tmp_path / "logs", tmp_path / "curves.png"
    epochs = 2 if model == "mlp" else 1
    assert main(["train", model, "--data-dir", data_dir, "--epochs", str(epochs), *IMAGES, "--log-dir", str(logs),
                 "--plot", str(plot)]) == 0
    records = [r for r in printed(capsys) if r["event"] == "epoch"]
    batches = TRAIN_IMAGES // 32  # per epoch; the cosine decays over every batch of the run
    expected = {
        "train/loss": [(r["epoch"], r["loss"]) for r in records],
        "train/accuracy": [(r["epoch"], r["train_accuracy"]) for r in records],
        "test/accuracy": [(r["epoch"], r["test_accuracy"]) for r in records],
    }
    assert_logged(logs, {**expected, **{tag: csv_scalars(logs)[tag] for tag in
                                        ("lr", "throughput/samples_per_s", "grad_norm")}})
    logged = csv_scalars(logs)
    for e, r in enumerate(records, 1):  # the last step of epoch e was step e * batches - 1 of the schedule
        assert logged["lr"][e - 1] == (e, pytest.approx(cosine_lr(1e-3, e * batches - 1, epochs * batches)))
        assert logged["throughput/samples_per_s"][e - 1] == (e, pytest.approx(TRAIN_IMAGES / r["seconds"]))
        step, norm = logged["grad_norm"][e - 1]
        assert step == e and 0 < norm < 1e3
    assert_png(plot)


def test_kan_that_clips_logs_no_gradient_norm_and_one_that_does_not_logs_it(data_dir, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    base = ["train", "kan", "--dataset", "mnist", "--widths", "784,4,10", "--data-dir", data_dir, "--epochs", "1",
            *IMAGES]
    assert main([*base, "--log-dir", str(tmp_path / "clipped")]) == 0  # --grad-clip 1.0 by default
    (record,) = [r for r in printed(capsys) if r["event"] == "epoch"]
    logged = tensorboard_scalars(tmp_path / "clipped")
    assert sorted(logged) == ["lr", "test/accuracy", "throughput/samples_per_s", "train/accuracy", "train/loss"]
    assert logged["train/loss"] == [(1, float(np.float32(record["loss"])))]
    assert main([*base, "--grad-clip", "0", "--log-dir", str(tmp_path / "unclipped")]) == 0
    capsys.readouterr()
    assert [step for step, _ in tensorboard_scalars(tmp_path / "unclipped")["grad_norm"]] == [1]


def test_kan_function_fitting_logs_each_logged_step(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("matplotlib")
    logs, plot = tmp_path / "logs", tmp_path / "fit.png"
    assert main(["train", "kan", "--task", "sinusoid", "--steps", "40", "--json", "--no-progress",
                 "--log-dir", str(logs), "--plot", str(plot)]) == 0
    entries = [r for r in printed(capsys) if r["event"] == "log"]
    assert [e["step"] for e in entries] == list(range(4, 41, 4))
    expected = {"train/mse": [(e["step"], e["train_mse"]) for e in entries],
                "val/mse": [(e["step"], e["val_mse"]) for e in entries],
                "lr": [(e["step"], e["lr"]) for e in entries]}
    throughput = csv_scalars(logs)["throughput/steps_per_s"]
    assert [step for step, _ in throughput] == list(range(4, 41, 4)) and all(v > 0 for _, v in throughput)
    assert_logged(logs, {**expected, "throughput/steps_per_s": throughput})
    assert_png(plot)


def test_gpt_interrupted_then_resumed_with_the_same_log_dir_shows_every_iteration_once(tmp_path, text_file, capsys,
                                                                                       monkeypatch):
    pytest.importorskip("tensorboardX")
    pytest.importorskip("matplotlib")
    out, logs, plot = tmp_path / "run", tmp_path / "logs", tmp_path / "curves.png"
    train_step = LMTrainer.train_step

    def interrupted_after_7(self, batches=None):
        if self.iter == 7:
            raise KeyboardInterrupt
        return train_step(self, batches)

    monkeypatch.setattr(LMTrainer, "train_step", interrupted_after_7)
    argv = ["train", "gpt", "--data", str(text_file), "--out", str(out), "--log-dir", str(logs), *GPT_TINY]
    assert main([*argv, "--max-iters", "10", "--grad-clip", "0"]) == 130  # saved at 5, logged up to 7
    assert [step for step, _ in csv_scalars(logs)["train/loss"]] == [1, 2, 3, 4, 5, 6, 7]
    monkeypatch.undo()
    capsys.readouterr()

    assert main(["train", "gpt", "--resume", "--out", str(out), "--max-iters", "10", "--log-interval", "1",
                 "--no-progress", "--log-dir", str(logs), "--plot", str(plot)]) == 0
    log = read_jsonl(out / "log.jsonl")  # the trainer's own log: 6 and 7 dropped at the resume, then logged again
    train = [r for r in log if r["event"] == "train"]
    evals = [r for r in log if r["event"] == "eval"]
    assert [r["iter"] for r in train] == list(range(1, 11)) and [r["iter"] for r in evals] == [0, 5, 10]
    logged = csv_scalars(logs)
    assert [step for step, _ in logged["grad_norm"]] == list(range(1, 11))  # --grad-clip 0: the meter measures it
    expected = {
        "train/loss": [(r["iter"], r["loss"]) for r in train],
        "lr": [(r["iter"], r["lr"]) for r in train],
        "throughput/tokens_per_s": [(r["iter"], r["tokens_per_s"]) for r in train],
        "grad_norm": logged["grad_norm"],
        "train/eval_loss": [(r["iter"], r["train_loss"]) for r in evals],
        "val/loss": [(r["iter"], r["val_loss"]) for r in evals],
    }
    assert_logged(logs, expected)
    assert len(list(logs.glob(EVENTS_PREFIX + "*"))) == 2  # one file per run; the reader purged the first's 6, 7
    assert_png(plot)


def test_gpt_that_clips_logs_the_trainers_gradient_norm_before_clipping(tmp_path, text_file, capsys):
    pytest.importorskip("tensorboardX")
    logs = tmp_path / "logs"
    assert main(["train", "gpt", "--data", str(text_file), "--out", str(tmp_path / "run"), "--max-iters", "3",
                 "--log-interval", "1", "--log-dir", str(logs), *GPT_TINY]) == 0  # --grad-clip 1.0 by default
    capsys.readouterr()
    assert sorted(tensorboard_scalars(logs)) == ["grad_norm", "lr", "throughput/tokens_per_s", "train/eval_loss",
                                                 "train/loss", "val/loss"]
    train = [r for r in read_jsonl(tmp_path / "run" / "log.jsonl") if r["event"] == "train"]
    assert [(r["iter"], r["grad_norm"]) for r in train] == csv_scalars(logs)["grad_norm"]
    assert all(r["grad_norm"] > 0 for r in train)


def test_without_tensorboardx_the_run_writes_the_csv_and_warns_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    logs = tmp_path / "logs"
    assert main(["train", "kan", "--task", "sinusoid", "--steps", "20", "--no-progress", "--log-dir", str(logs)]) == 0
    err = capsys.readouterr().err
    assert err.count("ember: warning:") == 1
    assert "tensorboardX is not installed" in err and "pip install 'ember[tensorboard]'" in err
    assert sorted(p.name for p in logs.iterdir()) == [CSV_FILE]
    assert [step for step, _ in csv_scalars(logs)["train/mse"]] == list(range(2, 21, 2))


def test_plot_without_matplotlib_fails_before_training_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    logs = tmp_path / "logs"
    assert main(["train", "kan", "--task", "sinusoid", "--steps", "20", "--no-progress", "--log-dir", str(logs),
                 "--plot", str(tmp_path / "c.png")]) == 1
    captured = capsys.readouterr()
    assert "--plot: plotting training curves needs matplotlib: pip install 'ember[plot]'" in captured.err
    assert "fitting" not in captured.out and not logs.exists()  # nothing ran, nothing was written


@pytest.mark.parametrize(("flag", "value", "status", "says"), [
    ("--plot", "curves.pdf", 2, "--plot curves.pdf: expected a path ending in .png"),
    ("--log-dir", "a-file", 1, "a-file: exists and is not a directory"),
], ids=["plot-not-png", "log-dir-is-a-file"])
def test_bad_log_arguments_are_refused_before_training(flag, value, status, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    assert main(["train", "kan", "--task", "sinusoid", "--steps", "20", "--no-progress", flag, value]) == status
    captured = capsys.readouterr()
    assert says in captured.err and "fitting" not in captured.out
