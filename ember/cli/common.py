"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path


def _number(kind, minimum, strict: bool, what: str, maximum=None, strict_max: bool = False):
    """An argparse type: a finite ``kind`` parsed from text, > minimum (strict) or >= minimum, and at most
    ``maximum`` (below it if ``strict_max``). NaN and infinities are refused: they would train a run of NaNs."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r} (not finite)")
        if minimum is not None and (value < minimum or (strict and value == minimum)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        if maximum is not None and (value > maximum or (strict_max and value == maximum)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _number(int, 0, True, "a positive integer")
non_negative_int = _number(int, 0, False, "a non-negative integer")
positive_float = _number(float, 0.0, True, "a positive number")
non_negative_float = _number(float, 0.0, False, "a non-negative number")
finite_float = _number(float, None, False, "a finite number")
probability = _number(float, 0.0, False, "a number in [0, 1)", maximum=1.0, strict_max=True)
fraction = _number(float, 0.0, True, "a number in (0, 1]", maximum=1.0)


class UsageError(Exception):
    """Arguments that parse but do not fit together: reported like argparse's errors, exit status 2."""


class UserError(Exception):
    """A problem with the user's input or files: printed as one line, exit status 1."""


def add_data_args(parser: argparse.ArgumentParser, default: str = "mnist") -> None:
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist", "kmnist"), default=default,
                        help=f"image dataset (default {default})")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding <dataset>/ with the IDX files (also: $EMBER_DATA)")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", metavar="DEVICE",
                        help="where to compute: cpu (default), cuda or cuda:N (CuPy and an NVIDIA GPU), "
                             "cpu:other (the GPU-free test double)")


def resolve_device(spec: str):
    """The ``--device`` as an ember Device, checked before any work: a misspelt device is a usage error (exit 2),
    one this machine lacks (no CuPy, no GPU, no such index) a UserError (exit 1) that says what is missing."""
    from .. import backend

    if spec.strip().lower() == "cpu:other":  # the test double registers itself on import
        from ..testing import device_double  # noqa: F401
    try:
        return backend.device(spec)
    except ValueError as exc:
        raise UsageError(f"--device: {exc}") from None
    except RuntimeError as exc:
        raise UserError(f"--device {spec}: {exc}") from None


def print_json(obj: dict) -> None:
    """One line of valid JSON on stdout (the machine-readable summary): non-finite numbers become null."""
    from ..io.jsonl import dumps

    print(dumps(obj), flush=True)


def say(text: str) -> None:
    print(text, flush=True, file=sys.stdout)


def epoch_reporter(args):
    """The per-epoch line (and JSON record with --json) of the image-classification trainers."""

    def report(s):
        say(f"epoch {s.epoch:>3}/{args.epochs}  loss {s.loss:.4f}  train acc {s.train_accuracy:.2%}  "
            f"test acc {s.test_accuracy:.2%}  {s.seconds:.1f} s")
        if args.json:
            print_json({"event": "epoch", **s.as_dict()})

    return report


def save_or_rescue(save, path) -> tuple[Path, str | None]:
    """``save(path)``; if that write fails at the end of a run (disk full, folder gone), ``save`` to a rescue file
    in the working folder (else the temporary folder) instead and say where, so trained weights are never lost.
    Returns (the path written, the error or None). The destination itself was checked before training."""
    try:
        return save(path), None
    except OSError as exc:
        failure = f"could not write {path}: {exc.strerror or exc}"
    name = f"ember-rescued-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.safetensors"
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            rescued = save(folder / name)
        except OSError:
            continue
        print(f"ember: error: {failure}; the trained weights were saved to {rescued} instead", file=sys.stderr)
        return rescued, failure
    raise UserError(f"{failure}; nor could they be saved in {Path.cwd()} or {tempfile.gettempdir()}")


def check_save_destination(path) -> None:
    """``--save PATH`` is checked before training: a run must not end by failing to write its result."""
    if path:
        from ..io.atomic import check_destination

        check_destination(path)


def save_to_summary(summary: dict, path, model, extra: dict) -> int:
    """Save the checkpoint (or its rescue copy), record where in ``summary``; returns the exit status."""
    from ..io.checkpoint import save_checkpoint

    written, failure = save_or_rescue(lambda p: save_checkpoint(p, model, extra=extra), path)
    summary["checkpoint"] = str(written)
    if failure:
        summary["save_error"] = failure
        return 1
    say(f"saved {written}")
    return 0


def add_log_args(parser: argparse.ArgumentParser, per: str) -> None:
    """``--log-dir`` and ``--plot``, on every ``ember train`` command; ``per``: when a record is written."""
    parser.add_argument("--log-dir", metavar="DIR", default=None,
                        help=f"write the training scalars (loss, accuracy, learning rate, throughput, gradient norm) "
                             f"per {per} to DIR/scalars.csv and TensorBoard event files (tensorboardX: pip install "
                             f"'ember[tensorboard]'); a new run replaces the logs there")
    parser.add_argument("--plot", metavar="PATH.png", default=None,
                        help="draw the loss and accuracy curves into a PNG when the run ends (matplotlib: pip "
                             "install 'ember[plot]')")


def check_log_args(args) -> None:
    """``--log-dir`` and ``--plot`` checked before any work: a run must not end by failing to write its logs."""
    from ..train.plot import import_pyplot
    from ..train.scalars import check_log_dir

    if args.log_dir:
        check_log_dir(args.log_dir)
    if args.plot:
        if Path(args.plot).suffix.lower() != ".png":
            raise UsageError(f"--plot {args.plot}: expected a path ending in .png")
        check_save_destination(args.plot)
        try:
            import_pyplot()
        except ImportError as exc:
            raise UserError(f"--plot: {exc}") from None


@contextlib.contextmanager
def training_logs(args, x_label: str, resume_after: int | None = None):
    """Yields the run's ScalarLogger, or None when neither ``--log-dir`` nor ``--plot`` is given (the training
    loop then runs exactly as without them); closes it, and draws ``--plot`` once the run has ended without
    error. ``resume_after``: the step a resumed run continues from (its earlier logs are kept up to there)."""
    if not (args.log_dir or args.plot):
        yield None
        return
    from ..train.scalars import open_scalar_logger

    logger = open_scalar_logger(args.log_dir, resume_after)
    if logger.replaced:
        say(f"--log-dir {args.log_dir}: replacing an earlier run's logs ({', '.join(p.name for p in logger.replaced)})")
    try:
        yield logger
    finally:
        logger.close()
    if args.plot:
        from ..train.plot import plot_training_curves

        say(f"plot: {plot_training_curves(logger.series, args.plot, x_label)}")


def log_epochs(logs, optimizer, report, samples: int, grad_clip: float | None = None):
    """(optimizer, on_epoch) for ``fit``: unchanged without logs; else the optimizer measured by a StepMeter and a
    reporter that also logs each epoch's scalars (``samples``: training images per epoch). A run that clips
    (``grad_clip``) logs no gradient norm: what the meter would see is the clipped one."""
    if logs is None:
        return optimizer, report
    from ..train.scalars import StepMeter, epoch_scalars

    meter = StepMeter(optimizer, grad_norm=not grad_clip)

    def report_and_log(stats):
        report(stats)
        logs.log(stats.epoch, epoch_scalars(stats, meter, samples))

    return meter, report_and_log
