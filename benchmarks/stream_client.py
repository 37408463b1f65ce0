"""A lean load generator for streamed completions: HTTP/1.1 on asyncio's streams, one keep-alive connection per
client.

On a 2-core machine the clients share the server's cores, so what they spend per token is taken from the engine.
Measured on 2026-11-30 (one ``ember serve`` of the code model, 16 clients streaming 3 requests each of 64 tokens,
httpx and this client alternating over 3 rounds): httpx (the ``openai`` client's transport, which the server's
tests use) spent 0.18 of a core and this client 0.05, and the server delivered 714 against 772 tokens/s (median
of the rounds). It reads what ``ember serve`` sends: a status line, headers,
and a body in chunked transfer encoding (a stream) or of a Content-Length (an error), and the server-sent events
of the body, ``data: {json}`` separated by blank lines, wherever the chunk boundaries fall.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit


class WrongStatus(RuntimeError):
    """The server answered a request that should succeed with another status."""


class Connection:
    """One keep-alive HTTP/1.1 connection to ``url``'s host, for one request at a time; opened on first use and
    again after the server closed it."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.reader, self.writer = self.writer, None, None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str]]:
        """Send a JSON POST; returns the status and the headers (lower-case names)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
        status_line = await self.reader.readline()
        if not status_line:
            await self.close()
            raise ConnectionError("the server closed the connection before answering")
        fields = status_line.split()
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or not fields[1].isdigit():
            raise ConnectionError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(fields[1]), headers

    async def body(self, headers: dict[str, str]):
        """The response body's pieces as they arrive; the connection is left ready for the next request (or
        closed, when the server said so)."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                piece = await self.reader.readexactly(size + 2)
                yield piece[:-2]
        elif "content-length" in headers:
            yield await self.reader.readexactly(int(headers["content-length"]))
        else:  # a body that ends with the connection
            yield await self.reader.read()
            await self.close()
            return
        if headers.get("connection", "").lower() == "close":
            await self.close()


def server_sent_data(pending: bytes, piece: bytes) -> tuple[list[bytes], bytes]:
    """The ``data:`` payloads of the events completed by ``piece``, and what is left over for the next piece."""
    *events, rest = (pending + piece).replace(b"\r\n", b"\n").split(b"\n\n")
    return [line[5:].lstrip(b" ") for event in events for line in event.split(b"\n") if line.startswith(b"data:")], \
        rest


async def streamed_completion(conn: Connection, model: str, prompt: str, max_tokens: int, seed: int) -> dict:
    """One streamed completion, as ``bench_serve`` sends them: {"ttft", "seconds", "tokens", "text"}; the tokens
    from the usage chunk, the time to first token to the first chunk with text."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
            "stream": True, "stream_options": {"include_usage": True}}
    sent = time.perf_counter()
    status, headers = await conn.post("/v1/completions", json.dumps(body).encode())
    if status != 200:
        text = b"".join([piece async for piece in conn.body(headers)])
        raise WrongStatus(f"status {status}: {text[:200]!r}")
    first, tokens, texts, pending = None, None, [], b""
    async for piece in conn.body(headers):
        payloads, pending = server_sent_data(pending, piece)
        for payload in payloads:
            if payload == b"[DONE]":
                continue
            chunk = json.loads(payload)
            if chunk["choices"] and chunk["choices"][0]["text"]:
                texts.append(chunk["choices"][0]["text"])
                if first is None:
                    first = time.perf_counter() - sent
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    if tokens is None:
        raise RuntimeError("the stream ended without a usage chunk")
    return {"ttft": first if first is not None else time.perf_counter() - sent,
            "seconds": time.perf_counter() - sent, "tokens": tokens, "text": "".join(texts)}
