"""Language-model training (``ember train gpt``): nanoGPT's loop, resumable bit for bit.

Per iteration: ``grad_accum`` micro-batches of random ``block_size + 1`` windows from the training
split, the loss divided by ``grad_accum``; global-norm clipping; AdamW with decay on ≥2-D weights
only; learning rate by linear warmup (lr·(it+1)/(warmup+1)) then cosine to ``min_lr`` at
``lr_decay_iters``. Every ``eval_interval`` iterations (and at the end) the mean loss of
``eval_iters`` batches of each split is measured: the same batches every time (their generator is
seeded by the run's seed alone), so successive evaluations compare like with like and evaluating
never moves the training stream.

The output folder holds:

- ``model.safetensors``: weights + GPT config (``ember.io.load_model`` rebuilds it), for inference;
- ``tokenizer.json``;
- ``train_state.safetensors``: weights, AdamW moments, iteration, both RNG states (data windows,
  dropout) and the run's config; ``--resume`` continues from it exactly as if never stopped;
- ``log.jsonl``: one JSON object per logged iteration and per evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend
from ..autograd import no_grad
from ..data.text import TextCorpus, load_corpus, random_windows
from ..io import CheckpointError, load_model, save_checkpoint, write_text_atomic
from ..io.train_state import load_train_state, read_train_state, save_train_state
from ..models.gpt import GPT, GPTConfig
from ..optim import clip_grad_norm_
from ..text import load_tokenizer

MODEL_FILE, STATE_FILE, TOKENIZER_FILE, LOG_FILE = (
    "model.safetensors", "train_state.safetensors", "tokenizer.json", "log.jsonl")
# Fields a resumed run may change: how long it goes on and how it reports; nothing that shapes the model or data.
RESUMABLE_OVERRIDES = ("max_iters", "eval_interval", "eval_iters", "log_interval", "out", "data_dir")


@dataclass
class LMTrainConfig:
    """A training run; the defaults are nanoGPT's CPU recipe for Tiny Shakespeare (character level)."""

    data: str = "shakespeare-char"
    tokenizer: str | None = None  # 'char' or 'bpe'; None: the corpus's default
    vocab_size: int | None = None  # BPE vocabulary size (None: the corpus's default)
    data_dir: str | None = None
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    batch_size: int = 12
    grad_accum: int = 1
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None: max_iters (fixed at creation, so a resumed run keeps its schedule)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0: off
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    seed: int = 1337
    dtype: str = "float32"
    out: str | None = None

    def __post_init__(self):
        if self.lr_decay_iters is None:
            self.lr_decay_iters = self.max_iters
        for name in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"LMTrainConfig: {name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ValueError(f"LMTrainConfig: need 0 <= min_lr <= lr and lr > 0, got lr={self.lr}, "
                             f"min_lr={self.min_lr}")
        if self.warmup_iters < 0 or self.lr_decay_iters <= 0:
            raise ValueError(f"LMTrainConfig: need warmup_iters >= 0 and lr_decay_iters > 0, got "
                             f"{self.warmup_iters}, {self.lr_decay_iters}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.seed < 0:
            raise ValueError("LMTrainConfig: weight_decay, grad_clip and seed must be >= 0")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"LMTrainConfig: dtype must be float32 or float64, got {self.dtype!r}")

    def lr_at(self, it: int) -> float:
        """nanoGPT's get_lr: warmup, cosine, then the floor (a warmup longer than the decay just warms up)."""
        if it < self.warmup_iters:
            return self.lr * (it + 1) / (self.warmup_iters + 1)
        if it >= self.lr_decay_iters:
            return self.min_lr
        ratio = (it - self.warmup_iters) / max(self.lr_decay_iters - self.warmup_iters, 1)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)


class LMTrainer:
    """Owns the model, optimizer, corpus and RNGs of one run; ``run()`` trains to ``max_iters``."""

    def __init__(self, config: LMTrainConfig, corpus: TextCorpus | None = None, resume: bool = False,
                 download: bool = True):
        saved = None
        if resume:
            if not config.out:
                raise ValueError("resume needs the run's output folder (--out)")
            saved = read_train_state(Path(config.out) / STATE_FILE)[2]
            config = merge_resumed_config(saved["config"], config)
        self.config = c = config
        if corpus is None:
            tokenizer = c.tokenizer
            if resume:
                tokenizer = load_tokenizer(Path(c.out) / TOKENIZER_FILE)  # the run's own vocabulary
            corpus = load_corpus(c.data, tokenizer, c.vocab_size, data_dir=c.data_dir, download=download)
        self.corpus = corpus
        backend.manual_seed(c.seed)
        self.model = GPT(GPTConfig(block_size=c.block_size, vocab_size=corpus.vocab_size, n_layer=c.n_layer,
                                   n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout, bias=c.bias)).to(dtype=c.dtype)
        self.optimizer = self.model.configure_optimizer(c.lr, c.weight_decay, (c.beta1, c.beta2))
        self.data_rng = np.random.default_rng(c.seed)
        self.iter = 0
        self.history: list[dict] = []
        self.elapsed = 0.0
        self._resumed_at = None
        if resume:
            state = load_train_state(Path(c.out) / STATE_FILE, self.model, self.optimizer)
            self.iter = self._resumed_at = int(state["iter"])
            self.elapsed = float(state.get("elapsed_s", 0.0))
            self.data_rng.bit_generator.state = state["data_rng"]
            backend.generator(backend.CPU).bit_generator.state = state["dropout_rng"]
            self.history = _read_log(Path(c.out) / LOG_FILE, upto=self.iter)
        if c.out:
            Path(c.out).mkdir(parents=True, exist_ok=True)
            _write_log(Path(c.out) / LOG_FILE, self.history)
            corpus.tokenizer.save(Path(c.out) / TOKENIZER_FILE)

    # -- one iteration ------------------------------------------------------------------------
    def train_step(self, batches=None) -> float:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean micro-batch loss.

        ``batches``: the (x, y) micro-batches to use instead of drawing them (to replay another
        run's data order, as ``benchmarks/bench_gpt.py`` replays nanoGPT's)."""
        c, model, opt = self.config, self.model, self.optimizer
        lr = c.lr_at(self.iter)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        total = 0.0
        for micro in range(c.grad_accum):
            if batches is None:
                x, y = random_windows(self.corpus.train, c.batch_size, c.block_size, self.data_rng)
            else:
                x, y = batches[micro]
            _, loss = model(x, y)
            (loss * (1.0 / c.grad_accum) if c.grad_accum > 1 else loss).backward()
            total += loss.item()
        if c.grad_clip:
            clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        opt.zero_grad()
        self.iter += 1
        return total / c.grad_accum

    @no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss of ``eval_iters`` fixed random batches of each split (eval mode)."""
        c = self.config
        self.model.eval()
        out = {}
        for index, (split, ids) in enumerate((("train", self.corpus.train), ("val", self.corpus.val))):
            rng = np.random.default_rng([c.seed, index])
            losses = [self.model(*random_windows(ids, c.batch_size, c.block_size, rng))[1].item()
                      for _ in range(c.eval_iters)]
            out[split] = float(np.mean(losses))
        self.model.train()
        return out

    # -- the loop -------------------------------------------------------------------------------
    def run(self, progress: bool = True, on_record=None, until: int | None = None) -> list[dict]:
        """Train to ``max_iters`` (or stop early at ``until``, as an interrupted run would), evaluating,
        logging and saving as configured; returns the log records."""
        c = self.config
        stop = c.max_iters if until is None else min(until, c.max_iters)
        tokens_per_iter = c.batch_size * c.block_size * c.grad_accum
        bar = tqdm(total=c.max_iters, initial=self.iter, desc="train gpt", file=sys.stderr, dynamic_ncols=True,
                   disable=not progress, unit="it")
        recent: list[float] = []
        while True:
            if (self.iter % c.eval_interval == 0 or self.iter == c.max_iters) and self.iter != self._resumed_at:
                losses = self.estimate_loss()
                self._record({"event": "eval", "iter": self.iter, "train_loss": losses["train"],
                              "val_loss": losses["val"], "lr": c.lr_at(self.iter), "elapsed_s": self.elapsed},
                             on_record)
                if c.out and self.iter > 0:
                    self.save()
            if self.iter >= stop:
                break
            started = time.perf_counter()
            loss = self.train_step()
            seconds = time.perf_counter() - started
            self.elapsed += seconds
            recent.append(seconds)
            bar.update(1)
            if self.iter % c.log_interval == 0 or self.iter == c.max_iters:
                ms = 1e3 * float(np.mean(recent))
                recent.clear()
                self._record({"event": "train", "iter": self.iter, "loss": loss, "lr": c.lr_at(self.iter - 1),
                              "ms_per_iter": ms, "tokens_per_s": tokens_per_iter / (ms / 1e3)}, on_record)
                bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_iter / (ms / 1e3):,.0f}")
        bar.close()
        return self.history

    def _record(self, record: dict, on_record) -> None:
        self.history.append(record)
        if self.config.out:
            with open(Path(self.config.out) / LOG_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        if on_record is not None:
            on_record(record)

    def save(self) -> None:
        """Write model.safetensors (for inference) and train_state.safetensors (to resume), each atomically."""
        out = Path(self.config.out)
        val = next((r["val_loss"] for r in reversed(self.history) if r["event"] == "eval"), None)
        save_train_state(out / STATE_FILE, self.model, self.optimizer, {
            "iter": self.iter,
            "elapsed_s": self.elapsed,
            "data_rng": self.data_rng.bit_generator.state,
            "dropout_rng": backend.generator(backend.CPU).bit_generator.state,
            "config": dataclasses.asdict(self.config),
        })
        save_checkpoint(out / MODEL_FILE, self.model, extra={"iter": self.iter, "val_loss": val,
                                                             "data": self.config.data}, model_name="gpt")


def merge_resumed_config(saved: dict, given: LMTrainConfig) -> LMTrainConfig:
    """The saved run's config, with only the fields in RESUMABLE_OVERRIDES taken from ``given``."""
    fields = {f.name for f in dataclasses.fields(LMTrainConfig)}
    merged = {k: v for k, v in saved.items() if k in fields}
    for name in RESUMABLE_OVERRIDES:
        merged[name] = getattr(given, name)
    return LMTrainConfig(**merged)


def load_lm(folder: str | Path):
    """(model, tokenizer, metadata) of a trained language model's output folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder (expected the --out folder of ember train gpt)")
    model, meta = load_model(folder / MODEL_FILE)
    tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{folder}: tokenizer.json has {tokenizer.vocab_size} ids but the model "
                              f"{model.config.vocab_size}")
    return model.eval(), tokenizer, meta


def _read_log(path: Path, upto: int) -> list[dict]:
    """The log's records up to iteration ``upto`` (what the saved state had seen)."""
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if r["iter"] <= upto]


def _write_log(path: Path, records: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
