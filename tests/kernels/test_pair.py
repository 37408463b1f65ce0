"""``kernels.pair``: two halves of a kernel's work at once, one on a helper thread. Both halves are done when
``run_both`` returns, whichever fails; callers that find the helper busy, or no second core, run both halves
themselves; a forked child gets a helper of its own."""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time

import numpy as np
import pytest

from ember.kernels import pair


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(pair, "second_core", lambda: True)


def fill(out, index, value, delay=0.0, thread_names=None):
    """A stand-in kernel: waits, then writes ``value`` at ``index`` (and notes which thread ran it)."""
    time.sleep(delay)
    if thread_names is not None:
        thread_names.append(threading.current_thread().name)
    out[index] = value


def test_the_second_half_runs_on_the_helper_and_both_are_done(two_cores):
    out, names = np.zeros(2), []
    assert pair.run_both(fill, (out, 0, 1.0, 0.0, names), (out, 1, 2.0, 0.05, names)) is True
    np.testing.assert_array_equal(out, [1.0, 2.0])  # the slow helper's write is there on return
    assert sorted(names) == sorted([threading.current_thread().name, "ember-kernel-helper"])


def test_without_a_second_core_both_halves_run_here(monkeypatch):
    monkeypatch.setattr(pair, "second_core", lambda: False)
    out, names = np.zeros(2), []
    assert pair.run_both(fill, (out, 0, 1.0, 0.0, names), (out, 1, 2.0, 0.0, names)) is False
    np.testing.assert_array_equal(out, [1.0, 2.0])
    assert names == [threading.current_thread().name] * 2


def test_the_helpers_failure_is_raised_here_and_the_helper_still_serves(two_cores):
    def kernel(out, index):
        if index == 1:
            raise ValueError("half two broke")
        out[index] = 1.0

    out = np.zeros(2)
    with pytest.raises(ValueError, match="half two broke"):
        pair.run_both(kernel, (out, 0), (out, 1))
    assert pair.run_both(fill, (out, 0, 3.0), (out, 1, 4.0)) is True
    np.testing.assert_array_equal(out, [3.0, 4.0])


def test_a_failing_first_half_waits_for_the_helpers_half(two_cores):
    """The caller may free the outputs once run_both raises: the helper must be done writing by then."""
    def kernel(out, index, delay):
        if index == 0:
            raise RuntimeError("half one broke")
        fill(out, index, 5.0, delay)

    out = np.zeros(2)
    with pytest.raises(RuntimeError, match="half one broke"):
        pair.run_both(kernel, (out, 0, 0.0), (out, 1, 0.1))
    assert out[1] == 5.0


def test_callers_in_many_threads_each_get_their_own_answers(two_cores):
    """One caller at a time uses the helper; the others, finding it busy, run both halves themselves."""
    results, helped = {}, []

    def caller(k):
        for j in range(20):
            out = np.zeros(2)
            helped.append(pair.run_both(fill, (out, 0, k + j, 0.0005), (out, 1, -(k + j), 0.0005)))
            results[(k, j)] = out.tolist()

    threads = [threading.Thread(target=caller, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {(k * 100, j): [k * 100 + j, -(k * 100 + j)] for k in range(4) for j in range(20)}
    assert True in helped


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="fork: Linux only")
def test_a_forked_child_gets_a_helper_of_its_own(two_cores):
    out = np.zeros(2)
    pair.run_both(fill, (out, 0, 1.0), (out, 1, 2.0))  # the parent's helper exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's helper thread did not survive the fork
        code = 1
        try:
            child_out = np.zeros(2)
            helped = pair.run_both(fill, (child_out, 0, 7.0), (child_out, 1, 8.0))
            code = 0 if helped and child_out.tolist() == [7.0, 8.0] else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 30)
    if not ready:  # a child waiting on the parent's helper would wait forever
        os.kill(pid, signal.SIGKILL)
    got = os.read(read, 1) if ready else b""
    os.waitpid(pid, 0)
    assert got == bytes([0]), "the forked child's run_both hung or failed"
