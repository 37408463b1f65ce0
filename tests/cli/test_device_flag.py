"""``--device`` on every ``ember train`` command and on ``ember elm run``: a run on the GPU-free test double
``cpu:other`` gives the CPU run's numbers (within float32 round-off), checkpoints load on the CPU, and an
unavailable device fails before any work with exit 1 and one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ember
from ember.cli.main import main
from ember.io.checkpoint import load_model, read_checkpoint

FAST = ["--epochs", "1", "--batch-size", "64", "--no-progress", "--json", "--no-download"]
GPT_TINY = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-iters", "2", "--eval-interval", "5", "--warmup-iters", "2", "--no-progress",
            "--json"]


def records(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def assert_same_run(cpu: list[dict], other: list[dict], keys, rel: float = 1e-4) -> None:
    assert len(cpu) == len(other)
    for a, b in zip(cpu, other):
        for key in keys:
            if key in a and a[key] is not None:
                assert b[key] == pytest.approx(a[key], rel=rel, abs=1e-6), (key, a, b)


@pytest.mark.parametrize("argv", [["mlp"], ["lenet"], ["kan", "--dataset", "mnist", "--widths", "784,8,10"]],
                         ids=["mlp", "lenet", "kan-images"])
def test_image_training_on_the_device_matches_the_cpu(argv, data_dir, tmp_path, capsys):
    runs = {}
    for device in ("cpu", "cpu:other"):
        save = tmp_path / f"{device.replace(':', '-')}.safetensors"
        assert main(["train", *argv, "--data-dir", data_dir, *FAST, "--device", device, "--save", str(save)]) == 0
        runs[device] = records(capsys)
    assert runs["cpu:other"][-1]["device"] == "cpu:other" and runs["cpu"][-1]["device"] == "cpu"
    assert_same_run(runs["cpu"], runs["cpu:other"], ("loss", "train_accuracy", "test_accuracy"))
    # the device run's checkpoint holds host arrays and loads on the CPU with the CPU run's weights
    cpu_arrays, _ = read_checkpoint(tmp_path / "cpu.safetensors")
    model, _ = load_model(tmp_path / "cpu-other.safetensors")
    for name, tensor in model.state_dict().items():
        assert tensor.device == ember.device("cpu")
        np.testing.assert_allclose(tensor.numpy(), cpu_arrays[name], rtol=1e-4, atol=1e-5)


def test_kan_function_fitting_on_the_device_matches_the_cpu(capsys):
    runs = {}
    for device in ("cpu", "cpu:other"):  # a grid extension mid-run: the new grid must land on the device too
        assert main(["train", "kan", "--task", "sinusoid", "--steps", "20", "--grid-schedule", "10:8",
                     "--no-progress", "--json", "--device", device]) == 0
        runs[device] = records(capsys)
    assert runs["cpu:other"][-1]["device"] == "cpu:other"
    assert_same_run(runs["cpu"], runs["cpu:other"], ("train_mse", "val_mse", "test_mse"))


def test_gpt_trains_and_resumes_across_devices(text_file, tmp_path, capsys):
    """CPU for 15 iterations straight; the test double for 10, then resumed for 5 more on the test double and,
    from the same saved state, on the CPU: every run logs the same losses."""
    common = ["train", "gpt", "--data", str(text_file), *GPT_TINY, "--lr-decay-iters", "15"]  # one schedule for all
    assert main([*common, "--max-iters", "15", "--out", str(tmp_path / "cpu")]) == 0
    straight = records(capsys)
    assert main([*common, "--max-iters", "10", "--out", str(tmp_path / "dev"), "--device", "cpu:other"]) == 0
    first = records(capsys)
    assert first[-1]["device"] == "cpu:other"
    (tmp_path / "dev2").mkdir()
    for name in ("train_state.safetensors", "model.safetensors", "tokenizer.json", "log.jsonl"):
        (tmp_path / "dev2" / name).write_bytes((tmp_path / "dev" / name).read_bytes())
    resumed = {}
    for folder, device in (("dev", "cpu:other"), ("dev2", "cpu")):
        assert main(["train", "gpt", "--resume", "--out", str(tmp_path / folder), "--max-iters", "15",
                     "--no-progress", "--json", "--device", device]) == 0
        resumed[device] = records(capsys)
        assert resumed[device][-1]["device"] == device
    # rel 5e-3: the CPU runs the compiled kernels (GELU from a polynomial, fused layer norm and softmax), the double
    # the reference ops; their float32 round-off differs, and Adam's normalised steps magnify it on tiny gradients
    keys = ("loss", "train_loss", "val_loss")
    for rest in resumed.values():
        run = [r for r in first + rest if r["event"] != "summary"]
        assert [r["iter"] for r in run] == [r["iter"] for r in straight if r["event"] != "summary"]
        assert_same_run([r for r in straight if r["event"] != "summary"], run, keys, rel=5e-3)
    model, _ = load_model(tmp_path / "dev" / "model.safetensors")  # saved from the device, loads on the CPU
    assert all(t.device == ember.device("cpu") for t in model.state_dict().values())


COMMANDS = {
    "mlp": ["train", "mlp", "--no-download"],
    "lenet": ["train", "lenet", "--no-download"],
    "kan": ["train", "kan", "--task", "sinusoid"],
    "gpt": ["train", "gpt", "--data", "no-such-corpus"],
    "elm": ["elm", "run", "dense4096", "--no-download"],
}


@pytest.mark.skipif(ember.cuda_available(), reason="a GPU is present, so --device cuda works here")
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cuda_without_a_gpu_fails_before_any_work(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a run that started would write out-*/ or a dataset here
    assert main([*COMMANDS[command], "--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda" in err[0] and ("CuPy" in err[0] or "GPU" in err[0]), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_misspelt_device_is_a_usage_error(command, capsys):
    assert main([*COMMANDS[command], "--device", "tpu"]) == 2
    assert "--device: ember.device: unknown device 'tpu'" in capsys.readouterr().err
