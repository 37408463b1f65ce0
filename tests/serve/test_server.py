"""``ember serve`` over real HTTP: uvicorn on 127.0.0.1 (a free port, in a thread), the official ``openai`` client
(no retries, strict response validation wherever the SDK's models allow it) and raw HTTP for what the client
hides (SSE framing, disconnects, malformed bodies).

References: ``GPT.generate`` (greedy, seeded) and the full forward (log-probabilities) of the served model.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

for _module, _why in (("starlette", "the HTTP server"), ("uvicorn", "the HTTP server"),
                      ("openai", "the client the server must satisfy"), ("httpx", "raw HTTP")):
    pytest.importorskip(_module, reason=f"{_module} is needed for {_why}: pip install 'ember[serve]' openai httpx")

import httpx  # noqa: E402
import openai  # noqa: E402
import uvicorn  # noqa: E402

from ember.io import save_checkpoint  # noqa: E402
from ember.serve import chat  # noqa: E402
from ember.serve.app import create_app  # noqa: E402
from ember.serve.engine import Engine  # noqa: E402
from ember.serve.worker import EngineProcess, engine_from_run  # noqa: E402

KEY = "sk-test"
MODEL = "tiny"
ERROR_KEYS = {"message", "type", "param", "code"}


class LiveServer:
    """uvicorn serving ``app`` on a port the OS picked, in a daemon thread."""

    def __init__(self, app):
        self.app = app
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, "uvicorn to start")

    def wait_until_loaded(self) -> LiveServer:
        wait_for(lambda: httpx.get(self.url + "/health").status_code == 200, "the model to load")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def metrics(self) -> dict:
        return parse_prometheus(httpx.get(self.url + "/metrics").text)[1]


def wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@contextmanager
def serving(load, **kw):
    live = LiveServer(create_app(load, MODEL, **kw))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def server(model, tok):
    with serving(lambda: Engine(model, tok, max_batch=4, max_queue=8), api_key=KEY) as live:
        yield live.wait_until_loaded()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, _strict_response_validation=True)


@pytest.fixture(scope="module")
def loose_client(server):
    """For streamed completions: OpenAI's own stream sends "finish_reason": null, which the SDK's strict
    Completion model refuses, so those chunks are checked by hand."""
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


def post(server, path: str, body=None, raw: bytes | None = None, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if raw is not None:
        return httpx.post(server.url + path, content=raw, headers={**headers, "Content-Type": "application/json"})
    return httpx.post(server.url + path, json=body, headers=headers)


def assert_openai_error(response: httpx.Response, status: int, param=None, code=None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str)
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


# -- the API ---------------------------------------------------------------------------------------------
def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "ember"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-4")
    assert caught.value.code == "model_not_found"
    health = httpx.get(server.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_a_completion_is_the_greedy_continuation(client, tok, greedy):
    got = client.completions.create(model=MODEL, prompt="the lazy", max_tokens=12, temperature=0)
    assert got.object == "text_completion" and got.model == MODEL and got.id.startswith("cmpl-")
    assert got.choices[0].text == greedy("the lazy", 12) and got.choices[0].finish_reason == "length"
    assert (got.usage.prompt_tokens, got.usage.completion_tokens, got.usage.total_tokens) == (8, 12, 20)
    by_ids = client.completions.create(model=MODEL, prompt=tok.encode("the lazy"), max_tokens=12, temperature=0)
    assert by_ids.choices[0].text == got.choices[0].text


def test_chat_continues_the_documented_template(client, greedy):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the fox?"}]
    got = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10, temperature=0)
    prompt = "<|system|>\nbe brief\n<|user|>\nthe fox?\n<|assistant|>\n"
    assert chat.render([(m["role"], m["content"]) for m in messages]) == prompt
    want = greedy(prompt, 10)
    cut = want.find(chat.TURN_STOP)
    message = got.choices[0].message
    assert message.role == "assistant" and message.content == (want if cut < 0 else want[:cut])
    assert got.object == "chat.completion" and got.usage.prompt_tokens == len(prompt)


def test_streamed_completions_equal_the_whole_answer_and_end_with_usage(server, client, loose_client):
    whole = client.completions.create(model=MODEL, prompt="over", max_tokens=15, temperature=0)
    chunks = list(loose_client.completions.create(model=MODEL, prompt="over", max_tokens=15, temperature=0,
                                                  stream=True, stream_options={"include_usage": True}))
    text_chunks, usage_chunk = chunks[:-1], chunks[-1]
    assert "".join(c.choices[0].text for c in text_chunks) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in text_chunks] == [None] * (len(text_chunks) - 1) + ["length"]
    assert usage_chunk.choices == [] and usage_chunk.usage.completion_tokens == 15
    assert all(c.usage is None for c in text_chunks) and len({c.id for c in chunks}) == 1
    raw = post(server, "/v1/completions", {"model": MODEL, "prompt": "over", "max_tokens": 3, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = raw.text.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") for e in events[:-2])
    assert sum(len(json.loads(e[6:])["choices"][0]["text"]) for e in events[:-2]) == 3


def test_streamed_chat_opens_with_the_role_and_validates_strictly(client):
    messages = [{"role": "user", "content": "dog"}]
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, temperature=0)
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_stop_strings_cut_the_completion(client, greedy):
    full = greedy("quick", 20)
    stop = full[7:9]
    got = client.completions.create(model=MODEL, prompt="quick", max_tokens=20, temperature=0,
                                    stop=[stop, "never"])
    assert got.choices[0].text == full[: full.find(stop)] and got.choices[0].finish_reason == "stop"


def test_seeds_reproduce_and_n_choices_come_back_indexed(client, model, tok):
    ask = dict(model=MODEL, prompt="the", max_tokens=10, temperature=1.0, seed=11, n=3)
    first, again = client.completions.create(**ask), client.completions.create(**ask)
    texts = [c.text for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1, 2] and texts == [c.text for c in again.choices]
    assert texts[0] == tok.decode(list(model.generate(tok.encode("the"), 10, temperature=1.0, seed=11)))
    assert len(set(texts)) == 3 and first.usage.completion_tokens == 30
    top_k = client.completions.create(**{**ask, "n": 1, "seed": 12}, extra_body={"top_k": 1})
    assert top_k.choices[0].text == tok.decode(list(model.generate(tok.encode("the"), 10, temperature=0)))


def test_logprobs_are_the_models_distribution(client, model, tok):
    got = client.completions.create(model=MODEL, prompt="fox", max_tokens=6, temperature=0, logprobs=2)
    lp = got.choices[0].logprobs
    assert "".join(lp.tokens) == got.choices[0].text and lp.text_offset == list(range(6))
    want = log_softmax(model(np.array([tok.encode("fox" + got.choices[0].text)])).numpy()[0])
    for k, token in enumerate(lp.tokens):
        row = want[2 + k]
        assert lp.token_logprobs[k] == pytest.approx(row[tok.encode(token)[0]], abs=1e-9)
        best = [tok.decode([int(i)]) for i in np.argsort(-row)[:2]]
        assert lp.top_logprobs[k] == pytest.approx({t: row[tok.encode(t)[0]] for t in best}, abs=1e-9)
    answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "a"}], max_tokens=4,
                                            temperature=0, logprobs=True, top_logprobs=3)
    content = answer.choices[0].logprobs.content
    assert "".join(t.token for t in content) == answer.choices[0].message.content
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token for t in content)  # greedy
    assert all(t.bytes == list(t.token.encode()) for t in content)


# -- errors: each a 4xx in OpenAI's shape, and the server serves on ------------------------------------------
BAD_REQUESTS = [
    ("/v1/completions", b"{not json", 400, None, "invalid_json"),
    ("/v1/completions", b"[1, 2]", 400, None, "invalid_json"),
    ("/v1/completions", {"prompt": "a"}, 400, "model", "missing_required_parameter"),
    ("/v1/completions", {"model": "gpt-4", "prompt": "a"}, 404, "model", "model_not_found"),
    ("/v1/completions", {"model": MODEL}, 400, "prompt", "missing_required_parameter"),
    ("/v1/completions", {"model": MODEL, "prompt": 7}, 400, "prompt", None),
    ("/v1/completions", {"model": MODEL, "prompt": ["a", "b"]}, 400, "prompt", "unsupported_parameter"),
    ("/v1/completions", {"model": MODEL, "prompt": [1, 999]}, 400, "prompt", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": 0}, 400, "max_tokens", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": 65}, 400, "max_tokens", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": "8"}, 400, "max_tokens", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": True}, 400, "max_tokens", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "temperature": 2.5}, 400, "temperature", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "top_p": 0}, 400, "top_p", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "top_k": 0}, 400, "top_k", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "stop": [""]}, 400, "stop", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "n": 5}, 400, "n", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "seed": -1}, 400, "seed", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "logprobs": 6}, 400, "logprobs", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "echo": True}, 400, "echo", "unsupported_parameter"),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "presence_penalty": 1}, 400, "presence_penalty", None),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "tools": []}, 400, "tools", "unknown_parameter"),
    ("/v1/completions", {"model": MODEL, "prompt": "a", "stream_options": {"include_usage": True}}, 400,
     "stream_options", None),
    ("/v1/completions", {"model": MODEL, "prompt": "the lazy dog " * 5}, 400, "prompt",
     "context_length_exceeded"),
    ("/v1/completions", {"model": MODEL, "prompt": "ABC"}, 400, "prompt", None),  # not in the vocabulary
    ("/v1/chat/completions", {"model": MODEL, "messages": []}, 400, "messages", None),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "tool", "content": "a"}]}, 400,
     "messages[0].role", None),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": 3}]}, 400,
     "messages[0].content", None),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "a"}], "top_logprobs": 2},
     400, "top_logprobs", None),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "a"}], "logprobs": 1},
     400, "logprobs", None),
    ("/v1/nowhere", {}, 404, None, "invalid_route"),
]


@pytest.mark.parametrize("path,body,status,param,code", BAD_REQUESTS)
def test_a_bad_request_gets_a_4xx_in_openais_shape_and_the_server_serves_on(server, path, body, status, param,
                                                                              code):
    raw = body if isinstance(body, bytes) else None
    assert_openai_error(post(server, path, None if raw else body, raw=raw), status, param, code)
    fine = post(server, "/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": 1})
    assert fine.status_code == 200 and len(fine.json()["choices"][0]["text"]) == 1


def test_the_sdk_raises_its_own_error_classes(client):
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model=MODEL, prompt="a", max_tokens=1000)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "a"}])


def test_the_api_key_is_required_on_the_api_only(server):
    body = {"model": MODEL, "prompt": "a", "max_tokens": 1}
    assert_openai_error(post(server, "/v1/completions", body, key=None), 401, code="invalid_api_key")
    assert_openai_error(post(server, "/v1/completions", body, key="sk-wrong"), 401, code="invalid_api_key")
    assert_openai_error(httpx.get(server.url + "/v1/models"), 401, code="invalid_api_key")
    wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert httpx.get(server.url + "/health").status_code == 200
    assert httpx.get(server.url + "/metrics").status_code == 200


# -- metrics ----------------------------------------------------------------------------------------------
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(?:,|(?=\})))*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_prometheus(text: str) -> tuple[dict, dict]:
    """Prometheus' text format, strictly: (family -> type, (name, labels) -> value); any other line fails."""
    types, samples = {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary") and name not in types
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} has no # TYPE line"
        key = (name, tuple(re.findall(r'([a-zA-Z_]\w*)="([^"]*)"', labels or "")))
        samples[key] = float(value)
    return types, samples


def test_metrics_count_requests_tokens_and_first_tokens(server):
    before = server.metrics()
    ok = post(server, "/v1/completions", {"model": MODEL, "prompt": "dog", "max_tokens": 5}).json()
    post(server, "/v1/completions", {"model": MODEL, "prompt": "dog", "max_tokens": 0})
    types, after = parse_prometheus(httpx.get(server.url + "/metrics").text)

    def grew(name, **labels):
        key = (name, tuple(labels.items()))
        return after[key] - before.get(key, 0)

    assert grew("ember_requests_total", endpoint="/v1/completions", status="200") == 1
    assert grew("ember_requests_total", endpoint="/v1/completions", status="400") == 1
    assert grew("ember_prompt_tokens_total") == ok["usage"]["prompt_tokens"] == 3
    assert grew("ember_completion_tokens_total") == 5
    assert grew("ember_time_to_first_token_seconds_count") == 1
    assert types["ember_time_to_first_token_seconds"] == "histogram" and types["ember_queue_length"] == "gauge"
    buckets = [v for (name, _), v in after.items() if name == "ember_time_to_first_token_seconds_bucket"]
    assert buckets == sorted(buckets) and buckets[-1] == after[("ember_time_to_first_token_seconds_count", ())]
    assert after[("ember_active_rows", ())] == 0 and after[("ember_queue_length", ())] == 0


# -- loading, disconnects, a full queue ---------------------------------------------------------------------------
def test_health_is_503_while_the_model_loads_and_says_why_if_it_fails(model, tok):
    release = threading.Event()

    def slow_load():
        release.wait(20)
        return Engine(model, tok)

    with serving(slow_load) as live:
        health = httpx.get(live.url + "/health")
        assert health.status_code == 503 and health.json()["status"] == "loading"
        busy = httpx.post(live.url + "/v1/completions", json={"model": MODEL, "prompt": "a"})
        assert_openai_error(busy, 503, code="model_loading")
        release.set()
        live.wait_until_loaded()

    def broken_load():
        raise FileNotFoundError("model.safetensors is missing")

    with serving(broken_load) as live:
        wait_for(lambda: httpx.get(live.url + "/health").json()["status"] == "failed", "the load to fail")
        assert "model.safetensors is missing" in httpx.get(live.url + "/health").json()["error"]


def test_an_engine_process_that_dies_turns_health_and_requests_to_503(tmp_path, model, tok, greedy):
    folder = tmp_path / "tiny-run"
    folder.mkdir()
    save_checkpoint(folder / "model.safetensors", model)
    tok.save(folder / "tokenizer.json")
    with serving(functools.partial(EngineProcess, functools.partial(engine_from_run, folder, max_batch=2))) as live:
        live.wait_until_loaded()
        answer = httpx.post(live.url + "/v1/completions", json={"model": MODEL, "prompt": "over", "max_tokens": 5,
                                                                "temperature": 0}, timeout=30)
        assert answer.json()["choices"][0]["text"] == greedy("over", 5)
        os.kill(live.app.engine.pid, signal.SIGKILL)
        wait_for(lambda: httpx.get(live.url + "/health").status_code == 503, "/health to say the engine died")
        health = httpx.get(live.url + "/health").json()
        assert health["status"] == "failed" and "exit code -9" in health["error"]
        refused = httpx.post(live.url + "/v1/completions", json={"model": MODEL, "prompt": "a"})
        assert_openai_error(refused, 503, code="engine_down")


class SlowModel:
    """The served model with a pause before every forward: generations that last long enough to be interrupted."""

    def __init__(self, model, pause: float):
        self.model, self.pause = model, pause

    def __getattr__(self, name):
        return getattr(self.model, name)

    def eval(self):
        return self

    def forward_last(self, sequences, cache, rows):
        time.sleep(self.pause)
        return self.model.forward_last(sequences, cache, rows)


@pytest.fixture(scope="module")
def slow_server(model, tok):
    with serving(lambda: Engine(SlowModel(model, 0.05), tok, max_batch=1, max_queue=1)) as live:
        yield live.wait_until_loaded()


@contextmanager
def streaming(live, max_tokens: int):
    """A streamed completion over raw HTTP, open until the block ends (then the connection is closed)."""
    with httpx.Client(timeout=20) as http:
        body = {"model": MODEL, "prompt": "a", "max_tokens": max_tokens, "stream": True}
        with http.stream("POST", live.url + "/v1/completions", json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines).startswith("data: {")  # the first token: the request holds its row
            yield


def test_a_client_that_disconnects_mid_stream_frees_its_row_at_once(slow_server):
    engine = slow_server.app.engine
    cancelled = slow_server.metrics().get(("ember_finished_total", (("reason", "cancelled"),)), 0)
    with streaming(slow_server, max_tokens=35):  # 35 steps of 50 ms: 1.75 s if left to run
        assert engine.active_rows == 1
        closed = time.monotonic()
    wait_for(lambda: engine.active_rows == 0, "the row to be freed", timeout=5)
    assert time.monotonic() - closed < 1.0
    after = slow_server.metrics()
    assert after[("ember_finished_total", (("reason", "cancelled"),))] == cancelled + 1
    assert after[("ember_active_rows", ())] == 0


def test_a_full_queue_answers_429_and_the_queued_request_is_served_later(slow_server):
    engine = slow_server.app.engine
    queued = {}
    body = {"model": MODEL, "prompt": "b", "max_tokens": 2}

    def wait_in_queue():
        queued["response"] = httpx.post(slow_server.url + "/v1/completions", json=body, timeout=20)

    with streaming(slow_server, max_tokens=35):  # holds the only row
        waiter = threading.Thread(target=wait_in_queue)
        waiter.start()
        wait_for(lambda: engine.queue_length == 1, "the second request to queue")
        assert_openai_error(httpx.post(slow_server.url + "/v1/completions", json=body), 429, code="queue_full")
        refused = openai.OpenAI(base_url=slow_server.url + "/v1", api_key="none", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            refused.completions.create(**body)
    waiter.join(20)
    assert queued["response"].status_code == 200 and len(queued["response"].json()["choices"][0]["text"]) == 2


# -- the command ------------------------------------------------------------------------------------------------
def test_ember_serve_serves_a_run_folder(tmp_path, model, tok, greedy):
    folder = tmp_path / "tiny-run"
    folder.mkdir()
    save_checkpoint(folder / "model.safetensors", model)
    tok.save(folder / "tokenizer.json")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "EMBER_API_KEY": ""}
    proc = subprocess.Popen([sys.executable, "-m", "ember.cli.main", "serve", str(folder), "--port", str(port),
                             "--max-batch", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        url = f"http://127.0.0.1:{port}"

        def up():
            try:
                return httpx.get(url + "/health").status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                return False

        wait_for(up, "ember serve to answer", timeout=60)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, _strict_response_validation=True)
        assert [m.id for m in client.models.list().data] == ["tiny-run"]
        got = client.completions.create(model="tiny-run", prompt="over", max_tokens=6, temperature=0)
        assert got.choices[0].text == greedy("over", 6)
    finally:
        proc.terminate()
        proc.wait(20)


def test_ember_serve_names_a_missing_folder(tmp_path, capsys):
    from ember.cli.main import main

    assert main(["serve", str(tmp_path / "nothing")]) == 1
    assert "no such checkpoint folder" in capsys.readouterr().err


def test_ember_serve_says_which_extra_to_install_when_uvicorn_is_missing(tmp_path, monkeypatch, capsys):
    from ember.cli.main import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an environment without it gives: ImportError
    assert main(["serve", str(tmp_path)]) == 1
    assert "pip install 'ember[serve]'" in capsys.readouterr().err


def test_a_body_past_the_limit_is_refused_with_413_and_the_server_serves_on(server):
    from ember.serve.app import MAX_BODY_BYTES

    big = b'{"model": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    assert_openai_error(post(server, "/v1/completions", raw=big), 413, code="request_too_large")

    def chunks():  # no declared length: the limit holds as the body arrives
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    streamed = httpx.post(server.url + "/v1/completions", content=chunks(),
                          headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert_openai_error(streamed, 413, code="request_too_large")
    ok = post(server, "/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": 2})
    assert ok.status_code == 200
