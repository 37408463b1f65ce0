"""``ember export CKPT --format gguf|hf|onnx --out PATH``: a trained model in the formats other tools run.

gguf: one file for llama.cpp (GPT models, tokenizer included); hf: a folder for ``transformers`` (GPT-2 layout,
with tokenizer.json, vocab.json and merges.txt); onnx: one graph for onnxruntime (MLP, LeNet-5, KAN, GPT).
"""

from __future__ import annotations

import os
from pathlib import Path

from .common import UserError, say


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model to GGUF (llama.cpp), Hugging Face or ONNX",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("ckpt", metavar="CKPT", help="a run folder (as ember generate --ckpt takes) or a checkpoint file")
    p.add_argument("--format", required=True, choices=("gguf", "hf", "onnx"), dest="fmt")
    p.add_argument("--out", required=True, metavar="PATH", help="the file (gguf, onnx) or folder (hf) to write")
    p.add_argument("--dtype", choices=("f32", "f16"), default="f32", help="weights' precision (gguf, hf)")
    p.add_argument("--allow-approx", action="store_true",
                   help="export an exact-GELU model to GGUF although llama.cpp computes the tanh form "
                        "(the drift is measured and printed)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..io.export import ExportError

    try:  # an inexact export's ExportWarning is printed by ember's warning handler, as one line
        out = export_checkpoint(args.ckpt, args.fmt, args.out, dtype=args.dtype, allow_approx=args.allow_approx)
    except (ExportError, ImportError, TypeError) as exc:
        raise UserError(str(exc)) from None
    say(f"wrote {out} ({_size(out) / 1e6:.1f} MB, {args.fmt}, {args.dtype})")
    return 0


def load_for_export(ckpt: str | os.PathLike):
    """(model, tokenizer or None) of what ``ember generate --ckpt`` or ``ember eval`` take: a run folder (its
    model.safetensors and tokenizer.json) or a checkpoint file (with the tokenizer.json beside it, if any)."""
    from ..io.checkpoint import CheckpointError, load_model

    ckpt = Path(ckpt)
    if ckpt.is_dir():
        from ..train.lm import load_lm

        model, tokenizer, _ = load_lm(ckpt)
        return model, tokenizer
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: no such checkpoint (expected a run folder or a .safetensors file)")
    model, _ = load_model(ckpt)
    beside = ckpt.parent / "tokenizer.json"
    tokenizer = None
    if beside.is_file():
        from ..text import load_tokenizer

        tokenizer = load_tokenizer(beside)
    return model.eval(), tokenizer


def export_checkpoint(ckpt: str | os.PathLike, fmt: str, out: str | os.PathLike, dtype: str = "f32",
                      allow_approx: bool = False) -> Path:
    """Export the model in ``ckpt`` to ``out`` in ``fmt`` (gguf, hf or onnx)."""
    from ..io import export

    model, tokenizer = load_for_export(ckpt)
    if fmt == "onnx":
        if dtype != "f32":
            raise export.ExportError("ONNX export writes float32 graphs; --dtype f16 applies to gguf and hf")
        return export.export_onnx(model, out, dtype="float32")
    if tokenizer is None:
        raise export.ExportError(f"{ckpt}: a {fmt} export includes the tokenizer, and there is no tokenizer.json "
                                 "beside the checkpoint")
    if fmt == "gguf":
        return export.export_gguf(model, tokenizer, out, dtype=dtype, allow_approx=allow_approx)
    return export.export_hf(model, tokenizer, out, dtype=dtype)


def _size(path: Path) -> int:
    path = Path(path)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
