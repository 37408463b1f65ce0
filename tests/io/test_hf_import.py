"""Importing Hugging Face GPT-2 folders that transformers itself wrote (``save_pretrained`` of a random small
GPT-2 with a tokenizer trained by ``tokenizers``): ember's logits equal transformers' within 1e-5, greedy tokens
and token ids equal, ``ember generate --ckpt folder`` runs, and every refusal names the file, key and value."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ember.cli.main import main
from ember.io.checkpoint import CheckpointError
from ember.io.hf_import import load_hf_gpt2
from ember.models.gpt import GPT
from ember.text import ByteBPETokenizer

transformers = pytest.importorskip("transformers", reason="transformers writes the reference folders: "
                                                          "pip install transformers")
tokenizers = pytest.importorskip("tokenizers", reason="tokenizers trains the reference tokenizer: pip install "
                                                      "tokenizers")

CORPUS = ("def main(argv):\n    for line in argv:\n\tif line.strip():\n\t\tprint(line)\n    return 0\n"
          "naïve café — 日本語 🙂👍🏽 hello world, the thing they'll do\r\n") * 30
HARD_STRINGS = ["", "Hello, World! It's 42 o'clock", "naïve café — 日本語, русский 🙂👍🏽 👩\u200d💻 e\u0301",
                "def f(x):\n\tif x:\n\t\treturn 1\n    return  2\n", "a\r\nb\r\n\r\n   \n", "  two  spaces   ",
                "x<|endoftext|>y <|endoftext|>\n<|endoftext|>"]
VOCAB = 300


def train_hf_tokenizer():
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.post_processor = tokenizers.processors.ByteLevel(trim_offsets=False)
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"], show_progress=False,
                                            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator([CORPUS], trainer)
    return transformers.GPT2TokenizerFast(tokenizer_object=hf, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                          unk_token="<|endoftext|>")


def random_gpt2(torch, activation="gelu_new", seed=0, **overrides):
    """A small random GPT-2 with every parameter moved off its init (biases and LayerNorms included)."""
    settings = dict(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4, activation_function=activation,
                    bos_token_id=0, eos_token_id=0)
    config = transformers.GPT2Config(**{**settings, **overrides})
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture
def hf_folder(tmp_path, torch):
    """save_pretrained of a random GPT-2 and of a tokenizer trained by tokenizers (ids in its own order)."""
    folder = tmp_path / "gpt2"
    random_gpt2(torch).save_pretrained(folder)
    train_hf_tokenizer().save_pretrained(folder)
    return folder


def hf_logits(torch, folder, ids):
    model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def assert_logits_close(ours, theirs, atol=1e-5):
    diff = float(np.abs(np.asarray(ours, np.float64) - theirs).max())
    assert diff < atol, f"max logit difference {diff:.2e}"
    return diff


@pytest.mark.parametrize("activation,gelu", [("gelu_new", "tanh"), ("gelu", "none"), ("gelu_pytorch_tanh", "tanh")])
@pytest.mark.parametrize("seed", [0, 1])
def test_logits_equal_transformers_within_1e_5(tmp_path, torch, activation, gelu, seed):
    folder = tmp_path / "gpt2"
    random_gpt2(torch, activation, seed).save_pretrained(folder)
    train_hf_tokenizer().save_pretrained(folder)
    model, tok = load_hf_gpt2(folder)
    assert (model.config.gelu, model.config.bias, model.config.block_size) == (gelu, True, 32)
    ids = np.random.default_rng(seed).integers(0, VOCAB, size=(3, 32))
    assert_logits_close(model(ids).numpy(), hf_logits(torch, folder, ids))


def test_token_ids_and_greedy_tokens_equal_transformers(hf_folder, torch):
    model, ours = load_hf_gpt2(hf_folder)
    theirs = transformers.AutoTokenizer.from_pretrained(hf_folder)
    assert isinstance(ours, ByteBPETokenizer) and ours.special_tokens == {"<|endoftext|>": 0}
    for text in HARD_STRINGS:
        assert ours.encode(text) == theirs(text)["input_ids"], text
        assert ours.decode(ours.encode(text)) == text
    prompt = ours.encode("def main(")
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).eval()
    with torch.no_grad():
        out = hf.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert list(model.generate(prompt, 20, temperature=0)) == out[0, len(prompt):].tolist()


def test_from_pretrained_is_the_same_model(hf_folder, torch):
    model = GPT.from_pretrained(hf_folder)
    ids = np.arange(32)[None] % VOCAB
    assert isinstance(model, GPT) and not model.training
    assert_logits_close(model(ids).numpy(), hf_logits(torch, hf_folder, ids))
    wide = GPT.from_pretrained(hf_folder, dtype=np.float64)
    assert wide.transformer["wte"].weight.dtype == np.float64


def test_vocab_and_merges_without_tokenizer_json_load(hf_folder):
    tok_json = json.loads((hf_folder / "tokenizer.json").read_text())
    hf = tokenizers.Tokenizer.from_str(json.dumps(tok_json))
    (hf_folder / "tokenizer.json").unlink()
    (hf_folder / "tokenizer_config.json").unlink()
    hf.model.save(str(hf_folder))  # tokenizers writes vocab.json and merges.txt
    _, ours = load_hf_gpt2(hf_folder)
    for text in HARD_STRINGS:
        assert ours.encode(text) == hf.encode(text).ids


def test_gpt2model_names_old_buffers_a_stored_head_and_shards_load(hf_folder, torch, tmp_path):
    """The hub's gpt2 files name tensors without ``transformer.`` and older ones carry the attention mask buffers;
    an lm_head.weight equal to the embedding is the tied head stored anyway; big models come in shards."""
    from safetensors.numpy import load_file, save_file

    ids = np.arange(32)[None] % VOCAB
    expected = hf_logits(torch, hf_folder, ids)
    tensors = load_file(hf_folder / "model.safetensors")
    renamed = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    renamed["h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), np.float32))
    renamed["h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
    renamed["lm_head.weight"] = tensors["transformer.wte.weight"]
    save_file(renamed, hf_folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((hf_folder / "config.json").read_text())
    (hf_folder / "config.json").write_text(json.dumps(config | {"architectures": ["GPT2Model"]}))
    model, _ = load_hf_gpt2(hf_folder)
    assert_logits_close(model(ids).numpy(), expected)
    sharded = tmp_path / "sharded"
    random_gpt2(torch, seed=3).save_pretrained(sharded, max_shard_size="50KB")
    assert (sharded / "model.safetensors.index.json").is_file() and not (sharded / "model.safetensors").exists()
    model, tok = load_hf_gpt2(sharded)
    assert tok is None
    assert_logits_close(model(ids).numpy(), hf_logits(torch, sharded, ids))


def test_bias_auto_drops_only_all_zero_biases(tmp_path, torch):
    folder = tmp_path / "zero"
    model = random_gpt2(torch)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
    model.save_pretrained(folder)
    auto, _ = load_hf_gpt2(folder)
    kept, _ = load_hf_gpt2(folder, bias=True)
    assert not auto.config.bias and kept.config.bias
    assert not any(n.endswith(".bias") for n, _ in auto.named_parameters())
    ids = np.arange(32)[None] % VOCAB
    np.testing.assert_array_equal(auto(ids).numpy(), kept(ids).numpy())
    random_gpt2(torch).save_pretrained(tmp_path / "nonzero")
    with pytest.raises(CheckpointError, match=r"bias=False asked for, but 'transformer.h.0.ln_1.bias' is not zero"):
        load_hf_gpt2(tmp_path / "nonzero", bias=False)


def test_ember_generate_runs_on_the_folder(hf_folder, capsys):
    assert main(["generate", "--ckpt", str(hf_folder), "--prompt", "def main(", "--max-new-tokens", "12",
                 "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def main(") and out.endswith("\n") and len(out) > len("def main(\n")


# -- refusals ------------------------------------------------------------------------------------------------
def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))


@pytest.mark.parametrize("changes,says", [
    ({"model_type": "llama"}, r"config.json: model_type 'llama' is not supported"),
    ({"architectures": ["GPT2ForSequenceClassification"]}, r"architectures \['GPT2ForSequenceClassification'\]"),
    ({"n_inner": 100}, r"config.json: n_inner = 100 is not supported \(ember's MLP is 4 x n_embd = 128"),
    ({"layer_norm_epsilon": 1e-6}, r"config.json: layer_norm_epsilon = 1e-06 is not supported"),
    ({"scale_attn_by_inverse_layer_idx": True}, r"config.json: scale_attn_by_inverse_layer_idx = true is not"),
    ({"reorder_and_upcast_attn": True}, r"config.json: reorder_and_upcast_attn = true is not supported"),
    ({"scale_attn_weights": False}, r"config.json: scale_attn_weights = false is not supported"),
    ({"add_cross_attention": True}, r"config.json: add_cross_attention = true is not supported"),
    ({"activation_function": "relu"}, r"config.json: activation_function 'relu' is not supported"),
    ({"n_embd": "32"}, r"config.json: n_embd must be a positive integer, found '32'"),
    ({"n_positions": 64}, r"weight 'transformer.wpe.weight' has shape \(32, 32\), expected \(64, 32\)"),
    ({"n_layer": 3}, r"missing weight 'transformer.h.2.ln_1.weight'"),
    ({"n_layer": 1}, r"unexpected weights 'transformer.h.1.attn.c_attn.bias'"),
    ({"vocab_size": 301}, r"'transformer.wte.weight' has shape \(300, 32\), expected \(301, 32\)"),
])
def test_configs_ember_cannot_honour_are_refused_naming_key_and_value(hf_folder, changes, says):
    edit_config(hf_folder, **changes)
    with pytest.raises(CheckpointError, match=says):
        load_hf_gpt2(hf_folder)


def test_missing_files_weights_and_untied_heads_are_refused(hf_folder, tmp_path):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(hf_folder / "model.safetensors")

    def variant(name, change):
        folder = tmp_path / name
        shutil.copytree(hf_folder, folder)
        change(folder)
        return folder

    no_config = variant("no_config", lambda f: (f / "config.json").unlink())
    with pytest.raises(CheckpointError, match=r"no_config/config.json: missing"):
        load_hf_gpt2(no_config)
    pickled = variant("pickled", lambda f: (f / "model.safetensors").rename(f / "pytorch_model.bin"))
    with pytest.raises(CheckpointError, match=r"no model.safetensors .*pytorch_model.bin need PyTorch to read"):
        load_hf_gpt2(pickled)
    untied = dict(tensors, **{"lm_head.weight": tensors["transformer.wte.weight"] + 0.5})
    head = variant("head", lambda f: save_file(untied, f / "model.safetensors"))
    edit_config(head, tie_word_embeddings=False)
    with pytest.raises(CheckpointError, match=r"'lm_head.weight' differs from it by up to 0.5 .*tie_word_embeddings = "
                                              r"false"):
        load_hf_gpt2(head)
    no_head = variant("no_head", lambda f: edit_config(f, tie_word_embeddings=False))
    with pytest.raises(CheckpointError, match=r"tie_word_embeddings = false but there is no 'lm_head.weight'"):
        load_hf_gpt2(no_head)
    missing = {k: v for k, v in tensors.items() if k != "transformer.ln_f.bias"}
    lacking = variant("lacking", lambda f: save_file(missing, f / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing weight 'transformer.ln_f.bias'"):
        load_hf_gpt2(lacking)
    extra = variant("extra", lambda f: save_file(dict(tensors, score=np.zeros(3, np.float32)),
                                                 f / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model.safetensors: unexpected weight 'score'"):
        load_hf_gpt2(extra)
    truncated = variant("truncated", lambda f: (f / "model.safetensors").write_bytes(b"\x08\x00"))
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a readable safetensors file"):
        load_hf_gpt2(truncated)


def test_a_tokenizer_of_another_size_is_refused(hf_folder, torch, capsys):
    random_gpt2(torch, vocab_size=VOCAB + 4).save_pretrained(hf_folder)
    says = "the tokenizer has 300 ids but config.json vocab_size is 304"
    with pytest.raises(CheckpointError, match=says):
        load_hf_gpt2(hf_folder)
    assert main(["generate", "--ckpt", str(hf_folder), "--prompt", "x"]) == 1
    assert says in capsys.readouterr().err
