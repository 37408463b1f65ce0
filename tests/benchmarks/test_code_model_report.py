"""The code-model report's cutting and parsing of `fibonacci` completions (benchmarks/code_model_report.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import code_model_report as report  # noqa: E402


def test_a_completion_is_cut_where_the_function_ends():
    body = "    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n"
    assert report.function_end(body + "\nprint(fibonacci(10))\ndef other():\n") == body + "\n"
    assert report.parses(report.function_end(body + "\nprint(1)\n"))


def test_a_completion_cut_by_the_budget_keeps_its_complete_lines():
    cut = report.function_end("    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a +")
    assert cut == "    a, b = 0, 1\n    for _ in range(n):\n"
    assert not report.parses(cut)  # a for without a body does not parse: counted as a failure


def test_what_does_not_parse_is_counted_as_such():
    assert not report.parses("    return (n\n")
    assert not report.parses("return n\n")  # not indented: the def has no body
    assert report.parses("    return n\n")


class Chars:
    """A character tokenizer: id = code point."""

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))


class Scripted:
    """A model whose generate() writes a fixed text, and records the prompt it was given."""

    def __init__(self, text):
        self.text, self.prompt = text, None

    def generate(self, ids, max_new_tokens, temperature, seed):
        self.prompt = Chars().decode(ids)
        yield from Chars().encode(self.text)[:max_new_tokens]


def test_sampling_heals_the_prompts_final_newline():
    """The model is given the prompt without its newline and must write it; a bare newline token would tell a
    byte-level BPE model that the next line starts at column 0."""
    model = Scripted("\n    return n\nprint(fibonacci(3))\n")
    completion = report.sample(model, Chars(), seed=0)
    assert model.prompt == "def fibonacci(n):"
    assert report.function_end(completion) == "    return n\n"
    assert report.parses(report.function_end(completion))


def test_a_completion_that_does_not_write_the_newline_fails():
    completion = report.sample(Scripted(" pass\n"), Chars(), seed=0)
    assert completion == " "  # returned as soon as it departs from the prompt
    assert not report.parses(report.function_end(completion))
