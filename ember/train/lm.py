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

The device (``device=``, ``ember train gpt --device``) is not part of the run's settings: the model is
initialised on the CPU and moved, the data windows are drawn on the host and moved, and every state is
saved from host copies, so a run saved on one device resumes on another. Only dropout's random stream
is the device's own (on a GPU, CuPy's), and only the CPU's is saved.

Data-parallel (``world=``, ``ember train gpt --distributed``): every rank draws each batch whole (``batch_size``
windows per rank, from the same generator) and trains on its slice, gradients averaged over the ranks; the loss
that is reported and checked is the mean over the ranks, and each evaluation batch is split the same way. So N
ranks with ``batch_size`` B train as one process with N·B would. Rank 0 alone writes the output folder; every
rank reads it to resume. Dropout draws the same masks on every rank (one seed), for its own windows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import backend
from ..autograd import no_grad
from ..data import DatasetError
from ..data.text import TextCorpus, load_corpus, random_windows
from ..io import CheckpointError, load_model, save_checkpoint, write_text_atomic
from ..io.atomic import check_destination
from ..io.jsonl import dumps, read_jsonl
from ..io.train_state import read_train_state, restore_train_state, save_train_state
from ..models.gpt import GPT, GPTConfig
from ..optim import clip_grad_norm_
from ..tensor import Tensor
from ..text import load_tokenizer
from .guard import NonFiniteGuard

MODEL_FILE, STATE_FILE, TOKENIZER_FILE, LOG_FILE = (
    "model.safetensors", "train_state.safetensors", "tokenizer.json", "log.jsonl")
RUN_FILES = (STATE_FILE, MODEL_FILE, TOKENIZER_FILE, LOG_FILE)
# Fields a resumed run may change: how long it goes on and how it reports; nothing that shapes the model or data.
RESUMABLE_OVERRIDES = ("max_iters", "eval_interval", "eval_iters", "log_interval", "out", "data_dir", "on_nonfinite")


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
    gelu: str = "none"  # 'none' (exact, nanoGPT) or 'tanh' (GPT-2; what llama.cpp computes)
    residual: str = "plain"  # 'plain' | 'hc' | 'mhc' | 'mhc2' (hyper-connections: ember/nn/layers/hyper.py)
    streams: int = 0  # residual streams; 0: the residual mode's default
    sinkhorn_iters: int = 20
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
    on_nonfinite: str = "stop"  # a NaN/inf loss: "stop" the run (TrainingDiverged) or "skip" the step

    def __post_init__(self):
        if self.lr_decay_iters is None:
            self.lr_decay_iters = self.max_iters
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"LMTrainConfig: {f.name} must be finite, got {value}")
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
        if self.on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"LMTrainConfig: on_nonfinite must be 'stop' or 'skip', got {self.on_nonfinite!r}")

    def lr_at(self, it: int) -> float:
        """nanoGPT's get_lr: warmup, cosine, then the floor (a warmup longer than the decay just warms up)."""
        if it < self.warmup_iters:
            return self.lr * (it + 1) / (self.warmup_iters + 1)
        if it >= self.lr_decay_iters:
            return self.min_lr
        ratio = (it - self.warmup_iters) / max(self.lr_decay_iters - self.warmup_iters, 1)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)


class LMTrainer:
    """Owns the model, optimizer, corpus and RNGs of one run; ``run()`` trains to ``max_iters``.

    A new run checks everything before it writes anything: the output folder (refused if it holds
    another run, unless ``force``), the corpus (readable, and long enough for one window in each
    split) and the model's settings. ``LMTrainer.resume(out)`` continues a saved run instead.
    """

    def __init__(self, config: LMTrainConfig, corpus: TextCorpus | None = None, download: bool = True,
                 force: bool = False, device="cpu", _resumed: _SavedRun | None = None, world=None):
        self.config = c = config
        self.device = backend.device(device)  # not part of the config: a run saved on one device resumes on any
        self.world = world  # an ember.distributed World: data-parallel over its ranks (None: this process alone)
        self.writes = world is None or world.is_main  # only rank 0 writes the output folder
        out = Path(c.out) if c.out else None
        if out is not None and _resumed is None and self.writes:
            check_new_run_folder(out, force)
        if corpus is None:
            tokenizer = _resumed.tokenizer if _resumed else c.tokenizer
            with world.rank_zero_first() if world is not None else contextlib.nullcontext():  # one download
                corpus = load_corpus(c.data, tokenizer, c.vocab_size, data_dir=c.data_dir, download=download)
        check_corpus_fits(corpus, c.block_size)
        self.corpus = corpus
        backend.manual_seed(c.seed)
        self.model = GPT(GPTConfig(block_size=c.block_size, vocab_size=corpus.vocab_size, n_layer=c.n_layer,
                                   n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout, bias=c.bias, gelu=c.gelu,
                                   residual=c.residual, streams=c.streams, sinkhorn_iters=c.sinkhorn_iters))
        # initialised on the CPU, then moved: the same starting weights on every device; the optimizer is made
        # after the move, so its state (and a restored state) lives on the parameters' device
        self.model.to(dtype=c.dtype, device=self.device)
        self.optimizer = self.model.configure_optimizer(c.lr, c.weight_decay, (c.beta1, c.beta2))
        self.ddp = None
        if world is not None:  # before anything is written: the ranks must have built the same model
            from ..distributed import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, world)  # averages the gradients inside backward()
        self.guard = NonFiniteGuard(c.on_nonfinite)
        self.data_rng = np.random.default_rng(c.seed)
        self.iter = 0
        self.history: list[dict] = []
        self._grad_norms: list[float] = []  # clipped steps' norms since the last train record
        self.elapsed = 0.0
        self._resumed_at = None
        self.resume_changes: list[str] = []
        if _resumed is not None:
            restore_train_state(out / STATE_FILE, self.model, self.optimizer, _resumed.arrays, _resumed.opt_state)
            state = _resumed.state
            self.iter = self._resumed_at = int(state["iter"])
            self.elapsed = float(state.get("elapsed_s", 0.0))
            self.guard.skipped = int(state.get("skipped", 0))
            self.data_rng.bit_generator.state = state["data_rng"]
            backend.generator(backend.CPU).bit_generator.state = state["dropout_rng"]
            if c.dropout > 0 and self.device != backend.CPU:
                warnings.warn(f"resuming on {self.device} with dropout {c.dropout}: the dropout masks restart from "
                              "the seed (only the CPU's generator state is saved), so the continued run is not bit "
                              "for bit the uninterrupted one", stacklevel=2)
            self.history = _resumed.log
            self.resume_changes = _resumed.changes
            if self.writes:
                _write_log(out / LOG_FILE, self.history)  # drop what the log recorded after the saved state
        elif out is not None and self.writes:
            start_run_folder(out, corpus.tokenizer)

    @classmethod
    def resume(cls, out: str | os.PathLike, overrides: dict | None = None, corpus: TextCorpus | None = None,
               download: bool = True, verify: bool = True, device="cpu", world=None) -> LMTrainer:
        """Continue the run saved in ``out`` exactly where its last save left it.

        The run keeps the settings it was started with; ``overrides`` may change only the fields in
        RESUMABLE_OVERRIDES (how long it goes on, how it reports), and ``resume_changes`` lists what
        they changed. ``verify`` checks the saved tensors' content hashes. ``device``: where to continue (states
        are saved from host copies, so a run may move between devices when it resumes). ``world``: continue
        data-parallel over its ranks."""
        out = Path(out)
        arrays, opt_state, state = read_train_state(out / STATE_FILE, verify)
        config, changes = resumed_config(state.get("config", {}), {**(overrides or {}), "out": str(out)})
        log = _read_log(out / LOG_FILE, upto=int(state["iter"]))
        saved = _SavedRun(load_tokenizer(out / TOKENIZER_FILE), arrays, opt_state, state, log, changes)
        return cls(config, corpus, download, device=device, _resumed=saved, world=world)

    # -- one iteration ------------------------------------------------------------------------
    def train_step(self, batches=None) -> float | None:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean micro-batch loss, or None
        when a non-finite loss or gradient norm made the guard skip the step (``on_nonfinite="skip"``).

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
                x, y = self._windows(self.corpus.train, self.data_rng)
            else:
                x, y = batches[micro]
            _, loss = model(*self._on_device(x, y))
            value, where = loss.item(), f"iteration {self.iter + 1}"
            # Ranks average the loss (so that all decide and report alike) while backward runs: the all-reduce
            # completes with the gradients', one synchronisation per step. Alone, a bad loss skips backward.
            agreeing = None if self.world is None else self.world.all_reduce_start(np.array([value]), "mean")
            if agreeing is None and not self.guard.ok(value, where):
                return self._skip_step()
            with self._averaging_gradients(micro == c.grad_accum - 1):
                (loss * (1.0 / c.grad_accum) if c.grad_accum > 1 else loss).backward()
            if agreeing is not None:
                value = float(self.world.wait(agreeing)[0])
                if not self.guard.ok(value, where):
                    return self._skip_step()
            total += value
        if c.grad_clip:
            norm = float(clip_grad_norm_(model.parameters(), c.grad_clip))
            if not self.guard.ok(norm, f"iteration {self.iter + 1}", "gradient norm"):
                return self._skip_step()
            self._grad_norms.append(norm)
        opt.step()
        opt.zero_grad()
        self.iter += 1
        return total / c.grad_accum

    def _windows(self, ids: np.ndarray, rng: np.random.Generator):
        """This rank's part of one batch: every rank draws the whole batch (``batch_size`` windows per rank) from
        the same generator and keeps its slice, so together the ranks see what one process with all of it would."""
        c = self.config
        ranks = 1 if self.world is None else self.world.size
        x, y = random_windows(ids, c.batch_size * ranks, c.block_size, rng)
        if ranks == 1:
            return x, y
        mine = slice(self.world.rank * c.batch_size, (self.world.rank + 1) * c.batch_size)
        return x[mine], y[mine]

    def _mean_over_ranks(self, value):
        """A loss (or a list of losses) averaged over the ranks: every rank then decides and reports alike."""
        if self.world is None:
            return value
        means = self.world.all_reduce(np.atleast_1d(np.asarray(value, dtype=np.float64)).copy(), "mean")
        return means.tolist() if isinstance(value, list) else float(means[0])

    def _averaging_gradients(self, last_micro_batch: bool):
        """Gradients are averaged over the ranks once per step, in the last micro-batch's backward."""
        if self.ddp is None or last_micro_batch:
            return contextlib.nullcontext()
        return self.ddp.no_sync()

    def _on_device(self, *arrays) -> tuple[Tensor, ...]:
        """Token windows (drawn on the host, so the data stream is the same on every device) as tensors on the
        model's device."""
        return tuple(a.to(self.device) if isinstance(a, Tensor) else Tensor(backend.to_device(a, self.device))
                     for a in arrays)

    def _skip_step(self) -> None:
        """Drop this iteration's gradients without an update; the schedule moves on as if it had run."""
        self.optimizer.zero_grad()
        self.iter += 1
        return None

    @no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss of ``eval_iters`` fixed random batches of each split (eval mode)."""
        c = self.config
        self.model.eval()
        out = {}
        for index, (split, ids) in enumerate((("train", self.corpus.train), ("val", self.corpus.val))):
            rng = np.random.default_rng([c.seed, index])
            losses = [float(self.model(*self._on_device(*self._windows(ids, rng)))[1]) for _ in range(c.eval_iters)]
            out[split] = float(np.mean(self._mean_over_ranks(losses)))
        self.model.train()
        return out

    # -- the loop -------------------------------------------------------------------------------
    def run(self, progress: bool = True, on_record=None, until: int | None = None) -> list[dict]:
        """Train to ``max_iters`` (or stop early at ``until``, as an interrupted run would), evaluating,
        logging and saving as configured; returns the log records."""
        c = self.config
        stop = c.max_iters if until is None else min(until, c.max_iters)
        tokens_per_iter = c.batch_size * c.block_size * c.grad_accum * (1 if self.world is None else self.world.size)
        bar = tqdm(total=c.max_iters, initial=self.iter, desc="train gpt", file=sys.stderr, dynamic_ncols=True,
                   disable=not progress, unit="it")
        recent: list[float] = []
        loss = None  # the last applied step's loss
        while True:
            if (self.iter % c.eval_interval == 0 or self.iter == c.max_iters) and self.iter != self._resumed_at:
                losses = self.estimate_loss()
                self._record({"event": "eval", "iter": self.iter, "train_loss": losses["train"],
                              "val_loss": losses["val"], "lr": c.lr_at(self.iter), "elapsed_s": self.elapsed},
                             on_record)
                if c.out and self.iter > 0 and self.writes:
                    self.save()
            if self.iter >= stop:
                break
            started = time.perf_counter()
            step_loss = self.train_step()
            loss = loss if step_loss is None else step_loss
            seconds = time.perf_counter() - started
            self.elapsed += seconds
            recent.append(seconds)
            bar.update(1)
            if self.iter % c.log_interval == 0 or self.iter == c.max_iters:
                ms = 1e3 * float(np.mean(recent))
                recent.clear()
                record = {"event": "train", "iter": self.iter, "loss": loss, "lr": c.lr_at(self.iter - 1),
                          "ms_per_iter": ms, "tokens_per_s": tokens_per_iter / (ms / 1e3)}
                if self.guard.skipped:
                    record["skipped_steps"] = self.guard.skipped
                if self._grad_norms:  # the mean gradient norm (before clipping) since the last record
                    record["grad_norm"] = float(np.mean(self._grad_norms))
                    self._grad_norms.clear()
                self._record(record, on_record)
                bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "-",
                                tok_s=f"{tokens_per_iter / (ms / 1e3):,.0f}")
        bar.close()
        return self.history

    def _record(self, record: dict, on_record) -> None:
        self.history.append(record)
        if self.config.out and self.writes:
            with open(Path(self.config.out) / LOG_FILE, "a", encoding="utf-8") as f:
                f.write(dumps(record) + "\n")
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
            "skipped": self.guard.skipped,
        })
        save_checkpoint(out / MODEL_FILE, self.model, extra={"iter": self.iter, "val_loss": val,
                                                             "data": self.config.data}, model_name="gpt")


def resumed_config(saved: dict, overrides: dict) -> tuple[LMTrainConfig, list[str]]:
    """The saved run's config with ``overrides`` applied, and a line per setting they changed.

    Only the fields in RESUMABLE_OVERRIDES may differ from the saved run: anything else would make
    the continued run a different one, so it is refused, naming the field and both values."""
    fields = {f.name for f in dataclasses.fields(LMTrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"resume: unknown settings {unknown}")
    merged = {k: v for k, v in saved.items() if k in fields}
    defaults = LMTrainConfig(**merged)  # fills fields that older runs did not save
    current = dataclasses.asdict(defaults)
    refused = [f"{k} (saved {current[k]!r}, given {v!r})" for k, v in overrides.items()
               if k not in RESUMABLE_OVERRIDES and v != current[k]]
    if refused:
        raise ValueError(f"a resumed run keeps the settings it was started with; it cannot change {', '.join(refused)}")
    changes = [f"{k}: {current[k]!r} -> {v!r}" for k, v in overrides.items()
               if k != "out" and v != current[k]]
    return LMTrainConfig(**{**current, **overrides}), changes


@dataclass
class _SavedRun:
    """What ``LMTrainer.resume`` read from a run folder, handed to the constructor in one piece."""

    tokenizer: object
    arrays: dict
    opt_state: dict
    state: dict
    log: list[dict]
    changes: list[str]


def check_new_run_folder(out: Path, force: bool) -> None:
    """Refuse, before anything is written, an output folder a new run cannot use: a file, a folder holding
    another run (unless ``force``), or one that cannot be written."""
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"--out {out}: exists and is not a directory")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not force:
        raise CheckpointError(f"--out {out}: holds another run ({', '.join(existing)}); use --resume to continue it, "
                              f"--force to replace it, or another --out")
    check_destination(out / LOG_FILE)


def start_run_folder(out: Path, tokenizer) -> None:
    """Create the folder of a new run: the previous run's files (only with ``force``) go first, so that no
    stale checkpoint outlives the run it belonged to."""
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    tokenizer.save(out / TOKENIZER_FILE)
    _write_log(out / LOG_FILE, [])


def check_corpus_fits(corpus: TextCorpus, block_size: int) -> None:
    """Both splits must hold at least one window of ``block_size + 1`` tokens, or training cannot draw a batch."""
    total = len(corpus.train) + len(corpus.val)
    for split, ids in (("training", corpus.train), ("validation", corpus.val)):
        if len(ids) < block_size + 1:
            raise DatasetError(f"{corpus.name}: {total} tokens in all, {len(ids)} in its {split} split: too few for "
                               f"one window of {block_size} + 1 tokens (use more text or a smaller --block-size)")


def load_lm(folder: str | Path, verify: bool = True):
    """(model, tokenizer, metadata) of a trained language model's output folder; ``verify`` checks the weights'
    content hashes. A Hugging Face GPT-2 folder (one with config.json) loads too, with metadata {"model": "gpt",
    "config": ..., "extra": {"source": "hf"}} (it has no content hashes to verify)."""
    from ..io.hf_import import is_hf_folder, load_hf_gpt2

    folder = Path(folder)
    if is_hf_folder(folder):
        model, tokenizer = load_hf_gpt2(folder)
        if tokenizer is None:
            raise CheckpointError(f"{folder}: no tokenizer (expected tokenizer.json, or vocab.json and merges.txt)")
        return model, tokenizer, {"model": "gpt", "config": dataclasses.asdict(model.config), "extra": {"source": "hf"}}
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder (expected the --out folder of ember train gpt)")
    model, meta = load_model(folder / MODEL_FILE, verify)
    tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{folder}: tokenizer.json has {tokenizer.vocab_size} ids but the model "
                              f"{model.config.vocab_size}")
    return model.eval(), tokenizer, meta


def _read_log(path: Path, upto: int) -> list[dict]:
    """The log's records up to iteration ``upto`` (what the saved state had seen); a last line cut short by a
    crash is dropped with a warning."""
    if not path.is_file():
        return []
    records = read_jsonl(path, CheckpointError)
    return [r for r in records if isinstance(r.get("iter"), int) and r["iter"] <= upto]


def _write_log(path: Path, records: list[dict]) -> None:
    write_text_atomic(path, "".join(dumps(r) + "\n" for r in records))
