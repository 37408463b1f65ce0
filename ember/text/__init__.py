"""Text: character and byte-level BPE tokenizers."""

from .bpe import GPT2_PATTERN, ByteBPETokenizer, bytes_to_unicode, load_tokenizer
from .char import CharTokenizer

__all__ = ["GPT2_PATTERN", "ByteBPETokenizer", "CharTokenizer", "bytes_to_unicode", "load_tokenizer"]
