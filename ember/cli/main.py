"""The ``ember`` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import sys

from . import elm, generate, gradcheck, sanity, train
from . import eval as eval_cmd
from .common import UsageError

COMMANDS = {"train": train, "eval": eval_cmd, "sanity": sanity, "gradcheck": gradcheck, "elm": elm,
            "generate": generate}


class UserError(Exception):
    """A problem with the user's input or files: printed as one line, exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember", description="ember: a readable deep-learning framework.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on a usage error
    from ..data import DatasetError
    from ..io.checkpoint import CheckpointError

    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"ember {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (UserError, DatasetError, CheckpointError, FileNotFoundError) as exc:
        print(f"ember {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
