"""Interleaved timing rounds: every contender takes its turn in each round, and ratios are per round.

The machines these benchmarks run on are shared and noisy: a burst of other work can slow one stretch of
seconds by half. Timing each contender's runs back to back would charge that burst to whoever ran then;
taking turns within a round puts the burst in one round for everybody, and the median over rounds of each
round's ratio ("median of per-round ratios") cancels it. So every speed figure here comes from ``rounds``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import kernels

Clock = Callable[[], float]
_NOTHING = object()


@dataclass(frozen=True)
class Measured:
    """What a contender returns when it times itself (a child process that reports only its decoding time):
    ``seconds`` replaces the clock's span, ``value`` is kept as its result."""

    seconds: float
    value: Any = None


@dataclass(frozen=True)
class Contender:
    """One thing timed in the rounds.

    ``call()`` is one unit of work. ``setup()``, when given, runs before each round's timed span, untimed, and
    its result is passed to ``call`` (a fresh tokenizer for a cold encode). ``sync()``, when given, runs just
    before the span starts (earlier work drained, outside it) and at its end, inside it: a GPU's queue, so that
    the span holds the work and not only its launch.
    """

    call: Callable[..., Any]
    setup: Callable[[], Any] | None = None
    sync: Callable[[], Any] | None = None

    def span(self, calls: int, clock: Clock) -> tuple[float, Any]:
        """Seconds of ``calls`` calls (or the sum of what they measured themselves) and the last one's result."""
        prepared = self.setup() if self.setup is not None else _NOTHING
        if self.sync is not None:
            self.sync()
        start = clock()
        values = [self.call() if prepared is _NOTHING else self.call(prepared) for _ in range(calls)]
        if self.sync is not None:
            self.sync()
        seconds = clock() - start
        measured = [v for v in values if isinstance(v, Measured)]
        if measured and len(measured) != len(values):
            raise TypeError(f"a contender returned Measured on {len(measured)} of {len(values)} calls: "
                            "all of its calls, or none, must time themselves")
        if measured:
            return sum(m.seconds for m in measured), measured[-1].value
        return seconds, values[-1]

    def untimed(self) -> None:
        prepared = self.setup() if self.setup is not None else _NOTHING
        self.call() if prepared is _NOTHING else self.call(prepared)


def as_contender(fn: Callable[[], Any] | Contender) -> Contender:
    return fn if isinstance(fn, Contender) else Contender(fn)


@dataclass
class Timings:
    """Seconds per call of each contender in every round, and each contender's last result (outputs to
    compare: the same greedy tokens, the same ids)."""

    per_round: dict[str, list[float]]
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rounds(self) -> int:
        return min((len(t) for t in self.per_round.values()), default=0)

    def median(self, name: str, scale: float = 1.0) -> float:
        """The median of ``name``'s per-round seconds per call, times ``scale`` (1e3: milliseconds)."""
        return statistics.median(self.per_round[name]) * scale

    def medians(self, scale: float = 1.0) -> dict[str, float]:
        return {name: self.median(name, scale) for name in self.per_round}

    def scaled(self, scale: float) -> dict[str, list[float]]:
        """Every contender's per-round figures times ``scale`` (1e3: milliseconds per call)."""
        return {name: [t * scale for t in times] for name, times in self.per_round.items()}

    def round_ratios(self, name: str, to: str) -> list[float]:
        """``name``'s time over ``to``'s, round by round."""
        return [a / b for a, b in zip(self.per_round[name], self.per_round[to])]

    def ratio(self, name: str, to: str) -> float:
        """The median of ``name``'s per-round ratios to ``to``."""
        return statistics.median(self.round_ratios(name, to))

    def ratios(self, to: str) -> dict[str, float]:
        """Every other contender's median of per-round ratios to ``to``."""
        return median_ratios(self.per_round, to)


def median_ratios(times: dict[str, list[float]], to: str = "torch") -> dict[str, float]:
    """Each contender's median of per-round ratios to the contender ``to`` (the machines are noisy: a round's
    ratio cancels what the round's load did to both)."""
    if to not in times:
        raise KeyError(f"median_ratios: no contender named {to!r} to divide by; contenders: {sorted(times)}")
    base = times[to]
    return {name: statistics.median(a / b for a, b in zip(t, base)) for name, t in times.items() if name != to}


def rounds(contenders: dict[str, Callable[[], Any] | Contender], n_rounds: int, *, warmup: int = 1, calls: int = 1,
           clock: Clock = time.perf_counter, on_round: Callable[[int, Timings], Any] | None = None,
           until: float | None = None, min_rounds: int = 1, alternate: bool = False, settle: float = 0.0) -> Timings:
    """Time ``contenders`` in ``n_rounds`` interleaved rounds: in each round every contender, in order, makes
    ``calls`` calls as one timed span; the figure kept is the span over ``calls`` (seconds per call).

    ``warmup`` untimed calls of each come first (first calls compile kernels and fill allocators).
    ``on_round(index, timings)`` runs after each round, untimed (progress lines, accuracy after an epoch).
    With ``until`` (a time on ``clock``), no round starts that would end past it, once ``min_rounds`` are
    done: a round is assumed to take as long as the last one did. With ``alternate``, every other round runs
    the contenders in reverse order, so that a load drifting within rounds favours none of them. With ``settle``
    (seconds on ``clock``), each timed span follows untimed calls of its contender for at least that long, so that
    a contender is timed in its own steady state and not in the one the previous contender left: on these VMs a
    loop of BLAS products ran 1.5-1.7x slower for its first 20-40 ms after 10 ms asleep or of other work, with one
    thread as with two, and a contender right after a compiled int8 loop lost 10-40% to the same contender placed
    elsewhere (``benchmarks/bench_decode_gemm.py``).
    """
    if n_rounds < 1 or calls < 1 or warmup < 0 or settle < 0:
        raise ValueError(f"rounds: n_rounds and calls must be at least 1, warmup and settle at least 0, got "
                         f"n_rounds={n_rounds}, calls={calls}, warmup={warmup}, settle={settle}")
    if not contenders:
        raise ValueError("rounds: no contenders to time")
    named = {name: as_contender(c) for name, c in contenders.items()}
    for contender in named.values():
        for _ in range(warmup):
            contender.untimed()
    timings = Timings({name: [] for name in named})
    for index in range(n_rounds):
        started = clock()
        order = list(named.items())
        for name, contender in reversed(order) if alternate and index % 2 else order:
            if settle:
                settling = clock()
                contender.untimed()
                while clock() - settling < settle:
                    contender.untimed()
            seconds, value = contender.span(calls, clock)
            timings.per_round[name].append(seconds / calls)
            timings.results[name] = value
        if on_round is not None:
            on_round(index, timings)
        last_round = clock() - started
        if until is not None and index + 1 >= min_rounds and clock() + last_round > until:
            break
    return timings


def cycling(step: Callable[..., Any], batches: list) -> Callable[[], Any]:
    """A no-argument call of ``step(*batch)`` that walks ``batches`` round and round: a contender that
    trains on the same few batches in every round."""
    if not batches:
        raise ValueError("cycling: no batches to walk")
    state = {"next": -1}

    def call():
        state["next"] = (state["next"] + 1) % len(batches)
        return step(*batches[state["next"]])

    return call


def streaming(step: Callable[..., Any], batches) -> Callable[[], Any]:
    """A no-argument call of ``step(batch)`` on the next batch of ``batches``, never repeating one: contenders
    given the same list see the same batches in the same rounds when they make the same number of calls."""
    it = iter(batches)

    def call():
        try:
            batch = next(it)
        except StopIteration:
            raise RuntimeError("streaming: the contender ran out of batches: give it at least warmup + "
                               "n_rounds * calls of them") from None
        return step(batch)

    return call


def on_reference_path(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run with ember's NumPy reference kernels (``kernels.use("numpy")``), whatever the default is:
    the twin contender that shows what the compiled kernels buy."""

    def run(*args, **kwargs):
        with kernels.use("numpy"):
            return fn(*args, **kwargs)

    return run
