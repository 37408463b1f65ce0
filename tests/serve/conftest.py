"""The serving tests' model: a tiny float64 character-level GPT with decisive logits, and greedy decoding by
``GPT.generate`` (one sequence, its own cache) as the reference every served request must equal."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.models.gpt import GPT, GPTConfig
from ember.text import CharTokenizer

TEXT = "the quick brown fox jumps over the lazy dog <|user|>\n.,!?"  # every letter, and the chat template's marks
CONTEXT = 64


@pytest.fixture(scope="session")
def tok():
    return CharTokenizer.train(TEXT)


@pytest.fixture(scope="session")
def model(tok):
    """Weights moved well away from the initialisation: varied greedy text, and no near ties to break."""
    ember.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=CONTEXT, n_layer=2, n_head=2, n_embd=32))
    model = model.to(dtype="float64").eval()
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data += rng.standard_normal(p.shape) * 0.6
    return model


@pytest.fixture(scope="session")
def greedy(model, tok):
    """greedy(prompt, max_tokens): what a request gets alone, capped where the context is full."""

    def decode(prompt: str, max_tokens: int) -> str:
        ids = tok.encode(prompt)
        n = min(max_tokens, model.config.block_size - len(ids))
        return tok.decode(list(model.generate(ids, n, temperature=0)))

    return decode
