"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys


def _number(kind, minimum, strict: bool, what: str):
    """An argparse type: ``kind`` parsed from text, > minimum (strict) or >= minimum."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _number(int, 0, True, "a positive integer")
non_negative_int = _number(int, 0, False, "a non-negative integer")
positive_float = _number(float, 0.0, True, "a positive number")


class UsageError(Exception):
    """Arguments that parse but do not fit together: reported like argparse's errors, exit status 2."""


def add_data_args(parser: argparse.ArgumentParser, default: str = "mnist") -> None:
    parser.add_argument("--dataset", choices=("mnist", "fashion-mnist", "kmnist"), default=default,
                        help=f"image dataset (default {default})")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding <dataset>/ with the IDX files (also: $EMBER_DATA)")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading missing files")


def print_json(obj: dict) -> None:
    """One line of JSON on stdout (the machine-readable summary)."""
    print(json.dumps(obj, sort_keys=False), flush=True)


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
