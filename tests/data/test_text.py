"""Text corpora: reading files and folders, tokenizing, nanoGPT's split, random windows."""

from __future__ import annotations

import numpy as np
import pytest

from ember.data import DatasetError
from ember.data.text import END_OF_TEXT, load_corpus, random_windows, read_documents, stdlib_files
from ember.text import CharTokenizer


def test_a_text_file_is_split_90_10_in_order(tmp_path):
    path = tmp_path / "t.txt"
    text = "".join(chr(ord("a") + i % 7) for i in range(1000))
    path.write_text(text)
    corpus = load_corpus(str(path), tokenizer="char")
    assert corpus.vocab_size == 7 and len(corpus.train) == 900 and len(corpus.val) == 100
    assert corpus.tokenizer.decode(corpus.train) == text[:900]
    assert corpus.tokenizer.decode(corpus.val) == text[900:]
    assert corpus.train.dtype == np.uint16


def test_a_folder_reads_text_files_in_order_and_skips_the_rest(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.py").write_text("print(2)\n")
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / ".hidden").write_text("secret")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.txt").write_text("cache")
    (tmp_path / "blob.bin").write_bytes(bytes([0xFF, 0xFE, 0x80, 0x81]))
    assert read_documents(str(tmp_path)) == ["one\n", "print(2)\n"]
    corpus = load_corpus(str(tmp_path), tokenizer="bpe", vocab_size=270, val_fraction=0.2)
    ids = np.concatenate([corpus.train, corpus.val])
    assert corpus.tokenizer.decode(ids) == "one\n" + END_OF_TEXT + "print(2)\n"
    assert corpus.tokenizer.special_tokens[END_OF_TEXT] in ids


def test_bad_paths_and_arguments_are_named(tmp_path):
    with pytest.raises(DatasetError, match="not a known corpus"):
        read_documents(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no non-empty UTF-8 text files"):
        read_documents(str(tmp_path / "empty"))
    (tmp_path / "empty" / "blank.txt").write_text("")
    with pytest.raises(DatasetError, match="no non-empty UTF-8 text files"):
        read_documents(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="blank.txt: the file is empty"):
        read_documents(str(tmp_path / "empty" / "blank.txt"))
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DatasetError, match="latin1.txt: not UTF-8"):
        read_documents(str(tmp_path / "latin1.txt"))
    (tmp_path / "ok.txt").write_text("hello")
    with pytest.raises(ValueError, match="val_fraction"):
        load_corpus(str(tmp_path / "ok.txt"), val_fraction=1.0)
    with pytest.raises(ValueError, match="'char' or 'bpe'"):
        load_corpus(str(tmp_path / "ok.txt"), tokenizer="word")


def test_an_existing_tokenizer_is_reused(tmp_path):
    (tmp_path / "t.txt").write_text("abcabc")
    tok = CharTokenizer(list("cbaz"))
    corpus = load_corpus(str(tmp_path / "t.txt"), tokenizer=tok, val_fraction=0.5)
    assert corpus.tokenizer is tok and list(corpus.train) == [2, 1, 0]


def test_random_windows_are_shifted_by_one():
    ids = np.arange(100, dtype=np.uint16)
    x, y = random_windows(ids, 8, 10, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 10) and x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)
    assert x.min() >= 0 and y.max() <= 99
    with pytest.raises(ValueError, match="cannot fill a window"):
        random_windows(ids[:10], 2, 10, np.random.default_rng(0))


def test_stdlib_files_are_source_without_tests():
    files = stdlib_files()
    names = {f.name for f in files}
    assert {"os.py", "json/__init__.py".split("/")[1]} <= names
    assert all(f.suffix == ".py" for f in files)
    assert not any(part in ("test", "tests", "site-packages") for f in files for part in f.parts[-4:-1])


def test_real_shakespeare_char_matches_nanogpt(ember_data):
    if ember_data is None or not (ember_data / "tinyshakespeare" / "input.txt").exists():
        pytest.skip("Tiny Shakespeare not found: set EMBER_DATA to a folder with tinyshakespeare/input.txt")
    corpus = load_corpus("shakespeare-char", download=False)
    # nanoGPT's prepare.py: 65 characters, 1,003,854 train and 111,540 val tokens
    assert corpus.vocab_size == 65 and len(corpus.train) == 1_003_854 and len(corpus.val) == 111_540


def test_a_corpus_of_files_holds_out_whole_files(tmp_path):
    """Validation is every 10th file, whole: the model is judged on files it never saw a line of."""
    for i in range(25):
        (tmp_path / f"f{i:02d}.py").write_text(f"def f{i}():\n    return {i}\n")
    corpus = load_corpus(str(tmp_path), tokenizer="bpe", vocab_size=300, val_fraction=0.1)
    val = corpus.tokenizer.decode(corpus.val).split(END_OF_TEXT)
    train = corpus.tokenizer.decode(corpus.train).split(END_OF_TEXT)
    assert val == ["def f9():\n    return 9\n", "def f19():\n    return 19\n"]
    assert len(train) == 23 and not set(train) & set(val)
