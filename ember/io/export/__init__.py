"""Exporters: GGUF for llama.cpp (``gguf``), Hugging Face GPT-2 folders (``hf``), ONNX graphs (``onnx``).

Each is a function taking an ember model (and, for the language-model formats, its tokenizer); ``ember export``
(``ember/cli/export.py``) loads a run folder or a checkpoint file and calls one. The format modules import their
optional packages (gguf, onnx) only when called.
"""

from __future__ import annotations

import importlib

from .common import ExportError, ExportWarning

FORMATS = {"gguf": ("gguf", "export_gguf"), "hf": ("hf", "export_hf"), "onnx": ("onnx", "export_onnx")}

__all__ = ["FORMATS", "ExportError", "ExportWarning", "export_gguf", "export_hf", "export_onnx"]


def __getattr__(name: str):
    for module, function in FORMATS.values():
        if name == function:
            return getattr(importlib.import_module(f"{__name__}.{module}"), function)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
