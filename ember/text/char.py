"""Character-level tokenizer: one id per distinct character of the training text (nanoGPT's shakespeare_char)."""

from __future__ import annotations

import json
import os
from pathlib import Path


class CharTokenizer:
    """ids are positions in the sorted set of the training text's characters."""

    kind = "char"

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: duplicate characters in the vocabulary")
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
        try:
            return "".join(self.chars[int(i)] for i in ids)
        except IndexError:
            raise ValueError(f"CharTokenizer.decode: id out of range [0, {self.vocab_size})") from None

    def to_dict(self) -> dict:
        return {"type": self.kind, "version": 1, "chars": self.chars}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(d["chars"])

    def save(self, path: str | os.PathLike) -> Path:
        from ..io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))
        return Path(path)
