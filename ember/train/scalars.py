"""Training scalars (loss, accuracy, learning rate, throughput, gradient norm) for TensorBoard and a CSV.

``ember train ... --log-dir DIR`` writes every scalar twice into DIR:

- ``scalars.csv``: one row per value (step, tag, value, wall_time), appended and flushed record by record,
  so a crash loses at most the line being written; readable with nothing but a text editor or pandas;
- TensorBoard event files, through tensorboardX (the optional extra ``ember[tensorboard]``). Without it the
  CSV is still written and one warning names the extra.

A resumed run appends after the step its saved state reached: CSV rows past that step are dropped, and the new
event file opens with a purge at the next step (tensorboardX's ``purge_step``: TensorBoard's reader discards what
earlier files logged from that step on), so steps an interrupted run logged after its last save never show twice.
A new run in a folder holding an earlier run's logs replaces them.

Tags: ``train/loss``, ``train/accuracy``, ``test/accuracy``, ``train/eval_loss``, ``val/loss``, ``train/mse``,
``val/mse``, ``lr``, ``throughput/samples_per_s`` (``tokens_per_s``, ``steps_per_s``) and ``grad_norm``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import backend

CSV_FILE = "scalars.csv"
CSV_HEADER = ("step", "tag", "value", "wall_time")
EVENTS_PREFIX = "events.out.tfevents."
TENSORBOARD_EXTRA = "pip install 'ember[tensorboard]'"


@dataclass(frozen=True)
class ScalarRow:
    step: int
    tag: str
    value: float
    wall_time: float  # seconds since the epoch, as TensorBoard records it


# -- sinks -----------------------------------------------------------------------------------------------------


class CSVSink:
    """Rows appended to ``scalars.csv``, flushed after each record (a crash loses at most the line being written)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # closed by close()
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(CSV_HEADER)

    def write(self, row: ScalarRow) -> None:
        self._csv.writerow((row.step, row.tag, repr(float(row.value)), repr(row.wall_time)))

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """An event file written by tensorboardX's SummaryWriter; ``purge_step`` hides what earlier files logged from
    that step on (a resumed run).

    The writer's own thread writes the events and flushes them within ``FLUSH_SECONDS``: a flush per record
    (which syncs the file to disk) cost 1.8 ms here, as much as a step of a small model; the CSV is the record
    that a crash never loses more than a line of."""

    FLUSH_SECONDS = 1

    def __init__(self, folder: str | os.PathLike, summary_writer, purge_step: int | None = None):
        # the suffix orders this file after any other written in the same second (the name holds whole seconds
        # only, and TensorBoard reads a folder's files in name order: a purge must come after what it purges)
        self._writer = summary_writer(str(folder), purge_step=purge_step, flush_secs=self.FLUSH_SECONDS,
                                      filename_suffix=f".{time.time_ns()}")

    def write(self, row: ScalarRow) -> None:
        self._writer.add_scalar(row.tag, float(row.value), row.step, walltime=row.wall_time)

    def flush(self) -> None:
        """Nothing to do: the writer's thread flushes (see the class docstring); ``close`` flushes the rest."""

    def close(self) -> None:
        self._writer.close()


def import_summary_writer():
    """tensorboardX's SummaryWriter, or None when the extra is not installed.

    tensorboardX's writer module imports torch, when it is installed, only to name ``torch.Tensor`` in type hints
    (2 s, and a second framework in the process); ember logs Python floats and never imports torch, so torch is
    hidden while tensorboardX loads. A tensorboardX that cannot load without torch gets it."""
    try:
        with _torch_hidden():
            from tensorboardX import SummaryWriter
    except ImportError as exc:
        if exc.name != "torch":
            return None
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            return None
    return SummaryWriter


@contextlib.contextmanager
def _torch_hidden():
    """``import torch`` raises ImportError inside the block (unless torch is loaded already); afterwards it works
    as before."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None
    try:
        yield
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]


# -- the logger ------------------------------------------------------------------------------------------------


class ScalarLogger:
    """Sends each record's scalars to every sink (CSV, TensorBoard) and keeps them in ``series`` for a plot.

    ``log(step, {"train/loss": 0.31, ...})``: values that are None (a loop that has nothing to report for a tag
    this time) are left out. Use as a context manager, or call ``close()``."""

    def __init__(self, sinks=(), folder: Path | None = None):
        self.sinks = list(sinks)
        self.folder = folder
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.replaced: list[Path] = []  # an earlier run's log files that this new run removed

    def log(self, step: int, scalars: Mapping[str, float | None]) -> None:
        now = time.time()
        rows = [ScalarRow(int(step), tag, float(value), now) for tag, value in scalars.items() if value is not None]
        for sink in self.sinks:
            for row in rows:
                sink.write(row)
            sink.flush()
        self._remember(rows)

    def remember(self, step: int, scalars: Mapping[str, float | None]) -> None:
        """Keep scalars for the plot without writing them (what a resumed run had logged before it stopped)."""
        self._remember([ScalarRow(int(step), tag, float(value), 0.0) for tag, value in scalars.items()
                        if value is not None])

    def _remember(self, rows: list[ScalarRow]) -> None:
        for row in rows:
            self.series.setdefault(row.tag, []).append((row.step, row.value))

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []

    def __enter__(self) -> ScalarLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_log_dir(folder: str | os.PathLike) -> Path:
    """Raise, naming ``folder``, if the logs could not be written there (checked before a run starts)."""
    from ..io.atomic import check_destination

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--log-dir {folder}: exists and is not a directory")
    check_destination(folder / CSV_FILE)
    return folder


def open_scalar_logger(folder: str | os.PathLike | None = None, resume_after: int | None = None) -> ScalarLogger:
    """A logger writing into ``folder`` (None: memory only, for a plot).

    ``resume_after``: None for a new run, which replaces an earlier run's ``scalars.csv`` and event files in
    ``folder`` (listed in ``replaced``); a step for a resumed run, which keeps what was logged up to that step and
    appends after it. Without tensorboardX only the CSV is written, with one warning naming the extra."""
    if folder is None:
        return ScalarLogger()
    folder = check_log_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    replaced = []
    if resume_after is None:
        replaced = remove_logs(folder)
    else:
        keep_csv_rows(folder / CSV_FILE, upto=resume_after)
    sinks = [CSVSink(folder / CSV_FILE)]
    summary_writer = import_summary_writer()
    if summary_writer is None:
        warnings.warn(f"--log-dir {folder}: tensorboardX is not installed, so only {CSV_FILE} is written (no "
                      f"TensorBoard event file): {TENSORBOARD_EXTRA}", RuntimeWarning, stacklevel=2)
    else:
        sinks.append(TensorBoardSink(folder, summary_writer, None if resume_after is None else resume_after + 1))
    logger = ScalarLogger(sinks, folder)
    logger.replaced = replaced
    return logger


def remove_logs(folder: Path) -> list[Path]:
    """Delete the scalars.csv and event files directly in ``folder`` (not in its subfolders); returns them."""
    found = [p for p in folder.iterdir() if p.is_file() and (p.name == CSV_FILE or p.name.startswith(EVENTS_PREFIX))]
    for path in found:
        path.unlink()
    return sorted(found)


def keep_csv_rows(path: Path, upto: int) -> None:
    """Rewrite ``path`` (atomically) with only its rows up to step ``upto``; nothing to do if it does not exist."""
    from ..io.atomic import write_text_atomic

    if not path.is_file():
        return
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_HEADER)
    for row in read_scalars_csv(path):
        if row.step <= upto:
            writer.writerow((row.step, row.tag, repr(row.value), repr(row.wall_time)))
    write_text_atomic(path, text.getvalue())


def read_scalars_csv(path: str | os.PathLike) -> list[ScalarRow]:
    """The rows of a ``scalars.csv``. A last line cut short by a crash is dropped with a warning; a bad line
    elsewhere raises ValueError naming the file and the line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split(",")) != CSV_HEADER:
        raise ValueError(f"{path}: not a scalars file (expected the header {','.join(CSV_HEADER)})")
    rows = []
    for number, fields in enumerate(csv.reader(lines[1:]), 2):
        try:
            step, tag, value, wall_time = fields
            rows.append(ScalarRow(int(step), tag, float(value), float(wall_time)))
        except ValueError as exc:
            if number == len(lines):
                warnings.warn(f"{path}: ignoring its last line, which is incomplete (a crash mid-write?): "
                              f"{lines[-1][:60]!r}", RuntimeWarning, stacklevel=2)
                break
            raise ValueError(f"{path}, line {number}: expected step,tag,value,wall_time ({exc})") from None
    return rows


# -- what each training loop reports, as scalars ----------------------------------------------------------------


class StepMeter:
    """Stands in for an optimizer in a training loop and measures each step it applies: the learning rate and,
    with ``grad_norm``, the global L2 norm of the gradient. Everything else is the optimizer's own, so a loop
    cannot tell the two apart; loops that log nothing keep the bare optimizer.

    Measure the norm only in a loop that does not clip: the meter sees the gradient the step applies, which
    clipping has already scaled down to the clip (a flat line at 1.0 that says nothing)."""

    def __init__(self, optimizer, grad_norm: bool = True):
        self.optimizer = optimizer
        self.measures_grad_norm = grad_norm
        self.lr: float | None = None  # the learning rate of the last step
        self._norms: list[float] = []

    def step(self) -> None:
        if self.measures_grad_norm:
            self._norms.append(global_grad_norm(p for g in self.optimizer.param_groups for p in g["params"]))
        self.lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()

    def take_grad_norm(self) -> float | None:
        """The mean gradient norm of the steps since the last call (None if none was applied), and start afresh."""
        norms, self._norms = self._norms, []
        return sum(norms) / len(norms) if norms else None

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


def global_grad_norm(parameters) -> float:
    """sqrt(sum of every gradient's squared entries), as ``clip_grad_norm_`` measures it (0 without gradients)."""
    total = 0.0
    for p in parameters:
        if p.grad is not None:
            g = p.grad.data
            total += float(backend.array_module(g).vdot(g, g))
    return math.sqrt(total)


def epoch_scalars(stats, meter: StepMeter, samples: int) -> dict[str, float | None]:
    """An image classifier's epoch (``EpochStats``): losses, accuracies, the last step's learning rate, samples
    per second of training time, and the mean gradient norm of the epoch's steps (where the meter measures it)."""
    return {"train/loss": stats.loss, "train/accuracy": stats.train_accuracy, "test/accuracy": stats.test_accuracy,
            "lr": meter.lr, "throughput/samples_per_s": samples / stats.seconds if stats.seconds > 0 else None,
            "grad_norm": meter.take_grad_norm()}


def lm_record_scalars(record: dict, meter: StepMeter | None = None) -> dict[str, float | None]:
    """A language-model trainer's log record: a training record (loss of the last step, its learning rate,
    tokens per second, the gradient norm: the record's own if the trainer reports it, else the meter's mean since
    the last record) or an evaluation (mean loss of the fixed batches of each split). The learning rate is taken
    from training records only: an evaluation's is the next step's, and two values at one step would draw a
    spike."""
    if record["event"] == "train":
        if "grad_norm" in record:
            grad_norm = record["grad_norm"]
        else:
            grad_norm = meter.take_grad_norm() if meter is not None else None
        return {"train/loss": record["loss"], "lr": record["lr"], "throughput/tokens_per_s": record["tokens_per_s"],
                "grad_norm": grad_norm}
    if record["event"] == "eval":
        return {"train/eval_loss": record["train_loss"], "val/loss": record["val_loss"]}
    return {}


def regression_scalars(entry: dict, steps_per_s: float | None) -> dict[str, float | None]:
    """A function-fitting run's log entry (``fit_regression``'s ``on_log``)."""
    return {"train/mse": entry["train_mse"], "val/mse": entry["val_mse"], "lr": entry["lr"],
            "throughput/steps_per_s": steps_per_s}
