"""Exporters: GGUF for llama.cpp (``gguf``), Hugging Face GPT-2 folders (``hf``), ONNX graphs (``onnx``).

Each is a function taking an ember model (and, for the language-model formats, its tokenizer);
``export_checkpoint`` is what ``ember export`` runs: it loads a run folder or a checkpoint file and dispatches.
The format modules import their optional packages (gguf, onnx) only when called.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from .common import ExportError, ExportWarning

FORMATS = {"gguf": ("gguf", "export_gguf"), "hf": ("hf", "export_hf"), "onnx": ("onnx", "export_onnx")}

__all__ = ["FORMATS", "ExportError", "ExportWarning", "export_checkpoint", "export_gguf", "export_hf",
           "export_onnx", "load_for_export"]


def __getattr__(name: str):
    for module, function in FORMATS.values():
        if name == function:
            return getattr(importlib.import_module(f"{__name__}.{module}"), function)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_for_export(ckpt: str | os.PathLike):
    """(model, tokenizer or None) of what ``ember generate --ckpt`` or ``ember eval`` take: a run folder (its
    model.safetensors and tokenizer.json) or a checkpoint file (with the tokenizer.json beside it, if any)."""
    from ..checkpoint import CheckpointError, load_model

    ckpt = Path(ckpt)
    if ckpt.is_dir():
        from ...train.lm import load_lm

        model, tokenizer, _ = load_lm(ckpt)
        return model, tokenizer
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: no such checkpoint (expected a run folder or a .safetensors file)")
    model, _ = load_model(ckpt)
    beside = ckpt.parent / "tokenizer.json"
    tokenizer = None
    if beside.is_file():
        from ...text import load_tokenizer

        tokenizer = load_tokenizer(beside)
    return model.eval(), tokenizer


def export_checkpoint(ckpt: str | os.PathLike, fmt: str, out: str | os.PathLike, dtype: str = "f32",
                      allow_approx: bool = False) -> Path:
    """Export the model in ``ckpt`` to ``out`` in ``fmt`` (gguf, hf or onnx)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    model, tokenizer = load_for_export(ckpt)
    if fmt == "onnx":
        if dtype != "f32":
            raise ExportError("ONNX export writes float32 graphs; --dtype f16 applies to gguf and hf")
        return __getattr__("export_onnx")(model, out)
    if tokenizer is None:
        raise ExportError(f"{ckpt}: a {fmt} export includes the tokenizer, and there is no tokenizer.json beside "
                          "the checkpoint")
    if fmt == "gguf":
        return __getattr__("export_gguf")(model, tokenizer, out, dtype=dtype, allow_approx=allow_approx)
    return __getattr__("export_hf")(model, tokenizer, out, dtype=dtype)
