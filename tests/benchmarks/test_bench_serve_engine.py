"""benchmarks/bench_serve_engine.py's driver: every request it was asked for runs, at most ``concurrent`` at a
time, and the tokens it reports are the ones the requests generated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import ember
from ember.models.gpt import GPT, GPTConfig
from ember.serve.engine import Engine
from ember.text import CharTokenizer

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
bench = pytest.importorskip("bench_serve_engine")


@pytest.mark.parametrize("concurrent, total", [(1, 3), (2, 5), (4, 2)])
def test_the_driver_runs_every_request_and_counts_their_tokens(concurrent, total):
    tok = CharTokenizer.train("abcdefgh ")
    ember.manual_seed(0)
    engine = Engine(GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=1, n_embd=8)), tok,
                    max_batch=4)
    submitted, most = [], [0]

    def submit(prompt, params):
        submitted.append(params.seed)
        request = engine.submit(prompt, params)
        most[0] = max(most[0], engine.active_rows + engine.queue_length)
        return request

    measured = bench.drive(submit, engine.step, tok, ["abc", "de"], concurrent, total, max_tokens=5)
    assert submitted == list(range(total))  # each request once, a seed each
    assert measured.value == 5 * total  # no end-of-text token in this vocabulary: every request runs to max_tokens
    assert most[0] <= concurrent and measured.seconds > 0
    assert engine.active_rows == 0 and engine.queue_length == 0
