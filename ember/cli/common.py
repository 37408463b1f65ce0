"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
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
