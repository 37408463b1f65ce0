"""The ``ember`` command under bad input: nothing lost, nothing silent, one line naming the problem.

Each test reproduces a case of issue 11 ("Nothing lost, nothing silent")."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ember.cli.main import main
from ember.io import load_model

GPT_TINY = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
            "--batch-size", "4", "--eval-iters", "2", "--warmup-iters", "2", "--no-progress"]
KAN_TASK = ["train", "kan", "--task", "sinusoid", "--steps", "20", "--no-progress"]


def run(argv, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``ember argv`` (argparse's exits included)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def strict_json(line: str):
    """json.loads that refuses NaN and Infinity, as every strict JSON reader does."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(line, parse_constant=refuse)


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def words(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(" ".join(np.random.default_rng(0).choice(["ab", "cd", "ef", "gh"], 2000)), encoding="utf-8")
    return path


@pytest.fixture
def trained_run(tmp_path, words, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", "gpt", "--data", words, "--max-iters", "4", "--eval-interval", "2", "--out", out,
                        *GPT_TINY], capsys)
    assert code == 0, err
    return out


# -- 1. a failed run destroys nothing ------------------------------------------------------------------
@pytest.mark.parametrize("content", ["", "24 bytes of text, no more"])
def test_a_failed_run_leaves_the_previous_run_whole(trained_run, tmp_path, content, capsys):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text(content, encoding="utf-8")
    before = snapshot(trained_run)
    code, _, err = run(["train", "gpt", "--data", tiny, "--out", trained_run, "--force", *GPT_TINY], capsys)
    assert code == 1
    assert "tiny.txt" in err and "Traceback" not in err  # case 13: the file is named, no traceback
    assert snapshot(trained_run) == before
    assert run(["generate", "--ckpt", trained_run, "--prompt", "ab", "--max-new-tokens", "5"], capsys)[0] == 0
    code, out, err = run(["train", "gpt", "--resume", "--out", trained_run, "--max-iters", "6", "--no-progress"],
                         capsys)
    assert code == 0, err


def test_a_new_run_into_a_folder_holding_another_is_refused_unless_forced(trained_run, words, capsys):
    before = snapshot(trained_run)
    code, _, err = run(["train", "gpt", "--data", words, "--max-iters", "2", "--out", trained_run, *GPT_TINY], capsys)
    assert code == 1
    assert "holds another run" in err and "--resume" in err and "--force" in err
    assert snapshot(trained_run) == before
    code, _, err = run(["train", "gpt", "--data", words, "--max-iters", "2", "--out", trained_run, "--force",
                        "--seed", "5", *GPT_TINY], capsys)
    assert code == 0, err
    log = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert max(r["iter"] for r in log) == 2  # the new run's log only
    assert snapshot(trained_run)["model.safetensors"] != before["model.safetensors"]


def test_out_naming_a_file_is_one_line(tmp_path, words, capsys):  # case 14
    target = tmp_path / "a-file"
    target.write_text("mine")
    code, _, err = run(["train", "gpt", "--data", words, "--out", target, *GPT_TINY], capsys)
    assert code == 1 and "exists and is not a directory" in err and "Traceback" not in err
    assert target.read_text() == "mine"


def test_bad_settings_are_refused_before_the_folder_exists(tmp_path, words, capsys):
    out = tmp_path / "fresh"
    code, _, err = run(["train", "gpt", "--data", words, "--out", out, *GPT_TINY, "--n-head", "3"], capsys)
    assert code == 2 and "not divisible" in err
    assert not out.exists()


# -- 2. --save is checked before training; a failed final write is rescued ------------------------------
@pytest.mark.parametrize("where", ["directory", "under a file"])
def test_save_destination_is_checked_before_training(tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    if where == "directory":
        blocker.mkdir()
        dest = blocker
    else:
        blocker.write_text("a file")
        dest = blocker / "sub" / "model.safetensors"
    code, out, err = run([*KAN_TASK, "--save", dest], capsys)
    assert code == 1 and str(blocker) in err
    assert "fitting" not in out  # refused before any training started


def test_a_failed_final_write_saves_the_weights_elsewhere_and_says_where(tmp_path, capsys, monkeypatch):
    import ember.io.checkpoint as checkpoint

    real = checkpoint.save_checkpoint
    target = tmp_path / "dest" / "model.safetensors"

    def disk_full(path, *args, **kwargs):
        if str(path) == str(target):
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_checkpoint", disk_full)
    monkeypatch.chdir(tmp_path)
    code, out, err = run([*KAN_TASK, "--save", target, "--json"], capsys)
    assert code == 1
    summary = strict_json(out.strip().splitlines()[-1])
    rescued = tmp_path / summary["checkpoint"]
    assert rescued.parent == tmp_path and rescued.name.startswith("ember-rescued-")
    assert f"saved to {summary['checkpoint']} instead" in err and "No space left" in err
    model, meta = load_model(rescued)
    assert meta["extra"]["task"] == "sinusoid" and model.config.widths == (1, 1)


# -- 5. non-finite numbers --------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    [*KAN_TASK, "--lr", "nan"], [*KAN_TASK, "--lr", "inf"], [*KAN_TASK, "--weight-decay", "nan"],
    [*KAN_TASK, "--grad-clip", "-inf"], [*KAN_TASK, "--grid-range", "nan,1"],
    ["train", "gpt", "--lr", "nan"], ["train", "gpt", "--dropout", "nan"], ["train", "gpt", "--beta2", "1"],
    ["train", "mlp", "--momentum", "inf"], ["sanity", "--lr", "nan"],
    ["generate", "--ckpt", "x", "--temperature", "nan"],
])
def test_non_finite_flags_are_usage_errors(argv, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and "expected" in err and out == ""


def test_a_diverging_run_stops_with_a_clear_error_and_no_summary(capsys):
    code, out, err = run([*KAN_TASK, "--lr", "1e30", "--grad-clip", "0", "--json"], capsys)
    assert code == 1
    assert "training diverged at step" in err and "Traceback" not in err
    assert not any(json.loads(line).get("event") == "summary" for line in out.splitlines() if line.startswith("{"))
    for line in out.splitlines():
        if line.startswith("{"):
            strict_json(line)


def test_printed_json_is_always_valid_json(capsys):
    from ember.cli.common import print_json

    print_json({"a": math.nan, "b": [math.inf, 1.5, {"c": -math.inf}], "d": "nan"})
    assert strict_json(capsys.readouterr().out) == {"a": None, "b": [None, 1.5, {"c": None}], "d": "nan"}


# -- 6. a resumed run keeps its settings -------------------------------------------------------------
def test_resume_keeps_the_runs_settings_and_says_what_changed(tmp_path, words, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", "gpt", "--data", words, "--max-iters", "2", "--eval-interval", "1", "--log-interval",
                        "1", "--out", out, *GPT_TINY], capsys)
    assert code == 0, err
    code, stdout, err = run(["train", "gpt", "--resume", "--out", out, "--max-iters", "4", "--no-progress"], capsys)
    assert code == 0, err
    assert "resume: max_iters: 2 -> 4" in stdout
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log if r["event"] == "eval"] == [0, 1, 2, 3, 4]  # eval_interval 1 kept
    assert [r["iter"] for r in log if r["event"] == "train"] == [1, 2, 3, 4]  # log_interval 1 kept
    code, _, err = run(["train", "gpt", "--resume", "--out", out, "--lr", "0.5", "--no-progress"], capsys)
    assert code == 2 and "cannot change lr (saved 0.001, given 0.5)" in err


# -- 7. an explicit --data-dir wins --------------------------------------------------------------------
def test_a_missing_data_dir_is_an_error_even_with_ember_data_set(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMBER_DATA", str(tmp_path))
    code, _, err = run(["train", "mlp", "--data-dir", tmp_path / "nonexistent", "--epochs", "1"], capsys)
    assert code == 1 and "nonexistent: no such directory" in err


# -- 16. a log cut short by a crash --------------------------------------------------------------------
def test_resume_ignores_a_partial_last_log_line_with_a_warning(trained_run, capsys):
    log = trained_run / "log.jsonl"
    log.write_text(log.read_text() + '{"event": "train", "iter": 5, "lo')
    code, _, err = run(["train", "gpt", "--resume", "--out", trained_run, "--max-iters", "6", "--no-progress"],
                       capsys)
    assert code == 0, err
    assert "ember: warning:" in err and "incomplete" in err
    for line in log.read_text().splitlines():
        strict_json(line)


def test_a_damaged_log_line_elsewhere_is_an_error_naming_it(trained_run, capsys):
    log = trained_run / "log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    code, _, err = run(["train", "gpt", "--resume", "--out", trained_run, "--no-progress"], capsys)
    assert code == 1 and "log.jsonl, line 2: not a JSON object" in err


# -- 4. damaged weights are refused on resume, unless --no-verify -------------------------------------
def test_resume_refuses_a_bit_flip_in_the_training_state(trained_run, capsys):
    state = trained_run / "train_state.safetensors"
    data = bytearray(state.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes
    state.write_bytes(bytes(data))
    code, _, err = run(["train", "gpt", "--resume", "--out", trained_run, "--max-iters", "5", "--no-progress"],
                       capsys)
    assert code == 1 and "train_state.safetensors: tensor" in err and "is corrupt" in err
    code, _, err = run(["train", "gpt", "--resume", "--out", trained_run, "--max-iters", "5", "--no-progress",
                        "--no-verify"], capsys)
    assert code == 0, err


# -- small things ----------------------------------------------------------------------------------
def test_sanity_help_prints_a_single_percent_sign(capsys):
    code, out, _ = run(["sanity", "--help"], capsys)
    assert code == 0 and "100% training accuracy" in out and "%%" not in out


def test_run_files_follow_the_umask(trained_run):
    import os

    umask = os.umask(0)
    os.umask(umask)
    for path in trained_run.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_eval_and_generate_refuse_damaged_weights_unless_no_verify(trained_run, capsys):
    model = trained_run / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-5] ^= 0x01
    model.write_bytes(bytes(data))
    for argv in (["eval", trained_run, "--max-tokens", "20"], ["generate", "--ckpt", trained_run, "--prompt", "ab",
                                                               "--max-new-tokens", "3"]):
        code, _, err = run(argv, capsys)
        assert code == 1 and "model.safetensors: tensor" in err and "is corrupt" in err, err
        code, _, err = run([*argv, "--no-verify"], capsys)
        assert code == 0, err


@pytest.mark.parametrize("content", ['[1, 2]', 'null', '{"type": "char"}', '\x00\x01binary'])
def test_a_damaged_tokenizer_file_is_one_line_naming_it(trained_run, capsys, content):  # case 15
    (trained_run / "tokenizer.json").write_text(content)
    for argv in (["generate", "--ckpt", trained_run, "--prompt", "ab", "--max-new-tokens", "2"],
                 ["eval", trained_run, "--max-tokens", "10"]):
        code, _, err = run(argv, capsys)
        assert code == 1 and "tokenizer.json" in err and "Traceback" not in err, err
