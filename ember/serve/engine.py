"""The serving engine: one thread owns the model and a KV cache of ``max_batch`` rows, and a scheduler decides,
step by step, which requests run together (continuous batching).

Each active request owns one cache row per choice (``n`` rows for ``n`` choices). One ``step()``:

1. frees the rows of cancelled requests, and drops cancelled requests still waiting;
2. admits waiting requests, oldest first, while the oldest fits in the free rows (a request never overtakes
   an older one, so a request of ``n`` choices is not starved by smaller ones);
3. runs ONE forward (``GPT.forward_last``) over every decoding row's next token (one token each, every row at
   its own length) and ONE chunk (at most ``prefill_chunk`` tokens) of the oldest request still being
   prefilled, into its first row: the chunk shares the step's matrix products;
4. samples each decoding row with its own generator (all rows in one batched pass) and hands the text to the
   request's consumer; after a prompt's last chunk, its row's keys and values are copied into the request's
   other rows (the prompt is computed once, whatever ``n``), and every choice samples its first token from
   the prompt's last logits (it decodes from the next step on).

So a long prompt costs the decoding requests one chunk's share of a forward per step, never its whole prefill.

A choice finishes at the end-of-text token (the tokenizer's ``<|endoftext|>``, finish "stop", the token not
shown), at a stop string (finish "stop", the text cut just before it), after ``max_tokens`` tokens (finish
"length"), or when prompt + completion fill the model's context (finish "length"): every token is computed with
the whole sequence in view, never a truncated one. Its row is freed in the step it finishes.

Random streams: choice ``i`` of a request with ``seed`` samples from
``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,) if i else ()))``: choice 0 is exactly
``np.random.default_rng(seed)``, so ``n=1`` samples what ``GPT.generate(..., seed=seed)`` samples, and the
other choices get independent streams of the same seed. Without a seed, fresh entropy. Temperature 0 is greedy.

Log-probabilities are the model's own distribution (the log-softmax of the logits at temperature 1, as
OpenAI reports them), whatever temperature, top-k or top-p the sampling used.

Consumers: ``submit()`` returns a ``Request``; the engine puts ``Delta`` events (text, tokens, finish reason of
one choice) and one final ``Done`` on ``Request.events`` (a thread-safe queue), calling ``Request.notify`` once
per step that gave the request events (the HTTP layer wakes its event loop there). ``Request.cancel()`` (a
client that went away) frees its rows at the start of the next step.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..models.gpt import sample_next, sample_rows

log = logging.getLogger("ember.serve")

END_OF_TEXT = "<|endoftext|>"
MAX_PENDING_BYTES = 8  # a byte-level sequence cut inside a UTF-8 character waits at most this many tokens
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class QueueFull(Exception):
    """The waiting queue holds ``max_queue`` requests: come back later (HTTP 429)."""


class EngineDown(Exception):
    """The engine's process has died: nothing can run (HTTP 503)."""


class RequestRejected(ValueError):
    """A request the engine can never run (a prompt that fills the context, more choices than rows)."""


@dataclass(frozen=True)
class SamplingParams:
    """How one request is sampled; checked by ``check()`` (the HTTP layer checks first, with its own messages)."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    logprobs: int | None = None  # None: no log-probabilities; k: the chosen token's and the k most likely

    def check(self) -> None:
        problems = []
        if not (isinstance(self.max_tokens, int) and self.max_tokens >= 1):
            problems.append(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            problems.append(f"temperature must be >= 0, got {self.temperature!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.top_k is not None and self.top_k < 1:
            problems.append(f"top_k must be positive, got {self.top_k!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            problems.append(f"stop strings must be non-empty strings, got {list(self.stop)!r}")
        if self.seed is not None and self.seed < 0:
            problems.append(f"seed must be non-negative, got {self.seed}")
        if self.n < 1:
            problems.append(f"n must be at least 1, got {self.n}")
        if self.logprobs is not None and self.logprobs < 0:
            problems.append(f"logprobs must be >= 0, got {self.logprobs}")
        if problems:
            raise RequestRejected("SamplingParams: " + "; ".join(problems))


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its id, log-probability, and the most likely alternatives as (id, logprob)."""

    id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Delta:
    """New output of one choice: text (never part of a stop string), the tokens released with it (when
    log-probabilities were asked for), and the finish reason on its last delta ("stop" or "length")."""

    choice: int
    text: str
    tokens: tuple[TokenLogprob, ...] = ()
    finish_reason: str | None = None


@dataclass(frozen=True)
class Done:
    """The request's last event: token counts, and why it ended when not by finishing ("cancelled", or an
    error message)."""

    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    cancelled: bool = False


def choice_rng(seed: int | None, index: int) -> np.random.Generator:
    """Choice ``index``'s generator (see the module docstring): choice 0 is ``default_rng(seed)``."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,) if index else ()))


def top_logprobs(logits: np.ndarray, chosen: int, k: int) -> TokenLogprob:
    """The chosen token's log-probability under softmax(logits) and the ``k`` most likely tokens'."""
    shifted = logits - logits.max()
    logp = shifted - math.log(np.exp(shifted).sum())
    k = min(k, logp.size)
    top = ()
    if k:
        best = np.argpartition(-logp, k - 1)[:k]
        best = best[np.argsort(-logp[best], kind="stable")]
        top = tuple((int(i), float(logp[i])) for i in best)
    return TokenLogprob(chosen, float(logp[chosen]), top)


class _Text:
    """One choice's text as it grows token by token: UTF-8 pieces split across byte tokens wait until they
    decode, stop strings are found exactly (across token boundaries), and text that could still become a stop
    string is held back from the consumer."""

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]):
        self.decode, self.stops = decode, stops
        self.text = ""
        self.pending: list[int] = []  # tokens whose bytes do not decode yet
        self.sent = 0  # characters handed to the consumer
        self.tokens: collections.deque[tuple[TokenLogprob, int]] = collections.deque()  # (token, text offset)

    def add(self, token: int, info: TokenLogprob | None) -> int:
        """Append a token; returns where a stop string starts in the text (-1: none)."""
        if info is not None:
            self.tokens.append((info, len(self.text)))
        self.pending.append(token)
        piece = self.decode(self.pending)
        if piece.endswith("\ufffd") and len(self.pending) < MAX_PENDING_BYTES:
            return -1
        before = len(self.text)
        self.text += piece
        self.pending.clear()
        return self._find_stop(before)

    def _find_stop(self, before: int) -> int:
        """The earliest stop string that ends in the text added after position ``before``."""
        found = [self.text.find(s, max(0, before - len(s) + 1)) for s in self.stops]
        found = [i for i in found if i >= 0]
        return min(found) if found else -1

    def flush(self) -> None:
        """Decode what is still pending (at the end: a character cut short becomes U+FFFD)."""
        if self.pending:
            self.text += self.decode(self.pending)
            self.pending.clear()

    def release(self, end: int | None = None) -> tuple[str, tuple[TokenLogprob, ...]]:
        """The text not yet sent (up to ``end``, or up to what could still start a stop string) and the tokens
        whose text starts before that point."""
        end = self._safe_end() if end is None else end
        text = self.text[self.sent : end]
        self.sent = max(self.sent, end)
        tokens = []
        while self.tokens and self.tokens[0][1] < self.sent:
            tokens.append(self.tokens.popleft()[0])
        return text, tuple(tokens)

    def _safe_end(self) -> int:
        """len(text) less its longest suffix that is a proper prefix of a stop string."""
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.text) - self.sent), hold, -1):
                if self.text.endswith(s[:k]):
                    hold = k
                    break
        return len(self.text) - hold


@dataclass(eq=False)
class _Choice:
    request: Request
    index: int
    rng: np.random.Generator
    text: _Text
    row: int = -1
    last_token: int = -1
    generated: int = 0
    finish_reason: str | None = None


class EventStream:
    """What a request's consumer reads: ``events``, a thread-safe queue of ``Delta`` events then one ``Done``."""

    events: queue.SimpleQueue

    def stream(self, timeout: float | None = None) -> Iterator[Delta | Done]:
        """The events as they come, ending with ``Done`` (for threads; the HTTP layer reads ``events`` itself)."""
        while True:
            event = self.events.get(timeout=timeout)
            yield event
            if isinstance(event, Done):
                return

    def drain(self) -> list:
        """The events already given, without waiting."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out


@dataclass(eq=False)
class Request(EventStream):
    """A submitted request, as its consumer sees it: ``events`` (a queue of ``Delta`` then one ``Done``),
    ``cancel()``, and ``stream()`` to iterate over the events in a plain thread."""

    id: int
    prompt: list[int]
    params: SamplingParams
    notify: Callable[[], None] | None = None
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    submitted: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    prefilled: int = 0  # prompt tokens in the cache so far
    cancelled: bool = False
    done: bool = False
    choices: list[_Choice] = field(default_factory=list)
    _engine: Engine | None = None

    def cancel(self) -> None:
        """Stop generating: the rows are freed at the start of the engine's next step (idempotent)."""
        if not self.done and not self.cancelled:
            self.cancelled = True
            if self._engine is not None:
                self._engine.wake()

    @property
    def completion_tokens(self) -> int:
        return sum(c.generated for c in self.choices)


@dataclass
class EngineStats:
    """Counters for /metrics, updated by the engine thread (read under ``Engine.lock``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished: collections.Counter = field(default_factory=collections.Counter)  # by "stop"/"length"/...
    decode_steps: int = 0
    decode_rows: int = 0  # summed over decode steps: / decode_steps = the mean batch
    prefill_chunks: int = 0
    ttft_buckets: list[int] = field(default_factory=lambda: [0] * len(TTFT_BUCKETS))
    ttft_sum: float = 0.0
    ttft_count: int = 0

    def observe_ttft(self, seconds: float) -> None:
        for i, bound in enumerate(TTFT_BUCKETS):
            if seconds <= bound:
                self.ttft_buckets[i] += 1
        self.ttft_sum += seconds
        self.ttft_count += 1


class Engine:
    """Continuous batching over one model (see the module docstring). ``step()`` runs one scheduling step in
    the caller's thread (tests drive it by hand); ``start()`` runs steps in a background thread while there is
    work, ``stop()`` ends it."""

    def __init__(self, model, tokenizer, max_batch: int = 16, prefill_chunk: int = 128, max_queue: int = 64,
                 eos_token_id: int | None = None):
        for name, value in (("max_batch", max_batch), ("prefill_chunk", prefill_chunk), ("max_queue", max_queue)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Engine: {name} must be a positive integer, got {value!r}")
        if tokenizer.vocab_size != model.config.vocab_size:
            raise ValueError(f"Engine: the tokenizer has {tokenizer.vocab_size} ids but the model "
                             f"{model.config.vocab_size}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.context = model.config.block_size
        self.max_batch, self.prefill_chunk, self.max_queue = max_batch, prefill_chunk, max_queue
        specials = getattr(tokenizer, "special_tokens", {}) or {}
        self.eos_token_id = specials.get(END_OF_TEXT) if eos_token_id is None else eos_token_id
        self.cache = model.new_cache(batch=max_batch)
        self.free_rows = list(range(max_batch))
        self.stats = EngineStats()
        self.lock = threading.Lock()  # guards the waiting queue and the stats
        self._wakeup = threading.Condition(self.lock)
        self._waiting: collections.deque[Request] = collections.deque()
        self._prefilling: collections.deque[Request] = collections.deque()
        self._decoding: list[_Choice] = []
        self._active: list[Request] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- what consumers call (any thread) --------------------------------------------------------
    def submit(self, prompt: list[int], params: SamplingParams, notify: Callable[[], None] | None = None,
               submitted: float | None = None) -> Request:
        """Queue a request; raises ``RequestRejected`` for one that can never run, ``QueueFull`` when
        ``max_queue`` requests are already waiting. ``submitted``: when it arrived (``time.monotonic()``, which
        every process of the machine shares), if before now: the time to first token counts from there."""
        check_request(prompt, params, self.context, self.max_batch)
        request = Request(next(self._ids), list(prompt), params, notify, _engine=self)
        if submitted is not None:
            request.submitted = submitted
        with self._wakeup:
            if self._stopping:
                raise QueueFull("the engine is shutting down")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are already waiting (max_queue {self.max_queue})")
            self._waiting.append(request)
            self._wakeup.notify()
        return request

    def generate(self, prompt: list[int], params: SamplingParams, timeout: float | None = None) -> dict:
        """Submit and wait (the engine must be running): {"choices": [{"text", "finish_reason", "tokens"}],
        "prompt_tokens", "completion_tokens"}."""
        request = self.submit(prompt, params)
        return collect(request.stream(timeout), params.n)

    def wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify()

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    @property
    def active_rows(self) -> int:
        return self.max_batch - len(self.free_rows)

    # -- the thread --------------------------------------------------------------------------------
    def start(self) -> Engine:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ember-serve-engine", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread; requests still waiting or running end with an error event."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._fail_everything("the server is shutting down")

    def has_work(self) -> bool:
        return bool(self._waiting or self._active)

    def _loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and not self.has_work():
                    self._wakeup.wait()
                if self._stopping:
                    return
            self.run_step()

    def run_step(self) -> None:
        """``step()``, where an exception (a bug) ends the running requests with an error event and the engine
        serves on: what the engine's thread (and its process, ``serve.worker``) runs."""
        try:
            self.step()
        except Exception as exc:
            log.exception("serving step failed")
            self._fail_everything(f"internal error in the serving engine: {type(exc).__name__}: {exc}",
                                  waiting_too=False)

    # -- one scheduling step ----------------------------------------------------------------------------
    def step(self) -> bool:
        """One scheduling step (see the module docstring); False when there was nothing to do."""
        touched: dict[int, Request] = {}  # the requests given events in this step, to notify once each
        try:
            self._drop_cancelled(touched)
            self._admit()
            return self._forward(touched)
        finally:
            self._active = [r for r in self._active if not r.done]
            _notify(touched)

    def _drop_cancelled(self, touched: dict[int, Request]) -> None:
        with self.lock:
            waiting = [r for r in self._waiting if r.cancelled]
            for request in waiting:
                self._waiting.remove(request)
        for request in waiting + [r for r in self._active if r.cancelled and not r.done]:
            for choice in request.choices:
                self._free(choice)
            if request in self._prefilling:
                self._prefilling.remove(request)
            self._finish_request(request, touched, cancelled=True)

    def _admit(self) -> None:
        with self.lock:
            while self._waiting and self._waiting[0].params.n <= len(self.free_rows):
                request = self._waiting.popleft()
                rows, self.free_rows = self.free_rows[: request.params.n], self.free_rows[request.params.n :]
                self.cache.reset(rows)
                for i, row in enumerate(rows):
                    p = request.params
                    request.choices.append(_Choice(request, i, choice_rng(p.seed, i),
                                                   _Text(self.tokenizer.decode, p.stop), row=row))
                self._prefilling.append(request)
                self._active.append(request)

    def _forward(self, touched: dict[int, Request]) -> bool:
        """One forward (``GPT.forward_last``) for every decoding row's next token and the next chunk of the
        oldest prompt being prefilled: the chunk shares the decode step's matrix products instead of reading
        every weight again in a forward of its own (which cost a 16-row step of the code model about 70% more)."""
        live = list(self._decoding)
        request = self._prefilling[0] if self._prefilling else None
        if not live and request is None:
            return False
        sequences, rows = [[c.last_token] for c in live], [c.row for c in live]
        if request is not None:
            chunk = request.prompt[request.prefilled : request.prefilled + self.prefill_chunk]
            sequences.append(chunk)
            rows.append(request.choices[0].row)
        logits = _host64(self.model.forward_last(sequences, self.cache, rows))
        with self.lock:
            if live:
                self.stats.decode_steps += 1
                self.stats.decode_rows += len(live)
            if request is not None:
                self.stats.prefill_chunks += 1
        if live:
            params = [c.request.params for c in live]
            tokens = sample_rows(logits[: len(live)], [p.temperature for p in params], [p.top_k for p in params],
                                 [p.top_p for p in params], [c.rng for c in live])
            for choice, row_logits, token in zip(live, logits, tokens):
                self._accept(choice, row_logits, touched, token)
        if request is not None:
            request.prefilled += len(chunk)
            if request.prefilled == len(request.prompt):
                self._prefilled(request, logits[-1], touched)
        return True

    def _prefilled(self, request: Request, last: np.ndarray, touched: dict[int, Request]) -> None:
        """The prompt is in its first row: copy it to the other choices' rows (the prompt is computed once,
        whatever n is), and every choice samples its first token from the prompt's last logits."""
        self._prefilling.popleft()
        if len(request.choices) > 1:
            self.cache.copy_rows(request.choices[0].row, [c.row for c in request.choices[1:]])
        with self.lock:
            self.stats.prompt_tokens += len(request.prompt)
        for choice in request.choices:
            self._accept(choice, last, touched)

    # -- one sampled token --------------------------------------------------------------------------
    def _accept(self, choice: _Choice, logits: np.ndarray, touched: dict[int, Request], token: int | None = None
                ) -> None:
        """Take the choice's next token (sampled from its logits unless given: a decode step samples all its
        rows at once), hand out what became final, finish the choice if due."""
        request, p = choice.request, choice.request.params
        if token is None:
            token = sample_next(logits, p.temperature, p.top_k, p.top_p, choice.rng)
        choice.generated += 1
        if request.first_token_at is None:
            request.first_token_at = time.monotonic()
            with self.lock:
                self.stats.observe_ttft(request.first_token_at - request.submitted)
        info = top_logprobs(logits, token, p.logprobs) if p.logprobs is not None else None
        text = choice.text
        if token == self.eos_token_id:
            reason, cut = "stop", None
            text.flush()
        else:
            cut = text.add(token, info)
            reason = "stop" if cut >= 0 else None
        context_full = len(request.prompt) + choice.generated >= self.context  # no position left to feed it at
        if reason is None and (choice.generated >= p.max_tokens or context_full):
            reason = "length"
        if reason is not None:
            if cut is None or cut < 0:
                text.flush()
                cut = len(text.text)
            self._emit(choice, *text.release(cut), reason, touched)
            self._finish_choice(choice, reason, touched)
            return
        piece, tokens = text.release()
        if piece or tokens:
            self._emit(choice, piece, tokens, None, touched)
        choice.last_token = token
        if choice not in self._decoding:
            self._decoding.append(choice)

    def _emit(self, choice: _Choice, text: str, tokens, reason: str | None, touched: dict[int, Request]) -> None:
        request = choice.request
        request.events.put(Delta(choice.index, text, tokens, reason))
        touched[request.id] = request

    def _finish_choice(self, choice: _Choice, reason: str, touched: dict[int, Request]) -> None:
        choice.finish_reason = reason
        self._free(choice)
        request = choice.request
        if all(c.finish_reason is not None for c in request.choices):
            self._finish_request(request, touched)

    def _free(self, choice: _Choice) -> None:
        """Give the choice's row back (at once: the next admission may take it)."""
        if choice in self._decoding:
            self._decoding.remove(choice)
        if choice.row >= 0:
            self.free_rows.append(choice.row)
            self.free_rows.sort()
            self.cache.reset([choice.row])
            choice.row = -1

    def _finish_request(self, request: Request, touched: dict[int, Request], cancelled: bool = False,
                        error: str | None = None) -> None:
        request.done = True
        generated = request.completion_tokens
        with self.lock:
            self.stats.completion_tokens += generated
            if cancelled or error:
                self.stats.finished["cancelled" if cancelled else "error"] += 1
            else:
                for c in request.choices:
                    self.stats.finished[c.finish_reason] += 1
        request.events.put(Done(len(request.prompt), generated, error, cancelled))
        touched[request.id] = request

    def _fail_everything(self, message: str, waiting_too: bool = True) -> None:
        """End the running requests (and, with ``waiting_too``, the waiting ones) with an error event."""
        with self.lock:
            waiting = list(self._waiting) if waiting_too else []
            if waiting_too:
                self._waiting.clear()
        touched: dict[int, Request] = {}
        for request in [r for r in self._active if not r.done] + waiting:
            for choice in request.choices:
                self._free(choice)
            self._finish_request(request, touched, error=message)
        self._active, self._prefilling, self._decoding = [], collections.deque(), []
        self.cache.reset()
        _notify(touched)


def check_request(prompt: list[int], params: SamplingParams, context: int, max_batch: int) -> None:
    """Raise ``RequestRejected`` for a request no engine of this context and rows can ever run."""
    params.check()
    if not prompt:
        raise RequestRejected("the prompt needs at least one token")
    if len(prompt) >= context:
        raise RequestRejected(f"the prompt has {len(prompt)} tokens, which leaves no room for a completion in "
                              f"the model's context of {context} tokens (at most {context - 1})")
    if params.n > max_batch:
        raise RequestRejected(f"n={params.n} choices need {params.n} rows, the engine has {max_batch}")


def _notify(requests: dict[int, Request]) -> None:
    for request in requests.values():
        if request.notify is not None:
            request.notify()


def _host64(array) -> np.ndarray:
    """Logits as a float64 NumPy array (from the GPU when the model is there)."""
    return np.asarray(backend.to_device(array, backend.CPU), dtype=np.float64)


def collect(events, n: int) -> dict:
    """A request's events gathered into its whole result: {"choices": [{"text", "finish_reason", "tokens"}],
    "prompt_tokens", "completion_tokens", "error", "cancelled"}."""
    choices = [{"text": "", "finish_reason": None, "tokens": []} for _ in range(n)]
    for event in events:
        if isinstance(event, Done):
            return {"choices": choices, "prompt_tokens": event.prompt_tokens,
                    "completion_tokens": event.completion_tokens, "error": event.error, "cancelled": event.cancelled}
        c = choices[event.choice]
        c["text"] += event.text
        c["tokens"].extend(event.tokens)
        if event.finish_reason:
            c["finish_reason"] = event.finish_reason
    raise RuntimeError("the request's events ended without a Done event")
