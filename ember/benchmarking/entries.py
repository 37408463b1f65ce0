"""Benchmark entries: each ``benchmarks/bench_*.py`` declares one ``BENCHMARK`` that ``ember bench`` runs.

An entry keeps its own command line (``python benchmarks/bench_x.py [its options]``) and adds a module-level

    BENCHMARK = Benchmark(name="x", title="...", run=run, marker="bench_x", rivals=("torch",))

where ``run(options: RunOptions) -> Outcome`` does one run of a suite (``quick``: its seconds-long dry run,
``full``: the real one) and says its headline figure and the files it wrote. ``ember bench`` finds the
entries, skips those that cannot run here (a rival not installed, no GPU, ``--against none``), and runs
each in a child process of its own (a benchmark's thread settings, allocations and compiled kernels must
not leak into the next one's figures, and one entry's crash must not take the others down).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .results import BENCHMARKS, results_path

SUITES = ("quick", "full")
AGAINST = ("torch", "none")
ENTRY_GLOB = "bench_*.py"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds this ember package


class EntriesNotFound(Exception):
    """No benchmark entries where they were looked for."""


class BenchmarkFailed(RuntimeError):
    """An entry's run that finished without its results (a failed part, an incomplete run)."""


DRY_RUN_NOT_IN_README = "a dry run's figures do not belong in the README"


def refuse_dry_run_in_readme(parser, args) -> None:
    """A benchmark's ``--quick`` with ``--update-readme`` is a usage error: a dry run's figures are no result."""
    if args.quick and args.update_readme:
        parser.error(f"--quick with --update-readme: {DRY_RUN_NOT_IN_README}")


@dataclass(frozen=True)
class RunOptions:
    """One run of an entry: the suite, the rival, where results go, and whether the README follows them."""

    suite: str = "full"
    against: str = "torch"
    out_dir: Path | None = None
    update_readme: bool = False

    def __post_init__(self):
        if self.suite not in SUITES:
            raise ValueError(f"suite {self.suite!r}: expected one of {', '.join(SUITES)}")
        if self.against not in AGAINST:
            raise ValueError(f"against {self.against!r}: expected one of {', '.join(AGAINST)}")
        if self.update_readme and self.quick:
            raise ValueError(f"update_readme with the quick suite: {DRY_RUN_NOT_IN_README}")

    @property
    def quick(self) -> bool:
        return self.suite == "quick"

    def out_file(self, stem: str, default_folder: Path | None = None) -> Path:
        """The entry's results file: ``<out_dir>/<stem>.json`` (``<stem>_quick.json`` for the quick suite), in
        ``default_folder`` (the checkout's benchmarks/results) when no out_dir was given."""
        return results_path(stem, 0, self.out_dir or default_folder, quick=self.quick)

    def argv(self, stem: str, default_folder: Path | None = None, quick_flag: str = "--quick") -> list[str]:
        """The entry's own command-line options for this run: its dry-run flag, ``--out`` and
        ``--update-readme`` (entries whose options differ add theirs)."""
        return [*([quick_flag] if self.quick else []), "--out", str(self.out_file(stem, default_folder)),
                *(["--update-readme"] if self.update_readme else [])]


@dataclass(frozen=True)
class Outcome:
    """What one run produced: its headline figure (a ratio, a speed, an accuracy) and the files it wrote."""

    headline: str
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Benchmark:
    """An entry of the suite.

    ``name`` is what ``--only`` takes; ``title`` one line for ``--list``; ``run(options) -> Outcome`` does one
    run; ``marker`` names its README section (None: it has none); ``rivals`` are the modules of what ember is
    measured against and ``requires`` other modules it needs (both checked before a run, never imported);
    ``needs_gpu``: it measures a CUDA GPU."""

    name: str
    title: str
    run: Callable[[RunOptions], Outcome]
    marker: str | None = None
    rivals: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    needs_gpu: bool = False

    def skip_reason(self, against: str, installed: Callable[[str], bool] | None = None,
                    gpu: Callable[[], bool] | None = None) -> str | None:
        """Why this entry cannot run here with ``--against against`` (None: it can)."""
        installed = installed or module_installed
        if against == "none" and "torch" in (*self.rivals, *self.requires):
            return "compares against PyTorch (--against none)"
        missing = [m for m in (*self.rivals, *self.requires) if not installed(m)]
        if missing:
            return f"needs {', '.join(missing)}, not installed here"
        if self.needs_gpu and not (gpu or gpu_available)():
            return "needs a CUDA GPU (ember.cuda_available() is False here)"
        return None


def module_installed(name: str) -> bool:
    """Whether ``name`` can be imported, found without importing it (PyTorch takes seconds to import)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def gpu_available() -> bool:
    from .. import cuda_available

    return cuda_available()


# -- finding the entries ----------------------------------------------------------------------------------------
@dataclass
class Entry:
    """A ``bench_*.py`` file: its ``BENCHMARK``, or why it has none."""

    path: Path
    benchmark: Benchmark | None = None
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.benchmark.name if self.benchmark else self.path.stem.removeprefix("bench_")


def benchmarks_folder(folder: Path | str | None = None) -> Path:
    """The folder of entries: ``folder``, or the repository's ``benchmarks/`` next to the ember package."""
    where = Path(folder) if folder else BENCHMARKS
    if not where.is_dir() or not any(where.glob(ENTRY_GLOB)):
        hint = ("" if folder else " (ember bench runs from a checkout of the ember repository, whose benchmarks/ "
                                  "folder sits next to the ember package; pass --benchmarks DIR for another folder)")
        raise EntriesNotFound(f"no benchmark entries: looked for {where / ENTRY_GLOB}{hint}")
    return where


def find_entries(folder: Path | str | None = None) -> list[Entry]:
    """Every ``bench_*.py`` of the folder, loaded (sorted by file name)."""
    return [load_entry(path) for path in sorted(benchmarks_folder(folder).glob(ENTRY_GLOB))]


def load_entry(path: Path) -> Entry:
    """Import ``path`` as the module of its file name (its siblings importable, as when run as a script) and
    take its ``BENCHMARK``; an import error or a missing ``BENCHMARK`` is recorded, not raised."""
    path = Path(path).resolve()
    try:
        module = import_file(path)
    except Exception as exc:  # an entry that cannot even be imported is reported, and the others still run
        return Entry(path, problem=f"cannot be imported: {type(exc).__name__}: {exc}")
    benchmark = getattr(module, "BENCHMARK", None)
    if benchmark is None:
        return Entry(path, problem="not a harness entry yet (it defines no BENCHMARK)")
    if not isinstance(benchmark, Benchmark):
        return Entry(path, problem=f"its BENCHMARK is a {type(benchmark).__name__}, not an "
                                   "ember.benchmarking.Benchmark")
    return Entry(path, benchmark)


def import_file(path: Path):
    """The module at ``path``, imported under its file name (an already imported one from the same file is
    reused, so that entries importing each other share one module)."""
    name = path.stem
    known = sys.modules.get(name)
    if known is not None and Path(getattr(known, "__file__", "") or "").resolve() == path:
        return known
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def select(entries: list[Entry], only: list[str] | None) -> list[Entry]:
    """The entries named by ``only`` (all of them when None), in the order found."""
    if not only:
        return entries
    names = {e.name for e in entries}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise KeyError(f"no benchmark named {', '.join(unknown)}; the entries are: {', '.join(sorted(names))}")
    return [e for e in entries if e.name in only]


# -- running one entry --------------------------------------------------------------------------------------------
@dataclass
class EntryResult:
    """How one entry's run ended: ``ok``, ``failed`` or ``skipped``, with its headline or the reason."""

    name: str
    status: str
    detail: str
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def child_command(entry: Entry, options: RunOptions, outcome: Path) -> list[str]:
    cmd = [sys.executable, "-m", "ember.benchmarking.child", str(entry.path), "--suite", options.suite,
           "--against", options.against, "--outcome", str(outcome)]
    if options.out_dir is not None:
        cmd += ["--out", str(options.out_dir)]
    return cmd + (["--update-readme"] if options.update_readme else [])


def run_entry(entry: Entry, options: RunOptions, installed=None, gpu=None) -> EntryResult:
    """Run one entry in a child process (its output goes straight to ours); skipped when it cannot run here."""
    if entry.benchmark is None:
        return EntryResult(entry.name, "failed" if entry.problem.startswith("cannot") else "skipped", entry.problem)
    reason = entry.benchmark.skip_reason(options.against, installed, gpu)
    if reason:
        return EntryResult(entry.name, "skipped", reason)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT),
                                                                      os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
        outcome_file = Path(tmp) / "outcome.json"
        proc = subprocess.run(child_command(entry, options, outcome_file), cwd=entry.path.parent.parent, env=env)
        seconds = time.perf_counter() - started
        if proc.returncode != 0 or not outcome_file.exists():
            return EntryResult(entry.name, "failed", f"exit status {proc.returncode} (its output is above)",
                               seconds=seconds)
        outcome = json.loads(outcome_file.read_text())
    return EntryResult(entry.name, "ok", outcome["headline"], [Path(f) for f in outcome["files"]], seconds)
