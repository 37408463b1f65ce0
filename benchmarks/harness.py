"""What the benchmarks share: the machine they ran on, a background load, ember's reference kernel path.

Speed figures mean little without the machine (CPU model, which OpenBLAS kernels it picked, whether
ember's compiled kernels were in use) and without knowing whether other work shared the cores, so
every benchmark records ``machine_info()`` and can run its timing rounds beside ``background_load(n)``:
n pure-Python busy loops, the load that made OpenBLAS's threads stragglers before ``ember/threads.py``.
Idle and loaded results go to separate files (``results_path``), and the README shows both.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ember import kernels, threads

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
LOADED_SUFFIX = "_loaded"
SETTLE_S = 1.0  # lets the busy loops start and ember's thread policy (sampling every 0.5 s) see them
# A busy loop that ends by itself once its parent is gone (a benchmark killed by SIGKILL or SIGTERM skips its
# `finally`); the check runs once per million iterations, so the loop is pure-Python work almost all the time.
BUSY_LOOP = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(1_000_000):\n" \
            "        pass\n"


# -- the machine ------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo (the architecture where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def openblas_kernels() -> str:
    """The kernel family the loaded OpenBLAS picked for this CPU (e.g. SkylakeX, Haswell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    found = {i.get("architecture") or "?" for i in threadpool_info() if i["internal_api"] == "openblas"}
    return ",".join(sorted(found)) or "none (NumPy's BLAS is not OpenBLAS)"


def numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.__version__


def kernel_backend() -> str:
    """ember's kernel backend now, and the variable that forced it, if any."""
    forced = os.environ.get(kernels.ENV)
    return f"{kernels.backend()} ({kernels.ENV}={forced})" if forced else kernels.backend()


def machine_info() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "architecture": platform.machine(), "avx512": has_avx512(), "openblas_kernels": openblas_kernels(),
            "blas_threads": threads.blas_threads(), "numba": numba_version(), "kernel_backend": kernel_backend()}


def machine_line(info: dict) -> str:
    """One line for the JSON's "machine" and the README: CPU, cores, BLAS kernels, numba, kernel backend."""
    numba = f"numba {info['numba']}" if info["numba"] else "numba: not installed"
    return (f"{info['cpu_model']}, {info['cores']} cores, OpenBLAS {info['openblas_kernels']} kernels, {numba}, "
            f"ember kernels: {info['kernel_backend']}")


# -- the background load ------------------------------------------------------------------------------
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


# -- ember's two kernel paths ---------------------------------------------------------------------------
def on_reference_path(fn):
    """``fn`` run with ember's NumPy reference kernels (``kernels.use("numpy")``), whatever the default is."""

    def run(*args, **kwargs):
        with kernels.use("numpy"):
            return fn(*args, **kwargs)

    return run


def median_ratios(times: dict[str, list[float]], to: str = "torch") -> dict[str, float]:
    """Each contender's median of per-round ratios to the contender ``to`` (the machines are noisy: a round's
    ratio cancels what the round's load did to both)."""
    import numpy as np

    base = np.array(times[to])
    return {name: float(np.median(np.array(t) / base)) for name, t in times.items() if name != to}


# -- where results go -------------------------------------------------------------------------------------
def results_path(name: str, busy_processes: int) -> Path:
    """``results/<name>.json`` for an idle run, ``results/<name>_loaded.json`` for a run beside a load."""
    return RESULTS / f"{name}{LOADED_SUFFIX if busy_processes else ''}.json"


def loaded_companion(idle_out: Path) -> Path:
    """Where the loaded run belonging to the idle results file ``idle_out`` is written by default."""
    return idle_out.with_name(f"{idle_out.stem}{LOADED_SUFFIX}{idle_out.suffix}")


def idle_companion(loaded_out: Path) -> Path:
    """The idle results file a loaded results file ``loaded_out`` belongs to (its name without the suffix)."""
    stem = loaded_out.stem.removesuffix(LOADED_SUFFIX)
    return loaded_out.with_name(f"{stem}{loaded_out.suffix}")


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def shown(path: Path) -> str:
    """``path`` as the README names it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def publish(marker: str, report: dict, out: Path, busy: int, render_idle, render_loaded, update_readme: bool) -> None:
    """Write ``report`` to ``out`` and its markdown beside it (``.md``); with ``update_readme``, the README's
    ``marker`` section: the idle run's table and, when a loaded run is on file next to it, that one's below.

    ``render_idle(idle, path)`` gives (meta line, table), or None for a run without its accuracy part;
    ``render_loaded(loaded, path)`` gives the loaded run's paragraph and table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    idle_out, loaded_out = (idle_companion(out), out) if busy else (out, loaded_companion(out))
    idle, loaded = (read_json(idle_out), report) if busy else (report, read_json(loaded_out))
    idle_md = render_idle(idle, shown(idle_out)) if idle is not None else None
    loaded_md = render_loaded(loaded, shown(loaded_out)) if loaded is not None else None
    if busy:
        text = loaded_md
    else:
        text = None if idle_md is None else "\n\n".join([*idle_md, *([loaded_md] if loaded_md else [])])
    if text:
        out.with_suffix(".md").write_text(text + "\n")
        print(text)
    if update_readme:
        if idle_md is None:
            raise SystemExit(f"--update-readme: {idle_out} holds no complete idle run (run without --load, "
                             "with the accuracy part, first)")
        from readme import update_readme as write_section

        meta, table = idle_md
        write_section(marker, "\n\n".join([table, *([loaded_md] if loaded_md else [])]), meta)


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
