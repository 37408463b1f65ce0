"""Text corpora for language models: read, tokenize, split 90/10, and draw random training windows.

Corpus names (``--data`` of ``ember train gpt``):

- ``shakespeare-char``: Tiny Shakespeare with one id per character (nanoGPT's shakespeare_char: the
  vocabulary is the sorted set of the whole text's 65 characters).
- ``shakespeare-bpe``: Tiny Shakespeare with a byte-level BPE trained on the training split only.
- ``python-stdlib``: the ``.py`` sources of the running interpreter's standard library (test
  folders and site-packages left out): about 12 MB of real code, for a code model.
- a path: one text file, or every UTF-8 text file under a directory (sorted; hidden files and
  folders, ``__pycache__`` and files that are not UTF-8 skipped). Files are joined with
  ``<|endoftext|>`` for BPE, with a blank line for characters.

The split is nanoGPT's: the first 90% of the token stream trains, the last 10% validates.
"""

from __future__ import annotations

import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..text import ByteBPETokenizer, CharTokenizer
from .errors import DatasetError
from .registry import locate

CORPORA = ("shakespeare-char", "shakespeare-bpe", "python-stdlib")
END_OF_TEXT = "<|endoftext|>"
DEFAULT_BPE_VOCAB = {"shakespeare-bpe": 1024, "python-stdlib": 8192}
STDLIB_SKIP = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}


@dataclass
class TextCorpus:
    """Token ids of a corpus split for training, with the tokenizer that made them."""

    name: str
    tokenizer: CharTokenizer | ByteBPETokenizer
    train: np.ndarray  # 1-D token ids (uint16 when the vocabulary fits, else int32)
    val: np.ndarray
    num_chars: int

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size


def read_documents(spec: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> list[str]:
    """The documents of a named corpus or a path, as strings."""
    if spec in ("shakespeare-char", "shakespeare-bpe"):
        path = locate("tinyshakespeare", "input.txt", data_dir, download)
        return [path.read_text(encoding="utf-8")]
    if spec == "python-stdlib":
        return [p.read_text(encoding="utf-8") for p in stdlib_files()]
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if not text:
            raise DatasetError(f"{path}: the file is empty")
        return [text]
    if path.is_dir():
        docs = [doc for doc in _text_files(path) if doc]
        if not docs:
            raise DatasetError(f"{path}: no non-empty UTF-8 text files found in this directory")
        return docs
    raise DatasetError(f"--data {spec!r}: not a known corpus ({', '.join(CORPORA)}) nor an existing file or "
                       f"directory")


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_SKIP and not d.startswith("."))
        files += [Path(folder) / n for n in sorted(names) if n.endswith(".py")]
    if not files:
        raise DatasetError(f"python-stdlib: no .py files under {root} (is the standard library's source installed?)")
    return files


def _text_files(root: Path):
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(names):
            if name.startswith("."):
                continue
            try:
                yield (Path(folder) / name).read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue


def default_tokenizer_kind(spec: str) -> str:
    return "char" if spec == "shakespeare-char" else "bpe"


def load_corpus(spec: str, tokenizer: str | CharTokenizer | ByteBPETokenizer | None = None,
                vocab_size: int | None = None, val_fraction: float = 0.1, data_dir=None,
                download: bool = True) -> TextCorpus:
    """Read, tokenize and split a corpus. ``tokenizer``: 'char', 'bpe', an existing tokenizer (to
    reuse one saved in a checkpoint), or None for the corpus's default.

    A corpus of many files (python-stdlib, a folder) holds out whole files: every round(1/val_fraction)-th
    file is validation, so the model is judged on code it never saw a line of, spread over the corpus; a BPE
    tokenizer is trained on the training files only. A single text holds out its last characters."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"load_corpus: val_fraction must be in (0, 1), got {val_fraction}")
    docs = read_documents(spec, data_dir, download)
    if tokenizer is None:
        tokenizer = default_tokenizer_kind(spec)
    kind = tokenizer if isinstance(tokenizer, str) else ("char" if tokenizer.kind == "char" else "bpe")
    if kind not in ("char", "bpe"):
        raise ValueError(f"load_corpus: tokenizer must be 'char' or 'bpe', got {tokenizer!r}")
    separator = "\n\n" if kind == "char" else END_OF_TEXT
    text = separator.join(docs)
    every = max(2, round(1.0 / val_fraction))
    by_file = len(docs) >= every  # held-out whole files: every `every`-th one, spread over the corpus
    if by_file:
        train_text = separator.join(d for i, d in enumerate(docs) if i % every != every - 1)
        val_text = separator.join(docs[every - 1 :: every])
    else:  # one document (Tiny Shakespeare) or too few files: its last characters, as nanoGPT
        cut = int(len(text) * (1.0 - val_fraction))
        train_text, val_text = text[:cut], text[cut:]
    if tokenizer == "char":
        tokenizer = CharTokenizer.train(text)  # nanoGPT: the whole text's characters
    elif tokenizer == "bpe":
        tokenizer = ByteBPETokenizer.train(train_text, vocab_size or DEFAULT_BPE_VOCAB.get(spec, 4096),
                                           special_tokens=[END_OF_TEXT])
    dtype = np.uint16 if tokenizer.vocab_size <= 65536 else np.int32
    if by_file:
        train, val = (np.asarray(tokenizer.encode(t), dtype=dtype) for t in (train_text, val_text))
        return TextCorpus(spec, tokenizer, train, val, len(text))
    ids = np.asarray(tokenizer.encode(text), dtype=dtype)
    n_train = int(len(ids) * (1.0 - val_fraction))
    return TextCorpus(spec, tokenizer, ids[:n_train], ids[n_train:], len(text))


def random_windows(ids: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator):
    """``batch_size`` random windows of ``block_size + 1`` tokens: inputs x and next-token targets y (int64)."""
    if len(ids) <= block_size:
        raise ValueError(f"random_windows: {len(ids)} tokens cannot fill a window of {block_size} + 1 "
                         f"(use a smaller --block-size or more text)")
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)
    windows = ids[starts[:, None] + np.arange(block_size + 1)].astype(np.int64)
    return windows[:, :-1], windows[:, 1:]
