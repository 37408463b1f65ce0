"""The ``ember`` command: one module per subcommand, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import sys
import warnings

from . import bench, compress, elm, export, generate, gradcheck, parity, profile, rl, sanity, serve, train
from . import eval as eval_cmd
from .common import UsageError, UserError  # noqa: F401 - UserError is raised by the commands

COMMANDS = {"train": train, "eval": eval_cmd, "sanity": sanity, "gradcheck": gradcheck, "parity": parity,
            "elm": elm, "generate": generate, "export": export, "serve": serve,
            "rl": rl, "profile": profile, "compress": compress,
            "bench": bench}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember", description="ember: a readable deep-learning framework.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, like the errors: ``ember: warning: ...`` (not Python's file:line form)."""
    print(f"ember: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 success, 1 a problem with the user's files or data (one line naming
    it, never a traceback), 2 a usage error, 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on a usage error
    from ..data import DatasetError
    from ..io.checkpoint import CheckpointError
    from ..text import TokenizerFileError
    from ..train import TrainingDiverged

    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return int(args.run(args) or 0)
        except UsageError as exc:
            parser.print_usage(sys.stderr)
            print(f"ember {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except (UserError, DatasetError, CheckpointError, TokenizerFileError, TrainingDiverged,
                OSError) as exc:
            print(f"ember {args.command}: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
