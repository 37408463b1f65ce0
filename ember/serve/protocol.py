"""OpenAI's HTTP API as data: requests parsed and checked in one place, responses and stream chunks built in one.

Every problem with a request is an ``APIError``, rendered as OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}`` with its HTTP status, so every error path answers alike.

Accepted fields (anything else is a 400 naming the field): ``model`` (the served model's id, else 404
``model_not_found``), ``prompt`` (completions: a string, a list of one string, a list of token ids or a list of
one such list), ``messages`` (chat, see ``ember/serve/chat.py``), ``max_tokens`` / ``max_completion_tokens``
(1..context; default 16 for completions, the rest of the context for chat), ``temperature`` (0..2, default 1),
``top_p`` (0 < p <= 1), ``top_k`` (> 0, an extension: the openai client sends it through ``extra_body``),
``stop`` (a string or up to 4), ``seed`` (an integer >= 0), ``n`` (1..max_batch), ``logprobs`` (completions: an
integer 0..5; chat: a boolean, with ``top_logprobs`` 0..20), ``stream``, ``stream_options.include_usage``, and
``user``. Fields ember cannot honour are accepted only at their neutral value: ``frequency_penalty`` and
``presence_penalty`` 0, ``logit_bias`` empty, ``echo`` false, ``suffix`` empty, ``best_of`` 1 or ``n``.

Completion logprobs: ``tokens`` (a token's text; a byte-level piece that is not whole UTF-8 is written
``bytes:\\xNN...`` as OpenAI does), ``token_logprobs``, ``top_logprobs`` (the ``logprobs`` most likely tokens
and the chosen one) and ``text_offset`` (where each token starts in the completion's text).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, replace

from . import chat
from .engine import Delta, Done, SamplingParams, TokenLogprob

MAX_STOPS = 4
MAX_COMPLETION_LOGPROBS = 5
MAX_TOP_LOGPROBS = 20
DEFAULT_COMPLETION_TOKENS = 16
TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
         413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 503: "service_unavailable"}
COMMON_FIELDS = {"model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "seed", "n",
                 "stream", "stream_options", "user", "frequency_penalty", "presence_penalty", "logit_bias"}
FIELDS = {"completion": COMMON_FIELDS | {"prompt", "logprobs", "echo", "suffix", "best_of"},
          "chat": COMMON_FIELDS | {"messages", "logprobs", "top_logprobs"}}


class APIError(Exception):
    """An HTTP error in OpenAI's shape: the status, and the message, type, param and code of its body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or TYPES.get(status, "invalid_request_error")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ServedModel:
    """What the HTTP layer needs to know about the model to check a request before the engine sees it."""

    id: str
    context: int
    vocab_size: int
    max_batch: int


@dataclass(frozen=True)
class GenerationRequest:
    """A checked request of either endpoint: the prompt (text, or token ids), how to sample, how to answer."""

    kind: str  # "completion" or "chat"
    prompt: str | list[int]
    params: SamplingParams
    stream: bool = False
    include_usage: bool = False
    logprobs: bool = False


# -- parsing --------------------------------------------------------------------------------------------
def parse_json(raw: bytes) -> dict:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the request body must be a JSON object, got {_kind(body)}", code="invalid_json")
    return body


def parse_completion(body: dict, served: ServedModel) -> GenerationRequest:
    """A /v1/completions body, checked (see the module docstring)."""
    _check_fields(body, "completion", served)
    prompt = _prompt(body.get("prompt"), served)
    for name, neutral in (("echo", False), ("suffix", "")):
        if body.get(name) not in (None, neutral):
            raise APIError(400, f"'{name}' is not supported by this server (only {json.dumps(neutral)})", name,
                           code="unsupported_parameter")
    logprobs = _integer(body, "logprobs", None, 0, MAX_COMPLETION_LOGPROBS)
    params = _sampling(body, served, DEFAULT_COMPLETION_TOKENS, logprobs)
    best_of = _integer(body, "best_of", None, 1, served.max_batch)
    if best_of not in (None, 1, params.n):
        raise APIError(400, f"'best_of' {best_of} is not supported: this server returns every choice it "
                            f"samples (best_of must equal n={params.n})", "best_of", code="unsupported_parameter")
    return GenerationRequest("completion", prompt, params, *_stream(body), logprobs=logprobs is not None)


def parse_chat(body: dict, served: ServedModel) -> GenerationRequest:
    """A /v1/chat/completions body, checked; the prompt is the chat template's text (``chat.render``)."""
    _check_fields(body, "chat", served)
    prompt = chat.render(_messages(body.get("messages")))
    wants = _boolean(body, "logprobs", False)
    top = _integer(body, "top_logprobs", None, 0, MAX_TOP_LOGPROBS)
    if top is not None and not wants:
        raise APIError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs")
    params = _sampling(body, served, served.context, (top or 0) if wants else None)
    params = replace(params, stop=params.stop + (chat.TURN_STOP,))
    return GenerationRequest("chat", prompt, params, *_stream(body), logprobs=wants)


def _check_fields(body: dict, kind: str, served: ServedModel) -> None:
    unknown = sorted(set(body) - FIELDS[kind])
    if unknown:
        raise APIError(400, f"unrecognized request argument {unknown[0]!r} (this endpoint takes "
                            f"{', '.join(sorted(FIELDS[kind]))})", unknown[0], code="unknown_parameter")
    model = body.get("model")
    if model is None:
        raise APIError(400, "'model' is required (this server serves " + repr(served.id) + ")", "model",
                       code="missing_required_parameter")
    if not isinstance(model, str):
        raise APIError(400, f"'model' must be a string, got {_kind(model)}", "model")
    if model != served.id:
        raise APIError(404, f"the model {model!r} does not exist; this server serves {served.id!r}", "model",
                       code="model_not_found")
    for name in ("frequency_penalty", "presence_penalty"):
        value = _number(body, name, 0.0, -2.0, 2.0)
        if value != 0:
            raise APIError(400, f"'{name}' is not supported by this server (only 0), got {value}", name,
                           code="unsupported_parameter")
    if body.get("logit_bias") not in (None, {}):
        raise APIError(400, "'logit_bias' is not supported by this server (only an empty object)", "logit_bias",
                       code="unsupported_parameter")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise APIError(400, f"'user' must be a string, got {_kind(body['user'])}", "user")


def _sampling(body: dict, served: ServedModel, default_tokens: int, logprobs: int | None) -> SamplingParams:
    max_tokens = _integer(body, "max_tokens", None, 1, served.context)
    max_completion = _integer(body, "max_completion_tokens", None, 1, served.context)
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise APIError(400, f"'max_tokens' {max_tokens} and 'max_completion_tokens' {max_completion} disagree; "
                            "give one", "max_tokens")
    top_k = _integer(body, "top_k", None, 1, None)
    return SamplingParams(
        max_tokens=max_tokens or max_completion or default_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", None, 0.0, 1.0, low_open=True),
        top_k=top_k,
        stop=_stops(body.get("stop")),
        seed=_integer(body, "seed", None, 0, None),
        n=_integer(body, "n", 1, 1, served.max_batch),
        logprobs=logprobs,
    )


def _stream(body: dict) -> tuple[bool, bool]:
    """(stream, include_usage)."""
    stream = _boolean(body, "stream", False)
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise APIError(400, "'stream_options' is only allowed with 'stream': true", "stream_options")
    if not isinstance(options, dict):
        raise APIError(400, f"'stream_options' must be an object, got {_kind(options)}", "stream_options")
    unknown = sorted(set(options) - {"include_usage"})
    if unknown:
        raise APIError(400, f"unrecognized stream option {unknown[0]!r} (only 'include_usage')",
                       f"stream_options.{unknown[0]}", code="unknown_parameter")
    return stream, _boolean(options, "include_usage", False, "stream_options.include_usage")


def _prompt(prompt, served: ServedModel) -> str | list[int]:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one prompt
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(_is_int(t) for t in prompt):
        bad = [t for t in prompt if not 0 <= t < served.vocab_size]
        if bad:
            raise APIError(400, f"token id {bad[0]} in 'prompt' is out of range [0, {served.vocab_size})", "prompt")
        return list(prompt)
    if prompt is None:
        raise APIError(400, "'prompt' is required", "prompt", code="missing_required_parameter")
    if isinstance(prompt, list) and len(prompt) > 1 and all(isinstance(p, (str, list)) for p in prompt):
        raise APIError(400, f"'prompt' holds {len(prompt)} prompts; this server takes one per request",
                       "prompt", code="unsupported_parameter")
    raise APIError(400, f"'prompt' must be a string, a list of token ids or a list of one of them, got "
                        f"{_kind(prompt)}", "prompt")


def _messages(messages) -> list[tuple[str, str]]:
    if messages is None:
        raise APIError(400, "'messages' is required", "messages", code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, f"'messages' must be a non-empty list of messages, got {_kind(messages)}", "messages")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"'{where}' must be an object with 'role' and 'content', got {_kind(m)}", where)
        unknown = sorted(set(m) - {"role", "content", "name"})
        if unknown:
            raise APIError(400, f"'{where}.{unknown[0]}' is not supported (a message has role, content and name)",
                           f"{where}.{unknown[0]}", code="unsupported_parameter")
        role = m.get("role")
        if role not in chat.ROLES:
            raise APIError(400, f"'{where}.role' must be one of {', '.join(chat.ROLES)}, got {json.dumps(role)}",
                           f"{where}.role")
        out.append((role, _content(m.get("content"), f"{where}.content")))
    return out


def _content(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" and
                                         isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise APIError(400, f"'{where}' must be a string or a list of text parts ({{\"type\": \"text\", \"text\": ...}}),"
                        f" got {_kind(content)}", where)


def _stops(stop) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise APIError(400, f"'stop' must be a non-empty string or a list of them, got {_kind(stop)}", "stop")
    if len(stops) > MAX_STOPS:
        raise APIError(400, f"'stop' holds {len(stops)} strings; at most {MAX_STOPS}", "stop")
    return tuple(stops)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(body: dict, name: str, default, low: int, high: int | None, param: str | None = None):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _is_int(value) or value < low or (high is not None and value > high):
        within = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise APIError(400, f"'{name}' must be an integer {within}, got {json.dumps(value)}", param or name)
    return value


def _number(body: dict, name: str, default, low: float, high: float, low_open: bool = False):
    value = body.get(name)
    if value is None:
        return default
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (value > low if low_open else value >= low) and value <= high)
    if not ok:
        raise APIError(400, f"'{name}' must be a number in {'(' if low_open else '['}{low:g}, {high:g}], got "
                            f"{json.dumps(value)}", name)
    return float(value)


def _boolean(body: dict, name: str, default: bool, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise APIError(400, f"'{param or name}' must be true or false, got {json.dumps(value)}", param or name)
    return value


def _kind(value) -> str:
    """A JSON value's type and a glimpse of it, for error messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    shown = json.dumps(value)
    return f"{names.get(type(value), type(value).__name__)} ({shown[:40] + '...' if len(shown) > 40 else shown})"


def encode_prompt(tokenizer, request: GenerationRequest, served: ServedModel) -> list[int]:
    """The prompt's token ids; a 400 for text the tokenizer cannot encode or a prompt that fills the context.

    A completion prompt may hold special tokens by name (``<|endoftext|>`` between documents, as OpenAI's
    completions accept); chat messages are text only, as in OpenAI's chat API: a message that contains
    ``<|endoftext|>`` gets those characters, not the end-of-text token that would cut the conversation."""
    param = "prompt" if request.kind == "completion" else "messages"
    ids = request.prompt
    if isinstance(ids, str):
        text_only = request.kind != "completion" and getattr(tokenizer, "special_tokens", None)
        try:
            ids = tokenizer.encode(ids, allowed_special="none") if text_only else tokenizer.encode(ids)
        except ValueError as exc:
            raise APIError(400, f"'{param}' cannot be encoded by this model's tokenizer: {exc}", param) from None
    if not ids:
        raise APIError(400, f"'{param}' is empty: the model needs at least one token to continue", param)
    if len(ids) >= served.context:
        what = "the prompt" if request.kind == "completion" else "the messages (in the chat template)"
        raise APIError(400, f"{what} take {len(ids)} tokens; this model's context is {served.context} tokens, and "
                            f"a completion needs at least one of them (at most {served.context - 1} prompt tokens)",
                       param, code="context_length_exceeded")
    return ids


# -- responses ----------------------------------------------------------------------------------------------
def model_card(model_id: str, created: int) -> dict:
    """One entry of /v1/models (known before the model has loaded)."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": "ember"}


def token_bytes(tokenizer, token: int) -> bytes:
    if hasattr(tokenizer, "decode_bytes"):
        return tokenizer.decode_bytes([token])
    return tokenizer.decode([token]).encode("utf-8")


def token_text(tokenizer, token: int) -> str:
    """A token as text; a byte-level piece that is not whole UTF-8 as ``bytes:\\xNN...`` (OpenAI's form)."""
    raw = token_bytes(tokenizer, token)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)


class Response:
    """Builds one request's answer, whole or as stream chunks; keeps what a stream needs across chunks (each
    choice's text offset for completion logprobs)."""

    def __init__(self, request: GenerationRequest, served: ServedModel, tokenizer):
        self.request, self.served, self.tokenizer = request, served, tokenizer
        chat_kind = request.kind == "chat"
        self.id = f"{'chatcmpl' if chat_kind else 'cmpl'}-{uuid.uuid4().hex}"
        self.object = "chat.completion" if chat_kind else "text_completion"
        self.created = int(time.time())
        self.emitted = [b""] * request.params.n  # each choice's bytes so far: completion logprobs' offsets

    def _head(self, chunk: bool = False) -> dict:
        obj = self.object + (".chunk" if chunk and self.request.kind == "chat" else "")
        return {"id": self.id, "object": obj, "created": self.created, "model": self.served.id}

    # -- whole answers
    def whole(self, choices: list[dict], done: Done) -> dict:
        """The non-streamed answer; ``choices`` as ``engine.collect`` gathers them."""
        out = []
        for i, c in enumerate(choices):
            logprobs = self._logprobs(i, c["tokens"]) if self.request.logprobs else None
            if self.request.kind == "chat":
                out.append({"index": i, "message": {"role": "assistant", "content": c["text"]},
                            "logprobs": logprobs, "finish_reason": c["finish_reason"]})
            else:
                out.append({"index": i, "text": c["text"], "logprobs": logprobs, "finish_reason": c["finish_reason"]})
        return {**self._head(), "choices": out, "usage": usage(done)}

    # -- stream chunks
    def opening_chunks(self) -> list[dict]:
        """Chat streams open with each choice's role; completion streams have no opening."""
        if self.request.kind != "chat":
            return []
        return [self._chunk({"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                             "finish_reason": None}) for i in range(self.request.params.n)]

    def chunk(self, delta: Delta) -> dict:
        logprobs = self._logprobs(delta.choice, delta.tokens) if self.request.logprobs else None
        if self.request.kind == "chat":
            body = {"index": delta.choice, "delta": {"content": delta.text} if delta.text else {},
                    "logprobs": logprobs, "finish_reason": delta.finish_reason}
        else:
            body = {"index": delta.choice, "text": delta.text, "logprobs": logprobs,
                    "finish_reason": delta.finish_reason}
        return self._chunk(body)

    def usage_chunk(self, done: Done) -> dict:
        return {**self._head(chunk=True), "choices": [], "usage": usage(done)}

    def _chunk(self, choice: dict) -> dict:
        out = {**self._head(chunk=True), "choices": [choice]}
        if self.request.include_usage:
            out["usage"] = None
        return out

    # -- logprobs
    def _logprobs(self, choice: int, tokens) -> dict:
        if self.request.kind == "chat":
            return {"content": [self._chat_token(t) for t in tokens], "refusal": None}
        return self._completion_logprobs(choice, tokens)

    def _chat_token(self, t: TokenLogprob) -> dict:
        top = [{"token": token_text(self.tokenizer, i), "bytes": list(token_bytes(self.tokenizer, i)), "logprob": lp}
               for i, lp in t.top]
        return {"token": token_text(self.tokenizer, t.id), "bytes": list(token_bytes(self.tokenizer, t.id)),
                "logprob": t.logprob, "top_logprobs": top}

    def _completion_logprobs(self, choice: int, tokens) -> dict:
        out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for t in tokens:
            out["text_offset"].append(len(self.emitted[choice].decode("utf-8", errors="ignore")))
            self.emitted[choice] += token_bytes(self.tokenizer, t.id)
            text = token_text(self.tokenizer, t.id)
            out["tokens"].append(text)
            out["token_logprobs"].append(t.logprob)
            alternatives = {token_text(self.tokenizer, i): lp for i, lp in t.top}
            alternatives.setdefault(text, t.logprob)  # OpenAI: the k most likely and the chosen one
            out["top_logprobs"].append(alternatives)
        return out


def usage(done: Done) -> dict:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}


def sse(data: dict | str) -> str:
    """One server-sent event: ``data: <json>`` and a blank line (``data: [DONE]`` ends a stream)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"
