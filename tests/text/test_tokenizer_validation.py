"""Tokenizers refuse what is not theirs (ember issue 11, cases 9 and 15).

Case 9: ``decode`` of an id that is negative, too large, a float or a bool is an error naming the id,
its position and the valid range (before: ``CharTokenizer.decode([-1])`` was the last character,
Python's negative indexing). Case 15: ``load_tokenizer`` checks the whole file and raises one
error type, ``TokenizerFileError``, naming the file, the key and the problem; a pre-tokenisation
pattern that is not a valid regex, or that drops characters, is refused when the file is loaded.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import regex

import ember
from ember.text import GPT2_PATTERN, ByteBPETokenizer, CharTokenizer, TokenizerFileError, load_tokenizer
from ember.text.bpe import PATTERN_PROBE

TEXT = "hello world, hello tokens!\n"


@pytest.fixture(scope="module", params=["char", "bpe"])
def tok(request):
    if request.param == "char":
        return CharTokenizer.train(TEXT)
    return ByteBPETokenizer.train(TEXT * 5, 270, special_tokens=["<|endoftext|>"])


def as_list(ids):
    return list(ids)


def as_array(ids):
    return np.array(ids)


def as_tensor(ids):
    return ember.tensor(np.array(ids))


CONTAINERS = [as_list, as_array, as_tensor]


def name_of(tok) -> str:
    return type(tok).__name__


# -- case 9: ids out of range -----------------------------------------------------------------------
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("bad_at", [0, 2])
def test_decode_refuses_a_negative_id_naming_it_its_position_and_the_range(tok, container, bad_at):
    ids = [1, 2, 3]
    ids[bad_at] = -1
    with pytest.raises(ValueError, match=re.escape(f"{name_of(tok)}.decode: token id -1 at position {bad_at} is out "
                                                   f"of range [0, {tok.vocab_size})")):
        tok.decode(container(ids))


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("excess", [0, 1, 1000])
def test_decode_refuses_an_id_at_or_beyond_the_vocabulary_size(tok, container, excess):
    bad = tok.vocab_size + excess
    ids = [1, 2, bad]
    with pytest.raises(ValueError, match=re.escape(f"token id {bad} at position 2 is out of range "
                                                   f"[0, {tok.vocab_size})")):
        tok.decode(container(ids))


def test_the_last_valid_id_still_decodes(tok):
    last = tok.vocab_size - 1
    assert tok.decode([last]) == tok.decode(np.array([last])) == tok.decode(ember.tensor([last]))


# -- case 9: ids that are not integers -------------------------------------------------------------------
@pytest.mark.parametrize("ids,bad_at,shown,kind", [
    ([1.0], 0, "1.0", "float"),
    ([1, 2, 2.5], 2, "2.5", "float"),
    ([True], 0, "True", "bool"),
    ([1, False], 1, "False", "bool"),
    ([1, "a"], 1, "'a'", "str"),
    ([1, None], 1, "None", "NoneType"),
    (np.array([1.0, 2.0]), 0, "1.0", "float"),
    (np.array([True, False]), 0, "True", "bool"),
    ([np.float64(3.0)], 0, "3.0", "float64"),
    ([np.bool_(True)], 0, "True", "bool"),
], ids=["float", "float-later", "bool", "bool-later", "str", "None", "float-array", "bool-array", "np-float",
        "np-bool"])
def test_decode_refuses_an_id_that_is_not_an_integer(tok, ids, bad_at, shown, kind):
    with pytest.raises(TypeError, match=re.escape(f"token id {shown} at position {bad_at} is a {kind}, not an "
                                                   f"integer; token ids are integers in [0, {tok.vocab_size})")):
        tok.decode(ids)


def test_decode_refuses_a_float_tensor(tok):
    with pytest.raises(TypeError, match="token id 1.0 at position 0 is a float, not an integer"):
        tok.decode(ember.tensor([1.0, 2.0]))


@pytest.mark.parametrize("ids,error,match", [
    ("hello", TypeError, "expected a sequence of token ids, got str"),
    (5, TypeError, "expected a sequence of token ids, got int"),
    (np.array([[1, 2]]), ValueError, r"expected a 1-d sequence of token ids, got an array of shape \(1, 2\)"),
])
def test_decode_refuses_what_is_not_a_sequence_of_ids(tok, ids, error, match):
    with pytest.raises(error, match=match):
        tok.decode(ids)


@pytest.mark.parametrize("container", [as_list, as_array, as_tensor, tuple,
                                       lambda ids: np.array(ids, dtype=np.int32),
                                       lambda ids: np.array(ids, dtype=np.uint16),
                                       lambda ids: [np.int64(i) for i in ids],
                                       lambda ids: iter(ids)],
                         ids=["list", "array", "tensor", "tuple", "int32", "uint16", "np-ints", "iterator"])
def test_every_integer_container_decodes_to_the_same_text(tok, container):
    ids = tok.encode(TEXT)
    assert tok.decode(container(ids)) == TEXT


def test_decode_of_nothing_is_the_empty_string(tok):
    assert tok.decode([]) == tok.decode(np.array([], dtype=np.int64)) == ""


def test_bpe_decode_bytes_checks_the_ids_too():
    bpe = ByteBPETokenizer.train(TEXT * 5, 260, special_tokens=[])
    assert bpe.decode_bytes([104, 105]) == b"hi"
    with pytest.raises(ValueError, match=r"token id -1 at position 1 is out of range \[0, 260\)"):
        bpe.decode_bytes([104, -1])


# -- case 15: the file's structure ------------------------------------------------------------------
GOOD_CHAR = {"type": "char", "version": 1, "chars": ["a", "b", "c"]}
GOOD_BPE = {"type": "byte-bpe", "version": 1, "pattern": GPT2_PATTERN, "merges": [[104, 101], [256, 108]],
            "special_tokens": ["<|endoftext|>"]}

BAD_FILES = [  # (what is written, text the error must contain after the path)
    ([1, 2], "expected a JSON object with keys 'type' and 'version', found a list [1, 2]"),
    (None, "expected a JSON object with keys 'type' and 'version', found null"),
    ("char", "expected a JSON object with keys 'type' and 'version', found a string 'char'"),
    ({"version": 1, "chars": ["a"]}, "unknown tokenizer type/version None/1"),
    ({**GOOD_CHAR, "version": 2}, "unknown tokenizer type/version 'char'/2"),
    ({**GOOD_CHAR, "version": True}, "unknown tokenizer type/version 'char'/True"),
    ({**GOOD_CHAR, "type": "wordpiece"}, "unknown tokenizer type/version 'wordpiece'/1"),
    ({"type": "char", "version": 1}, "missing key 'chars' (expected a list of one-character strings)"),
    ({**GOOD_CHAR, "chars": None}, "key 'chars': expected a list of one-character strings, found null"),
    ({**GOOD_CHAR, "chars": "abc"}, "key 'chars': expected a list of one-character strings, found a string 'abc'"),
    ({**GOOD_CHAR, "chars": []}, "chars must be a non-empty list"),
    ({**GOOD_CHAR, "chars": ["a", "bc"]}, "chars[1] must be a one-character string, got a string 'bc'"),
    ({**GOOD_CHAR, "chars": ["a", 7]}, "chars[1] must be a one-character string, got an integer 7"),
    ({**GOOD_CHAR, "chars": ["a", "b", "a"]}, "duplicate character 'a' in the vocabulary (chars[0] and chars[2])"),
    ({"type": "byte-bpe", "version": 1}, "missing key 'merges' (expected a list of [id, id] pairs)"),
    ({**GOOD_BPE, "merges": {"104": 101}}, "key 'merges': expected a list of [id, id] pairs, found an object"),
    ({**GOOD_BPE, "merges": [[104, 101], [256]]}, "merges[1]: expected a pair of integer token ids, found a list "
                                                  "[256]"),
    ({**GOOD_BPE, "merges": [[104.0, 101]]}, "merges[0]: expected a pair of integer token ids, found a list [104.0"),
    ({**GOOD_BPE, "merges": [[True, 101]]}, "merges[0]: expected a pair of integer token ids, found a list [True"),
    ({**GOOD_BPE, "merges": [["h", "e"]]}, "merges[0]: expected a pair of integer token ids"),
    ({**GOOD_BPE, "merges": [[-1, 101]]}, "merges[0] (-1, 101) refers to a token not learned before it "
                                          "(ids 0..255 exist at that point)"),
    ({**GOOD_BPE, "merges": [[104, 101], [257, 108]]}, "merges[1] (257, 108) refers to a token not learned before it "
                                                       "(ids 0..256 exist at that point)"),
    ({**GOOD_BPE, "merges": [[104, 101], [104, 101]]}, "merges[1] (104, 101) repeats merges[0]"),
    ({**GOOD_BPE, "special_tokens": None}, "key 'special_tokens': expected a list of strings, found null"),
    ({**GOOD_BPE, "special_tokens": "<|endoftext|>"}, "key 'special_tokens': expected a list of strings, found a "
                                                      "string"),
    ({**GOOD_BPE, "special_tokens": [3]}, "special_tokens[0]: expected a non-empty string, found an integer 3"),
    ({**GOOD_BPE, "special_tokens": [""]}, "special_tokens[0]: expected a non-empty string, found a string ''"),
    ({**GOOD_BPE, "special_tokens": ["<a>", "<a>"]}, "special_tokens[1] '<a>' repeats special_tokens[0]"),
    ({**GOOD_BPE, "pattern": None}, "key 'pattern': expected a regular expression (a string), found null"),
    ({**GOOD_BPE, "pattern": 42}, "key 'pattern': expected a regular expression (a string), found an integer 42"),
    ({**GOOD_BPE, "pattern": "(?P<x"}, "pattern '(?P<x' is not a valid regular expression"),
    ({**GOOD_BPE, "pattern": "xyz"}, "pattern 'xyz' does not cover the text"),
    ({**GOOD_BPE, "pattern": r"\w+|\s+"}, "pattern '\\\\w+|\\\\s+' does not cover the text: its chunks of a probe "
                                          "text lose ','"),
    ({**GOOD_BPE, "pattern": "."}, "pattern '.' does not cover the text: its chunks of a probe text lose '\\n'"),
    ({**GOOD_BPE, "pattern": ""}, "pattern '' does not cover the text"),
    ({**GOOD_BPE, "pattern": r"(\S+)|\s+"}, "has capture groups"),
]


@pytest.mark.parametrize("content,message", BAD_FILES, ids=[f"bad{i}" for i in range(len(BAD_FILES))])
def test_a_malformed_file_raises_one_error_naming_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(TokenizerFileError) as info:
        load_tokenizer(path)
    text = str(info.value)
    assert text.startswith(f"{path}: "), text
    assert message in text, text


@pytest.mark.parametrize("good", [GOOD_CHAR, GOOD_BPE, {k: v for k, v in GOOD_BPE.items() if k != "special_tokens"},
                                  {**GOOD_BPE, "pattern": r"\S+|\s+"}, {**GOOD_BPE, "merges": []}],
                         ids=["char", "bpe", "bpe-without-specials", "bpe-whitespace-pattern", "bpe-no-merges"])
def test_a_well_formed_file_loads_and_round_trips_any_text(tmp_path, good):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    tok = load_tokenizer(path)
    text = "abcab" if good["type"] == "char" else PATTERN_PROBE + "hello <|endoftext|> héllo"
    assert tok.decode(tok.encode(text)) == text


def test_the_error_type_is_a_value_error_exported_by_ember_text():
    assert issubclass(TokenizerFileError, ValueError)
    assert "TokenizerFileError" in ember.text.__all__


def test_binary_data_is_a_tokenizer_file_error_naming_the_file(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TokenizerFileError, match=re.escape(f"{path}: not a readable tokenizer file: byte 128 is not "
                                                           "UTF-8")):
        load_tokenizer(path)


def test_a_file_that_is_not_json_is_a_tokenizer_file_error(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text('{"type": "char", ', encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=re.escape(f"{path}: not a readable tokenizer file: invalid JSON")):
        load_tokenizer(path)


def test_a_missing_file_is_file_not_found_naming_it(tmp_path):
    path = tmp_path / "nowhere" / "tokenizer.json"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        load_tokenizer(path)


# -- case 15: the pre-tokenisation pattern ------------------------------------------------------------
def test_a_pattern_that_drops_text_would_have_encoded_hello_to_nothing():
    """Why the coverage check exists: under "xyz" pre-tokenisation keeps nothing of "hello"."""
    assert regex.findall("xyz", "hello") == []
    with pytest.raises(ValueError, match="pattern 'xyz' does not cover the text"):
        ByteBPETokenizer([], pattern="xyz")


@pytest.mark.parametrize("pattern", ["xyz", r"\w+", r"\w+|\s+", ".", r"[a-z]+|\s+"])
def test_a_pattern_that_drops_characters_of_the_probe_is_refused(pattern):
    assert "".join(regex.findall(pattern, PATTERN_PROBE)) != PATTERN_PROBE  # these do drop characters
    with pytest.raises(ValueError, match="does not cover the text"):
        ByteBPETokenizer([], pattern=pattern)


def test_training_checks_the_pattern_too():
    with pytest.raises(ValueError, match="is not a valid regular expression"):
        ByteBPETokenizer.train(TEXT, 260, pattern="[")
    with pytest.raises(ValueError, match="does not cover the text"):
        ByteBPETokenizer.train(TEXT, 260, pattern=r"\w+")


@pytest.mark.parametrize("category,chars", [
    ("letters", "Hello"), ("digits", "42"), ("spaces", "  "), ("tabs", "\t"), ("newlines", "\n"),
    ("carriage returns", "\r\n"), ("punctuation", ",!.;'\"()[]{}"), ("symbols", "#$%&@^`|~"), ("accents", "é"),
    ("combining marks", "e\u0301"), ("other scripts", "東京"), ("emoji", "🙂"), ("unusual spaces", "\u00a0"),
])
def test_the_probe_holds_every_kind_of_character(category, chars):
    assert all(c in PATTERN_PROBE for c in chars), category
