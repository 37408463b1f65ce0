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
