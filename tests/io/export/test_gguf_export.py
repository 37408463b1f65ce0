"""GGUF export for llama.cpp's gpt2 architecture: the file read back with ``gguf.GGUFReader`` (layout, metadata,
vocabulary, weights), the refusals, atomic writes and ``ember export``; then llama.cpp itself (llama-cpp-python,
in a child process) on trained models: tokenisation, greedy tokens and logits against ember's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ember.cli.main import main
from ember.io.export import ExportError, ExportWarning, export_gguf
from ember.io.export.common import gelu_drift
from ember.models.gpt import GPT, GPTConfig
from ember.text import ByteBPETokenizer, CharTokenizer, bytes_to_unicode

gguf = pytest.importorskip("gguf", reason="the gguf package is missing: pip install 'ember[gguf]'")

NORMAL, CONTROL, UNUSED = 1, 3, 5


def perturbed_gpt(vocab_size=20, bias=False, gelu="tanh", seed=0, **overrides) -> GPT:
    config = dict(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=8, bias=bias, gelu=gelu)
    model = GPT(GPTConfig(**{**config, **overrides})).eval()
    rng = np.random.default_rng(seed)
    for p in model.parameters():  # LayerNorm gains and biases away from 1 and 0, so a dropped one shows
        p.data += rng.standard_normal(p.shape).astype(p.dtype) * 0.1
    return model


def read(path):
    reader = gguf.GGUFReader(path)
    fields = {name: f.contents() for name, f in reader.fields.items()}
    tensors = {t.name: t for t in reader.tensors}
    return fields, tensors


def tensor_array(t) -> np.ndarray:
    """A tensor's values in NumPy's (out, in) order (the reader gives ggml's shape reversed)."""
    return np.asarray(t.data).reshape(tuple(reversed(t.shape.tolist())))


def expected_tensors(n_layer: int) -> set[str]:
    names = {"token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias"}
    for i in range(n_layer):
        for part in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down"):
            names |= {f"blk.{i}.{part}.weight", f"blk.{i}.{part}.bias"}
    return names


@pytest.mark.parametrize("bias", [False, True])
def test_the_file_holds_llama_cpp_gpt2_layout_and_the_exact_weights(tmp_path, bias):
    tok = CharTokenizer(list("abcdefghij klmnopqr\n"))
    model = perturbed_gpt(bias=bias)
    fields, tensors = read(export_gguf(model, tok, tmp_path / "m.gguf"))
    assert fields["general.architecture"] == "gpt2"
    assert (fields["gpt2.context_length"], fields["gpt2.embedding_length"], fields["gpt2.block_count"],
            fields["gpt2.feed_forward_length"], fields["gpt2.attention.head_count"]) == (16, 8, 2, 32, 2)
    assert fields["gpt2.attention.layer_norm_epsilon"] == pytest.approx(1e-5)
    assert fields["general.file_type"] == 0
    assert set(tensors) == expected_tensors(2)  # tied head: no output.weight; every bias present
    assert tensors["blk.1.attn_qkv.weight"].shape.tolist() == [8, 24]  # ggml order {in, out}
    tr = model.transformer
    pairs = {"position_embd.weight": tr["wpe"].weight, "output_norm.weight": tr["ln_f"].weight,
             "blk.1.attn_qkv.weight": tr["h"][1].attn.c_attn.weight,
             "blk.0.ffn_down.weight": tr["h"][0].mlp.c_proj.weight,
             "blk.0.attn_norm.weight": tr["h"][0].ln_1.weight, "blk.1.ffn_up.weight": tr["h"][1].mlp.c_fc.weight}
    for name, param in pairs.items():
        np.testing.assert_array_equal(tensor_array(tensors[name]), param.numpy(), err_msg=name)
    embd = tensor_array(tensors["token_embd.weight"])
    np.testing.assert_array_equal(embd[:20], tr["wte"].weight.numpy())
    np.testing.assert_array_equal(embd[20], 0)  # the appended <|endoftext|> row
    qkv_bias = tensor_array(tensors["blk.0.attn_qkv.bias"])
    want = tr["h"][0].attn.c_attn.bias.numpy() if bias else np.zeros(24, np.float32)
    np.testing.assert_array_equal(qkv_bias, want)


def test_an_int8_model_exports_its_dequantized_weights_with_the_head_still_tied(tmp_path):
    """``ember compress --quantize int8`` keeps the weights as int8 codes and computes with their dequantized
    matrices: the file holds those, and no output.weight (the head shares the embedding's codes)."""
    from ember.compress.quant import quantize_model

    tok = CharTokenizer(list("abcdefghij klmnopqr\n"))
    model = quantize_model(perturbed_gpt(bias=True))
    fields, tensors = read(export_gguf(model, tok, tmp_path / "m.gguf"))
    assert set(tensors) == expected_tensors(2)
    tr = model.transformer
    np.testing.assert_array_equal(tensor_array(tensors["token_embd.weight"])[:20], tr["wte"].weight.numpy())
    np.testing.assert_array_equal(tensor_array(tensors["blk.1.ffn_up.weight"]), tr["h"][1].mlp.c_fc.weight.numpy())
    np.testing.assert_array_equal(tensor_array(tensors["blk.1.ffn_up.bias"]), tr["h"][1].mlp.c_fc.bias.numpy())


def test_f16_rounds_the_matrices_and_keeps_norms_and_biases_f32(tmp_path):
    model = perturbed_gpt(bias=True)
    fields, tensors = read(export_gguf(model, CharTokenizer(list("abcdefghij klmnopqr\n")), tmp_path / "h.gguf",
                                      dtype="f16"))
    assert fields["general.file_type"] == 1
    up = tensors["blk.0.ffn_up.weight"]
    assert up.tensor_type == gguf.GGMLQuantizationType.F16
    want = model.transformer["h"][0].mlp.c_fc.weight.numpy().astype(np.float16)
    np.testing.assert_array_equal(tensor_array(up), want)
    for name in ("blk.0.ffn_up.bias", "output_norm.weight", "blk.1.attn_norm.bias"):
        assert tensors[name].tensor_type == gguf.GGMLQuantizationType.F32, name


def test_a_character_vocabulary_becomes_byte_level_tokens_with_merges_for_multibyte_characters(tmp_path):
    chars = [" ", "\n", "a", "é", "東", "🙂"]
    model = perturbed_gpt(vocab_size=len(chars))
    fields, _ = read(export_gguf(model, CharTokenizer(chars), tmp_path / "c.gguf"))
    table = bytes_to_unicode()
    as_bytes = ["".join(table[b] for b in c.encode()) for c in chars]
    assert fields["tokenizer.ggml.tokens"] == as_bytes + ["<|endoftext|>"]
    assert as_bytes[:2] == ["Ġ", "Ċ"]
    assert fields["tokenizer.ggml.token_type"] == [NORMAL] * 6 + [CONTROL]
    assert fields["tokenizer.ggml.eos_token_id"] == fields["tokenizer.ggml.bos_token_id"] == 6
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
    assert fields["tokenizer.ggml.add_bos_token"] is False
    merges = fields["tokenizer.ggml.merges"]
    # each multi-byte character is built from its bytes left to right; the last merge can never apply
    e = [table[b] for b in "é".encode()]
    assert f"{e[0]} {e[1]}" in merges
    tokyo = [table[b] for b in "東".encode()]
    assert merges.index(f"{tokyo[0]} {tokyo[1]}") < merges.index(f"{tokyo[0]}{tokyo[1]} {tokyo[2]}")
    assert merges[-1] == "ĊĊ ĊĊ" and len(merges) == 1 + 2 + 3 + 1


def test_a_byte_bpe_vocabulary_keeps_its_tokens_merges_and_special_tokens(tmp_path):
    tok = ByteBPETokenizer.train("hello world, hello there! " * 20, 270, special_tokens=["<|endoftext|>", "<|x|>"])
    model = perturbed_gpt(vocab_size=tok.vocab_size + 3)  # a padded vocabulary: 3 rows no token uses
    fields, tensors = read(export_gguf(model, tok, tmp_path / "b.gguf"))
    tokens = fields["tokenizer.ggml.tokens"]
    assert tokens[:tok.vocab_size] == tok.token_strings()
    assert tokens[tok.vocab_size:] == ["<|pad_0|>", "<|pad_1|>", "<|pad_2|>"]
    assert fields["tokenizer.ggml.merges"] == tok.merge_strings()
    assert fields["tokenizer.ggml.merges"][0] == "{} {}".format(*(tok.token_strings()[i] for i in tok.merges[0]))
    types = fields["tokenizer.ggml.token_type"]
    assert types == [NORMAL] * (256 + len(tok.merges)) + [CONTROL, CONTROL] + [UNUSED] * 3
    assert fields["tokenizer.ggml.eos_token_id"] == tok.special_tokens["<|endoftext|>"]
    assert tensors["token_embd.weight"].shape.tolist() == [8, tok.vocab_size + 3]  # no row appended


def test_special_tokens_are_control_wherever_the_tokenizer_numbers_them(tmp_path):
    base = ByteBPETokenizer.train("abc abd abe " * 10, 260, special_tokens=["<|endoftext|>"])
    n = base.vocab_size
    ids = [(i + 1) % n for i in range(n)]  # as `tokenizers` numbers them: the special token (last inside) is id 0
    tok = ByteBPETokenizer(base.merges, ["<|endoftext|>"], ids=ids)
    assert tok.special_tokens["<|endoftext|>"] == 0
    fields, _ = read(export_gguf(perturbed_gpt(vocab_size=n), tok, tmp_path / "t.gguf"))
    assert fields["tokenizer.ggml.token_type"] == [CONTROL] + [NORMAL] * (n - 1)
    assert fields["tokenizer.ggml.tokens"][0] == "<|endoftext|>"
    assert fields["tokenizer.ggml.eos_token_id"] == 0
    assert fields["tokenizer.ggml.merges"] == base.merge_strings()


def test_a_tokenizer_larger_than_the_model_is_refused(tmp_path):
    with pytest.raises(ExportError, match="the tokenizer has 21 ids but the model only 20 embedding rows"):
        export_gguf(perturbed_gpt(), CharTokenizer(list("abcdefghij klmnopqrs\n")), tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


@pytest.mark.parametrize("residual", ["mhc", "mhc2", "hc"])
def test_hyper_connection_models_are_refused_naming_why(tmp_path, residual):
    model = perturbed_gpt(residual=residual)
    with pytest.raises(ExportError, match=rf"hyper-connections \(residual='{residual}'.*one residual stream.*onnx"):
        export_gguf(model, CharTokenizer(list("abcdefghij klmnopqr\n")), tmp_path / "m.gguf")
    assert list(tmp_path.iterdir()) == []


def test_an_exact_gelu_model_is_refused_unless_approximation_is_allowed_and_then_the_drift_is_reported(tmp_path):
    model = perturbed_gpt(gelu="none")
    tok = CharTokenizer(list("abcdefghij klmnopqr\n"))
    with pytest.raises(ExportError, match="exact \\(erf\\) GELU.*allow_approx"):
        export_gguf(model, tok, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()
    with pytest.warns(ExportWarning, match=r"logits move by up to \d\.\d\de-\d\d"):
        export_gguf(model, tok, tmp_path / "m.gguf", allow_approx=True)
    assert (tmp_path / "m.gguf").is_file()
    assert model.config.gelu == "none" and all(m.approximate == "none" for m in model.modules()
                                               if type(m).__name__ == "GELU")


def test_the_reported_gelu_drift_is_the_difference_to_a_tanh_model():
    model = perturbed_gpt(gelu="none")
    twin = GPT(GPTConfig(**{**vars(model.config), "gelu": "tanh"})).eval()
    twin.load_state_dict(model.state_dict())
    drift = gelu_drift(model, tokens=12, seed=3)
    ids = np.random.default_rng(3).integers(0, 20, size=(1, 12))
    want = np.abs(model(ids).numpy().astype(np.float64) - twin(ids).numpy()).max()
    assert drift["max_abs"] == pytest.approx(want, rel=1e-6) and drift["max_abs"] > 0
    assert drift["tokens"] == 12


def test_other_models_and_dtypes_are_refused(tmp_path):
    from ember.models import MLP

    with pytest.raises(ExportError, match="expected an ember GPT, got MLP.*onnx"):
        export_gguf(MLP(), CharTokenizer(list("ab")), tmp_path / "m.gguf")
    with pytest.raises(ExportError, match="dtype must be 'f32' or 'f16', got 'q8'"):
        export_gguf(perturbed_gpt(), CharTokenizer(list("abcdefghij klmnopqr\n")), tmp_path / "m.gguf", dtype="q8")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "m.gguf"
    target.write_bytes(b"old")

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", fail)
    with pytest.raises(OSError, match="disk full"):
        export_gguf(perturbed_gpt(), CharTokenizer(list("abcdefghij klmnopqr\n")), target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]


def test_ember_export_writes_gguf_from_a_run_folder_and_refuses_mhc_with_one_line(tmp_path, capsys, save_run):
    tok = CharTokenizer(list("abcdefghij klmnopqr\n"))
    run = save_run(tmp_path / "run", perturbed_gpt(), tok)
    assert main(["export", str(run), "--format", "gguf", "--out", str(tmp_path / "m.gguf")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert gguf.GGUFReader(tmp_path / "m.gguf").fields["general.architecture"].contents() == "gpt2"
    mhc = save_run(tmp_path / "mhc", perturbed_gpt(residual="mhc"), tok)
    assert main(["export", str(mhc), "--format", "gguf", "--out", str(tmp_path / "x.gguf")]) == 1
    err = capsys.readouterr().err
    assert "ember export: error: GGUF export: the model has hyper-connections" in err and "Traceback" not in err
    assert not (tmp_path / "x.gguf").exists()


# -- llama.cpp itself --------------------------------------------------------------------------------------------

HARD_TEXTS = ["First Citizen:\nBefore we proceed any further, hear me speak.",
              "  two  spaces,\n\nnewlines and 'quotes' -- it's ours; we'll see!"]
CODE_TEXTS = ["def f(x):\n    return x ** 2  # square\n",
              "class A:\n\tpass\n\n\n    x = [1, 2, 3]<|endoftext|>import os",
              "s = 'héllo wörld 東京 🙂'  \r\n  ",
              "if a>=b and c!=d: print(f\"{a!r}\")"]
GREEDY_STEPS = 32


@pytest.fixture(scope="module")
def llama():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is missing: pip install --find-links "
                                            "../shared/wheels 'ember[llama]' (a source build takes ~30 minutes)")
    from ember.testing.llama_cpp_runner import run_llama_cpp

    return run_llama_cpp


def assert_llama_cpp_agrees(llama, model, tokenizer, path, texts, prompt: str, logit_tol: float = 1e-2):
    """llama.cpp tokenises ``texts`` as ember does, and decodes ``prompt`` greedily to the same tokens with
    logits within ``logit_tol`` at every position."""
    prompt_ids = tokenizer.encode(prompt)
    answer = llama(path, {"tokenize": texts, "greedy": {"prompt": prompt_ids, "n": GREEDY_STEPS}})
    for text, ids in zip(texts, answer["tokens"]):
        assert ids == tokenizer.encode(text), text
    ember_greedy = list(model.generate(prompt_ids, GREEDY_STEPS, temperature=0))
    assert answer["greedy"] == ember_greedy
    seq = np.array([prompt_ids + ember_greedy[:-1]])
    want = model(seq).numpy()[0].astype(np.float64)
    got = np.asarray(answer["logits"])
    assert got.shape[0] == seq.shape[1]
    v = model.config.vocab_size
    diff = float(np.abs(got[:, :v] - want).max())
    print(f"llama.cpp against ember: {len(ember_greedy)} greedy tokens equal, logits within {diff:.2e}")
    assert diff < logit_tol


@pytest.mark.slow
def test_llama_cpp_runs_the_shakespeare_char_model_as_ember_does(tmp_path, char_lm, llama):
    model, tok = char_lm
    path = export_gguf(model, tok, tmp_path / "char.gguf")
    assert_llama_cpp_agrees(llama, model, tok, path, HARD_TEXTS, "ROMEO:\nWhat say")


@pytest.mark.slow
def test_llama_cpp_runs_a_byte_bpe_code_model_as_ember_does(tmp_path, bpe_lm, llama):
    model, tok = bpe_lm
    path = export_gguf(model, tok, tmp_path / "code.gguf")
    assert_llama_cpp_agrees(llama, model, tok, path, CODE_TEXTS, "def fibonacci(n):\n")


@pytest.mark.slow
def test_llama_cpp_runs_the_f16_export_as_ember_with_f16_rounded_weights(tmp_path, char_lm, llama):
    model, tok = char_lm
    rounded = GPT(model.config).eval()
    rounded.load_state_dict({k: v.astype(np.float16).astype(np.float32) if v.ndim >= 2 else v
                             for k, v in model.state_dict().items()})
    path = export_gguf(model, tok, tmp_path / "char16.gguf", dtype="f16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_llama_cpp_agrees(llama, rounded, tok, path, HARD_TEXTS[:1], "KING:\n")


@pytest.mark.slow
def test_llama_cpp_runs_the_int8_char_model_as_ember_does(tmp_path, char_lm, llama):
    """``ember compress --quantize int8`` of the char model: llama.cpp, given the dequantized matrices it computes
    with, decodes as the int8 model does."""
    from ember.compress.quant import quantize_model

    model, tok = char_lm
    int8 = quantize_model(model)
    path = export_gguf(int8, tok, tmp_path / "char-int8.gguf")
    assert_llama_cpp_agrees(llama, int8, tok, path, HARD_TEXTS, "ROMEO:\nWhat say")
