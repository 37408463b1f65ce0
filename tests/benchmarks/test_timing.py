"""ember.benchmarking's interleaved rounds, on a fake clock: who runs when, and which figures come out.

A fake clock moves only when a scripted contender says it worked, so every figure below is derived by hand
from the script, not read back from the code.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ember.benchmarking import Contender, Measured, Timings, cycling, median_ratios, rounds, streaming


class FakeClock:
    """A clock that stands still until ``work(seconds)`` moves it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds


def scripted(clock: FakeClock, log: list, name: str, durations) -> Callable[[], int]:
    """A contender that logs its name, takes the next of ``durations`` seconds on the clock, returns its call count."""
    it = iter(durations)
    count = [0]

    def call():
        log.append(name)
        clock.work(next(it))
        count[0] += 1
        return count[0]

    return call


def test_contenders_take_turns_after_their_warm_ups():
    clock, log = FakeClock(), []
    contenders = {name: scripted(clock, log, name, [1.0] * 20) for name in ("a", "b", "c")}
    rounds(contenders, 3, warmup=2, clock=clock)
    assert log == ["a", "a", "b", "b", "c", "c"] + ["a", "b", "c"] * 3


def test_alternating_rounds_reverse_the_order_every_other_round():
    clock, log = FakeClock(), []
    contenders = {name: scripted(clock, log, name, [1.0] * 20) for name in ("a", "b", "c")}
    timings = rounds(contenders, 3, warmup=0, clock=clock, alternate=True)
    assert log == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert list(timings.per_round) == ["a", "b", "c"] and timings.n_rounds == 3


def test_settling_calls_precede_each_timed_span_for_the_time_asked_and_are_not_counted():
    clock, log = FakeClock(), []
    contenders = {"a": scripted(clock, log, "a", [2.0, 1.0, 9.0, 2.0]), "b": scripted(clock, log, "b", [0.5] * 4 + [3.0]
                                                                                      + [9.0, 3.0])}
    timings = rounds(contenders, 2, warmup=0, clock=clock, settle=2.0)
    # a: one 2 s call settles it; b: four 0.5 s calls; then a 9 s call settles each of them
    assert log == ["a", "a"] + ["b"] * 5 + ["a", "a", "b", "b"]
    assert timings.per_round == {"a": [1.0, 2.0], "b": [3.0, 3.0]}  # the settling calls are left out
    with pytest.raises(ValueError, match="settle"):
        rounds(contenders, 1, settle=-1)


def test_each_round_keeps_the_span_over_its_calls():
    clock, log = FakeClock(), []
    timings = rounds({"a": scripted(clock, log, "a", [0.5, 1.5, 1.0, 1.0, 2.0, 2.0])}, 3, warmup=0, calls=2,
                     clock=clock)
    assert log == ["a"] * 6  # two calls a round
    assert timings.per_round == {"a": [1.0, 1.0, 2.0]}  # (0.5 + 1.5) / 2, (1 + 1) / 2, (2 + 2) / 2
    assert timings.results == {"a": 6}  # the last call's result


def test_the_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians():
    clock, log = FakeClock(), []
    contenders = {"a": scripted(clock, log, "a", [2.0, 3.0, 10.0]), "b": scripted(clock, log, "b", [1.0, 6.0, 4.0])}
    timings = rounds(contenders, 3, warmup=0, clock=clock)
    assert timings.per_round == {"a": [2.0, 3.0, 10.0], "b": [1.0, 6.0, 4.0]}
    assert timings.medians() == {"a": 3.0, "b": 4.0}
    assert timings.medians(1e3) == {"a": 3000.0, "b": 4000.0}
    assert timings.round_ratios("a", "b") == [2.0, 0.5, 2.5]
    assert timings.ratio("a", "b") == 2.0  # the median of 2, 0.5, 2.5; the ratio of the medians would be 0.75
    assert timings.ratios("b") == {"a": 2.0}
    assert timings.n_rounds == 3


def test_median_ratios_of_plain_lists_and_a_missing_baseline():
    times = {"torch": [1.0, 2.0, 4.0], "ember": [2.0, 2.0, 2.0]}
    assert median_ratios(times) == {"ember": 1.0}  # per round: 2, 1, 0.5
    assert median_ratios({"x": [1.0, 3.0], "y": [1.0, 1.0]}, to="y") == {"x": 2.0}  # an even count: the mean of 1, 3
    with pytest.raises(KeyError, match="no contender named 'torch'"):
        median_ratios({"a": [1.0]})


def test_a_self_timed_contender_replaces_the_clock_span():
    clock = FakeClock()

    def child_process():  # starts up for 10 s, reports only its 0.25 s of decoding
        clock.work(10.0)
        return Measured(0.25, ["tokens"])

    timings = rounds({"llama": child_process}, 2, warmup=0, calls=2, clock=clock)
    assert timings.per_round == {"llama": [0.25, 0.25]} and timings.results == {"llama": ["tokens"]}


def test_a_contender_that_times_itself_on_some_calls_only_is_refused():
    answers = iter([Measured(1.0), "plain"])
    with pytest.raises(TypeError, match="Measured on 1 of 2 calls"):
        rounds({"a": lambda: next(answers)}, 1, warmup=0, calls=2, clock=FakeClock())


def test_setup_runs_untimed_before_each_span_and_feeds_the_call():
    clock, made = FakeClock(), []

    def fresh():
        clock.work(100.0)  # building a tokenizer: not part of the encode's time
        made.append(len(made))
        return made[-1]

    def encode(tokenizer):
        clock.work(1.0)
        return tokenizer

    timings = rounds({"cold": Contender(encode, setup=fresh)}, 3, warmup=1, clock=clock)
    assert timings.per_round == {"cold": [1.0, 1.0, 1.0]}
    assert made == [0, 1, 2, 3] and timings.results["cold"] == 3  # the warm-up's, then one per round


def test_sync_drains_earlier_work_outside_the_span_and_its_own_inside():
    clock, syncs = FakeClock(), []

    def sync():
        syncs.append(clock())
        clock.work(0.5)  # waiting for the queue

    timings = rounds({"gpu": Contender(lambda: clock.work(2.0), sync=sync)}, 2, warmup=0, clock=clock)
    assert timings.per_round == {"gpu": [2.5, 2.5]}  # the work and the closing sync; not the opening one
    assert len(syncs) == 4


def test_a_deadline_stops_new_rounds_but_never_before_the_minimum():
    for min_rounds, expected in ((1, 1), (3, 3)):
        clock, log = FakeClock(), []
        contenders = {name: scripted(clock, log, name, [1.0] * 20) for name in ("a", "b")}
        # a round takes 2 s; after the first (clock at 2), another would end at 4, past 2.5
        timings = rounds(contenders, 10, warmup=0, clock=clock, until=2.5, min_rounds=min_rounds)
        assert timings.n_rounds == expected and len(log) == 2 * expected


def test_on_round_sees_each_finished_round_untimed():
    clock, log, seen = FakeClock(), [], []

    def on_round(index: int, timings: Timings):
        seen.append((index, list(timings.per_round["a"])))
        clock.work(50.0)  # an evaluation between rounds: in no contender's time

    timings = rounds({"a": scripted(clock, log, "a", [1.0, 2.0])}, 2, warmup=0, clock=clock, on_round=on_round)
    assert seen == [(0, [1.0]), (1, [1.0, 2.0])] and timings.per_round == {"a": [1.0, 2.0]}


def test_rounds_refuses_impossible_counts():
    with pytest.raises(ValueError, match="got n_rounds=0, calls=1, warmup=1"):
        rounds({"a": lambda: None}, 0)
    with pytest.raises(ValueError, match="got n_rounds=2, calls=0, warmup=1"):
        rounds({"a": lambda: None}, 2, calls=0)
    with pytest.raises(ValueError, match="got n_rounds=2, calls=1, warmup=-1"):
        rounds({"a": lambda: None}, 2, warmup=-1)


def test_rounds_needs_a_contender():
    with pytest.raises(ValueError, match="no contenders"):
        rounds({}, 3)


def test_cycling_walks_the_batches_round_and_round():
    seen = []
    call = cycling(lambda x, y: seen.append((x, y)), [(1, 2), (3, 4), (5, 6)])
    for _ in range(5):
        call()
    assert seen == [(1, 2), (3, 4), (5, 6), (1, 2), (3, 4)]


def test_streaming_contenders_see_the_same_batches_in_the_same_rounds():
    seen = {"a": [], "b": []}
    batches = list(range(10))
    contenders = {name: streaming(seen[name].append, batches) for name in seen}
    rounds(contenders, 2, warmup=1, calls=3, clock=FakeClock())
    assert seen == {"a": [0, 1, 2, 3, 4, 5, 6], "b": [0, 1, 2, 3, 4, 5, 6]}
    with pytest.raises(RuntimeError, match="ran out of batches"):
        rounds(contenders, 1, warmup=0, calls=4, clock=FakeClock())
