"""A background load to time beside: whether ember keeps its speed when other work shares the cores.

``background_load(n)`` runs n pure-Python busy loops beside the body, the load that made OpenBLAS's threads
stragglers before ``ember/threads.py``. Idle and loaded results go to separate files (``results_path``),
and the README shows both.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

from .. import threads

SETTLE_S = 1.0  # lets the busy loops start and ember's thread policy (sampling every 0.5 s) see them
# A busy loop that ends by itself once its parent is gone (a benchmark killed by SIGKILL or SIGTERM skips its
# `finally`); the check runs once per million iterations, so the loop is pure-Python work almost all the time.
BUSY_LOOP = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(1_000_000):\n" \
            "        pass\n"


@contextlib.contextmanager
def background_load(busy_processes: int):
    """Run the body beside ``busy_processes`` pure-Python busy loops (none: an idle machine); they are killed
    on the way out, whatever happens in the body."""
    procs = []
    try:
        for _ in range(busy_processes):
            procs.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL))
        if procs:
            time.sleep(SETTLE_S)
            exited = sum(p.poll() is not None for p in procs)
            if exited:
                raise RuntimeError(f"background load: {exited} of {len(procs)} busy processes exited at once")
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def describe_load(n: int) -> str:
    """"1 busy process", "2 busy processes": for the sentences above the loaded tables."""
    return f"{n} busy process{'' if n == 1 else 'es'}"


def load_record(busy_processes: int) -> dict:
    """What the JSON says about the load: how many busy processes, and the BLAS threads ember ended with."""
    return {"busy_processes": busy_processes, "blas_threads_at_end": threads.blas_threads()}


def add_load_argument(parser) -> None:
    """``--load N``: time beside N busy processes; the results go to the ``_loaded`` file."""

    def count(text: str) -> int:
        n = int(text)
        if n < 0:
            raise ValueError(text)
        return n

    count.__name__ = "number of busy processes"  # argparse names the type in its error message
    parser.add_argument("--load", type=count, default=0, metavar="N",
                        help="run the timing rounds beside N busy processes (pure-Python loops) and write "
                             "results/<name>_loaded.json; 0: an idle machine")


def accuracy_epochs(parser, args, default: int) -> int:
    """The accuracy epochs to run: ``--epochs`` if given, else ``default`` idle and 0 beside a load (a loaded run
    times steps only, so ``--load`` with ``--epochs`` is an error)."""
    if args.load and args.epochs:
        parser.error(f"--load {args.load} with --epochs {args.epochs}: a loaded run times steps only; "
                     "run the accuracy epochs without --load")
    return args.epochs if args.epochs is not None else (0 if args.load else default)
