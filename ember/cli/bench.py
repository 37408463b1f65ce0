"""``ember bench``: run the benchmarks of the repository's ``benchmarks/`` folder through one harness.

Each ``benchmarks/bench_*.py`` is an entry (``ember.benchmarking.Benchmark``); this command finds them, runs
the chosen suite of each in a process of its own, one after another, and ends with a summary: the headline
figure of each and where its results went. An entry that fails does not stop the others; the exit status
says whether any failed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .common import UsageError, UserError, say

SUMMARY_HEADER = ("benchmark", "status", "seconds", "headline", "results")


def add_parser(sub) -> None:
    from ..benchmarking import AGAINST, SUITES

    p = sub.add_parser("bench", help="run the benchmarks (quick dry runs, or the full runs)",
                       description="Run the entries of benchmarks/ (a checkout's): interleaved timing rounds, medians "
                                   "of per-round ratios, the machine described; JSON, markdown and a PNG chart per "
                                   "benchmark. Exit 1 if any entry fails (the others still run).")
    p.add_argument("--suite", choices=SUITES, default="quick",
                   help="quick: each entry's dry run, seconds to a minute (default); full: the real runs (minutes "
                        "to an hour each, on an otherwise idle machine)")
    p.add_argument("--against", choices=AGAINST, default=None,
                   help="torch: time ember against PyTorch (the default where it is installed); none: ember only, "
                        "entries that need PyTorch are skipped")
    p.add_argument("--only", type=names, default=None, metavar="NAME,...", help="only these entries (see --list)")
    p.add_argument("--list", action="store_true", help="list the entries and whether each would run here")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where results go (default: benchmarks/results for the full suite, a new temporary "
                        "folder for the quick one)")
    p.add_argument("--update-readme", action="store_true",
                   help="rewrite each entry's README section from its new results (full suite only)")
    p.add_argument("--benchmarks", type=Path, default=None, metavar="DIR",
                   help="the folder of bench_*.py entries (default: benchmarks/ next to the ember package)")
    p.set_defaults(run=run)


def names(text: str) -> list[str]:
    """``--only mnist,kan``: the names, in order, without blanks."""
    return [n.strip() for n in text.split(",") if n.strip()]


def resolve_against(against: str | None) -> str:
    """``--against``: torch where it is installed unless told otherwise; torch asked for but missing is refused."""
    from ..benchmarking.entries import module_installed

    if against is None:
        return "torch" if module_installed("torch") else "none"
    if against == "torch" and not module_installed("torch"):
        raise UsageError("--against torch: PyTorch is not installed here (pip install 'ember[bench]'), or run "
                         "with --against none for ember alone")
    return against


def run(args) -> int:
    from ..benchmarking import EntriesNotFound, RunOptions, find_entries, select
    from ..benchmarking.entries import DRY_RUN_NOT_IN_README

    against = resolve_against(args.against)
    if args.update_readme and args.suite != "full":
        raise UsageError(f"--update-readme with --suite {args.suite}: {DRY_RUN_NOT_IN_README}; use --suite full")
    try:
        entries = select(find_entries(args.benchmarks), args.only)
    except EntriesNotFound as exc:
        raise UserError(str(exc)) from None
    except KeyError as exc:
        raise UsageError(f"--only: {exc.args[0]}") from None
    if args.list:
        list_entries(entries, against)
        return 0
    out = args.out
    if out is None and args.suite == "quick":
        out = Path(tempfile.mkdtemp(prefix="ember-bench-quick-"))
    return run_suite(entries, RunOptions(args.suite, against, out, args.update_readme))


def list_entries(entries, against: str) -> None:
    """One line per entry: name, README section, rivals, title, and whether it would run here."""
    for entry in entries:
        b = entry.benchmark
        if b is None:
            say(f"{entry.name:<16} {entry.path.name}: {entry.problem}")
            continue
        reason = b.skip_reason(against)
        rivals = ", ".join(b.rivals) or "ember only"
        say(f"{b.name:<16} {b.title} [against: {rivals}; README: {b.marker or '-'}]"
            + (f" (would be skipped: {reason})" if reason else ""))


def run_suite(entries, options) -> int:
    from ..benchmarking import machine_info, machine_line, run_entry, shown, versions_line

    info = machine_info()
    say(f"machine: {machine_line(info)}; {versions_line(info)}")
    where = shown(options.out_dir) if options.out_dir else "each entry's default (benchmarks/results)"
    say(f"suite {options.suite}, against {options.against}: {len(entries)} entries; results in {where}")
    results = []
    for entry in entries:
        say(f"\n== {entry.name} ({options.suite})")
        result = run_entry(entry, options)
        if result.status != "ok":
            say(f"{entry.name}: {result.status}: {result.detail}")
        results.append(result)
    say("")
    for line in summary(results):
        say(line)
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        say(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def summary(results) -> list[str]:
    """The summary table: benchmark, status, seconds, headline (or why not), where its results went."""
    from ..benchmarking import shown

    rows = [SUMMARY_HEADER]
    for r in results:
        files = ", ".join([shown(r.files[0]), *(f.suffix for f in r.files[1:])]) if r.files else "-"
        rows.append((r.name, r.status, f"{r.seconds:.0f}" if r.status != "skipped" else "-", r.detail, files))
    widths = [max(len(row[k]) for row in rows) for k in range(len(SUMMARY_HEADER))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
