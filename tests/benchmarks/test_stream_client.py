"""benchmarks/stream_client.py, the serving benchmark's load generator: against a scripted HTTP server (events cut
anywhere by the chunk boundaries, keep-alive and closed connections, error answers, a stream cut short) and against
``ember serve``'s app, where it must read the same text and token counts as httpx."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
sc = pytest.importorskip("stream_client")


def sse(*chunks) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def text_chunk(text):
    return {"choices": [{"index": 0, "text": text, "finish_reason": None}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}
STREAM = sse(text_chunk(""), text_chunk("he"), text_chunk("ll"), text_chunk("o"), USAGE)


def chunked(body: bytes, cuts: list[int]) -> bytes:
    """``body`` in chunked transfer encoding, cut at the given offsets."""
    out, last = b"", 0
    for cut in [*cuts, len(body)]:
        piece = body[last:cut]
        if piece:
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        last = cut
    return out + b"0\r\n\r\n"


class Scripted:
    """An HTTP server on 127.0.0.1 answering each request with the next scripted response (raw bytes; None: close
    the connection without answering); counts the connections it accepted."""

    def __init__(self, responses: list[bytes | None]):
        self.responses, self.connections = list(responses), 0

    async def handle(self, reader, writer):
        self.connections += 1
        while self.responses:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            response = self.responses.pop(0)
            if response is None:
                break
            writer.write(response)
            await writer.drain()
            if b"connection: close" in response.lower().split(b"\r\n\r\n")[0]:
                break
        writer.close()

    async def run(self, client):
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = sc.Connection(f"http://127.0.0.1:{port}")
        try:
            return await client(conn)
        finally:
            await conn.close()
            server.close()
            await server.wait_closed()


def ok(body: bytes, cuts=(), close=False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n" + extra + b"\r\n"
            + chunked(body, list(cuts)))


def completion(conn):
    return sc.streamed_completion(conn, "m", "p", 3, seed=0)


@pytest.mark.parametrize("cuts", [[], [3], [7, 8, 9, 40, 41], list(range(1, len(STREAM))),
                                  [STREAM.index(b"\n\n") + 1]])
def test_events_are_read_wherever_the_chunks_cut_them(cuts):
    got = asyncio.run(Scripted([ok(STREAM, cuts)]).run(completion))
    assert got["text"] == "hello" and got["tokens"] == 3
    assert 0 <= got["ttft"] <= got["seconds"]


def test_crlf_separated_events():
    got = asyncio.run(Scripted([ok(STREAM.replace(b"\n", b"\r\n"), [5, 61])]).run(completion))
    assert got["text"] == "hello" and got["tokens"] == 3


def test_requests_share_a_kept_alive_connection_and_reopen_a_closed_one():
    server = Scripted([ok(STREAM), ok(STREAM, close=True), ok(STREAM)])

    async def three(conn):
        return [await completion(conn) for _ in range(3)]

    assert [r["text"] for r in asyncio.run(server.run(three))] == ["hello"] * 3
    assert server.connections == 2


def test_an_error_answer_raises_wrong_status_with_its_body_and_the_connection_serves_on():
    error = json.dumps({"error": {"message": "max_tokens must be at least 1", "type": "invalid_request_error"}})
    refused = f"HTTP/1.1 400 Bad Request\r\ncontent-length: {len(error)}\r\n\r\n{error}".encode()
    server = Scripted([refused, ok(STREAM)])

    async def both(conn):
        with pytest.raises(sc.WrongStatus, match="status 400.*max_tokens must be at least 1"):
            await completion(conn)
        return await completion(conn)

    assert asyncio.run(server.run(both))["text"] == "hello"
    assert server.connections == 1


@pytest.mark.parametrize("response", [None, ok(STREAM)[:-30], ok(sse(text_chunk("a")))],
                         ids=["closed unanswered", "cut mid-stream", "no usage chunk"])
def test_a_broken_answer_raises_instead_of_hanging(response):
    with pytest.raises((OSError, EOFError, RuntimeError)):
        asyncio.run(asyncio.wait_for(Scripted([response]).run(completion), 10))


# -- against ember serve -------------------------------------------------------------------------------------------
def test_the_served_text_and_counts_equal_what_httpx_reads():
    httpx = pytest.importorskip("httpx")
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    import ember
    from ember.models.gpt import GPT, GPTConfig
    from ember.serve.app import create_app
    from ember.serve.engine import Engine
    from ember.text import CharTokenizer

    tok = CharTokenizer.train("the quick brown fox jumps over the lazy dog.")
    ember.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=48, n_layer=1, n_head=2, n_embd=16)).eval()
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data += (rng.standard_normal(p.shape) * 0.5).astype(p.data.dtype)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(lambda: Engine(model, tok, max_batch=4), "tiny"),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

        async def streamed(conn):
            return [await sc.streamed_completion(conn, "tiny", prompt, 20, seed=seed)
                    for prompt, seed in (("the qu", 1), ("a lazy", 2), ("fox", 3))]

        got = asyncio.run(streamed(sc.Connection(url)))
        for (prompt, seed), streamed_one in zip((("the qu", 1), ("a lazy", 2), ("fox", 3)), got):
            whole = httpx.post(url + "/v1/completions", json={"model": "tiny", "prompt": prompt, "max_tokens": 20,
                                                              "temperature": 0.8, "seed": seed}).json()
            assert streamed_one["text"] == whole["choices"][0]["text"]
            assert streamed_one["tokens"] == whole["usage"]["completion_tokens"] == 20
    finally:
        server.should_exit = True
        thread.join(10)
