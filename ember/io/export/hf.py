"""Export a GPT as a Hugging Face GPT-2 folder: ``GPT2LMHeadModel.from_pretrained`` and ``AutoTokenizer`` load it.

The folder holds model.safetensors, config.json, generation_config.json and the tokenizer's files (tokenizer.json
in the ``tokenizers`` format, vocab.json and merges.txt, tokenizer_config.json; ``ember.text.hf_tokenizer``).
The weights follow ``gpt2_parameter_table`` (ember/io/hf_import.py), the table the importer reads back: Linear
weights transposed into GPT-2's Conv1D layout, zero biases where the model has none (GPT-2 always has them, and
zeros change nothing), no ``lm_head.weight`` (tied to the embedding, as ``save_pretrained`` writes it). The GELU
is named exactly ("gelu" for the erf form, "gelu_new" for the tanh form), so the logits match ember's to float32
rounding. A model with hyper-connections has no GPT-2 form and is refused.

The folder appears whole or not at all: it is written beside the target under a temporary name, then renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import _active, _default_mode, _host, orphaned_temporaries
from ..hf_import import LAYER_NORM_EPS, gpt2_parameter_table
from .common import ExportError, check_single_stream_gpt, head_is_tied, module_tensors

GELU_NAMES = {"none": "gelu", "tanh": "gelu_new"}
DTYPES = {"f32": (np.float32, "float32"), "f16": (np.float16, "float16")}
END_OF_TEXT = "<|endoftext|>"


def export_hf(model, tokenizer, folder: str | os.PathLike, *, dtype: str = "f32", overwrite: bool = False) -> Path:
    """Write ``model`` (an ember GPT) and ``tokenizer`` to ``folder`` as a Hugging Face GPT-2 folder.

    ``dtype``: "f32", or "f16" for every tensor (config.json then says float16). An existing non-empty folder is
    replaced only with ``overwrite=True``; a failed export leaves it as it was and nothing else behind.
    """
    from ...text.hf_tokenizer import hf_tokenizer_files

    config = _check_exportable(model, tokenizer, dtype)
    folder = Path(folder)
    _check_target(folder, overwrite)
    try:
        token_files = hf_tokenizer_files(tokenizer, config.block_size)
    except ValueError as exc:
        raise ExportError(f"HF export: the tokenizer cannot be written for transformers: {exc}") from None
    tensors = hf_tensors(model, dtype)
    eos = _end_of_text_id(tokenizer)
    files = {"config.json": _dumps(hf_config(model, dtype, eos)),
             "generation_config.json": _dumps({"bos_token_id": eos, "eos_token_id": eos}), **token_files}
    with _atomic_folder(folder, overwrite) as tmp:
        _write_safetensors(tmp / "model.safetensors", tensors)
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return folder


def hf_config(model, dtype: str = "f32", eos: int | None = None) -> dict:
    """GPT2Config's settings for ``model`` (dropout as it was trained with; ember's LayerNorm epsilon)."""
    c = model.config
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": c.vocab_size, "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer,
        "n_head": c.n_head, "n_inner": None, "activation_function": GELU_NAMES[c.gelu],
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS, "initializer_range": 0.02,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True, "use_cache": True,
        "bos_token_id": eos, "eos_token_id": eos, "pad_token_id": None,
        "dtype": DTYPES[dtype][1],
    }


def hf_tensors(model, dtype: str = "f32") -> dict[str, np.ndarray]:
    """GPT-2's tensors by name, walking ``gpt2_parameter_table``: Conv1D weights are ember's transposed, and a
    bias the model does not have is zeros."""
    table = gpt2_parameter_table(model.config.n_layer)
    found = module_tensors(model, [ours for ours, _, _ in table] + [ours.removesuffix(".bias") + ".weight"
                                                                    for ours, _, _ in table if ours.endswith(".bias")])
    np_dtype = DTYPES[dtype][0]
    tensors = {}
    for ours, theirs, transposed in table:
        if found[ours] is not None:
            array = found[ours].numpy()
            array = array.T if transposed else array
        else:  # a bias-free model: zeros of the bias's size (the first axis of its weight)
            weight = found[ours.removesuffix(".bias") + ".weight"]
            array = np.zeros(weight.shape[0], dtype=weight.dtype)
        tensors[theirs] = np.ascontiguousarray(array, dtype=np_dtype)
    return tensors


def _check_exportable(model, tokenizer, dtype: str):
    if dtype not in DTYPES:
        raise ExportError(f"HF export: dtype must be 'f32' or 'f16', got {dtype!r}")
    config = check_single_stream_gpt(model, "HF", "GPT-2", "GPT-2 is the Hugging Face layout ember writes; export "
                                                           "other models with --format onnx")
    eps = {float(m.eps) for name, m in model.named_modules() if name.split(".")[-1] in ("ln_1", "ln_2", "ln_f")}
    if eps != {LAYER_NORM_EPS}:
        raise ExportError(f"HF export: the LayerNorms' eps {sorted(eps)} is not GPT-2's single layer_norm_epsilon "
                          f"{LAYER_NORM_EPS}")
    head, wte = model.lm_head.weight, model.transformer["wte"].weight
    if not head_is_tied(model) and not np.array_equal(head.numpy(), wte.numpy()):
        raise ExportError("HF export: the model's head (lm_head.weight) is not tied to its token embedding; the GPT-2 "
                          "layout ember writes ties them")
    if tokenizer.vocab_size > config.vocab_size:
        raise ExportError(f"HF export: the tokenizer has {tokenizer.vocab_size} ids but the model only "
                          f"{config.vocab_size} embedding rows")
    return config


def _end_of_text_id(tokenizer) -> int | None:
    """<|endoftext|>'s id (GPT-2's BOS and EOS), or None: a character vocabulary has no end-of-text token."""
    return getattr(tokenizer, "special_tokens", {}).get(END_OF_TEXT)


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(path), metadata={"format": "pt"})  # "pt": what transformers expects of its own files


def _check_target(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"HF export: {folder} is a file; a Hugging Face export is a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ExportError(f"HF export: {folder} exists and is not empty; pass overwrite=True to replace it")


class _atomic_folder:
    """A temporary folder beside ``folder`` (named like ``ember.io.atomic``'s temporary files, so the next export
    can tell an orphan of a killed one and remove it) that replaces ``folder`` when the body succeeds."""

    def __init__(self, folder: Path, overwrite: bool):
        self.folder, self.overwrite = folder, overwrite

    def __enter__(self) -> Path:
        parent = self.folder.parent
        parent.mkdir(parents=True, exist_ok=True)
        for orphan in orphaned_temporaries(parent):
            if orphan.is_dir():
                shutil.rmtree(orphan, ignore_errors=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.{_host()}-{os.getpid()}.", suffix=".tmp",
                                         dir=parent))
        _active.add(self.tmp)  # in progress: not an orphan to another write from this process
        return self.tmp

    def __exit__(self, kind, exc, tb) -> bool:
        try:
            if kind is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                return False
            _fsync_folder(self.tmp)
            file_mode = _default_mode()  # what open() gives a file; a folder adds search wherever read is allowed
            os.chmod(self.tmp, file_mode | (file_mode & 0o444) >> 2)
            self._replace()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        finally:
            _active.discard(self.tmp)
        return False

    def _replace(self) -> None:
        folder = self.folder
        if not folder.exists():
            os.rename(self.tmp, folder)
            return
        _check_target(folder, self.overwrite)  # it may have changed while the export ran
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{_host()}-{os.getpid()}.", suffix=".tmp",
                                    dir=folder.parent))
        os.rename(folder, old / folder.name)  # moved aside first: a rename cannot replace a non-empty folder
        try:
            os.rename(self.tmp, folder)
        except BaseException:
            os.rename(old / folder.name, folder)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


def _dumps(obj) -> str:
    return json.dumps(obj, indent=2) + "\n"
