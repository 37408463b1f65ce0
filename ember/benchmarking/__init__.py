"""ember's benchmarking harness: interleaved timing rounds, the machine, results, and the entries' API.

Every benchmark in ``benchmarks/`` is a thin entry of this library (``ember bench`` runs them all):

* ``rounds(contenders, n_rounds, warmup=1, calls=1)`` times the contenders in interleaved rounds and
  returns ``Timings`` (seconds per call of each contender in each round): ``medians()``, and
  ``ratio(name, to)``, the median of per-round ratios to a baseline (``median_ratios`` for plain dicts);
  a ``Contender(call, setup=, sync=)`` adds untimed preparation or a device synchronisation, and a
  contender that times itself returns ``Measured(seconds, value)``;
* ``machine_info()`` / ``machine_line(info)``: CPU model, cores, BLAS and its kernels, numba, ember's
  kernel backend, library versions;
* ``background_load(n)``: time beside n busy processes (``--load N``);
* ``publish(...)``: the results JSON, its markdown, a PNG chart (``Bars``; matplotlib optional) and the
  README section; ``results_path`` says where;
* ``Benchmark(name, title, run, marker=, rivals=)`` is what an entry declares as ``BENCHMARK``;
  ``run(RunOptions(suite, against, out_dir, update_readme)) -> Outcome(headline, files)``.
"""

from .entries import (
    AGAINST,
    SUITES,
    Benchmark,
    BenchmarkFailed,
    EntriesNotFound,
    Entry,
    EntryResult,
    Outcome,
    RunOptions,
    find_entries,
    refuse_dry_run_in_readme,
    run_entry,
    select,
)
from .load import accuracy_epochs, add_load_argument, background_load, describe_load, load_record
from .machine import (
    blas,
    cpu_model,
    has_avx512,
    kernel_backend,
    library_versions,
    machine_info,
    machine_line,
    numba_version,
    openblas_kernels,
    usable_cores,
    versions_line,
)
from .results import (
    BENCHMARKS,
    LOADED_SUFFIX,
    README,
    REPO,
    RESULTS,
    Bars,
    idle_companion,
    loaded_companion,
    publish,
    read_json,
    readme_section,
    results_path,
    shown,
    write_chart,
    write_readme_section,
)
from .timing import Contender, Measured, Timings, cycling, median_ratios, on_reference_path, rounds, streaming

__all__ = [
    "AGAINST", "BENCHMARKS", "LOADED_SUFFIX", "README", "REPO", "RESULTS", "SUITES", "Bars", "Benchmark",
    "BenchmarkFailed", "Contender", "EntriesNotFound", "Entry", "EntryResult", "Measured", "Outcome",
    "RunOptions", "Timings", "accuracy_epochs", "add_load_argument", "background_load", "blas", "cpu_model",
    "cycling", "describe_load", "find_entries", "has_avx512", "idle_companion", "kernel_backend",
    "library_versions", "load_record", "loaded_companion", "machine_info", "machine_line", "median_ratios",
    "numba_version", "on_reference_path", "openblas_kernels", "publish", "read_json", "readme_section",
    "refuse_dry_run_in_readme",
    "results_path", "rounds", "run_entry", "select", "shown", "streaming", "usable_cores", "versions_line",
    "write_chart", "write_readme_section",
]
