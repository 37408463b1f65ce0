"""Hugging Face tokenizer files: ember's id table, ember -> tokenizers/transformers files (ids equal on hard strings),
files made by tokenizers -> ember (ids equal), round trips, and the refusals that name the file and the field."""

from __future__ import annotations

import json

import pytest

from ember.text import ByteBPETokenizer, CharTokenizer, TokenizerFileError, bytes_to_unicode, load_tokenizer
from ember.text.hf_tokenizer import hf_tokenizer_files, load_hf_tokenizer

CORPUS = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "def main(argv):\n    for line in argv:\n\tif line.strip():\n\t\tprint(line)\n    return 0\n"
    "naïve café — 日本語のテキスト 🙂👍🏽 e\u0301 ١٢٣ 42 3.14 don't we'll they're\t\r\n"
) * 20

# what tends to break a tokenizer port: Unicode of several scripts, emoji (skin tones, ZWJ), combining marks, code
# with tabs, runs of spaces and newlines, "\r\n", contractions, and the special token inside and around text
HARD_STRINGS = [
    "",
    "Hello, World! It's 42 o'clock... they'll've",
    "naïve café — 日本語のテキスト, Ελληνικά, русский, עברית",
    "emoji 🙂👍🏽 👩\u200d💻 e\u0301 n\u0303",
    "def f(x):\n\tif x:\n\t\treturn 1\n    return  2\n",
    "a\r\nb\r\n\r\n   \n\n\n",
    "   leading, trailing and  double  spaces   ",
    "tabs\t\tand\u00a0no-break\u3000ideographic\u2003em",
    "x<|endoftext|>y <|endoftext|>\n<|endoftext|><|endoftext|>",
    "<|endoftext",
    CORPUS[:400],
]


@pytest.fixture(scope="module")
def tokenizers():
    reason = "Hugging Face tokenizers is the reference: pip install -e '.[test]'"
    return pytest.importorskip("tokenizers", reason=reason)


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers", reason="transformers reads the exported files: pip install transformers")


@pytest.fixture(scope="module")
def bpe():
    return ByteBPETokenizer.train(CORPUS, 320, special_tokens=["<|endoftext|>"])


def shuffled_ids(tok: ByteBPETokenizer, seed: int = 0) -> list[int]:
    import random

    ids = list(range(tok.vocab_size))
    random.Random(seed).shuffle(ids)
    return ids


@pytest.fixture(scope="module")
def permuted(bpe):
    """The same merges with every id moved: what a vocabulary made elsewhere looks like."""
    return ByteBPETokenizer(bpe.merges, list(bpe.special_tokens), ids=shuffled_ids(bpe))


# -- the id table -----------------------------------------------------------------------------------
def test_an_id_table_renames_every_id_and_changes_nothing_else(bpe, permuted):
    table = permuted.ids
    for text in HARD_STRINGS:
        internal = bpe.encode(text)
        assert permuted.encode(text) == [table[i] for i in internal]
        assert permuted.decode(permuted.encode(text)) == text
        assert permuted.encode(text, allowed_special="none") == [table[i] for i in bpe.encode(text, "none")]
    assert permuted.special_tokens == {"<|endoftext|>": table[bpe.special_tokens["<|endoftext|>"]]}
    strings = bpe.token_strings()
    assert permuted.token_strings() == [strings[table.index(e)] for e in range(bpe.vocab_size)]
    assert permuted.merge_strings() == bpe.merge_strings()
    assert permuted.vocab_size == bpe.vocab_size


def test_batched_and_single_chunk_encoding_agree_with_a_table(permuted):
    many = " ".join(f"w{i}x{i * 7}" for i in range(300))  # hundreds of new chunks: the NumPy batch path
    few = ByteBPETokenizer(permuted.merges, list(permuted.special_tokens), ids=permuted.ids)
    assert permuted.encode(many) == [x for word in regex_chunks(many) for x in few.encode(word)]


def regex_chunks(text: str) -> list[str]:
    import regex

    from ember.text import GPT2_PATTERN

    return regex.findall(GPT2_PATTERN, text)


def test_the_id_table_is_saved_and_files_without_one_load_unchanged(tmp_path, bpe, permuted):
    path = permuted.save(tmp_path / "tok.json")
    loaded = load_tokenizer(path)
    assert loaded.ids == permuted.ids and json.loads(path.read_text())["ids"] == permuted.ids
    assert [loaded.encode(t) for t in HARD_STRINGS] == [permuted.encode(t) for t in HARD_STRINGS]
    plain = load_tokenizer(bpe.save(tmp_path / "plain.json"))
    assert plain.ids is None and "ids" not in json.loads((tmp_path / "plain.json").read_text())
    assert [plain.encode(t) for t in HARD_STRINGS] == [bpe.encode(t) for t in HARD_STRINGS]
    identity = ByteBPETokenizer(bpe.merges, list(bpe.special_tokens), ids=list(range(bpe.vocab_size)))
    assert identity.ids is None


@pytest.mark.parametrize("ids,says", [
    (list(range(10)), r"expected 320 external ids \(one per token: 256 bytes, 63 merges, 1 special"),
    ([0] + list(range(1, 319)) + [0], r"ids\[319\] = 0 repeats ids\[0\]"),
    (list(range(319)) + [320], r"ids\[319\]: expected an integer token id in \[0, 320\)"),
    (list(range(319)) + [-1], r"ids\[319\]: expected an integer token id"),
    (list(range(319)) + [3.0], r"ids\[319\]: expected an integer token id in \[0, 320\), found a number 3.0"),
    ("0123", "ids: expected a list of token ids"),
])
def test_a_bad_id_table_is_refused_naming_the_entry(bpe, ids, says):
    with pytest.raises(ValueError, match=says):
        ByteBPETokenizer(bpe.merges, list(bpe.special_tokens), ids=ids)


def test_a_bad_id_table_in_a_file_names_the_file(tmp_path, bpe):
    d = bpe.to_dict() | {"ids": [0] * bpe.vocab_size}
    (tmp_path / "t.json").write_text(json.dumps(d))
    with pytest.raises(TokenizerFileError, match=r"t\.json: not a valid byte-bpe tokenizer file: ids\[1\] = 0 repeats"):
        load_tokenizer(tmp_path / "t.json")


# -- ember -> Hugging Face ------------------------------------------------------------------------------
def write_files(folder, tokenizer, max_length=64):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in hf_tokenizer_files(tokenizer, max_length).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def assert_same_ids(ours, theirs_encode, strings):
    for text in strings:
        assert theirs_encode(text) == ours.encode(text), text


@pytest.mark.parametrize("use_table", [False, True])
def test_exported_bpe_files_give_ember_ids_in_tokenizers_and_transformers(tmp_path, tokenizers, transformers, bpe,
                                                                          permuted, use_table):
    tok = permuted if use_table else bpe
    folder = write_files(tmp_path / "tok", tok)
    assert sorted(p.name for p in folder.iterdir()) == ["merges.txt", "tokenizer.json", "tokenizer_config.json",
                                                       "vocab.json"]
    raw = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert_same_ids(tok, lambda t: raw.encode(t).ids, HARD_STRINGS)
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    assert len(auto) == tok.vocab_size
    assert_same_ids(tok, lambda t: auto(t)["input_ids"], HARD_STRINGS)
    for text in HARD_STRINGS:
        assert auto.decode(tok.encode(text)) == text
    from_files = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(folder / "vocab.json"),
                                                                      str(folder / "merges.txt")))
    from_files.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    assert_same_ids(tok, lambda t: from_files.encode(t).ids, [t.replace("<|endoftext|>", "") for t in HARD_STRINGS])


@pytest.mark.parametrize("chars", ["ascii", "unicode"])
def test_exported_char_files_give_ember_ids_in_transformers(tmp_path, transformers, chars):
    strings = [t for t in HARD_STRINGS if t.isascii()] if chars == "ascii" else HARD_STRINGS
    tok = CharTokenizer.train("".join(strings))
    assert all(c.isascii() for c in tok.chars) == (chars == "ascii")
    folder = write_files(tmp_path / "tok", tok)
    names = {p.name for p in folder.iterdir()}
    assert ("vocab.json" in names) == (chars == "ascii")  # a byte-level BPE with no merges, or WordLevel
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    assert len(auto) == tok.vocab_size
    assert_same_ids(tok, lambda t: auto(t)["input_ids"], strings)
    for text in strings:
        assert auto.decode(tok.encode(text)) == text
    back = load_hf_tokenizer(folder)
    assert isinstance(back, CharTokenizer) and back.chars == tok.chars


def test_a_custom_pattern_or_a_repeated_token_string_cannot_be_exported(bpe):
    custom = ByteBPETokenizer(bpe.merges, ["<|endoftext|>"], pattern=r"\S+|\s+")
    with pytest.raises(ValueError, match="is not GPT-2's"):
        hf_tokenizer_files(custom, 64)
    clash = ByteBPETokenizer([(ord("a"), ord("b"))], ["ab"])
    with pytest.raises(ValueError, match="tokens 256 and 257 are the same string 'ab'"):
        hf_tokenizer_files(clash, 64)


# -- Hugging Face -> ember ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_by_tokenizers(tokenizers):
    """A byte-level BPE trained and numbered by tokenizers: <|endoftext|> is id 0 and the bytes follow in the
    order of their printable characters, so nearly every id differs from ember's internal one."""
    hf = tokenizers.Tokenizer(tokenizers.models.BPE())
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = tokenizers.decoders.ByteLevel()
    hf.post_processor = tokenizers.processors.ByteLevel(trim_offsets=False)
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=350, special_tokens=["<|endoftext|>"], show_progress=False,
                                            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator([CORPUS], trainer)
    assert hf.token_to_id("<|endoftext|>") == 0 and hf.token_to_id("!") == 1
    return hf


def test_a_tokenizer_json_from_tokenizers_gives_its_ids(tmp_path, trained_by_tokenizers):
    hf = trained_by_tokenizers
    hf.save(str(tmp_path / "tokenizer.json"))
    ours = load_hf_tokenizer(tmp_path)
    assert isinstance(ours, ByteBPETokenizer) and ours.ids is not None
    assert ours.vocab_size == hf.get_vocab_size()
    assert ours.special_tokens == {"<|endoftext|>": 0}
    assert_same_ids(ours, lambda t: hf.encode(t).ids, HARD_STRINGS)
    for text in HARD_STRINGS:
        assert ours.decode(hf.encode(text).ids) == hf.decode(hf.encode(text).ids, skip_special_tokens=False)


def test_vocab_json_and_merges_txt_give_the_same_tokenizer(tmp_path, trained_by_tokenizers):
    hf = trained_by_tokenizers
    hf.model.save(str(tmp_path))  # tokenizers' own vocab.json + merges.txt
    assert {p.name for p in tmp_path.iterdir()} == {"vocab.json", "merges.txt"}
    ours = load_hf_tokenizer(tmp_path)
    assert ours.special_tokens == {"<|endoftext|>": 0}  # in vocab.json, made by no merge: a special token
    assert_same_ids(ours, lambda t: hf.encode(t).ids, HARD_STRINGS)


def test_transformers_save_pretrained_folder_loads(tmp_path, transformers, trained_by_tokenizers):
    fast = transformers.GPT2TokenizerFast(tokenizer_object=trained_by_tokenizers)
    fast.save_pretrained(tmp_path)
    ours = load_hf_tokenizer(tmp_path)
    auto = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert_same_ids(ours, lambda t: auto(t)["input_ids"], HARD_STRINGS)


def test_export_then_import_gives_the_same_tokenizer(tmp_path, permuted):
    back = load_hf_tokenizer(write_files(tmp_path / "tok", permuted))
    assert (back.merges, back.special_tokens, back.ids) == (permuted.merges, permuted.special_tokens, permuted.ids)
    assert [back.encode(t) for t in HARD_STRINGS] == [permuted.encode(t) for t in HARD_STRINGS]
    (tmp_path / "tok" / "tokenizer.json").unlink()  # vocab.json + merges.txt alone say the same
    again = load_hf_tokenizer(tmp_path / "tok")
    assert (again.merges, again.special_tokens, again.ids) == (permuted.merges, permuted.special_tokens, permuted.ids)


def test_a_folder_without_tokenizer_files_has_no_tokenizer_and_ember_files_still_load(tmp_path, bpe):
    assert load_hf_tokenizer(tmp_path) is None
    bpe.save(tmp_path / "tokenizer.json")  # ember's own format under the same name
    assert load_hf_tokenizer(tmp_path).merges == bpe.merges


# -- refusals ----------------------------------------------------------------------------------------------
def edited(d: dict, path: str, value) -> dict:
    d = json.loads(json.dumps(d))
    *parents, key = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    node[key] = value
    return d


@pytest.mark.parametrize("path,value,says", [
    ("normalizer", {"type": "NFC"}, r"normalizer an object \{'type': 'NFC'\} is not supported"),
    ("pre_tokenizer.add_prefix_space", True, r"pre_tokenizer .*'add_prefix_space': True.* is not supported"),
    ("pre_tokenizer", {"type": "Metaspace", "replacement": "▁"}, r"pre_tokenizer .*Metaspace.* is not supported"),
    ("pre_tokenizer.use_regex", False, r"pre_tokenizer .*is not supported.*use_regex true"),
    ("decoder", None, r"decoder null is not supported \(expected ByteLevel\)"),
    ("post_processor", {"type": "TemplateProcessing"}, r"post_processor .* is not supported"),
    ("model.type", "Unigram", r"model.type 'Unigram' is not supported"),
    ("model.dropout", 0.1, r"model.dropout = 0.1 is not supported"),
    ("model.ignore_merges", True, r"model.ignore_merges = True is not supported"),
    ("model.byte_fallback", True, r"model.byte_fallback = True is not supported"),
])
def test_what_ember_does_not_implement_is_refused_naming_the_field(tmp_path, bpe, path, value, says):
    d = json.loads(hf_tokenizer_files(bpe, 64)["tokenizer.json"])
    (tmp_path / "tokenizer.json").write_text(json.dumps(edited(d, path, value)))
    with pytest.raises(TokenizerFileError, match="tokenizer.json: " + says):
        load_hf_tokenizer(tmp_path)


def test_vocabularies_ember_cannot_represent_are_refused(tmp_path, bpe):
    d = json.loads(hf_tokenizer_files(bpe, 64)["tokenizer.json"])
    table = bytes_to_unicode()
    cases = []
    no_byte = edited(d, "model.vocab", {k: v for k, v in d["model"]["vocab"].items() if k != table[0]})
    cases.append((no_byte, r"has no token for 1 of the 256 bytes \(first: byte 0x00"))
    first = d["model"]["merges"][0]
    made = "".join(first.split(" "))
    vocab = dict(d["model"]["vocab"])
    cases.append((edited(d, "model.vocab", {k: v for k, v in vocab.items() if k != made} | {"zz": vocab[made]}),
                  rf"merges\[0\] makes '{made}', which the vocabulary does not hold"))
    single = set(table.values())
    later = next(m for m in d["model"]["merges"] if not set(m.split(" ")) <= single)  # builds on a merge
    cases.append((edited(d, "model.merges", [later] + [m for m in d["model"]["merges"] if m != later]),
                  r"merges\[0\] .* is neither a byte nor made by an earlier merge"))
    cases.append((edited(d, "model.merges", d["model"]["merges"] + [first]), r"which a byte or an earlier merge"))
    cases.append((edited(d, "model.vocab", vocab | {"Ġextra": len(vocab)}), r"'Ġextra' \(id 320\) is neither a byte"))
    cases.append((edited(d, "model.vocab", vocab | {"!": 5}), r"id 5 is given to both"))
    lstrip = dict(d["added_tokens"][0], lstrip=True)
    cases.append((edited(d, "added_tokens", [lstrip]), r"added_tokens\[0\] \('<\|endoftext\|>'\) has lstrip true"))
    cases.append((edited(d, "added_tokens", [dict(d["added_tokens"][0], id=7)]),
                  r"has id 319 in the vocabulary but 7 as an added token"))
    for k, (bad, says) in enumerate(cases):
        folder = tmp_path / str(k)
        folder.mkdir()
        (folder / "tokenizer.json").write_text(json.dumps(bad))
        with pytest.raises(TokenizerFileError, match=says):
            load_hf_tokenizer(folder)


def test_a_prefix_space_in_tokenizer_config_or_a_lone_vocab_json_is_refused(tmp_path, bpe):
    folder = write_files(tmp_path / "a", bpe)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(config | {"add_prefix_space": True}))
    with pytest.raises(TokenizerFileError, match=r"tokenizer_config.json: add_prefix_space = true is not supported"):
        load_hf_tokenizer(folder)
    lone = write_files(tmp_path / "b", bpe)
    (lone / "tokenizer.json").unlink()
    (lone / "merges.txt").unlink()
    with pytest.raises(TokenizerFileError, match=r"vocab.json: found without merges.txt"):
        load_hf_tokenizer(lone)
