"""Arguments and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


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
