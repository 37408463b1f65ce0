"""BLAS threads follow the free cores: the policy, the CPU accounting, and a real busy neighbour."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ember import threads


@pytest.mark.parametrize("others,cpus,most,expected", [
    (0.0, 2, 2, 2), (0.3, 2, 2, 2), (0.6, 2, 2, 1), (1.0, 2, 2, 1), (5.0, 2, 2, 1),
    (0.0, 8, 4, 4), (3.2, 8, 8, 5), (0.0, 1, 1, 1),
])
def test_threads_for_gives_the_free_cores(others, cpus, most, expected):
    assert threads.threads_for(others, cpus, most) == expected


def test_others_cpu_is_the_machine_busy_time_minus_this_processes():
    """The accounting a rebalance uses: a busy loop in this process is not counted as someone else's load."""
    state = threads.BlasThreads()
    if state.sample is None:
        pytest.skip("no OpenBLAS control or no /proc/stat here")
    start = threads._cpu_sample()
    end = time.monotonic() + 0.4
    while time.monotonic() < end:  # this process busy on one core
        pass
    stop = threads._cpu_sample()
    wall, busy, own = (b - a for a, b in zip(start, stop))
    assert own > 0.6 * wall  # it did burn a core
    assert busy >= own - 0.05 * wall  # the machine's busy time includes ours


def test_a_busy_neighbour_takes_a_blas_thread_away():
    state = threads.BlasThreads()
    if not state.adaptive:
        pytest.skip("the policy is off here (one core, no OpenBLAS control, or a fixed thread count)")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(state.cpus)]
    try:
        time.sleep(0.3)
        state.rebalance(time.monotonic())  # starts a fresh interval
        time.sleep(0.6)
        state.rebalance(time.monotonic())
        assert state.current == 1 and state.get() == 1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        state.set(state.most)


def test_set_blas_threads_fixes_the_count_and_auto_restores_the_policy():
    state = threads._policy()
    if state.set is None:
        pytest.skip("no OpenBLAS control here")
    was = state.adaptive
    try:
        threads.set_blas_threads(1)
        assert threads.blas_threads() == 1 and not state.adaptive
        with pytest.raises(ValueError, match="positive integer or 'auto'"):
            threads.set_blas_threads(0)
        threads.set_blas_threads("auto")
        assert state.adaptive == (state.most > 1 and state.sample is not None)
    finally:
        state.set(state.most)
        state.current = state.most
        state.adaptive = was


def fake_policy(monkeypatch, samples):
    """A BlasThreads over a fake OpenBLAS (2 threads) whose CPU samples are ``samples``, one per look."""
    count = {"threads": 2}
    setter = lambda n: count.__setitem__("threads", n)  # noqa: E731
    monkeypatch.setattr(threads, "_find_openblas", lambda: (setter, lambda: count["threads"]))
    monkeypatch.setattr(threads, "_cpu_sample", lambda: samples.pop(0))
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("EMBER_BLAS_THREADS", raising=False)
    state = threads.BlasThreads()
    state.cpus = 2
    return state, count


def test_no_decision_from_a_window_shorter_than_the_clocks_ticks(monkeypatch):
    """One 10 ms tick of someone else's CPU in a 1 ms window is not ten busy cores: the window grows instead, and
    the decision comes from the whole of it."""
    samples = [(0.0, 0.0, 0.0), (0.001, 0.01, 0.0), (0.5, 0.16, 0.1)]
    state, count = fake_policy(monkeypatch, samples)
    state.rebalance(0.001)
    assert count["threads"] == 2 and state.sample == (0.0, 0.0, 0.0)
    state.rebalance(0.5)  # over 0.5 s: 0.06 s of others' CPU, 0.12 of a core
    assert count["threads"] == 2 and state.sample == (0.5, 0.16, 0.1)

