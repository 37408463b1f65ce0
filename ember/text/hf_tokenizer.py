"""Hugging Face tokenizer files for ember's tokenizers, both ways: ``tokenizer.json`` (the ``tokenizers`` format),
``vocab.json`` + ``merges.txt`` (GPT-2's files) and ``tokenizer_config.json`` (what ``AutoTokenizer`` reads first).

Byte-level BPE is GPT-2's tokenizer: the same pre-tokenisation regex (``ByteLevel`` with ``use_regex``), token
strings in the byte-to-unicode alphabet and merges applied by rank, so the same merges give the same ids. Files
made elsewhere number tokens their own way (GPT-2's "!" is id 0), which ember keeps as the tokenizer's id table.

A character vocabulary has no byte-level BPE form unless every character is one byte: an ASCII vocabulary is
written as a byte-level BPE with no merges (vocab.json and merges.txt included), any other as a ``WordLevel``
model over a pre-tokenizer that cuts the text into single characters (``tokenizer.json`` only). Both read back as
a ``CharTokenizer``.

What ember does not implement (a normalizer, a prefix space, another pre-tokenizer or decoder, BPE dropout,
merges that skip their own prerequisites) is refused with an error naming the file and the field, rather than
loaded into a tokenizer that would give other ids than the file's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .bpe import GPT2_PATTERN, ByteBPETokenizer, bytes_to_unicode, load_tokenizer
from .char import CharTokenizer
from .checks import TokenizerFileError, describe

TOKENIZER_JSON = "tokenizer.json"
VOCAB_JSON = "vocab.json"
MERGES_TXT = "merges.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
END_OF_TEXT = "<|endoftext|>"
MERGES_HEADER = "#version: 0.2"
# the pre-tokenizer of a character vocabulary: every character its own piece (newlines included)
EACH_CHARACTER = r"[\s\S]"

_BYTE_LEVEL = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_LEVEL_OUT = {"add_prefix_space": True, "trim_offsets": False, "use_regex": True}  # what tokenizers writes


# -- ember -> Hugging Face ------------------------------------------------------------------------
def hf_tokenizer_files(tokenizer, model_max_length: int) -> dict[str, str]:
    """The Hugging Face files of ``tokenizer`` (a ``ByteBPETokenizer`` or a ``CharTokenizer``): name -> text.

    Raises ValueError for a tokenizer those files cannot express (a custom pre-tokenisation pattern, two tokens
    with the same string)."""
    if isinstance(tokenizer, ByteBPETokenizer):
        return _byte_bpe_files(tokenizer, model_max_length)
    if isinstance(tokenizer, CharTokenizer):
        if all(c.isascii() for c in tokenizer.chars):
            return _ascii_char_files(tokenizer, model_max_length)
        return _char_files(tokenizer, model_max_length)
    raise ValueError(f"no Hugging Face tokenizer for a {type(tokenizer).__name__} (expected ember's "
                     "ByteBPETokenizer or CharTokenizer)")


def _byte_bpe_files(tok: ByteBPETokenizer, model_max_length: int) -> dict[str, str]:
    if tok.pattern != GPT2_PATTERN:
        raise ValueError(f"the tokenizer's pre-tokenisation pattern {tok.pattern!r} is not GPT-2's: Hugging Face's "
                         "ByteLevel pre-tokenizer only implements GPT-2's")
    strings = tok.token_strings()
    vocab = _unique_vocabulary(strings)
    specials = sorted(tok.special_tokens.items(), key=lambda item: item[1])
    eot = END_OF_TEXT if END_OF_TEXT in tok.special_tokens else None
    return _files(_tokenizers_json(vocab, tok.merge_strings(), specials), vocab, tok.merge_strings(),
                  _tokenizer_config("GPT2Tokenizer", model_max_length, eot, specials))


def _ascii_char_files(tok: CharTokenizer, model_max_length: int) -> dict[str, str]:
    """One byte per character: a byte-level BPE whose tokens are the characters and which has no merges."""
    table = bytes_to_unicode()
    vocab = {table[ord(c)]: i for i, c in enumerate(tok.chars)}
    return _files(_tokenizers_json(vocab, [], []), vocab, [],
                  _tokenizer_config("GPT2Tokenizer", model_max_length, None, []))


def _char_files(tok: CharTokenizer, model_max_length: int) -> dict[str, str]:
    tokenizer = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": EACH_CHARACTER}, "behavior": "Isolated",
                          "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        # unk_token is not in the vocabulary: an unknown character is an error, as in CharTokenizer.encode
        "model": {"type": "WordLevel", "vocab": {c: i for i, c in enumerate(tok.chars)}, "unk_token": "<unk>"},
    }
    config = _tokenizer_config("PreTrainedTokenizerFast", model_max_length, None, [])
    return {TOKENIZER_JSON: _dumps(tokenizer), TOKENIZER_CONFIG: _dumps(config)}


def _unique_vocabulary(strings: list[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for i, s in enumerate(strings):
        if vocab.setdefault(s, i) != i:
            raise ValueError(f"tokens {vocab[s]} and {i} are the same string {s!r}: a Hugging Face vocabulary "
                             "maps each string to one id")
    return vocab


def _tokenizers_json(vocab: dict[str, int], merges: list[str], specials: list[tuple[str, int]]) -> dict:
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for t, i in specials]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **_BYTE_LEVEL},
        "post_processor": {"type": "ByteLevel", **_BYTE_LEVEL_OUT},
        "decoder": {"type": "ByteLevel", **_BYTE_LEVEL_OUT},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def _tokenizer_config(cls: str, model_max_length: int, eot: str | None, specials: list[tuple[str, int]]) -> dict:
    """What AutoTokenizer reads first. The special tokens are named explicitly (GPT2Tokenizer's defaults are
    <|endoftext|>, which it would add as a new token to a vocabulary without one)."""
    return {
        "tokenizer_class": cls, "model_max_length": model_max_length, "add_prefix_space": False,
        "bos_token": eot, "eos_token": eot, "unk_token": eot, "pad_token": None,
        "clean_up_tokenization_spaces": False, "errors": "replace",
        "added_tokens_decoder": {str(i): {"content": t, "single_word": False, "lstrip": False, "rstrip": False,
                                          "normalized": False, "special": True} for t, i in specials},
    }


def _files(tokenizer: dict, vocab: dict[str, int], merges: list[str], config: dict) -> dict[str, str]:
    return {TOKENIZER_JSON: _dumps(tokenizer), VOCAB_JSON: _dumps(vocab),
            MERGES_TXT: "\n".join([MERGES_HEADER, *merges]) + "\n", TOKENIZER_CONFIG: _dumps(config)}


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


# -- Hugging Face -> ember ------------------------------------------------------------------------
def is_hf_tokenizer_json(d: dict) -> bool:
    """A parsed tokenizer.json in the ``tokenizers`` format (ember's own has ``type`` and no ``model``)."""
    return isinstance(d, dict) and isinstance(d.get("model"), dict)


def load_hf_tokenizer(folder: str | os.PathLike):
    """The tokenizer of a Hugging Face folder: its tokenizer.json (``tokenizers`` format, or ember's own), else its
    vocab.json + merges.txt; None when it has neither. A ``ByteBPETokenizer`` (with the file's ids) or, for a
    character vocabulary written by ember, a ``CharTokenizer``."""
    folder = Path(folder)
    _check_tokenizer_config(folder / TOKENIZER_CONFIG)
    path = folder / TOKENIZER_JSON
    if path.is_file():
        d = _read_json(path)
        return tokenizer_from_tokenizers_json(d, path) if is_hf_tokenizer_json(d) else load_tokenizer(path)
    vocab_path, merges_path = folder / VOCAB_JSON, folder / MERGES_TXT
    if vocab_path.is_file() and merges_path.is_file():
        return tokenizer_from_vocab_and_merges(vocab_path, merges_path)
    if vocab_path.is_file() or merges_path.is_file():
        have, lack = (vocab_path, merges_path) if vocab_path.is_file() else (merges_path, vocab_path)
        raise TokenizerFileError(f"{have}: found without {lack.name} (a byte-level BPE needs both, or a "
                                 f"{TOKENIZER_JSON})")
    return None


def tokenizer_from_tokenizers_json(d: dict, source: str | os.PathLike = TOKENIZER_JSON):
    """The ember tokenizer of a parsed ``tokenizers`` file (``source`` names it in errors)."""
    if d.get("normalizer") is not None:
        raise TokenizerFileError(f"{source}: normalizer {_short(d['normalizer'])} is not supported (ember's "
                                 "tokenizers see the text as it is; expected null)")
    model = d["model"]
    kind = model.get("type")
    added = _added_tokens(d.get("added_tokens", []), source)
    if kind == "WordLevel":
        return _char_from_word_level(d, added, source)
    if kind != "BPE":
        raise TokenizerFileError(f"{source}: model.type {kind!r} is not supported (expected 'BPE', GPT-2's "
                                 "byte-level BPE, or the 'WordLevel' character vocabulary ember writes)")
    _check_byte_level(d, source)
    _check_bpe_options(model, source)
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise TokenizerFileError(f"{source}: model.vocab: expected an object of token -> id, found {describe(vocab)}")
    merges = _merge_pairs(model.get("merges", []), f"{source}: model.merges")
    return _tokenizer_from_vocabulary(vocab, merges, added, source, leftovers_are_special=False)


def tokenizer_from_vocab_and_merges(vocab_path: str | os.PathLike, merges_path: str | os.PathLike):
    """The byte-level BPE of GPT-2's two files. vocab.json entries that no byte or merge makes (GPT-2's
    <|endoftext|>) are special tokens: whole strings matched before the BPE, as transformers matches them."""
    vocab = _read_json(Path(vocab_path))
    if not isinstance(vocab, dict):
        raise TokenizerFileError(f"{vocab_path}: expected a JSON object of token -> id, found {describe(vocab)}")
    merges = _merge_pairs(_read_merges_txt(Path(merges_path)), str(merges_path))
    return _tokenizer_from_vocabulary(vocab, merges, {}, vocab_path, leftovers_are_special=True)


def _tokenizer_from_vocabulary(vocab: dict, merges: list[tuple[str, str]], added: dict[str, int], source,
                               leftovers_are_special: bool):
    table = bytes_to_unicode()
    missing = [b for b in range(256) if table[b] not in vocab]
    if missing and not merges and not added:
        return _char_from_byte_level(vocab, source)
    if missing:
        raise TokenizerFileError(f"{source}: the vocabulary has no token for {len(missing)} of the 256 bytes (first: "
                                 f"byte 0x{missing[0]:02x}, {table[missing[0]]!r}); ember's byte-level BPE needs "
                                 "every byte")
    _check_ids(vocab, added, source)
    internal = _merged_tokens(merges, source)
    for string, i in internal.items():
        if string not in vocab:
            raise TokenizerFileError(f"{source}: merges[{i - 256}] makes {string!r}, which the vocabulary does not "
                                     "hold")
    specials = dict(added)
    for string, i in vocab.items():
        if string in internal or string in added:
            continue
        if not leftovers_are_special:
            raise TokenizerFileError(f"{source}: vocabulary token {string!r} (id {i}) is neither a byte, the result "
                                     "of a merge nor an added token: ember's BPE has no way to produce it")
        specials[string] = i
    for string, i in added.items():
        if string in internal:
            raise TokenizerFileError(f"{source}: added token {string!r} (id {i}) is also a BPE token (id "
                                     f"{vocab[string]}); ember keeps special tokens apart from the merges")
    ordered = sorted(specials, key=specials.get)
    ids = [vocab[s] for s in internal] + [specials[s] for s in ordered]
    merge_ids = [(internal[a], internal[b]) for a, b in merges]
    try:
        return ByteBPETokenizer(merge_ids, ordered, GPT2_PATTERN, ids)
    except ValueError as exc:
        raise TokenizerFileError(f"{source}: not a tokenizer ember can represent: {exc}") from None


def _merged_tokens(merges: list[tuple[str, str]], source) -> dict[str, int]:
    """Every token string the BPE can make -> its internal id (bytes 0..255, then one per merge in rank order)."""
    table = bytes_to_unicode()
    internal = {table[b]: b for b in range(256)}
    for i, (left, right) in enumerate(merges):
        for side in (left, right):
            if side not in internal:
                raise TokenizerFileError(f"{source}: merges[{i}] ({left!r} {right!r}): {side!r} is neither a byte "
                                         "nor made by an earlier merge (ember needs every merge after those it "
                                         "builds on)")
        merged = left + right
        if merged in internal:
            raise TokenizerFileError(f"{source}: merges[{i}] ({left!r} {right!r}) makes {merged!r}, which a byte or "
                                     "an earlier merge already makes: ember's BPE needs one token per merge")
        internal[merged] = 256 + i
    return internal


def _check_ids(vocab: dict, added: dict[str, int], source) -> None:
    """Every id an integer, each given to one string (an added token may repeat its vocabulary entry), and together
    they are 0..V-1."""
    for string, i in added.items():
        if string in vocab and vocab[string] != i:
            raise TokenizerFileError(f"{source}: token {string!r} has id {vocab[string]} in the vocabulary but {i} as "
                                     "an added token")
    owner: dict[int, str] = {}
    for string, i in list(vocab.items()) + list(added.items()):
        if not (type(i) is int and i >= 0):
            raise TokenizerFileError(f"{source}: token {string!r} has id {describe(i)}, expected an integer >= 0")
        if owner.setdefault(i, string) != string:
            raise TokenizerFileError(f"{source}: id {i} is given to both {owner[i]!r} and {string!r}")
    unused = sorted(set(range(len(owner))) - set(owner))
    if unused:
        raise TokenizerFileError(f"{source}: the {len(owner)} tokens do not use ids 0..{len(owner) - 1}: id "
                                 f"{unused[0]} has no token (ember's ids are contiguous)")


def _char_from_byte_level(vocab: dict, source) -> CharTokenizer:
    """A byte-level BPE with no merges and not every byte: the character vocabulary ember writes for ASCII."""
    byte_of = {s: b for b, s in bytes_to_unicode().items()}
    chars = [""] * len(vocab)
    for string, i in vocab.items():
        b = byte_of.get(string)
        if b is None or b >= 128:
            raise TokenizerFileError(f"{source}: the vocabulary lacks some of the 256 bytes and has no merges, so it "
                                     f"must be a character vocabulary of ASCII bytes, but has {string!r} (id {i})")
        chars[i] = chr(b)
    return CharTokenizer(chars)


def _char_from_word_level(d: dict, added: dict, source) -> CharTokenizer:
    pre, decoder = d.get("pre_tokenizer") or {}, d.get("decoder") or {}
    if not (pre.get("type") == "Split" and pre.get("pattern") == {"Regex": EACH_CHARACTER}
            and pre.get("behavior") == "Isolated" and not pre.get("invert")):
        raise TokenizerFileError(f"{source}: pre_tokenizer {_short(pre)} is not supported for a WordLevel model "
                                 f"(ember reads the character vocabulary it writes: Split on {EACH_CHARACTER!r}, "
                                 "Isolated)")
    if decoder.get("type") != "Fuse":
        raise TokenizerFileError(f"{source}: decoder {_short(decoder)} is not supported for a WordLevel model "
                                 "(expected Fuse)")
    if added:
        raise TokenizerFileError(f"{source}: added_tokens {sorted(added)} in a character vocabulary (ember's has "
                                 "none)")
    vocab = d["model"].get("vocab")
    if not isinstance(vocab, dict):
        raise TokenizerFileError(f"{source}: model.vocab: expected an object of token -> id, found {describe(vocab)}")
    _check_ids(vocab, {}, source)
    chars = [""] * len(vocab)
    for string, i in vocab.items():
        if len(string) != 1:
            raise TokenizerFileError(f"{source}: model.vocab has {string!r} (id {i}); a character vocabulary "
                                     "holds single characters")
        chars[i] = string
    return CharTokenizer(chars)


def _check_byte_level(d: dict, source) -> None:
    """GPT-2's pre-tokenizer and decoder, the only ones ember's byte-level BPE implements."""
    pre = d.get("pre_tokenizer")
    if not (isinstance(pre, dict) and pre.get("type") == "ByteLevel" and not pre.get("add_prefix_space", False)
            and pre.get("use_regex", True)):
        raise TokenizerFileError(f"{source}: pre_tokenizer {_short(pre)} is not supported (ember implements "
                                 "ByteLevel with GPT-2's regex: add_prefix_space false, use_regex true)")
    decoder = d.get("decoder")
    if not (isinstance(decoder, dict) and decoder.get("type") == "ByteLevel"):
        raise TokenizerFileError(f"{source}: decoder {_short(decoder)} is not supported (expected ByteLevel)")
    post = d.get("post_processor")
    if post is not None and not (isinstance(post, dict) and post.get("type") == "ByteLevel"):
        raise TokenizerFileError(f"{source}: post_processor {_short(post)} is not supported (expected null or "
                                 "ByteLevel: ember's encode adds no tokens around the text)")


def _check_bpe_options(model: dict, source) -> None:
    unsupported = {"dropout": (None, 0, 0.0), "continuing_subword_prefix": (None, ""),
                   "end_of_word_suffix": (None, ""), "byte_fallback": (False, None), "ignore_merges": (False, None)}
    for key, fine in unsupported.items():
        if model.get(key) not in fine:
            raise TokenizerFileError(f"{source}: model.{key} = {model[key]!r} is not supported (expected "
                                     f"{fine[0]!r})")


def _added_tokens(entries, source) -> dict[str, int]:
    """content -> id of the added tokens: whole strings matched before the BPE (ember's special tokens)."""
    if not isinstance(entries, list):
        raise TokenizerFileError(f"{source}: added_tokens: expected a list, found {describe(entries)}")
    added = {}
    for k, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("content"), str) and entry["content"]
                and "id" in entry):
            raise TokenizerFileError(f"{source}: added_tokens[{k}]: expected an object with 'id' and a non-empty "
                                     f"'content', found {describe(entry)}")
        for flag in ("single_word", "lstrip", "rstrip"):
            if entry.get(flag):
                raise TokenizerFileError(f"{source}: added_tokens[{k}] ({entry['content']!r}) has {flag} true, which "
                                         "ember does not implement (its special tokens match exactly)")
        added[entry["content"]] = entry["id"]
    return added


def _merge_pairs(merges, source: str) -> list[tuple[str, str]]:
    """Merges as (left, right): from "left right" strings (the classic form) or [left, right] pairs."""
    if not isinstance(merges, list):
        raise TokenizerFileError(f"{source}: expected a list of merges, found {describe(merges)}")
    pairs = []
    for i, m in enumerate(merges):
        pair = m.split(" ") if isinstance(m, str) else m
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) and p for p in pair)):
            raise TokenizerFileError(f"{source}: merge {i} is {describe(m)}; expected \"left right\" or "
                                     "[left, right]")
        pairs.append((pair[0], pair[1]))
    return pairs


def _read_merges_txt(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    return [line.rstrip("\r") for line in lines if line.rstrip("\r")]


def _check_tokenizer_config(path: Path) -> None:
    """transformers rebuilds a GPT-2 tokenizer's pre-tokenizer from this file: a prefix space would change the ids."""
    if not path.is_file():
        return
    config = _read_json(path)
    if isinstance(config, dict) and config.get("add_prefix_space"):
        raise TokenizerFileError(f"{path}: add_prefix_space = true is not supported (ember's byte-level BPE encodes "
                                 "the text as it is)")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerFileError(f"{path}: not a readable JSON file: {exc}") from None


def _short(value) -> str:
    return describe(value, limit=120)
