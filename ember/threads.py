"""BLAS threads that step aside when the cores are shared.

OpenBLAS splits every large GEMM evenly over its threads and waits for the slowest. When another
process holds one of a 2-core machine's cores, the thread on that core becomes a straggler every
call: measured here, uncached GPT generation ran 39 tokens/s with OpenBLAS's 2 threads against 169
with 1 while two other processes were busy, and an MLP epoch 3.0-16.2 s against 1.2-1.7 s. So ember
watches how much CPU *other* processes use (``/proc/stat``'s busy time minus this process's own
CPU time, sampled at most every half second, from ``Module.__call__``) and gives OpenBLAS the cores
that are free: ``floor(cpus - others + 0.5)``, at least 1, at most what OpenBLAS started with. A window
shorter than ``MIN_WINDOW_S`` decides nothing: ``/proc/stat`` counts in 10 ms ticks.

Decoding does not look (GPT's cached forward, which generation and the server's steps run, does not go
through ``Module.__call__``): tried there, a server of the code model delivered 0.92x the tokens/s to one
client (8 alternating levels, two servers up at once), the HTTP process's and the clients' bursts and the
VM's steal time reading as a busy neighbour now and then, and one thread then decoding alone.

Nothing changes when: the BLAS is not OpenBLAS (no control found), ``OPENBLAS_NUM_THREADS`` or
``EMBER_BLAS_THREADS=<n>`` fixes the count, ``EMBER_BLAS_THREADS=fixed`` turns the policy off, or
``/proc/stat`` is unreadable (not Linux). ``set_blas_threads(n)`` fixes the count from Python.
"""

from __future__ import annotations

import ctypes
import math
import os
import time

INTERVAL_S = 0.5
MIN_WINDOW_S = 0.25  # the shortest window a decision is made from
_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads"))


def _find_openblas():
    """(set, get) thread-count functions of the OpenBLAS that NumPy loaded, or None."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                return setter, getter
    return None


def _cpu_sample() -> tuple[float, float, float] | None:
    """(wall s, all CPUs' busy s, this process's CPU s) now, or None without /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait; steal counts as busy
    ticks = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), (sum(fields) - idle) / ticks, own.user + own.system


def threads_for(other_cores: float, cpus: int, most: int) -> int:
    """The BLAS threads to use when other processes keep ``other_cores`` cores busy."""
    return max(1, min(most, math.floor(cpus - other_cores + 0.5)))


class BlasThreads:
    """The policy's state: OpenBLAS's controls, the thread count it started with, the last CPU sample."""

    def __init__(self):
        control = _find_openblas()
        self.set, self.get = control if control else (None, None)
        self.most = self.get() if self.get else 1
        self.cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        fixed = os.environ.get("EMBER_BLAS_THREADS", "").strip().lower()
        self.adaptive = bool(control) and self.most > 1 and not os.environ.get("OPENBLAS_NUM_THREADS") and \
            fixed in ("", "auto")
        if fixed.isdigit() and control:
            self.set(max(1, int(fixed)))
        self.current = self.get() if self.get else 1
        self.next_check = 0.0
        self.sample = _cpu_sample() if control else None
        self.adaptive = self.adaptive and self.sample is not None

    def rebalance(self, now: float) -> None:
        self.next_check = now + INTERVAL_S
        sample = _cpu_sample()
        if sample is None or self.sample is None:
            return
        wall, busy, own = (b - a for a, b in zip(self.sample, sample))
        if wall < MIN_WINDOW_S:  # /proc/stat counts in ticks of 10 ms: one tick in a short window reads as cores
            return               # (the first look comes right after the policy starts); the window grows on
        self.sample = sample
        others = max(0.0, (busy - own) / wall)
        wanted = threads_for(others, self.cpus, self.most)
        if wanted != self.current:
            self.set(wanted)
            self.current = wanted


_state: BlasThreads | None = None


def _policy() -> BlasThreads:
    global _state
    if _state is None:
        _state = BlasThreads()
    return _state


def maybe_rebalance() -> None:
    """Adjust the BLAS thread count if half a second has passed since the last look (cheap otherwise)."""
    state = _state if _state is not None else _policy()
    if state.adaptive:
        now = time.monotonic()
        if now >= state.next_check:
            state.rebalance(now)


def blas_threads() -> int:
    """The number of threads OpenBLAS uses now (1 when ember found no OpenBLAS to control)."""
    state = _policy()
    return state.get() if state.get else 1


def set_blas_threads(n: int | str) -> None:
    """Fix OpenBLAS's thread count (``"auto"``: back to following the free cores)."""
    state = _policy()
    if n == "auto":
        state.adaptive = state.set is not None and state.most > 1 and state.sample is not None
        return
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_blas_threads: expected a positive integer or 'auto', got {n!r}")
    state.adaptive = False
    if state.set:
        state.set(n)
        state.current = n
