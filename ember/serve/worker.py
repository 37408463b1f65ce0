"""The serving engine in a process of its own: what ``ember serve`` runs by default (``--engine thread`` keeps it in
the server's process).

In one process, the engine's thread and the HTTP layer's event loop share Python's GIL: the engine's Python
between matrix products (scheduling, sampling, text) and the event loop's JSON and SSE work take turns. With many
streams that serialises them, which is why vLLM moved its engine into a process of its own; a separate process
also keeps the HTTP server answering (503, with the reason) if the engine dies. On the 2-core machine of the
benchmarks the two are within noise (16 streaming clients of the code model: 1.09x the thread's tokens/s, an
earlier check 0.99x; benchmarks/bench_serve_engine.py): there the HTTP process takes 0.08 of a core, and what
slows a server's decode step against the engine alone (about 19 against 15 ms) is the clients' share of the two
cores, which delays one of OpenBLAS's two threads and with it each product.

``EngineProcess(load)`` offers the consumer side of ``engine.Engine``: ``submit()`` returns a handle with
``events`` (a thread-safe queue of ``Delta`` events and a final ``Done``), ``notify``, ``cancel()`` and
``stream()``; ``stats`` (read under ``lock``), ``queue_length``, ``active_rows``, ``tokenizer``, ``context``,
``max_batch``; ``start()`` and ``stop()``. ``load`` runs in the child and returns the ``Engine``; it must pickle
(the child is spawned, not forked: the parent has threads), e.g. ``functools.partial(engine_from_run, folder)``.
The child steps the engine while it has work, reads submissions and cancellations from a pipe between steps,
and sends each step's events back in one message, with the counters for /metrics.

Requests that can never run are refused in the parent before anything is sent (``check_request``), and
``QueueFull`` is decided there from the child's last report (its queue and free rows) and the requests sent
since, as the child would admit them: an upper bound of the child's queue. A child that dies (killed, crashed)
ends every request in flight with an error, later submissions raise ``EngineDown``, and ``failure`` says why
(/health: 503).
"""

from __future__ import annotations

import copy
import functools
import itertools
import logging
import multiprocessing
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .engine import (
    Done,
    Engine,
    EngineDown,
    EngineStats,
    EventStream,
    QueueFull,
    RequestRejected,
    SamplingParams,
    check_request,
)

log = logging.getLogger("ember.serve")

START_TIMEOUT_S = 600.0  # loading a model: reading and checking its weights, compiling kernels on a first run


def engine_from_run(folder, verify: bool = True, **engine_options) -> Engine:
    """An Engine for the run folder of ``ember train gpt`` (what ``ember serve`` loads, in the child)."""
    from ..train.lm import load_lm

    model, tokenizer, _ = load_lm(folder, verify=verify)
    return Engine(model, tokenizer, **engine_options)


@dataclass(eq=False)
class RemoteRequest(EventStream):
    """A request running in the engine's process, as its consumer sees it (like ``engine.Request``)."""

    id: int
    prompt_tokens: int
    params: SamplingParams
    notify: Callable[[], None] | None
    owner: EngineProcess
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    submitted: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    done: bool = False

    def cancel(self) -> None:
        """Stop generating: the engine frees the rows at its next step (idempotent)."""
        if not self.done and not self.cancelled:
            self.cancelled = True
            self.owner._send(("cancel", self.id))


class EngineProcess:
    """An ``Engine`` (built by ``load()`` in a spawned child process) behind the consumer interface of one."""

    def __init__(self, load: Callable[[], Engine], start_timeout: float = START_TIMEOUT_S):
        self._load, self.start_timeout = load, start_timeout
        self.lock = threading.Lock()  # guards the mirrored counters and the table of requests
        self.stats = EngineStats()
        self.queue_length = 0
        self.active_rows = 0
        self.failure: str | None = None
        self.tokenizer = self.context = self.max_batch = self.max_queue = None
        self._requests: dict[int, RemoteRequest] = {}
        self._ids = itertools.count(1)
        self._seen = 0  # the last request id the child had received at its last report
        self._send_lock = threading.Lock()
        self._process = self._conn = self._reader = None
        self._stopping = False

    # -- life ------------------------------------------------------------------------------------------------
    def start(self) -> EngineProcess:
        """Spawn the child and wait until its engine is loaded; raises RuntimeError with the child's reason when
        loading fails."""
        if self._process is not None:
            return self
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=_child, args=(child_end, self._load), name="ember-serve-engine",
                                        daemon=True)
        self._process.start()
        child_end.close()
        if not self._conn.poll(self.start_timeout):
            self._process.kill()
            raise RuntimeError(f"the engine process did not load its model within {self.start_timeout:.0f} s")
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            self._process.join(5)
            raise RuntimeError(f"the engine process exited while loading (exit code {self._process.exitcode})") \
                from None
        if kind == "failed":
            self._process.join(5)
            raise RuntimeError(payload)
        self.tokenizer, self.context = payload["tokenizer"], payload["context"]
        self.max_batch, self.max_queue = payload["max_batch"], payload["max_queue"]
        self._reader = threading.Thread(target=self._read, name="ember-serve-engine-reader", daemon=True)
        self._reader.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """End the child; requests still running end with an error event."""
        with self.lock:
            self._stopping = True
        if self._process is None:
            return
        self._send(("stop",))
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout)
        if self._reader is not None:
            self._reader.join(timeout)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # -- what consumers call (any thread) ------------------------------------------------------------------
    def submit(self, prompt: list[int], params: SamplingParams, notify: Callable[[], None] | None = None
               ) -> RemoteRequest:
        """Queue a request; ``RequestRejected`` for one that can never run, ``QueueFull`` when ``max_queue``
        requests may be waiting, ``EngineDown`` when the child has died."""
        check_request(prompt, params, self.context, self.max_batch)
        with self.lock:
            if self.failure is not None:
                raise EngineDown(self.failure)
            if self._stopping:
                raise QueueFull("the engine is shutting down")
            waiting = self._waiting_bound()
            if waiting >= self.max_queue:
                raise QueueFull(f"{waiting} requests are already waiting (max_queue {self.max_queue})")
            request = RemoteRequest(next(self._ids), len(prompt), params, notify, self)
            self._requests[request.id] = request
        self._send(("submit", request.id, list(prompt), params, request.submitted))
        return request

    def _waiting_bound(self) -> int:
        """How many requests can be waiting in the child at most: its last reported queue, plus the requests it
        has not seen yet that its admission (oldest first, while the oldest fits) would leave waiting in the free
        rows it reported. Rows only come free between reports, so the child's queue is never longer."""
        free = self.max_batch - self.active_rows
        waiting = self.queue_length
        for request_id, request in self._requests.items():  # in submission order
            if request_id <= self._seen:
                continue
            if waiting == 0 and request.params.n <= free:
                free -= request.params.n
            else:
                waiting += 1
        return waiting

    def generate(self, prompt: list[int], params: SamplingParams, timeout: float | None = None) -> dict:
        from .engine import collect

        return collect(self.submit(prompt, params).stream(timeout), params.n)

    def _send(self, message) -> None:
        """To the child; a child that is gone is noticed by the reader, which ends the requests."""
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                pass

    # -- the reader thread ------------------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            while True:
                _, events, report = self._conn.recv()
                finished = []
                with self.lock:
                    self.stats, self.queue_length = report["stats"], report["queue_length"]
                    self.active_rows, self._seen = report["active_rows"], report["seen"]
                    for request_id, batch in events:
                        if isinstance(batch[-1], Done):
                            finished.append(request_id)
                    targets = [(self._requests.get(i), batch) for i, batch in events]
                    for request_id in finished:
                        self._requests.pop(request_id, None)
                for request, batch in targets:
                    if request is None:
                        continue
                    for event in batch:
                        request.events.put(event)
                    request.done = request.done or isinstance(batch[-1], Done)
                    if request.notify is not None:
                        request.notify()
        except (EOFError, OSError):
            pass
        self._process.join(5)
        self._down("the server is shutting down" if self._stopping else
                   f"the serving engine's process exited (exit code {self._process.exitcode})")

    def _down(self, message: str) -> None:
        """Every request in flight ends with ``message``; later submissions raise EngineDown."""
        with self.lock:
            if not self._stopping:
                self.failure = message
                log.error("ember serve: %s", message)
            stranded, self._requests = list(self._requests.values()), {}
        for request in stranded:
            request.events.put(Done(request.prompt_tokens, 0, error=message))
            request.done = True
            if request.notify is not None:
                request.notify()


# -- the child --------------------------------------------------------------------------------------------------
def _child(conn, load: Callable[[], Engine]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the child
    try:
        engine = load()
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent reports it
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", {"tokenizer": engine.tokenizer, "context": engine.context, "max_batch": engine.max_batch,
                         "max_queue": engine.max_queue}))
    engine.max_queue = sys.maxsize  # the parent decides (it counts what it sent), the child takes all it is sent
    try:
        _serve(engine, conn)
    except (EOFError, OSError):  # the parent is gone
        pass


def _serve(engine: Engine, conn) -> None:
    """Step the engine while it has work; between steps, take the parent's messages; after each step, one message
    back with the step's events (request id, events) and the counters."""
    requests: dict = {}
    touched: set = set()
    seen = 0
    while True:
        refused = []
        wait = 0 if engine.has_work() else None
        while conn.poll(wait):
            wait = 0
            message = conn.recv()
            if message[0] == "stop":
                return
            if message[0] == "cancel":
                request = requests.get(message[1])
                if request is not None:
                    request.cancel()
                continue
            _, request_id, prompt, params, submitted = message
            seen = request_id
            try:
                requests[request_id] = engine.submit(prompt, params, notify=functools.partial(touched.add,
                                                                                                request_id),
                                                     submitted=submitted)
            except (QueueFull, RequestRejected) as exc:  # the parent checks first: only a disagreement lands here
                refused.append((request_id, [Done(len(prompt), 0, error=str(exc))]))
        if engine.has_work():
            engine.run_step()
        events = refused + [(i, requests[i].drain()) for i in touched]
        touched.clear()
        events = [(i, batch) for i, batch in events if batch]
        for i, batch in events:
            if isinstance(batch[-1], Done):
                requests.pop(i, None)
        with engine.lock:
            stats = copy.deepcopy(engine.stats)
        conn.send(("step", events, {"stats": stats, "queue_length": engine.queue_length,
                                    "active_rows": engine.active_rows, "seen": seen}))

