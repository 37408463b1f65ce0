"""Small trained language models for the export tests: a character-level one on Tiny Shakespeare and a byte-level
BPE one on Python source (the code model's kind), each trained for a few seconds so that their logits are
decisive (an untrained model's near-equal logits would make greedy parity a coin toss)."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from ember.data.text import TextCorpus
from ember.io import save_checkpoint
from ember.text import ByteBPETokenizer, CharTokenizer
from ember.train.lm import LMTrainConfig, LMTrainer

SHAPE = dict(n_layer=2, n_head=4, n_embd=64, block_size=64, batch_size=12, max_iters=150, warmup_iters=10,
             eval_interval=10_000, eval_iters=1, log_interval=10_000, gelu="tanh", seed=1)
PYTHON_FILES = ("ast.py", "functools.py", "textwrap.py", "string.py", "bisect.py", "heapq.py")


def shakespeare_text() -> str:
    from ember.data.registry import DatasetError, locate

    try:
        path = locate("tinyshakespeare", "input.txt", download=False)
    except DatasetError as exc:
        pytest.skip(f"Tiny Shakespeare is missing (set EMBER_DATA to the folder holding it): {exc}")
    return path.read_text(encoding="utf-8")[:300_000]


def python_text() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return "<|endoftext|>".join((stdlib / name).read_text(encoding="utf-8") for name in PYTHON_FILES)


def train_lm(text: str, tokenizer, **overrides):
    ids = np.asarray(tokenizer.encode(text), dtype=np.int32)
    cut = int(len(ids) * 0.9)
    corpus = TextCorpus("test", tokenizer, ids[:cut], ids[cut:], len(text))
    trainer = LMTrainer(LMTrainConfig(**{**SHAPE, **overrides}), corpus)
    trainer.run(progress=False)
    return trainer.model.eval()


@pytest.fixture(scope="session")
def char_lm():
    """(model, tokenizer): a character-level GPT after 150 steps on Tiny Shakespeare."""
    text = shakespeare_text()
    tokenizer = CharTokenizer.train(text)
    return train_lm(text, tokenizer), tokenizer


@pytest.fixture(scope="session")
def bpe_lm():
    """(model, tokenizer): a byte-level BPE GPT (1,024 tokens, <|endoftext|> special) after 150 steps on Python."""
    text = python_text()
    tokenizer = ByteBPETokenizer.train(text, 1024)
    return train_lm(text, tokenizer), tokenizer


@pytest.fixture
def save_run():
    """save_run(folder, model, tokenizer): a run folder as ``ember train gpt --out`` leaves it (model.safetensors
    + tokenizer.json)."""

    def save(folder: Path, model, tokenizer) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        save_checkpoint(folder / "model.safetensors", model)
        tokenizer.save(folder / "tokenizer.json")
        return folder

    return save
