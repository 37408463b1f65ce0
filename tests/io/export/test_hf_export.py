"""Hugging Face export: the folder that ``transformers`` loads without a word about missing or unexpected weights,
logits equal to ember's within 1e-5 (float32), ``AutoTokenizer`` ids equal to ember's on hard strings, export ->
import round trips, f16, the refusals, the atomic folder and ``ember export --format hf``."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from ember.cli.main import main
from ember.io.export import ExportError, export_hf
from ember.io.hf_import import load_hf_gpt2
from ember.models.gpt import GPT, GPTConfig
from ember.text import ByteBPETokenizer, CharTokenizer

transformers = pytest.importorskip("transformers", reason="transformers is the reference: pip install transformers")
pytest.importorskip("tokenizers", reason="tokenizers reads the exported tokenizer.json: pip install tokenizers")

TEXT = ("def main(argv):\n    for line in argv:\n\tif line.strip():\n\t\tprint(line)\n    return 0\n"
        "First Citizen:\nBefore we proceed any further, hear me speak.\r\n"
        "naïve café — 日本語 Ελληνικά 🙂👍🏽 e\u0301 they'll've 42\n") * 20
HARD_STRINGS = ["", "Hello, World! It's 42 o'clock", "naïve café — 日本語, Ελληνικά, русский 🙂👍🏽 👩\u200d💻 e\u0301",
                "def f(x):\n\tif x:\n\t\treturn 1\n    return  2\n", "a\r\nb\r\n\r\n   \n\n", "   two  spaces   ",
                "tabs\t\tand\u00a0no-break\u3000wide", "x<|endoftext|>y <|endoftext|>\n<|endoftext|>", "<|endoftext"]
# the words transformers' load report uses for weights it did not find where it expected them
LOAD_PROBLEMS = ("missing", "unexpected", "newly initialized", "not initialized", "mismatch", "not used")


@pytest.fixture(scope="module")
def bpe():
    return ByteBPETokenizer.train(TEXT, 300)


def perturbed_gpt(vocab_size, bias=False, gelu="none", seed=0, **overrides) -> GPT:
    config = dict(vocab_size=vocab_size, block_size=24, n_layer=2, n_head=4, n_embd=32, bias=bias, gelu=gelu)
    model = GPT(GPTConfig(**{**config, **overrides})).eval()
    rng = np.random.default_rng(seed)
    for p in model.parameters():  # LayerNorm gains and biases away from 1 and 0, so a dropped one shows
        p.data += rng.standard_normal(p.shape).astype(p.dtype) * 0.1
    return model


@pytest.fixture
def transformers_log(caplog):
    """Everything transformers logs (INFO and up) and every warning, while the body runs."""
    transformers.logging.enable_propagation()
    old = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_info()
    try:
        with caplog.at_level(logging.INFO, logger="transformers"):
            yield caplog
    finally:
        transformers.logging.set_verbosity(old)
        transformers.logging.disable_propagation()


def load_quietly(folder, log, **kwargs):
    """GPT2LMHeadModel.from_pretrained, failing on any load-report message or warning about the weights."""
    import warnings

    log.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, info = transformers.GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True, **kwargs)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set() and not info["mismatched_keys"]
    said = [r.getMessage() for r in log.records] + [str(w.message) for w in caught]
    assert_nothing_about_weights(said)
    return model.eval()


def assert_nothing_about_weights(messages: list[str]) -> None:
    bad = [m for m in messages if any(word in m.lower() for word in LOAD_PROBLEMS)]
    assert not bad, bad


def hf_logits(model, ids) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor(ids)).logits.float().numpy()


def assert_logits_close(ours, theirs, atol=1e-5) -> float:
    diff = float(np.abs(np.asarray(ours, np.float64) - theirs).max())
    assert diff < atol, f"max logit difference {diff:.2e}"
    return diff


def assert_same_ids(tokenizer, folder, strings) -> None:
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    for text in strings:
        assert auto(text)["input_ids"] == tokenizer.encode(text), text
        assert auto.decode(tokenizer.encode(text)) == text


# -- transformers loads it and computes the same ---------------------------------------------------------
@pytest.mark.parametrize("gelu", ["none", "tanh"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transformers_loads_it_silently_and_computes_the_same_logits(tmp_path, torch, transformers_log, bpe, seed,
                                                                     bias, gelu):
    model = perturbed_gpt(bpe.vocab_size, bias, gelu, seed)
    folder = export_hf(model, bpe, tmp_path / "hf")
    hf = load_quietly(folder, transformers_log)
    ids = np.random.default_rng(seed).integers(0, bpe.vocab_size, size=(3, 24))
    assert_logits_close(model(ids).numpy(), hf_logits(hf, ids))


def test_the_log_capture_sees_a_missing_weight(tmp_path, torch, transformers_log, bpe):
    """The silence above means something: the same capture catches transformers' report of a missing weight."""
    from safetensors.numpy import load_file, save_file

    folder = export_hf(perturbed_gpt(bpe.vocab_size), bpe, tmp_path / "hf")
    tensors = load_file(folder / "model.safetensors")
    del tensors["transformer.h.0.ln_1.bias"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(AssertionError, match="transformer.h.0.ln_1.bias"):
        load_quietly(folder, transformers_log)
    transformers_log.clear()
    transformers.GPT2LMHeadModel.from_pretrained(folder)
    with pytest.raises(AssertionError, match="newly initialized because missing"):
        assert_nothing_about_weights([r.getMessage() for r in transformers_log.records])


@pytest.mark.parametrize("kind", ["bpe", "ascii chars", "unicode chars"])
def test_auto_tokenizer_gives_embers_ids_on_hard_strings(tmp_path, bpe, kind):
    if kind == "bpe":
        tok, strings = bpe, HARD_STRINGS
    else:
        strings = [s for s in HARD_STRINGS if s.isascii()] if kind == "ascii chars" else HARD_STRINGS
        tok = CharTokenizer.train("".join(strings))
    folder = export_hf(perturbed_gpt(tok.vocab_size), tok, tmp_path / "hf")
    assert_same_ids(tok, folder, strings)


def test_a_char_model_is_the_same_model_in_transformers(tmp_path, torch, transformers_log):
    tok = CharTokenizer.train("".join(HARD_STRINGS))
    model = perturbed_gpt(tok.vocab_size, gelu="tanh", seed=4)
    folder = export_hf(model, tok, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    assert config["bos_token_id"] is None and config["eos_token_id"] is None  # no end-of-text token to name
    hf = load_quietly(folder, transformers_log)
    ids = np.asarray([tok.encode(HARD_STRINGS[4])[:24]])
    assert_logits_close(model(ids).numpy(), hf_logits(hf, ids))


@pytest.mark.parametrize("bias", [False, True])
def test_an_int8_model_exports_as_the_model_it_computes(tmp_path, torch, transformers_log, bpe, bias):
    """``ember compress --quantize int8`` keeps a GPT's weights as int8 buffers and computes with their
    dequantized matrices: the folder holds those matrices (the head still tied), and transformers computes what the
    int8 model computes."""
    from safetensors.numpy import load_file

    from ember.compress.quant import quantize_model

    model = quantize_model(perturbed_gpt(bpe.vocab_size, bias, "tanh", seed=5))
    folder = export_hf(model, bpe, tmp_path / "hf")
    stored = load_file(folder / "model.safetensors")
    assert "lm_head.weight" not in stored
    np.testing.assert_array_equal(stored["transformer.h.0.attn.c_attn.weight"],
                                  model.transformer["h"][0].attn.c_attn.weight.numpy().T)
    hf = load_quietly(folder, transformers_log)
    ids = np.random.default_rng(5).integers(0, bpe.vocab_size, size=(2, 24))
    assert_logits_close(model(ids).numpy(), hf_logits(hf, ids))


def test_the_folder_layout_and_config(tmp_path, bpe):
    model = perturbed_gpt(bpe.vocab_size, gelu="tanh")
    folder = export_hf(model, bpe, tmp_path / "hf")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "generation_config.json", "merges.txt",
                                                       "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                                       "vocab.json"]
    config = json.loads((folder / "config.json").read_text())
    eot = bpe.special_tokens["<|endoftext|>"]
    assert (config["model_type"], config["architectures"], config["activation_function"]) == (
        "gpt2", ["GPT2LMHeadModel"], "gelu_new")
    assert (config["n_positions"], config["n_embd"], config["n_layer"], config["n_head"], config["vocab_size"]) == (
        24, 32, 2, 4, bpe.vocab_size)
    assert config["tie_word_embeddings"] is True and config["bos_token_id"] == config["eos_token_id"] == eot
    assert json.loads((folder / "generation_config.json").read_text())["eos_token_id"] == eot
    vocab = json.loads((folder / "vocab.json").read_text())
    assert [s for s, _ in sorted(vocab.items(), key=lambda kv: kv[1])] == bpe.token_strings()
    merges = (folder / "merges.txt").read_text().splitlines()
    assert merges[0].startswith("#version") and merges[1:] == bpe.merge_strings()


def test_weights_are_conv1d_transposed_with_zero_biases_and_no_head(tmp_path, bpe):
    from safetensors.numpy import load_file

    model = perturbed_gpt(bpe.vocab_size, bias=False)
    tensors = load_file(export_hf(model, bpe, tmp_path / "hf") / "model.safetensors")
    block = model.transformer["h"][1]
    np.testing.assert_array_equal(tensors["transformer.h.1.attn.c_attn.weight"], block.attn.c_attn.weight.numpy().T)
    np.testing.assert_array_equal(tensors["transformer.h.1.mlp.c_proj.weight"], block.mlp.c_proj.weight.numpy().T)
    assert tensors["transformer.h.1.mlp.c_fc.weight"].shape == (32, 128)
    np.testing.assert_array_equal(tensors["transformer.h.1.mlp.c_fc.bias"], np.zeros(128, np.float32))
    np.testing.assert_array_equal(tensors["transformer.ln_f.bias"], np.zeros(32, np.float32))
    np.testing.assert_array_equal(tensors["transformer.wte.weight"], model.transformer["wte"].weight.numpy())
    assert "lm_head.weight" not in tensors and len(tensors) == 4 + 2 * 12


def test_f16_holds_half_precision_and_computes_the_rounded_model(tmp_path, torch, transformers_log, bpe):
    from safetensors import safe_open

    model = perturbed_gpt(bpe.vocab_size, bias=True, gelu="tanh", seed=5)
    folder = export_hf(model, bpe, tmp_path / "hf", dtype="f16")
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    assert json.loads((folder / "config.json").read_text())["dtype"] == "float16"
    for p in model.parameters():  # the model the file holds: every weight rounded to float16
        p.data[...] = p.data.astype(np.float16).astype(np.float32)
    hf = load_quietly(folder, transformers_log, dtype=torch.float32)
    ids = np.arange(24)[None] % bpe.vocab_size
    assert_logits_close(model(ids).numpy(), hf_logits(hf, ids))


# -- round trips ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [False, True])
def test_export_then_import_gives_identical_weights_and_encodings(tmp_path, bpe, bias):
    model = perturbed_gpt(bpe.vocab_size, bias=bias, gelu="tanh", seed=7)
    back, tok = load_hf_gpt2(export_hf(model, bpe, tmp_path / "hf"))
    assert back.config == model.config
    ours, theirs = model.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name].numpy(), theirs[name].numpy(), err_msg=name)
    assert [tok.encode(t) for t in HARD_STRINGS] == [bpe.encode(t) for t in HARD_STRINGS]
    assert (tok.merges, tok.special_tokens) == (bpe.merges, bpe.special_tokens)


def test_an_imported_model_exports_back_to_what_transformers_wrote(tmp_path, torch, transformers_log, bpe):
    """transformers -> ember -> transformers: the same tensors, and the tokenizer's foreign ids kept."""
    from safetensors.numpy import load_file

    config = transformers.GPT2Config(vocab_size=bpe.vocab_size, n_positions=24, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    original = transformers.GPT2LMHeadModel(config)
    with torch.no_grad():
        for p in original.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    original.save_pretrained(tmp_path / "orig")
    permuted = ByteBPETokenizer(bpe.merges, list(bpe.special_tokens), ids=list(reversed(range(bpe.vocab_size))))
    export_hf(perturbed_gpt(bpe.vocab_size), permuted, tmp_path / "tok")  # its tokenizer files, beside the weights
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        (tmp_path / "orig" / name).write_bytes((tmp_path / "tok" / name).read_bytes())
    model, tok = load_hf_gpt2(tmp_path / "orig")
    assert tok.ids == permuted.ids
    again = export_hf(model, tok, tmp_path / "again")
    a, b = load_file(tmp_path / "orig" / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert_same_ids(permuted, again, HARD_STRINGS)


# -- refusals and the atomic folder -----------------------------------------------------------------------
def test_hyper_connections_and_other_models_are_refused(tmp_path, bpe):
    mhc = perturbed_gpt(bpe.vocab_size, residual="mhc")
    with pytest.raises(ExportError, match=r"hyper-connections \(residual='mhc', 4 streams\); GPT-2 has one residual"):
        export_hf(mhc, bpe, tmp_path / "a")
    from ember.models import build

    with pytest.raises(ExportError, match="expected an ember GPT, got"):
        export_hf(build("mlp", {}), bpe, tmp_path / "b")
    with pytest.raises(ExportError, match="dtype must be 'f32' or 'f16', got 'bf16'"):
        export_hf(perturbed_gpt(bpe.vocab_size), bpe, tmp_path / "c", dtype="bf16")
    with pytest.raises(ExportError, match="the tokenizer has 300 ids but the model only 200 embedding rows"):
        export_hf(perturbed_gpt(200), bpe, tmp_path / "d")
    custom = ByteBPETokenizer(bpe.merges, [], pattern=r"\S+|\s+")
    with pytest.raises(ExportError, match="pre-tokenisation pattern .* is not GPT-2's"):
        export_hf(perturbed_gpt(bpe.vocab_size), custom, tmp_path / "e")
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, not even a temporary folder


def test_an_existing_folder_is_replaced_only_when_asked(tmp_path, bpe):
    target = tmp_path / "hf"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="exists and is not empty; pass overwrite=True"):
        export_hf(perturbed_gpt(bpe.vocab_size), bpe, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    export_hf(perturbed_gpt(bpe.vocab_size), bpe, target, overwrite=True)
    assert not (target / "keep.txt").exists() and (target / "model.safetensors").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file; a Hugging Face export is a folder"):
        export_hf(perturbed_gpt(bpe.vocab_size), bpe, tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "hf"]


def test_a_failed_write_leaves_nothing_behind(tmp_path, bpe, monkeypatch):
    from ember.io.export import hf

    def fail(path, tensors):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(hf, "_write_safetensors", fail)
    with pytest.raises(OSError, match="disk full"):
        export_hf(perturbed_gpt(bpe.vocab_size), bpe, tmp_path / "hf")
    assert list(tmp_path.iterdir()) == []


def test_ember_export_then_generate_from_the_folder(tmp_path, bpe, save_run, capsys):
    run = save_run(tmp_path / "run", perturbed_gpt(bpe.vocab_size, gelu="tanh"), bpe)
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["generate", "--ckpt", str(tmp_path / "hf"), "--prompt", "def main(", "--max-new-tokens", "8",
                 "--temperature", "0"]) == 0
    from_hf = capsys.readouterr().out
    assert main(["generate", "--ckpt", str(run), "--prompt", "def main(", "--max-new-tokens", "8",
                 "--temperature", "0"]) == 0
    assert from_hf == capsys.readouterr().out and from_hf.startswith("def main(")


# -- trained models (the export tests' shared fixtures) ----------------------------------------------------
@pytest.mark.parametrize("which", ["char_lm", "bpe_lm"])
def test_trained_models_match_in_transformers(tmp_path, torch, transformers_log, request, which):
    model, tok = request.getfixturevalue(which)
    folder = export_hf(model, tok, tmp_path / "hf")
    hf = load_quietly(folder, transformers_log)
    text = "ROMEO:\nWhat light through yonder window breaks?\n" if which == "char_lm" else "def f(x):\n    return x"
    ids = np.asarray([tok.encode(text)[:64]])
    assert_logits_close(model(ids).numpy(), hf_logits(hf, ids))
    assert_same_ids(tok, folder, [text, text * 2])


def test_an_orphan_of_a_killed_export_is_removed_by_the_next(tmp_path, bpe):
    from ember.io.atomic import _host

    orphan = tmp_path / f".hf.{_host()}-4194305.abc123.tmp"  # a pid above Linux's largest: its process is gone
    orphan.mkdir()
    (orphan / "model.safetensors").write_bytes(b"half")
    export_hf(perturbed_gpt(bpe.vocab_size), bpe, tmp_path / "hf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]
