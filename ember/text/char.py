"""Character-level tokenizer: one id per distinct character of the training text (nanoGPT's shakespeare_char)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .checks import check_token_ids, describe, field


class CharTokenizer:
    """ids are positions in the sorted set of the training text's characters."""

    kind = "char"

    def __init__(self, chars: list[str]):
        _check_chars(chars)
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        if not text:
            raise ValueError("CharTokenizer.train: empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[c] for c in text]
        except KeyError as exc:
            raise ValueError(f"CharTokenizer.encode: character {exc.args[0]!r} is not in the vocabulary "
                             f"of {self.vocab_size} characters") from None

    def decode(self, ids) -> str:
        """The text of ``ids`` (a list, 1-d array or Tensor of ints in [0, vocab_size))."""
        ids = check_token_ids(ids, self.vocab_size, "CharTokenizer.decode")
        return "".join(map(self.chars.__getitem__, ids))

    def to_dict(self) -> dict:
        return {"type": self.kind, "version": 1, "chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(field(d, "chars", list, "a list of one-character strings"))

    def save(self, path: str | os.PathLike) -> Path:
        from ..io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))
        return Path(path)


def _check_chars(chars) -> None:
    """A vocabulary is a non-empty sequence of distinct one-character strings (an id is a position in it)."""
    if isinstance(chars, str) or not isinstance(chars, (list, tuple)) or not chars:
        raise ValueError(f"CharTokenizer: chars must be a non-empty list of one-character strings, "
                         f"got {describe(chars)}")
    for i, c in enumerate(chars):
        if not (isinstance(c, str) and len(c) == 1):
            raise ValueError(f"CharTokenizer: chars[{i}] must be a one-character string, got {describe(c)}")
    if len(set(chars)) != len(chars):
        first = {}
        dup = next(i for i, c in enumerate(chars) if first.setdefault(c, i) != i)
        raise ValueError(f"CharTokenizer: duplicate character {chars[dup]!r} in the vocabulary "
                         f"(chars[{first[chars[dup]]}] and chars[{dup}])")
