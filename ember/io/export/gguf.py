"""Export a GPT to GGUF for llama.cpp's ``gpt2`` architecture, its tokenizer included.

llama.cpp's gpt2 graph is nanoGPT's (pre-LN blocks, fused QKV, learned positions, tied or untied head), with
three differences that decide what the file must hold (``../shared/specs/gpt-kvcache.md`` §3):

* every bias is required: a model without biases gets zero-filled ones (which change nothing);
* its GELU is the tanh form: an exact-GELU model is refused unless ``allow_approx``, and then the drift in
  logits that the tanh form causes on a probe sequence is measured and reported in a warning;
* it has one residual stream: a model with hyper-connections (``residual`` hc/mhc/mhc2) cannot be folded into
  it (each sub-layer mixes n streams with per-token maps), so it is refused, naming why.

The vocabulary is written as llama.cpp's GPT-2 BPE reads it: token texts in GPT-2's byte-to-unicode alphabet,
merges in rank order, token types (NORMAL, CONTROL for special tokens, UNUSED for padding rows),
``tokenizer.ggml.pre = "gpt-2"`` (GPT-2's pre-tokenisation regex, which ember's byte-level BPE uses) and the
BOS/EOS ids set explicitly (llama.cpp's BPE defaults, id 11, are a real token of a small vocabulary).

A character-level vocabulary becomes a BPE whose tokens are the characters: one merge chain per multi-byte
character, plus one merge that can never apply (llama.cpp refuses a gpt2 vocabulary with no merges, and a merge
whose result is not a token would make llama.cpp's byte fallback drop characters). It has no end-of-text token,
so ``<|endoftext|>`` is appended as a CONTROL token with a zero embedding row: with the tied head its logit is
exactly 0 at every position (a sampler can pick it only where every real token's logit is below 0).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...text.bpe import bytes_to_unicode
from ..atomic import atomic_path
from .common import ExportError, ExportWarning, check_single_stream_gpt, gelu_drift, head_is_tied, require

END_OF_TEXT = "<|endoftext|>"
NORMAL, CONTROL, UNUSED = 1, 3, 5  # llama.cpp's token types
# a merge whose left side no merge produces and no character is: it can never apply
NEVER_APPLYING_MERGE = "ĊĊ ĊĊ"


@dataclass
class GGUFVocabulary:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    eos: int
    extra_rows: int = 0  # rows appended to the token embedding (zeros) for tokens the model has no row for
    notes: list[str] = field(default_factory=list)


def export_gguf(model, tokenizer, path: str | os.PathLike, dtype: str = "f32", allow_approx: bool = False,
                name: str | None = None) -> Path:
    """Write ``model`` (an ember GPT) and its tokenizer to ``path`` as a GGUF file llama.cpp loads.

    ``dtype``: "f32", or "f16" for the matrices (norms and biases stay F32, as llama.cpp's converters write
    them). The file is written atomically: a failed export leaves no file and an existing one untouched.
    """
    gguf = require("gguf", "gguf")
    config = _check_exportable(model, dtype, allow_approx)
    vocab = gguf_vocabulary(tokenizer, config.vocab_size)
    tensors = gguf_tensors(model, vocab.extra_rows, dtype)
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), "gpt2")
        writer.add_name(name or path.stem)
        writer.add_file_type(int(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16))
        writer.add_context_length(config.block_size)
        writer.add_embedding_length(config.n_embd)
        writer.add_block_count(config.n_layer)
        writer.add_feed_forward_length(4 * config.n_embd)
        writer.add_head_count(config.n_head)
        writer.add_layer_norm_eps(float(model.transformer["ln_f"].eps))
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(vocab.tokens)
        writer.add_token_types(vocab.types)
        writer.add_token_merges(vocab.merges)
        writer.add_bos_token_id(vocab.eos)
        writer.add_eos_token_id(vocab.eos)
        writer.add_add_bos_token(False)
        for tensor_name, array in tensors.items():
            writer.add_tensor(tensor_name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def _check_exportable(model, dtype: str, allow_approx: bool):
    if dtype not in ("f32", "f16"):
        raise ExportError(f"GGUF export: dtype must be 'f32' or 'f16', got {dtype!r}")
    config = check_single_stream_gpt(model, "GGUF", "llama.cpp's gpt2 graph",
                                     "llama.cpp's gpt2 architecture is a GPT; export other models with --format onnx")
    if config.gelu != "tanh":
        drift = gelu_drift(model)
        message = (f"GGUF export: the model uses the exact (erf) GELU, llama.cpp computes the tanh form; on a probe "
                   f"sequence of {drift['tokens']} tokens the logits move by up to {drift['max_abs']:.2e} "
                   f"(largest logit magnitude {drift['scale']:.2e}) and the greedy token changes at "
                   f"{drift['argmax_changed']} of {drift['tokens']} positions")
        if not allow_approx:
            raise ExportError(message + "; pass allow_approx=True (--allow-approx) to export anyway, or train with "
                                        "--gelu tanh")
        warnings.warn(message, ExportWarning, stacklevel=3)
    return config


def gguf_tensors(model, extra_rows: int, dtype: str) -> dict[str, np.ndarray]:
    """llama.cpp's gpt2 tensors by name (NumPy shapes (out, in), which the writer turns into ggml's order).

    Linear weights are already (out, in), as llama.cpp wants them: no transpose. Missing biases become zeros.
    """
    tr, c = model.transformer, model.config
    matrix = np.float16 if dtype == "f16" else np.float32

    def array(p, dt=np.float32):
        return np.ascontiguousarray(p.numpy(), dtype=dt)

    def norm(prefix, ln):
        out = {f"{prefix}.weight": array(ln.weight)}
        out[f"{prefix}.bias"] = array(ln.bias) if ln.bias is not None else np.zeros(c.n_embd, np.float32)
        return out

    def linear(prefix, layer):
        out = {f"{prefix}.weight": array(layer.weight, matrix)}
        bias = array(layer.bias) if layer.bias is not None else np.zeros(layer.weight.shape[0], np.float32)
        out[f"{prefix}.bias"] = bias
        return out

    wte = array(tr["wte"].weight, matrix)
    if extra_rows:
        wte = np.concatenate([wte, np.zeros((extra_rows, c.n_embd), matrix)])
    tensors = {"token_embd.weight": wte, "position_embd.weight": array(tr["wpe"].weight, matrix)}
    for i, block in enumerate(tr["h"]):
        tensors |= norm(f"blk.{i}.attn_norm", block.ln_1)
        tensors |= linear(f"blk.{i}.attn_qkv", block.attn.c_attn)
        tensors |= linear(f"blk.{i}.attn_output", block.attn.c_proj)
        tensors |= norm(f"blk.{i}.ffn_norm", block.ln_2)
        tensors |= linear(f"blk.{i}.ffn_up", block.mlp.c_fc)
        tensors |= linear(f"blk.{i}.ffn_down", block.mlp.c_proj)
    tensors |= norm("output_norm", tr["ln_f"])
    if not head_is_tied(model):  # untied: llama.cpp reads output.weight (tied: omitted)
        head = array(model.lm_head.weight, matrix)
        if extra_rows:
            head = np.concatenate([head, np.zeros((extra_rows, c.n_embd), matrix)])
        tensors["output.weight"] = head
    return tensors


def gguf_vocabulary(tokenizer, vocab_size: int) -> GGUFVocabulary:
    """The tokenizer as llama.cpp's GPT-2 BPE vocabulary for a model with ``vocab_size`` embedding rows."""
    from ...text.bpe import ByteBPETokenizer
    from ...text.char import CharTokenizer

    if isinstance(tokenizer, ByteBPETokenizer):
        vocab = _byte_bpe_vocabulary(tokenizer)
    elif isinstance(tokenizer, CharTokenizer):
        vocab = _char_vocabulary(tokenizer)
    else:
        raise ExportError(f"GGUF export: no GGUF vocabulary for a {type(tokenizer).__name__} (expected ember's "
                          "ByteBPETokenizer or CharTokenizer)")
    real = tokenizer.vocab_size
    if real > vocab_size:
        raise ExportError(f"GGUF export: the tokenizer has {real} ids but the model only {vocab_size} embedding rows")
    for i in range(vocab_size - real):  # rows the model has beyond the tokenizer (a padded vocabulary)
        vocab.tokens.insert(real + i, f"<|pad_{i}|>")
        vocab.types.insert(real + i, UNUSED)
    if vocab.eos >= real:  # an appended end-of-text token comes after the padding rows
        vocab.eos = len(vocab.tokens) - 1
    if len(set(vocab.tokens)) != len(vocab.tokens):
        seen: dict[str, int] = {}
        dup = next(i for i, t in enumerate(vocab.tokens) if seen.setdefault(t, i) != i)
        raise ExportError(f"GGUF export: token {dup} ({vocab.tokens[dup]!r}) repeats token {seen[vocab.tokens[dup]]}; "
                          "llama.cpp refuses a vocabulary with duplicate tokens")
    return vocab


def _byte_bpe_vocabulary(tok) -> GGUFVocabulary:
    tokens = tok.token_strings()
    special = set(tok.special_tokens.values())  # by id: a tokenizer read from a file may number them first
    types = [CONTROL if i in special else NORMAL for i in range(tok.vocab_size)]
    merges = tok.merge_strings() or [NEVER_APPLYING_MERGE]
    if END_OF_TEXT in tok.special_tokens:
        return GGUFVocabulary(tokens, types, merges, tok.special_tokens[END_OF_TEXT])
    if tok.special_tokens:
        first = min(tok.special_tokens.values())
        return GGUFVocabulary(tokens, types, merges, first, notes=[f"BOS/EOS: the first special token, id {first}"])
    return GGUFVocabulary(tokens + [END_OF_TEXT], types + [CONTROL], merges, len(tokens), extra_rows=1,
                          notes=[f"appended {END_OF_TEXT} (id {len(tokens)}) with a zero embedding row"])


def _char_vocabulary(tok) -> GGUFVocabulary:
    table = bytes_to_unicode()
    tokens, merges, seen = [], [], set()
    for ch in tok.chars:
        pieces = [table[b] for b in ch.encode("utf-8")]
        tokens.append("".join(pieces))
        for i in range(1, len(pieces)):  # merge the character's bytes left to right
            merge = f"{''.join(pieces[:i])} {pieces[i]}"
            if merge not in seen:
                seen.add(merge)
                merges.append(merge)
    n = len(tokens)
    return GGUFVocabulary(tokens + [END_OF_TEXT], [NORMAL] * n + [CONTROL], merges + [NEVER_APPLYING_MERGE], n,
                          extra_rows=1, notes=[f"appended {END_OF_TEXT} (id {n}) with a zero embedding row"])
