"""The shared-memory all-reduce's protocol in one process: threads play the ranks on plain arrays (the MPI window
only maps the same arrays into several processes; tests/distributed/test_mpi.py runs it there)."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest

from ember.distributed.shared_memory import ALIGN, ARRIVED, DONE, FLAG_BYTES, SharedAllReduce, slice_bounds

REFERENCE = {"sum": np.add, "mean": np.add, "max": np.maximum, "min": np.minimum}


def node(ranks: int, elements: int, dtype) -> list[SharedAllReduce]:
    buffers = [np.zeros(elements, dtype=dtype) for _ in range(ranks)]
    flags = [np.zeros(FLAG_BYTES // 8, dtype=np.int64) for _ in range(ranks)]
    return [SharedAllReduce(r, buffers, flags) for r in range(ranks)]


def expected(parts: list[np.ndarray], op: str) -> np.ndarray:
    """In rank order, as every rank must compute it."""
    total = functools.reduce(REFERENCE[op], parts[1:], parts[0].copy())
    return total / len(parts) if op == "mean" else total


def contribution(seed: int, round_: int, rank: int, elements: int, dtype) -> np.ndarray:
    rng = np.random.default_rng([seed, round_, rank])
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(elements).astype(dtype)
    return rng.integers(-1000, 1000, elements).astype(dtype)


def run_ranks(reducers, body) -> None:
    """``body(reducer)`` in a thread per rank; re-raises the first error."""
    errors = []

    def target(reducer):
        try:
            body(reducer)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(r,)) for r in reducers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a rank never finished"
    if errors:
        raise errors[0]


def finish(reducer: SharedAllReduce) -> None:
    while not reducer.poll():
        time.sleep(0)  # let the other ranks' threads run


@pytest.mark.parametrize("ranks", [2, 3, 4])
@pytest.mark.parametrize("elements", [1, 15, 17, 1000, 4099])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_every_rank_gets_the_rank_ordered_reduction_round_after_round(ranks, elements, dtype):
    reducers = node(ranks, elements, dtype)
    ops = ["sum", "max", "min"] + (["mean"] if np.dtype(dtype).kind == "f" else [])
    rounds = [(i, ops[i % len(ops)]) for i in range(12)]
    got = {}

    def body(reducer):
        for i, op in rounds:
            reducer.array[...] = contribution(elements, i, reducer.rank, elements, dtype)  # writes only its own
            reducer.start(op)
            finish(reducer)
            got[reducer.rank, i] = reducer.array.copy()

    run_ranks(reducers, body)
    for i, op in rounds:
        want = expected([contribution(elements, i, r, elements, dtype) for r in range(ranks)], op)
        for r in range(ranks):
            np.testing.assert_array_equal(got[r, i], want, err_msg=f"rank {r}, round {i}, {op}")


def test_a_rank_that_has_not_arrived_holds_everyone_and_nothing_is_touched():
    a, b = node(2, 64, np.float32)
    a.array[...] = 1.0
    b.array[...] = 2.0
    a.start("sum")
    for _ in range(5):
        assert not a.poll()
    np.testing.assert_array_equal(b.array, 2.0)  # rank 0 did not write into rank 1's buffer early
    b.start("sum")
    assert not a.poll()  # a has reduced its slice, b has not: a waits for b's done
    assert b.poll() and a.poll()
    np.testing.assert_array_equal(a.array, 3.0)
    np.testing.assert_array_equal(b.array, 3.0)
    assert a.flags[0][ARRIVED] == a.flags[0][DONE] == 1


def test_starting_again_before_the_last_one_finished_is_refused():
    a, _ = node(2, 8, np.float64)
    a.start("sum")
    with pytest.raises(RuntimeError, match="previous all-reduce has not finished"):
        a.start("sum")


def test_an_unknown_op_is_refused():
    a, _ = node(2, 8, np.float64)
    with pytest.raises(ValueError, match="op must be one of"):
        a.start("prod")


def test_the_fence_orders_data_before_each_flag():
    calls = []
    buffers = [np.ones(32), np.ones(32)]
    flags = [np.zeros(16, dtype=np.int64), np.zeros(16, dtype=np.int64)]
    a = SharedAllReduce(0, buffers, flags, fence=lambda: calls.append(flags[0][[ARRIVED, DONE]].tolist()))
    b = SharedAllReduce(1, buffers, flags)
    a.start("sum")
    b.start("sum")
    b.poll()
    assert a.poll() and b.poll()
    # before raising arrived; after seeing everyone arrived; before raising done; after seeing everyone done
    assert calls == [[0, 0], [1, 0], [1, 0], [1, 1]]


@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("elements", [0, 1, 15, 16, 17, 100, 1000, 65537])
def test_slices_cover_the_buffer_on_cache_line_bounds(ranks, elements):
    cuts = slice_bounds(elements, ranks)
    assert len(cuts) == ranks + 1 and cuts[0] == 0 and cuts[-1] == elements
    assert all(lo <= hi for lo, hi in zip(cuts, cuts[1:]))
    assert all(c % ALIGN == 0 for c in cuts[1:-1])
    if elements >= ALIGN * ranks:
        sizes = np.diff(cuts)
        assert sizes.max() - sizes.min() <= 2 * ALIGN  # as even as the alignment allows
