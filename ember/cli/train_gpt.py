"""``ember train gpt``: a GPT language model on a text corpus, nanoGPT's CPU recipe by default, resumable."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..data import DatasetError
from ..io import CheckpointError
from .common import (
    UsageError,
    add_device_arg,
    add_log_args,
    check_log_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
    probability,
    resolve_device,
    say,
    training_logs,
)
from .dist import add_distributed_arg, distributed, summary_fields

# flag -> (type, help); every flag defaults to None so that a resumed run can tell which were given
FLAGS = {
    "n_layer": (positive_int, "transformer blocks (default 4)"),
    "n_head": (positive_int, "attention heads (default 4)"),
    "n_embd": (positive_int, "embedding width (default 128)"),
    "block_size": (positive_int, "context length in tokens (default 64)"),
    "batch_size": (positive_int, "sequences per micro-batch (default 12)"),
    "grad_accum": (positive_int, "micro-batches per optimizer step (default 1)"),
    "max_iters": (positive_int, "optimizer steps (default 2000)"),
    "lr": (positive_float, "peak learning rate (default 1e-3)"),
    "min_lr": (non_negative_float, "final learning rate of the cosine (default 1e-4)"),
    "warmup_iters": (non_negative_int, "linear warmup steps (default 100)"),
    "lr_decay_iters": (positive_int, "step where the cosine reaches --min-lr (default --max-iters)"),
    "weight_decay": (non_negative_float, "AdamW decay on 2-D weights (default 0.1)"),
    "beta2": (probability, "AdamW beta2 (default 0.99)"),
    "grad_clip": (non_negative_float, "global gradient-norm clip, 0 for none (default 1.0)"),
    "dropout": (probability, "dropout probability (default 0)"),
    "eval_interval": (positive_int, "evaluate and save every N steps (default 250)"),
    "eval_iters": (positive_int, "batches per split in each evaluation (default 20)"),
    "log_interval": (positive_int, "log the training loss every N steps (default 10)"),
    "seed": (non_negative_int, "seed of the initialisation, data windows and dropout (default 1337)"),
    "vocab_size": (positive_int, "BPE vocabulary size (default 1024 for shakespeare-bpe, 8192 for python-stdlib)"),
    "streams": (positive_int, "residual streams of --residual hc/mhc/mhc2 (default 4, 4, 2)"),
    "sinkhorn_iters": (positive_int, "Sinkhorn-Knopp iterations of --residual mhc (default 20)"),
}
ARCHITECTURE = ("data", "tokenizer", "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "bias", "dtype",
                "gelu", "residual", "streams", "sinkhorn_iters")
GELU = {"exact": "none", "tanh": "tanh"}  # the flag's words -> GPTConfig.gelu


def add_parser(models) -> None:
    p = models.add_parser(
        "gpt", help="train a GPT language model on text",
        description="Train a GPT (nanoGPT's architecture) on a text corpus. Defaults: nanoGPT's CPU recipe for "
                    "Tiny Shakespeare at character level.")
    p.add_argument("--data", default=None,
                   help="shakespeare-char (default), shakespeare-bpe, python-stdlib, or a text file or directory")
    p.add_argument("--tokenizer", choices=("char", "bpe"), default=None,
                   help="default: char for shakespeare-char, bpe otherwise")
    p.add_argument("--data-dir", default=None, help="folder holding tinyshakespeare/ (also: $EMBER_DATA)")
    p.add_argument("--no-download", action="store_true")
    for name, (kind, text) in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    p.add_argument("--bias", action="store_true", default=None, help="biases in Linears and LayerNorms (GPT-2)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None)
    p.add_argument("--gelu", choices=tuple(GELU), default=None,
                   help="GELU's exact erf form (default, nanoGPT) or its tanh approximation (GPT-2, llama.cpp)")
    p.add_argument("--residual", choices=("plain", "hc", "mhc", "mhc2"), default=None,
                   help="plain residual (default) or hyper-connections: hc (static), mhc (manifold-constrained, "
                        "Sinkhorn), mhc2 (2 streams, closed form)")
    add_device_arg(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="checkpoints, tokenizer and log.jsonl go here (default: out-<data>, as nanoGPT)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out exactly where it stopped, with its own settings (flags "
                        "may change only --max-iters, --eval-interval, --eval-iters, --log-interval, --data-dir)")
    p.add_argument("--force", action="store_true", help="start a new run in an --out folder that holds another run, "
                                                        "replacing its files")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="skip a step whose loss or gradient is NaN/inf instead of stopping the run")
    p.add_argument("--no-verify", action="store_true", help="--resume without checking the saved tensors' hashes")
    p.add_argument("--json", action="store_true", help="print every log record as a JSON line too")
    p.add_argument("--no-progress", action="store_true")
    add_log_args(p, "logged iteration and evaluation (--resume appends after the saved iteration)")
    add_distributed_arg(p)
    p.set_defaults(run=run)


def given_settings(args) -> dict:
    """The LMTrainConfig fields set by flags (every flag defaults to None, so only those typed count)."""
    from ..train.lm import LMTrainConfig

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(LMTrainConfig)
             if getattr(args, f.name, None) is not None}
    if "gelu" in given:
        given["gelu"] = GELU[given["gelu"]]
    if args.skip_nonfinite:
        given["on_nonfinite"] = "skip"
    return given


def make_trainer(args, device="cpu", world=None):
    """A new run (its settings validated before the output folder is touched) or a resumed one, on ``device``
    (a resumed run may continue on another device than the one it started on); ``world``: data-parallel over the
    ranks of an MPI job."""
    from ..train.lm import LMTrainConfig, LMTrainer

    given = given_settings(args)
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the folder of the run to continue")
        changed = sorted(k for k in given if k in ARCHITECTURE)
        if changed:
            raise UsageError(f"--resume continues the saved run; it cannot change {', '.join(changed)}")
        if args.force:
            raise UsageError("--resume continues the run in --out; --force would replace it: choose one")
        given.pop("out", None)
        try:
            return LMTrainer.resume(args.out, given, download=not args.no_download, verify=not args.no_verify,
                                    device=device, world=world)
        except ValueError as exc:
            if isinstance(exc, (CheckpointError, DatasetError)):
                raise
            raise UsageError(f"--resume continues the saved run: {exc}") from None
    if not args.out:
        data = args.data or "shakespeare-char"
        given["out"] = "out-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data).name) or "text")
    try:
        config = LMTrainConfig(**given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return LMTrainer(config, download=not args.no_download, force=args.force, device=device, world=world)
    except (CheckpointError, DatasetError):
        raise
    except ValueError as exc:  # settings that do not fit together (e.g. n_embd not divisible by n_head)
        raise UsageError(str(exc)) from None


def run(args) -> int:
    with distributed(args) as world:
        return train_lm(args, world)


def train_lm(args, world=None) -> int:
    """The run; ``world``: the MPI job's World with ``--distributed`` (--batch-size windows on each rank)."""
    check_log_args(args)
    trainer = make_trainer(args, resolve_device(args.device), world)
    for change in trainer.resume_changes:
        say(f"resume: {change}")
    c, corpus, model = trainer.config, trainer.corpus, trainer.model
    what = f"resuming at iteration {trainer.iter}" if args.resume else "training"
    residual = "" if c.residual == "plain" else f", {c.residual} with {model.config.streams} streams"
    say(f"{what} gpt ({c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, context {c.block_size}{residual}, "
        f"{model.num_parameters():,} parameters) on {c.data}: {corpus.vocab_size} tokens in the vocabulary, "
        f"{len(corpus.train):,} train / {len(corpus.val):,} val tokens; batch {c.batch_size}x{c.grad_accum}"
        f"{'' if world is None else f' per process x {world.size} processes'}, "
        f"{c.max_iters} iterations, AdamW lr {c.lr} -> {c.min_lr}; on {trainer.device}; saving to {c.out}")

    def report(record):
        if record["event"] == "eval":
            say(f"iter {record['iter']:>6}: train loss {record['train_loss']:.4f}, val loss {record['val_loss']:.4f}")
        if args.json:
            print_json(record)

    with training_logs(args, "iteration", resume_after=trainer.iter if args.resume else None) as logs:
        on_record = report if logs is None else log_records(report, logs, trainer)
        history = trainer.run(progress=not args.no_progress, on_record=on_record)
    evals = [r for r in history if r["event"] == "eval"]
    steps = [r for r in history if r["event"] == "train"]
    summary = {"event": "summary", "model": "gpt", "data": c.data, "iters": trainer.iter,
               "train_loss": evals[-1]["train_loss"] if evals else None,
               "val_loss": evals[-1]["val_loss"] if evals else None,
               "ms_per_iter": round(sum(r["ms_per_iter"] for r in steps) / len(steps), 2) if steps else None,
               "skipped_steps": trainer.guard.skipped, "device": str(trainer.device), "out": c.out,
               **summary_fields(c.batch_size * c.grad_accum, world)}
    print_json(summary)
    return 0


def log_records(report, logs, trainer):
    """An ``on_record`` that reports each record and logs its scalars. A run that does not clip has its optimizer
    measured by a StepMeter from here on, for the gradient norm (a clipped run's would be the clip); the records a
    resumed run kept are remembered for --plot, not written again."""
    from ..train.scalars import StepMeter, lm_record_scalars

    meter = None
    if not trainer.config.grad_clip:
        meter = trainer.optimizer = StepMeter(trainer.optimizer)
    for record in trainer.history:
        logs.remember(record["iter"], lm_record_scalars(record))

    def report_and_log(record):
        report(record)
        logs.log(record["iter"], lm_record_scalars(record, meter))

    return report_and_log
