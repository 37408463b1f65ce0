"""Text: character and byte-level BPE tokenizers."""

from .bpe import GPT2_PATTERN, ByteBPETokenizer, bytes_to_unicode, load_tokenizer
from .char import CharTokenizer
from .checks import TokenizerFileError

__all__ = ["GPT2_PATTERN", "ByteBPETokenizer", "CharTokenizer", "TokenizerFileError", "bytes_to_unicode",
           "load_tokenizer"]
