"""A second thread for a compiled kernel whose work splits into two independent halves.

ember's numba kernels release the GIL (``nogil``), so two Python threads can each run one half on its own core.
``numba``'s ``parallel=True`` lost here (see ``ember.kernels``: thread start-up and contention with OpenBLAS's
workers), and its default threading layer may not be entered by two Python threads at once, which the serving
engine in a thread and the tests do. This is smaller: one long-lived helper thread, used by one caller at a time
(a caller that finds it busy runs both halves itself), and only while OpenBLAS has a second thread, so that
``OPENBLAS_NUM_THREADS=1`` (a data-parallel rank's setting) and ember's BLAS thread policy (``ember/threads.py``:
one thread when other processes hold a core) keep ember's own work on one core too.

The halves must write disjoint outputs; the results are then the same as one call's, bit for bit.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from ..threads import blas_threads


class _Helper:
    """The thread that runs the second halves: a job in, its exception (or None) out."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="ember-kernel-helper", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            kernel, args = self.jobs.get()
            try:
                kernel(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                self.results.put(exc)
            else:
                self.results.put(None)


_lock = threading.Lock()
_helper: _Helper | None = None


def _reset_after_fork() -> None:
    """A forked child has no helper thread (threads do not survive fork) and may hold a copy of a taken lock."""
    global _helper, _lock
    _helper, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def second_core() -> bool:
    """Whether a second core is free for ember's own kernels now: OpenBLAS runs more than one thread."""
    return blas_threads() >= 2


def run_both(kernel: Callable, first: tuple, second: tuple) -> bool:
    """``kernel(*first)`` here and ``kernel(*second)`` on the helper thread at the same time; both done when
    this returns (an exception from either is raised). Runs them one after the other here when no second core is
    free or another thread is using the helper. Returns whether the helper ran a half."""
    global _helper
    if not second_core() or not _lock.acquire(blocking=False):
        kernel(*first)
        kernel(*second)
        return False
    try:
        if _helper is None:
            _helper = _Helper()
        _helper.jobs.put((kernel, second))
        try:
            kernel(*first)
        finally:
            failure = _helper.results.get()  # never leave while the helper still writes
        if failure is not None:
            raise failure
        return True
    finally:
        _lock.release()
