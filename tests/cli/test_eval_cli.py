"""``ember eval`` of every model ember trains: GPT (loss, perplexity, bits per byte), KAN tasks, classifiers,
and one clear line for anything else. Small real models, trained here for a few steps."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import struct

import numpy as np
import pytest

from ember.cli.main import main
from ember.io import save_checkpoint
from ember.models import GPT, KAN, MLP, GPTConfig, KANConfig, LeNet5, LeNet5Config, MLPConfig
from ember.text import ByteBPETokenizer, CharTokenizer
from ember.train import evaluate_lm
from ember.train.lm import load_lm
from ember.train.lm_eval import windows

BLOCK = 8
TINY_GPT = ["--max-iters", "4", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", str(BLOCK),
            "--no-progress"]


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def eval_record(capsys, *args: str) -> dict:
    """Run ``ember eval`` in-process; returns its one JSON line (and checks it succeeded)."""
    status = main(["eval", *args])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    (record,) = json_lines(captured.out)
    assert record["event"] == "eval"
    return record


def assert_one_line_error(capsys, status: int, *fragments: str) -> str:
    """Exit 1, nothing on stdout, and one line on stderr that holds every fragment (no traceback)."""
    captured = capsys.readouterr()
    assert status == 1, captured
    assert captured.out == ""
    assert captured.err.startswith("ember eval: error: ") and captured.err.count("\n") == 1, captured.err
    for fragment in fragments:
        assert fragment in captured.err, (fragment, captured.err)
    return captured.err


def reference_nats(torch, model, ids: np.ndarray, n: int, block: int) -> float:
    """Summed cross-entropy of targets ids[1 : n + 1], one window of ``block`` inputs at a time, by PyTorch."""
    total = 0.0
    for start in range(0, n, block):
        stop = min(start + block, n)
        logits = np.asarray(model(ids[start:stop][None].astype(np.int64)).numpy(), dtype=np.float64)[0]
        targets = torch.from_numpy(ids[start + 1 : stop + 1].astype(np.int64))
        total += float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), targets, reduction="sum"))
    return total


# ----------------------------------------------------------------------------- GPT: a tiny character model


WORDS = ["ab", "cd", "ef", "gh\n"]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """A character-level GPT trained for 4 iterations on random words: (run folder, corpus file, corpus text)."""
    root = tmp_path_factory.mktemp("gpt")
    rng = np.random.default_rng(0)
    words = rng.choice(WORDS, 3000).tolist()
    words[100] = "é"  # in the training split only: the validation split stays ASCII
    text = " ".join(words)
    corpus = root / "words.txt"
    corpus.write_text(text, encoding="utf-8")
    out = root / "run"
    assert main(["train", "gpt", "--data", str(corpus), "--tokenizer", "char", "--out", str(out), *TINY_GPT]) == 0
    return out, corpus, text


def validation_ids(tokenizer, text: str) -> np.ndarray:
    """nanoGPT's split, written out: the last 10% of the token stream."""
    ids = np.asarray(tokenizer.encode(text))
    return ids[int(len(ids) * 0.9) :]


def test_gpt_loss_perplexity_and_bits_per_byte_on_the_validation_split(char_run, capsys, torch):
    out, _, text = char_run
    record = eval_record(capsys, str(out))
    model, tokenizer, _ = load_lm(out)
    val = validation_ids(tokenizer, text)
    n = len(val) - 1
    assert record["model"] == "gpt" and record["split"] == "val" and record["tokens"] == n
    assert record["loss"] == pytest.approx(reference_nats(torch, model, val, n, BLOCK) / n, rel=1e-6)
    assert record["perplexity"] == pytest.approx(math.exp(record["loss"]), rel=1e-12)
    assert text[-n:].isascii() and record["bytes"] == n  # ASCII characters: one byte each
    assert record["bits_per_byte"] == pytest.approx(record["loss"] / math.log(2), rel=1e-12)


def test_gpt_max_tokens_and_batch_size(char_run, capsys, torch):
    """21 tokens: two full windows of 8 and a last one of 5; the batch size changes nothing."""
    out, _, text = char_run
    records = [eval_record(capsys, str(out), "--max-tokens", "21", "--batch-size", b) for b in ("1", "2", "64")]
    model, tokenizer, _ = load_lm(out)
    val = validation_ids(tokenizer, text)
    expected = reference_nats(torch, model, val, 21, BLOCK) / 21
    for record in records:
        assert record["tokens"] == 21 and record["bytes"] == 21
        assert record["loss"] == pytest.approx(expected, rel=1e-6)


def test_gpt_checkpoint_file_equals_its_folder(char_run, capsys):
    out, _, _ = char_run
    by_folder = eval_record(capsys, str(out), "--max-tokens", "50")
    by_file = eval_record(capsys, str(out / "model.safetensors"), "--max-tokens", "50")
    assert {k: v for k, v in by_file.items() if k != "checkpoint"} == \
        {k: v for k, v in by_folder.items() if k != "checkpoint"}


def test_gpt_on_a_text_file_counts_utf8_bytes(char_run, capsys, tmp_path, torch):
    """--data FILE: all of it; 'é' is one token but two bytes, and the first character is never predicted."""
    out, _, _ = char_run
    text = "é ab cd\né ef gh é"
    path = tmp_path / "other.txt"
    path.write_text(text, encoding="utf-8")
    record = eval_record(capsys, str(out), "--data", str(path))
    model, tokenizer, _ = load_lm(out)
    ids = np.asarray(tokenizer.encode(text))
    assert record["split"] == "all" and record["data"] == str(path)
    assert record["tokens"] == len(text) - 1
    assert len(text) == 17 and len(text.encode("utf-8")) == 20  # three 2-byte 'é'
    assert record["bytes"] == 20 - 2  # all but the first character, an 'é'
    total = reference_nats(torch, model, ids, len(ids) - 1, BLOCK)
    assert record["bits_per_byte"] == pytest.approx(total / math.log(2) / record["bytes"], rel=1e-6)


def test_gpt_text_the_tokenizer_cannot_encode(char_run, capsys, tmp_path):
    out, _, _ = char_run
    path = tmp_path / "unknown.txt"
    path.write_text("ab zz", encoding="utf-8")
    assert_one_line_error(capsys, main(["eval", str(out), "--data", str(path)]), str(path), "'z'")


def test_gpt_whose_corpus_is_gone(char_run, capsys, tmp_path):
    out, corpus, _ = char_run
    moved = tmp_path / "run"
    shutil.copytree(out, moved)
    hidden = corpus.with_suffix(".moved")
    corpus.rename(hidden)
    try:
        status = main(["eval", str(moved)])
    finally:
        hidden.rename(corpus)
    err = capsys.readouterr().err
    assert status == 1 and str(corpus) in err and "--data FILE" in err and "Traceback" not in err


def test_gpt_file_without_its_tokenizer(char_run, capsys, tmp_path):
    out, _, _ = char_run
    lone = tmp_path / "model.safetensors"
    shutil.copy(out / "model.safetensors", lone)
    assert_one_line_error(capsys, main(["eval", str(lone)]), str(lone), "tokenizer.json")


def test_training_state_is_named_as_such(char_run, capsys):
    out, _, _ = char_run
    path = out / "train_state.safetensors"
    assert_one_line_error(capsys, main(["eval", str(path)]), str(path), "training state")


def test_folder_without_a_model(capsys, tmp_path):
    assert_one_line_error(capsys, main(["eval", str(tmp_path)]), str(tmp_path), "model.safetensors")


@pytest.mark.parametrize("flag", [["--dataset", "mnist"], ["--seed", "1"]])
def test_options_of_other_models_are_usage_errors(char_run, capsys, flag):
    out, _, _ = char_run
    assert main(["eval", str(out), *flag]) == 2
    assert f"{flag[0]} does not apply" in capsys.readouterr().err


# ----------------------------------------------------------------------------- GPT: the library function


def tiny_gpt(vocab_size: int, dropout: float = 0.0) -> GPT:
    return GPT(GPTConfig(block_size=BLOCK, vocab_size=vocab_size, n_layer=1, n_head=2, n_embd=16, dropout=dropout))


def test_windows_predict_every_target_once():
    ids = np.arange(100)
    batches = list(windows(ids, 21, BLOCK, 2))
    assert [x.shape for x, _ in batches] == [(2, 8), (1, 5)]
    np.testing.assert_array_equal(np.concatenate([y.reshape(-1) for _, y in batches]), ids[1:22])
    for x, y in batches:
        np.testing.assert_array_equal(y, x + 1)  # each input's target is the next token


def test_evaluate_lm_in_eval_mode_and_leaves_the_mode(torch):
    """Dropout is off while evaluating (so two runs agree with the reference), and the model stays in train mode."""
    model = tiny_gpt(5, dropout=0.5).train()
    ids = np.random.default_rng(1).integers(0, 5, 40)
    tokenizer = CharTokenizer(list("abcde"))
    first, second = evaluate_lm(model, tokenizer, ids, batch_size=3), evaluate_lm(model, tokenizer, ids)
    assert model.training
    model.eval()
    assert first.loss == pytest.approx(reference_nats(torch, model, ids, 39, BLOCK) / 39, rel=1e-6)
    assert second.loss == pytest.approx(first.loss, rel=1e-6)


def test_bytes_of_byte_tokens_that_split_characters():
    """Byte-level tokens: the span starts inside 'é' and max_tokens can end inside '✓'; bytes are exact."""
    tokenizer = ByteBPETokenizer([])  # no merges: every token is one byte
    text = "é✓ a✓b é"
    ids = tokenizer.encode(text)
    model = tiny_gpt(tokenizer.vocab_size)
    whole = evaluate_lm(model, tokenizer, ids)
    assert whole.tokens == len(text.encode("utf-8")) - 1 and whole.bytes == whole.tokens
    cut = evaluate_lm(model, tokenizer, ids, max_tokens=3)  # predicts 0xA9 (end of 'é'), then 2 of '✓'s 3 bytes
    assert cut.tokens == 3 and cut.bytes == 3


def test_bytes_of_a_trained_bpe():
    """With merges, tokens hold several bytes: the predicted text is all but the first token."""
    text = "naïve café, naïve café ✓✓ " * 20
    tokenizer = ByteBPETokenizer.train(text, 300, special_tokens=[])
    ids = tokenizer.encode(text)
    first = len(tokenizer.decode_bytes(ids[:1]))
    assert len(ids) < len(text.encode("utf-8"))  # merges happened
    result = evaluate_lm(tiny_gpt(tokenizer.vocab_size), tokenizer, ids)
    assert result.bytes == len(text.encode("utf-8")) - first
    assert result.bits_per_byte == pytest.approx(result.loss * result.tokens / math.log(2) / result.bytes)


def test_evaluate_lm_needs_two_tokens():
    with pytest.raises(ValueError, match="1 token"):
        evaluate_lm(tiny_gpt(5), CharTokenizer(list("abcde")), [3])


# ----------------------------------------------------------------------------- KAN function fits


@pytest.mark.parametrize("task, more", [("sinusoid", []), ("exp-sin", ["--grid-schedule", "10:7"])],
                         ids=["sinusoid", "exp-sin-grid-extended"])
def test_kan_task_eval_equals_the_training_runs_test_mse(task, more, tmp_path, capsys):
    ckpt = tmp_path / "kan.safetensors"
    assert main(["train", "kan", "--task", task, "--steps", "20", "--seed", "5", "--save", str(ckpt),
                 "--no-progress", *more]) == 0
    summary = json_lines(capsys.readouterr().out)[-1]
    record = eval_record(capsys, str(ckpt), "--seed", "5")
    assert record["model"] == "kan" and record["task"] == task and record["seed"] == 5
    assert record["test_mse"] == summary["test_mse"]  # the same points, the same model: bit for bit
    assert eval_record(capsys, str(ckpt))["test_mse"] == summary["test_mse"]  # the saved seed is the default
    assert main(["eval", str(ckpt), "--seed", "0"]) == 0  # other points, and a note saying why they differ
    out = capsys.readouterr().out
    (other,) = json_lines(out)
    assert other["seed"] == 0 and other["test_mse"] != summary["test_mse"]
    assert "pass the same --seed" in out


def test_kan_task_seed_recorded_in_the_checkpoint_is_the_default(tmp_path, capsys):
    model = KAN(KANConfig(widths=(1, 1), grid_range=(-math.pi, math.pi)))
    path = save_checkpoint(tmp_path / "kan.safetensors", model, extra={"task": "sinusoid", "seed": 5})
    recorded, given = eval_record(capsys, str(path)), eval_record(capsys, str(path), "--seed", "5")
    assert recorded["seed"] == 5 and recorded["test_mse"] == given["test_mse"]
    assert eval_record(capsys, str(path), "--seed", "0")["test_mse"] != given["test_mse"]


def test_kan_task_unknown(tmp_path, capsys):
    path = save_checkpoint(tmp_path / "kan.safetensors", KAN(KANConfig(widths=(1, 1))), extra={"task": "cosine"})
    assert_one_line_error(capsys, main(["eval", str(path)]), str(path), "'cosine'")


# ----------------------------------------------------------------------------- classifiers and foreign files


def write_tiny_mnist(root, n: int = 40):
    """A fake MNIST of random 28x28 images, labels 0..9 in turn (gzip'd IDX files)."""
    folder = root / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    for split in ("train", "t10k"):
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            (folder / f"{split}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))
    return root


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    return write_tiny_mnist(tmp_path / "data")


def test_classifier_defaults_to_the_dataset_it_was_trained_on(tiny_mnist, tmp_path, capsys):
    path = save_checkpoint(tmp_path / "mlp.safetensors", MLP(), extra={"dataset": "mnist"})
    record = eval_record(capsys, str(path), "--data-dir", str(tiny_mnist), "--no-download")
    assert record["model"] == "mlp" and record["dataset"] == "mnist" and 0.0 <= record["test_accuracy"] <= 1.0


MISFITS = {
    "mlp-size": (lambda: MLP(MLPConfig(sizes=(3072, 10))),
                 "mlp takes inputs of 3072 values, but mnist test images are 1x28x28 (784 values)"),
    "lenet-channels": (lambda: LeNet5(LeNet5Config(in_channels=3)),
                       "lenet takes 3x28x28 images, but mnist test images are 1x28x28"),
    "kan-without-task": (lambda: KAN(KANConfig(widths=(2, 5, 1))), "kan takes inputs of 2 values"),
    "classes": (lambda: MLP(MLPConfig(sizes=(784, 5))), "mlp has 5 outputs, but mnist has 10 classes"),
}


@pytest.mark.parametrize("name", MISFITS)
def test_classifier_that_does_not_fit_the_dataset(tiny_mnist, tmp_path, capsys, name):
    build, expected = MISFITS[name]
    path = save_checkpoint(tmp_path / "model.safetensors", build())
    status = main(["eval", str(path), "--data-dir", str(tiny_mnist), "--no-download"])
    assert_one_line_error(capsys, status, str(path), expected)


def test_safetensors_file_ember_did_not_write(tmp_path, capsys):
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path), metadata={"format": "pt"})
    assert_one_line_error(capsys, main(["eval", str(path)]), str(path), "ember did not write", "'pt'")


def test_ember_checkpoint_of_an_unknown_model(tmp_path, capsys):
    path = save_checkpoint(tmp_path / "resnet.safetensors", MLP(), model_name="resnet")
    assert_one_line_error(capsys, main(["eval", str(path)]), str(path), "'resnet'")
