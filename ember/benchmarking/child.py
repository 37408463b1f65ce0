"""One entry's run in a process of its own: ``python -m ember.benchmarking.child FILE --suite S ...``.

``ember bench`` starts one per entry, so that no entry's thread settings, allocations or compiled kernels
touch the next one's figures; the outcome (headline and files) comes back as JSON in ``--outcome``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .entries import AGAINST, SUITES, Benchmark, RunOptions, import_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ember.benchmarking.child", description=__doc__)
    parser.add_argument("entry", type=Path, help="a benchmarks/bench_*.py file")
    parser.add_argument("--suite", choices=SUITES, default="quick")
    parser.add_argument("--against", choices=AGAINST, default="torch")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: the entry's own)")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--outcome", type=Path, required=True, help="where to write the outcome JSON")
    args = parser.parse_args(argv)
    benchmark = getattr(import_file(args.entry.resolve()), "BENCHMARK", None)  # an import error shows its traceback
    if not isinstance(benchmark, Benchmark):
        print(f"{args.entry}: defines no BENCHMARK = ember.benchmarking.Benchmark(...)", file=sys.stderr)
        return 1
    readme = args.update_readme and benchmark.marker is not None  # an entry without a README section has none to update
    outcome = benchmark.run(RunOptions(args.suite, args.against, args.out, readme))
    args.outcome.write_text(json.dumps({"headline": outcome.headline, "files": [str(f) for f in outcome.files]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
