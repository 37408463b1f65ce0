"""``ember train gpt`` and ``ember generate``: a tiny run on a text file, resume, streaming, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ember.cli.main import main

TINY = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--eval-iters", "2", "--eval-interval", "5", "--warmup-iters", "2", "--no-progress"]


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_train_resume_and_generate(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "gpt", "--data", str(text_file), "--max-iters", "10", "--out", str(out), "--json",
                 *TINY]) == 0
    records = json_lines(capsys.readouterr().out)
    assert [r["iter"] for r in records if r["event"] == "eval"] == [0, 5, 10]
    assert records[-1]["event"] == "summary" and records[-1]["iters"] == 10
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl", "model.safetensors", "tokenizer.json",
                                                     "train_state.safetensors"]
    assert main(["train", "gpt", "--resume", "--out", str(out), "--max-iters", "15", "--no-progress"]) == 0
    summary = json_lines(capsys.readouterr().out)[-1]
    assert summary["iters"] == 15
    assert main(["generate", "--ckpt", str(out), "--prompt", "ab cd", "--max-new-tokens", "20", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ab cd") and len(text) == len("ab cd") + 20 + 1  # char tokens, then a newline
    assert set(text[5:-1]) <= set("abcdefgh ")


def test_generate_streams_tokens_as_they_come(tmp_path, text_file):
    out = tmp_path / "run"
    assert main(["train", "gpt", "--data", str(text_file), "--max-iters", "3", "--out", str(out), *TINY]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "ember.cli.main", "generate", "--ckpt", str(out), "--prompt",
                             "ab", "--max-new-tokens", "400", "--seed", "0"], stdout=subprocess.PIPE, text=True)
    first = proc.stdout.read(10)  # arrives while the rest is still being generated
    still_running = proc.poll() is None
    rest = proc.stdout.read()
    assert proc.wait() == 0
    assert first.startswith("ab") and len(first + rest) == 2 + 400 + 1
    assert still_running


@pytest.mark.parametrize("argv,says", [
    (["train", "gpt", "--resume"], "--resume needs --out"),
    (["train", "gpt", "--resume", "--out", "x", "--n-layer", "3"], "cannot change n_layer"),
    (["train", "gpt", "--n-embd", "10", "--n-head", "4", "--data", "{text}"], "not divisible"),
    (["train", "gpt", "--max-iters", "0"], "expected a positive integer"),
    (["generate", "--ckpt", "x", "--top-p", "2", "--prompt", "a"], None),
])
def test_bad_gpt_arguments(argv, says, text_file, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{text}", str(text_file)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code in (1, 2)
    if says:
        assert code == 2 and says in err


def test_generate_reports_missing_checkpoints_and_bad_prompts(tmp_path, text_file, capsys):
    assert main(["generate", "--ckpt", str(tmp_path / "none")]) == 1
    assert "no such checkpoint folder" in capsys.readouterr().err
    out = tmp_path / "run"
    main(["train", "gpt", "--data", str(text_file), "--max-iters", "2", "--out", str(out), *TINY])
    capsys.readouterr()
    assert main(["generate", "--ckpt", str(out), "--prompt", "xyz"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--ckpt", str(out), "--prompt", "ab", "--top-p", "1.5"])
    assert exit_.value.code == 2 and "--top-p: expected a number in (0, 1], got 1.5" in capsys.readouterr().err


def test_unknown_data_path_is_reported(tmp_path, capsys):
    assert main(["train", "gpt", "--data", str(tmp_path / "missing.txt"), "--no-progress"]) == 1
    assert "not a known corpus" in capsys.readouterr().err


def test_the_default_output_folder_is_named_after_the_data(tmp_path, text_file, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "gpt", "--data", str(text_file), "--max-iters", "5", *TINY]) == 0
    assert (tmp_path / "out-words.txt" / "model.safetensors").is_file()
    assert "saving to out-words.txt" in capsys.readouterr().out


@pytest.mark.parametrize("residual", [["--residual", "mhc", "--streams", "3"], ["--residual", "mhc2"],
                                      ["--residual", "hc", "--streams", "2"]], ids=lambda r: r[1])
def test_hyper_connected_runs_train_resume_and_generate_as_the_model_decodes(tmp_path, text_file, capsys, residual):
    """A hyper-connected run keeps its residual through --resume, and ember generate's tokens are the ones the
    model itself decodes from the saved weights (greedy, KV cache) and from recomputing the context."""
    from ember.train.lm import load_lm

    out = tmp_path / "run"
    assert main(["train", "gpt", "--data", str(text_file), "--max-iters", "5", "--out", str(out), *residual,
                 "--gelu", "tanh", *TINY]) == 0
    assert main(["train", "gpt", "--resume", "--out", str(out), "--max-iters", "8", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["generate", "--ckpt", str(out), "--prompt", "ab", "--max-new-tokens", "10", "--temperature", "0"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    model, tokenizer, _ = load_lm(out)
    assert model.config.residual == residual[1] and model.config.gelu == "tanh"
    cached = tokenizer.decode(list(model.generate(tokenizer.encode("ab"), 10, temperature=0)))
    uncached = tokenizer.decode(list(model.generate(tokenizer.encode("ab"), 10, temperature=0, use_cache=False)))
    assert text == "ab" + cached and cached == uncached
