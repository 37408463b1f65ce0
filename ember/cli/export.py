"""``ember export CKPT --format gguf|hf|onnx --out PATH``: a trained model in the formats other tools run.

gguf: one file for llama.cpp (GPT models, tokenizer included); hf: a folder for ``transformers`` (GPT-2 layout,
with tokenizer.json, vocab.json and merges.txt); onnx: one graph for onnxruntime (MLP, LeNet-5, KAN, GPT).
"""

from __future__ import annotations

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
    from ..io.export import ExportError, export_checkpoint

    try:  # an inexact export's ExportWarning is printed by ember's warning handler, as one line
        out = export_checkpoint(args.ckpt, args.fmt, args.out, dtype=args.dtype, allow_approx=args.allow_approx)
    except (ExportError, ImportError) as exc:
        raise UserError(str(exc)) from None
    say(f"wrote {out} ({_size(out) / 1e6:.1f} MB, {args.fmt}, {args.dtype})")
    return 0


def _size(path: Path) -> int:
    path = Path(path)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
