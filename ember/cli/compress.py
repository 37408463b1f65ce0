"""``ember compress CKPT --out PATH``: a smaller model from a trained one, with size, accuracy and speed before
and after.

- ``--quantize int8``: int8 weights (per output channel) and, from ``--calibration-batches`` training batches,
  int8 inputs (per tensor); ``--weights-only`` leaves the inputs in float32. Image classifiers and GPT models.
- ``--prune AMOUNT``: zero that fraction of the Linear and Conv2d weights by magnitude (``--scope global`` or
  ``layer``), over ``--rounds`` rising steps, each followed by ``--finetune-epochs`` of training with the
  zeros held; ``--structured`` removes that fraction of each hidden layer's neurons and channels instead
  (a smaller, faster model). MLP and LeNet-5 (structured), any classifier (unstructured).
- ``--distill-from TEACHER``: train CKPT (the student) on the teacher's soft targets for ``--epochs``; or,
  with ``--student-hidden 64,32`` and no CKPT, a new MLP of those hidden widths.

The result is an ember checkpoint that ``ember eval`` and ``load_model`` read (a GPT's tokenizer.json is
copied beside it). Classifiers are measured on the test split of the dataset they were trained on, a GPT by
its validation loss; speed is the median time of a forward pass of one batch (``--eval-batch-size``).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import UsageError, UserError, non_negative_int, positive_float, positive_int, print_json, probability, say

DEFAULT_EVAL_BATCH = {"classifier": 1000, "lm": 32}
DESCRIPTION = """\
Write a smaller model and print its size, accuracy and speed beside the original's.
  --quantize int8            int8 weights, and int8 inputs calibrated on a few training batches (a GPT:
                             weights only, since its cached decoding reads them directly)
  --prune AMOUNT             zero that fraction of the weights by magnitude, fine-tuning after each round;
                             with --structured, remove that fraction of the hidden neurons and channels
  --distill-from TEACHER     train CKPT (or, with --student-hidden, a new MLP) on the teacher's soft targets
The result is a checkpoint that `ember eval` reads."""


def hidden_widths(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated positive widths, e.g. ``64,32``."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not widths or min(widths) <= 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return widths


def add_parser(sub) -> None:
    from ..data import IMAGE_DATASETS

    p = sub.add_parser("compress", help="quantize, prune or distill a trained model", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", nargs="?", default=None,
                   help="the model to compress: a checkpoint file, or the --out folder of `ember train gpt`")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--quantize", choices=("int8",), help="post-training int8 quantization")
    how.add_argument("--prune", type=probability, metavar="AMOUNT", help="the fraction of weights (or units) to remove")
    how.add_argument("--distill-from", metavar="TEACHER", help="the teacher checkpoint to distill CKPT from")
    p.add_argument("--out", required=True, metavar="PATH", help="the checkpoint file to write (a folder for a GPT)")
    p.add_argument("--dataset", choices=IMAGE_DATASETS, default=None,
                   help="classifiers: the image dataset (default: the one the model was trained on)")
    p.add_argument("--data-dir", default=None, help="folder holding the datasets (also: $EMBER_DATA)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")
    q = p.add_argument_group("quantization")
    q.add_argument("--calibration-batches", type=non_negative_int, default=8,
                   help="training batches that set the inputs' int8 ranges (default 8; 0: --weights-only)")
    q.add_argument("--observer", choices=("minmax", "percentile"), default="minmax",
                   help="how the calibration batches set a range: min/max, or the 0.01/99.99th percentiles")
    q.add_argument("--weights-only", action="store_true", help="quantize the weights, keep the inputs in float32")
    r = p.add_argument_group("pruning")
    r.add_argument("--structured", action="store_true",
                   help="remove whole neurons and channels (MLP, LeNet-5): a smaller, faster model")
    r.add_argument("--scope", choices=("global", "layer"), default="global",
                   help="unstructured: rank the weights of all layers together (default) or each layer apart")
    r.add_argument("--rounds", type=positive_int, default=1,
                   help="prune in this many rising steps (cubic schedule), fine-tuning after each (default 1)")
    r.add_argument("--finetune-epochs", type=non_negative_int, default=1,
                   help="epochs of training after each pruning round (default 1)")
    d = p.add_argument_group("distillation")
    d.add_argument("--student-hidden", type=hidden_widths, metavar="W[,W...]", default=None,
                   help="start from a new MLP with these hidden widths (then give no CKPT)")
    d.add_argument("--epochs", type=positive_int, default=3, help="distillation epochs (default 3)")
    d.add_argument("--temperature", type=positive_float, default=4.0, help="softmax temperature T (default 4)")
    d.add_argument("--alpha", type=float, default=0.9, help="weight of the soft targets, in [0, 1] (default 0.9)")
    t = p.add_argument_group("training (fine-tuning and distillation)")
    t.add_argument("--lr", type=positive_float, default=1e-3, help="Adam's learning rate, cosine-decayed (1e-3)")
    t.add_argument("--batch-size", type=positive_int, default=128, help="training batch (default 128)")
    t.add_argument("--seed", type=non_negative_int, default=0)
    m = p.add_argument_group("measurement")
    m.add_argument("--eval-batch-size", type=positive_int, default=None,
                   help="images (default 1000) or GPT windows (default 32) per timed batch")
    m.add_argument("--timing-rounds", type=positive_int, default=10, help="forward passes timed per model (10)")
    m.add_argument("--max-tokens", type=positive_int, default=None, help="GPT: evaluate the first N tokens only")
    m.add_argument("--no-verify", action="store_true", help="load without checking the content hashes")
    p.add_argument("--json", action="store_true", help="also print the summary as a JSON line")
    p.set_defaults(run=run)


@dataclass
class Measured:
    """One row of the table: a model, where it is saved, and how it does."""

    label: str
    model: object
    path: Path | None = None
    metrics: dict = field(default_factory=dict)


def run(args) -> int:
    from ..io.atomic import check_destination

    check_arguments(args)
    source = load_source(args)
    check_destination(_model_path(Path(args.out)) if source.loaded.kind == "lm" else args.out)  # before the work
    if source.loaded.kind == "lm":  # GPT's cached decoding reads the weights directly: no place to quantize inputs
        args.weights_only = True
    data = Data(args, source)
    rows, compressed, extra = compress(args, source, data)
    out = save(args, source, compressed, extra)
    rows.append(Measured("after", compressed, out))
    measure(rows, data, args)
    print_table(rows, data)
    summary = {"event": "compress", "method": method_name(args), "checkpoint": str(out),
               **{row.label.replace(" ", "_"): row.metrics for row in rows}}
    if args.json:
        print_json(summary)
    return 0


def check_arguments(args) -> None:
    if args.distill_from is None and args.student_hidden is not None:
        raise UsageError("--student-hidden applies to distillation (--distill-from TEACHER)")
    if args.distill_from is not None and (args.checkpoint is None) == (args.student_hidden is None):
        raise UsageError("--distill-from needs either CKPT (the student to train) or --student-hidden (a new MLP "
                         "student), not both")
    if args.distill_from is None and args.checkpoint is None:
        raise UsageError("CKPT is required: the checkpoint to compress")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.structured and args.prune is None:
        raise UsageError("--structured applies to pruning (--prune AMOUNT)")


def method_name(args) -> str:
    if args.quantize:
        inputs = "weights" if args.weights_only or not args.calibration_batches else f"{args.observer} inputs"
        return f"int8 ({inputs})"
    if args.prune is not None:
        kind = "structured" if args.structured else f"unstructured {args.scope}"
        return f"prune {args.prune:g} ({kind}, {args.rounds} round(s), {args.finetune_epochs} fine-tune epoch(s) each)"
    return f"distill (T={args.temperature:g}, alpha={args.alpha:g}, {args.epochs} epoch(s))"


# ----------------------------------------------------------------------------- the model and its data


@dataclass
class Source:
    """The checkpoint to compress (or, for distillation, the teacher and the student)."""

    loaded: object  # eval.Loaded of CKPT, or of the teacher
    student: object = None  # distillation: eval.Loaded of CKPT, or None for a new MLP
    teacher: object = None


def load_source(args) -> Source:
    from .eval import load

    verify = not args.no_verify
    if args.distill_from is None:
        loaded = load(args.checkpoint, verify)
        if loaded.kind == "task":
            raise UserError(f"{loaded.path}: a KAN function fit; compress works on image classifiers and GPT models")
        if loaded.kind == "lm" and not args.quantize:
            raise UserError(f"{loaded.path}: a GPT model; it can be quantized (--quantize int8), not pruned or "
                            "distilled by ember compress")
        return Source(loaded)
    teacher = load(args.distill_from, verify)
    student = load(args.checkpoint, verify) if args.checkpoint else None
    for what in filter(None, (teacher, student)):
        if what.kind != "classifier":
            raise UserError(f"{what.path}: distillation works on image classifiers, not "
                            f"{'a GPT model' if what.kind == 'lm' else 'a KAN function fit'}")
    return Source(teacher, student, teacher)


def _model_path(out: Path) -> Path:
    """A GPT is written as a folder's model.safetensors (beside its tokenizer), unless --out names a file."""
    from ..train.lm import MODEL_FILE

    return out if out.suffix == ".safetensors" else out / MODEL_FILE


class Data:
    """The batches a classifier or a GPT is calibrated, trained, evaluated and timed on."""

    def __init__(self, args, source: Source):
        self.args, self.loaded = args, source.loaded
        self.kind = source.loaded.kind
        self.eval_batch = args.eval_batch_size or DEFAULT_EVAL_BATCH[self.kind]
        if self.kind == "classifier":
            self._load_images(args, source)
        else:
            self._load_tokens(args)

    def _load_images(self, args, source: Source) -> None:
        from ..data import IMAGE_DATASETS, image_classification
        from .eval import check_classifier_fits

        extra = self.loaded.meta["extra"]
        self.dataset = args.dataset or extra.get("dataset") or "mnist"
        if self.dataset not in IMAGE_DATASETS:
            raise UserError(f"{self.loaded.path}: trained on {self.dataset!r}, which compress cannot load; pass "
                            f"--dataset ({', '.join(IMAGE_DATASETS)})")
        download = not args.no_download
        norm = extra.get("normalization")
        stats = (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)) if norm else None
        self.train_set, stats = image_classification(self.dataset, "train", args.data_dir, download, stats=stats)
        self.test_set, _ = image_classification(self.dataset, "test", args.data_dir, download, stats=stats)
        self.normalization = {"mean": stats[0].tolist(), "std": stats[1].tolist()}
        for loaded in filter(None, (self.loaded, source.student)):
            check_classifier_fits(loaded, self.dataset, *self.test_set.arrays)
        images = self.test_set.arrays[0]
        self.timing_input = images[: self.eval_batch]
        self.example = images[:1]

    def _load_tokens(self, args) -> None:
        from ..data.text import load_corpus, random_windows

        spec = self.loaded.meta["extra"].get("data")
        if not spec:
            raise UserError(f"{self.loaded.path}: the checkpoint does not record the corpus it was trained on")
        try:
            corpus = load_corpus(spec, self.loaded.tokenizer, data_dir=args.data_dir, download=not args.no_download)
            self.train_tokens, self.val = corpus.train, corpus.val
            block = self.loaded.model.config.block_size
            self.timing_input = random_windows(self.val, self.eval_batch, block, np.random.default_rng(args.seed))[0]
        except ValueError as exc:
            raise UserError(f"{spec}: {exc}") from None
        self.example = None

    def train_loader(self, seed_offset: int = 0):
        from ..data import DataLoader

        return DataLoader(self.train_set, batch_size=self.args.batch_size, shuffle=True,
                          seed=self.args.seed + seed_offset)

    def calibration_batches(self) -> list:
        """The first --calibration-batches training batches (classifiers) or random training windows (GPT)."""
        n = self.args.calibration_batches
        if self.kind == "classifier":
            return [x for x, _ in itertools.islice(self.train_loader(), n)]
        from ..data.text import random_windows

        rng = np.random.default_rng(self.args.seed)
        block = self.loaded.model.config.block_size
        return [random_windows(self.train_tokens, self.args.batch_size, block, rng)[0] for _ in range(n)]


# ----------------------------------------------------------------------------- the three methods


def compress(args, source: Source, data: Data) -> tuple[list[Measured], object, dict]:
    """(rows measured before, the compressed model, the metadata to save with it)."""
    extra = {k: v for k, v in source.loaded.meta["extra"].items() if k not in ("compression", "test_accuracy")}
    if data.kind == "classifier":
        extra.update(dataset=data.dataset, normalization=data.normalization)
    if args.quantize:
        model = quantize(args, source.loaded.model, data)
        rows = [Measured("before", source.loaded.model, source.loaded.path)]
    elif args.prune is not None:
        model = prune(args, source.loaded.model, data)
        rows = [Measured("before", source.loaded.model, source.loaded.path)]
    else:
        model, rows = distill(args, source, data)
        extra.pop("epochs", None)
        extra["distilled_from"] = str(source.teacher.path)
    extra["compressed"] = {"method": method_name(args), "from": str(rows[-1].path or source.loaded.path)}
    return rows, model, extra


def quantize(args, model, data: Data):
    from ..compress import quantize_model

    batches = None if args.weights_only or not args.calibration_batches else data.calibration_batches()
    try:
        return quantize_model(model, calibration_batches=batches, observer=args.observer)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{data.loaded.path}: {exc}") from None


def prune(args, model, data: Data):
    import copy

    from ..compress import prune_and_finetune, remove_masks, sparsity_schedule

    model = copy.deepcopy(model)
    amounts = sparsity_schedule(args.prune, args.rounds)
    try:
        model, _ = prune_and_finetune(model, amounts, lambda m, r: finetune(args, m, data, r),
                                      structured=args.structured, scope=args.scope)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{data.loaded.path}: {exc}") from None
    remove_masks(model)
    return model.eval()


def finetune(args, model, data: Data, round_index: int) -> dict:
    """--finetune-epochs of Adam on the training split, the pruned weights held at zero."""
    from .. import optim
    from ..compress import MaskedOptimizer
    from ..train import fit

    if not args.finetune_epochs:
        return {}
    loader = data.train_loader(round_index)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=args.finetune_epochs * len(loader))
    history = fit(model, MaskedOptimizer(optimizer, model), loader, epochs=args.finetune_epochs, progress=False,
                  scheduler=scheduler, scheduler_per_batch=True)
    say(f"round {round_index}/{args.rounds}: {args.finetune_epochs} fine-tune epoch(s), train accuracy "
        f"{history[-1].train_accuracy:.2%}")
    return {"train_accuracy": history[-1].train_accuracy}


def distill(args, source: Source, data: Data):
    import ember

    from .. import optim
    from ..compress import distill as train_student
    from ..compress import mlp_student

    ember.manual_seed(args.seed)
    teacher = source.teacher.model
    if source.student is not None:
        import copy

        student, student_path = copy.deepcopy(source.student.model), source.student.path
    else:
        student, student_path = mlp_student(teacher, args.student_hidden), None
    rows = [Measured("teacher", teacher, source.teacher.path)]
    if student_path is not None:
        rows.append(Measured("student before", source.student.model, student_path))
    loader = data.train_loader()
    optimizer = optim.Adam(student.parameters(), lr=args.lr)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=args.epochs * len(loader))

    def report(s):
        say(f"epoch {s.epoch}/{args.epochs}: distillation loss {s.loss:.4f}, train accuracy {s.train_accuracy:.2%}")

    train_student(student, teacher, loader, optimizer, args.epochs, args.temperature, args.alpha,
                  scheduler=scheduler, on_epoch=report)
    return student.eval(), rows


# ----------------------------------------------------------------------------- saving and measuring


def save(args, source: Source, model, extra: dict) -> Path:
    from ..compress import save_compressed
    from ..train.lm import TOKENIZER_FILE

    if source.loaded.kind != "lm":
        return save_compressed(args.out, model, extra)
    path = _model_path(Path(args.out))
    save_compressed(path, model, extra)
    tokenizer = source.loaded.path.parent / TOKENIZER_FILE
    if (path.parent / TOKENIZER_FILE).resolve() != tokenizer.resolve():
        shutil.copyfile(tokenizer, path.parent / TOKENIZER_FILE)
    return path


def measure(rows: list[Measured], data: Data, args) -> None:
    """Size, accuracy (or validation loss) and the median time of one forward pass, for every row."""
    from ..compress import stored_weights

    for row in rows:
        row.metrics = {"file": str(row.path) if row.path else None,
                       "bytes": row.path.stat().st_size if row.path else None}
        stored = stored_weights(row.model)
        row.metrics.update(weights=stored["count"], nonzero=stored["nonzero"], weight_bytes=stored["bytes"])
        if data.kind == "classifier":
            from ..compress import count_macs
            from ..data import DataLoader
            from ..train import evaluate

            loss, acc = evaluate(row.model, DataLoader(data.test_set, batch_size=data.eval_batch))
            row.metrics.update(test_loss=round(loss, 6), test_accuracy=round(acc, 6),
                               macs_per_sample=count_macs(row.model, data.example))
        else:
            from ..train.lm_eval import evaluate_lm

            result = evaluate_lm(row.model, data.loaded.tokenizer, data.val, batch_size=data.eval_batch,
                                 max_tokens=args.max_tokens)
            row.metrics.update(val_loss=round(result.loss, 6), val_tokens=result.tokens)
    for row, ms in zip(rows, forward_times([row.model for row in rows], data.timing_input, args.timing_rounds)):
        row.metrics["ms_per_batch"] = round(ms, 3)


def forward_times(models: list, batch: np.ndarray, rounds: int) -> list[float]:
    """Median milliseconds of one forward pass of ``batch`` through each model, the models interleaved in every
    round (so a busy moment of the machine slows them all alike); one untimed pass each first."""
    from ..autograd import no_grad
    from ..tensor import Tensor

    x = Tensor(batch) if batch.dtype.kind == "f" else batch
    times = [[] for _ in models]
    with no_grad():
        for model in models:
            model.eval()(x)
        for _ in range(rounds):
            for model, spent in zip(models, times):
                start = time.perf_counter()
                model(x)
                spent.append(time.perf_counter() - start)
    return [1e3 * float(np.median(t)) for t in times]


def print_table(rows: list[Measured], data: Data) -> None:
    quality = ("test accuracy", lambda m: f"{m['test_accuracy']:.2%}") if data.kind == "classifier" else \
              ("val loss", lambda m: f"{m['val_loss']:.4f}")
    unit = "images" if data.kind == "classifier" else "windows"
    header = ["", "file", "size", "weights", "nonzero", quality[0], "MACs/sample", f"ms/batch of {data.eval_batch} "
              f"{unit}"]
    first = rows[0].metrics
    lines = []
    for row in rows:
        m = row.metrics
        size = f"{m['bytes'] / 1e3:,.1f} kB" if m["bytes"] else "-"
        if m["bytes"] and row is not rows[0] and first["bytes"]:
            size += f" ({first['bytes'] / m['bytes']:.2f}x smaller)"
        macs = f"{m['macs_per_sample']:,}" if "macs_per_sample" in m else "-"
        lines.append([row.label, Path(m["file"]).name if m["file"] else "(new)", size, f"{m['weights']:,}",
                      f"{m['nonzero']:,}", quality[1](m), macs, f"{m['ms_per_batch']:.2f}"])
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
    for r in [header, *lines]:
        say("  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip())
    say(f"wrote {rows[-1].path}")
