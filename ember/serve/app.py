"""The HTTP layer of ``ember serve`` (Starlette): it only parses, checks and streams; ``engine.Engine`` owns the
model and decides what runs together.

Routes: ``GET /health`` (200 once the model is loaded, 503 while loading), ``GET /metrics`` (Prometheus text),
``GET /v1/models`` (and ``/v1/models/{id}``), ``POST /v1/completions``, ``POST /v1/chat/completions``. Streams are
server-sent events, ``data: {...}`` chunks ending with ``data: [DONE]``. With an API key, every ``/v1`` route
needs ``Authorization: Bearer KEY`` (401 otherwise); /health and /metrics stay open for probes and scrapers.

A full queue answers 429; a client that goes away mid-stream (or while waiting for a whole answer) has its request
cancelled, which frees its rows at the engine's next step. Time to first token is measured in the engine, from
the request's arrival in its queue to its first sampled token.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import protocol
from .engine import TTFT_BUCKETS, Delta, Done, Engine, EngineDown, QueueFull, RequestRejected, collect
from .protocol import APIError, ServedModel

log = logging.getLogger("ember.serve")

DISCONNECT_POLL_S = 0.5  # a client waiting for a whole answer is checked for disconnection this often
MAX_BODY_BYTES = 1 << 20  # a request body past this is refused (413) before it is read whole: no prompt that
# fits a context needs more, and an unbounded read would let one client fill the server's memory
ENDPOINTS = ("/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions")


async def read_body(request: Request) -> bytes:
    """The request's body, or a 413 once it passes MAX_BODY_BYTES (by its declared length or as it arrives)."""
    too_large = APIError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes", code="request_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class Waker:
    """Wakes one request's consumer on the event loop when the engine thread gives it events."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.event = loop, asyncio.Event()

    def notify(self) -> None:  # called from the engine thread
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the loop is closed: the server is going down
            pass

    async def batches(self, request, disconnected: Callable | None = None):
        """Lists of the request's events as they arrive, the last ending with ``Done``. With ``disconnected``
        (an awaitable check), the request is cancelled once the client has gone."""
        while True:
            batch = []
            while True:
                try:
                    batch.append(request.events.get_nowait())
                except queue.Empty:
                    break
            if batch:
                yield batch
                if isinstance(batch[-1], Done):
                    return
            if disconnected is None:
                await self.event.wait()
            else:
                try:
                    await asyncio.wait_for(self.event.wait(), DISCONNECT_POLL_S)
                except TimeoutError:
                    if await disconnected():
                        request.cancel()  # the engine answers with Done(cancelled), which ends the loop
                    continue
            self.event.clear()


class ServeApp:
    """The ASGI application: Starlette's routes inside a counter of answers by endpoint and status (/metrics).

    ``load()`` builds the engine (an ``Engine``, or a ``worker.EngineProcess`` whose ``start()`` spawns it); it
    runs in a thread at startup, so /health answers 503 while it loads, and for good if the engine dies."""

    def __init__(self, load: Callable[[], Engine], model_id: str, api_key: str | None = None):
        self.load, self.model_id, self.api_key = load, model_id, api_key
        self.engine: Engine | None = None
        self.served: ServedModel | None = None
        self.load_error: str | None = None
        self.created = int(time.time())
        self.answers: collections.Counter = collections.Counter()  # (endpoint, status) -> count
        self.routes = Starlette(
            routes=[Route("/health", self.health), Route("/metrics", self.metrics),
                    Route("/v1/models", self.models), Route("/v1/models/{model_id:path}", self.model),
                    Route("/v1/completions", self.completions, methods=["POST"]),
                    Route("/v1/chat/completions", self.chat_completions, methods=["POST"])],
            exception_handlers={HTTPException: self._http_error, Exception: self._server_error},
            lifespan=self._lifespan)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.routes(scope, receive, send)
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "/v1/models/{id}" if path.startswith("/v1/models/") else "other"

        async def counted(message):
            if message["type"] == "http.response.start":
                self.answers[endpoint, message["status"]] += 1
            await send(message)

        await self.routes(scope, receive, counted)

    # -- loading ----------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        threading.Thread(target=self._load_engine, name="ember-serve-load", daemon=True).start()
        try:
            yield
        finally:
            if self.engine is not None:
                self.engine.stop()

    def _load_engine(self) -> None:
        try:
            engine = self.load().start()
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("ember serve: loading the model failed: %s", self.load_error)
            return
        self.served = ServedModel(self.model_id, engine.context, engine.tokenizer.vocab_size, engine.max_batch)
        self.engine = engine
        log.info("ember serve: %s loaded (context %d, %d rows)", self.model_id, engine.context, engine.max_batch)

    def _ready(self) -> tuple[Engine, ServedModel]:
        if self.engine is None:
            if self.load_error:
                raise APIError(503, f"the model failed to load: {self.load_error}", code="model_load_failed")
            raise APIError(503, "the model is still loading; retry when GET /health answers 200",
                           code="model_loading")
        return self.engine, self.served

    # -- routes -------------------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        failure = getattr(self.engine, "failure", None)  # an engine process that died
        if self.engine is not None and failure is None:
            return JSONResponse({"status": "ok", "model": self.model_id})
        status = "failed" if self.load_error or failure else "loading"
        return JSONResponse({"status": status, "model": self.model_id, "error": self.load_error or failure},
                            status_code=503)

    async def metrics(self, request: Request) -> Response:
        return PlainTextResponse(self.prometheus_text(), media_type="text/plain; version=0.0.4")

    async def models(self, request: Request) -> Response:
        return await _answer(self._models, request)

    async def model(self, request: Request) -> Response:
        return await _answer(self._model, request)

    async def completions(self, request: Request) -> Response:
        return await _answer(self._generate, request, protocol.parse_completion)

    async def chat_completions(self, request: Request) -> Response:
        return await _answer(self._generate, request, protocol.parse_chat)

    async def _models(self, request: Request) -> Response:
        self._authorize(request)
        return JSONResponse({"object": "list", "data": [protocol.model_card(self.model_id, self.created)]})

    async def _model(self, request: Request) -> Response:
        self._authorize(request)
        wanted = request.path_params["model_id"]
        if wanted != self.model_id:
            raise APIError(404, f"the model {wanted!r} does not exist; this server serves {self.model_id!r}",
                           "model", code="model_not_found")
        return JSONResponse(protocol.model_card(self.model_id, self.created))

    async def _generate(self, request: Request, parse) -> Response:
        self._authorize(request)
        engine, served = self._ready()
        generation = parse(protocol.parse_json(await read_body(request)), served)
        ids = protocol.encode_prompt(engine.tokenizer, generation, served)
        answer = protocol.Response(generation, served, engine.tokenizer)
        waker = Waker(asyncio.get_running_loop())
        try:
            handle = engine.submit(ids, generation.params, notify=waker.notify)
        except QueueFull as exc:
            raise APIError(429, f"the server is busy: {exc}; retry later", code="queue_full") from None
        except RequestRejected as exc:
            raise APIError(400, str(exc)) from None
        except EngineDown as exc:
            raise APIError(503, f"the serving engine is down: {exc}", code="engine_down") from None
        if generation.stream:
            return StreamingResponse(_stream(handle, waker, answer, generation.include_usage),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"},
                                     background=BackgroundTask(handle.cancel))
        try:
            events = [e async for batch in waker.batches(handle, request.is_disconnected) for e in batch]
        finally:
            handle.cancel()  # a no-op once done; frees the rows if this coroutine was cancelled
        result = collect(events, generation.params.n)
        done = events[-1]
        if done.error:
            raise APIError(500, done.error, code="engine_error")
        if done.cancelled:
            raise APIError(499, "the client closed the connection", code="client_closed")
        return JSONResponse(answer.whole(result["choices"], done))

    def _authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not header:
            raise APIError(401, "no API key: send the header 'Authorization: Bearer <key>'", code="invalid_api_key")
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip().encode(), self.api_key.encode()):
            raise APIError(401, "incorrect API key provided", code="invalid_api_key")

    # -- errors ---------------------------------------------------------------------------------------------
    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        message = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
        error = APIError(exc.status_code, message.get(exc.status_code, str(exc.detail)), code="invalid_route")
        return JSONResponse(error.body(), status_code=exc.status_code)

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        error = APIError(500, f"internal server error: {type(exc).__name__}: {exc}", code="internal_error")
        return JSONResponse(error.body(), status_code=500)

    # -- metrics ---------------------------------------------------------------------------------------------
    def prometheus_text(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
            for labels, value in samples:
                shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"{name}{{{shown}}} {value}" if shown else f"{name} {value}")

        family("ember_requests_total", "counter", "HTTP answers by endpoint and status code.",
               [({"endpoint": e, "status": str(s)}, n) for (e, s), n in sorted(self.answers.items())])
        engine = self.engine
        family("ember_model_loaded", "gauge", "1 once the model is loaded.", [({}, int(engine is not None))])
        if engine is not None:
            with engine.lock:
                stats = engine.stats
                finished = sorted(stats.finished.items())
                counters = [("prompt_tokens", "Prompt tokens prefilled.", stats.prompt_tokens),
                            ("completion_tokens", "Tokens generated (all choices).", stats.completion_tokens),
                            ("decode_steps", "Batched decode forwards.", stats.decode_steps),
                            ("decode_rows", "Rows decoded, summed over decode steps.", stats.decode_rows),
                            ("prefill_chunks", "Prompt chunks prefilled.", stats.prefill_chunks)]
                ttft = list(stats.ttft_buckets), stats.ttft_sum, stats.ttft_count
            for name, help_text, value in counters:
                family(f"ember_{name}_total", "counter", help_text, [({}, value)])
            family("ember_finished_total", "counter", "Choices and requests ended, by reason (stop, length; "
                   "cancelled and error count requests).", [({"reason": r}, n) for r, n in finished])
            name = "ember_time_to_first_token_seconds"
            lines.extend([f"# HELP {name} From arrival in the queue to the first sampled token.",
                          f"# TYPE {name} histogram"])
            bounds = [f"{b:g}" for b in TTFT_BUCKETS] + ["+Inf"]
            lines.extend(f'{name}_bucket{{le="{le}"}} {n}' for le, n in zip(bounds, ttft[0] + [ttft[2]]))
            lines.extend([f"{name}_sum {ttft[1]:.6f}", f"{name}_count {ttft[2]}"])
            family("ember_queue_length", "gauge", "Requests waiting for rows.", [({}, engine.queue_length)])
            family("ember_active_rows", "gauge", "Cache rows held by running requests.", [({}, engine.active_rows)])
            family("ember_max_batch", "gauge", "Cache rows (--max-batch).", [({}, engine.max_batch)])
        return "\n".join(lines) + "\n"


async def _answer(handler, request: Request, *args) -> Response:
    """``handler``'s response, or its APIError in OpenAI's shape."""
    try:
        return await handler(request, *args)
    except APIError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _stream(handle, waker: Waker, answer: protocol.Response, include_usage: bool):
    """The SSE body; however it ends (finished, client gone, server stopping), the request is cancelled."""
    try:
        opening = "".join(protocol.sse(c) for c in answer.opening_chunks())
        if opening:
            yield opening
        async for batch in waker.batches(handle):
            parts = []
            for event in batch:
                if isinstance(event, Delta):
                    parts.append(protocol.sse(answer.chunk(event)))
                elif event.error:
                    parts.append(protocol.sse(APIError(500, event.error, code="engine_error").body()))
                elif include_usage and not event.cancelled:
                    parts.append(protocol.sse(answer.usage_chunk(event)))
            parts.append(protocol.sse("[DONE]") if isinstance(batch[-1], Done) else "")
            yield "".join(parts)
    finally:
        handle.cancel()


def create_app(load: Callable[[], Engine], model_id: str, api_key: str | None = None) -> ServeApp:
    """The server's ASGI app; ``load()`` returns the Engine (called in a thread at startup)."""
    return ServeApp(load, model_id, api_key)
