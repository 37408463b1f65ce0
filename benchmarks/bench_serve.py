"""``ember serve`` under load (issue 14, item 4): continuous batching against one request at a time, and a soak run.

The server runs in a child process (``python -m ember.cli.main serve CKPT``) on 127.0.0.1; the clients are one
asyncio process beside it, so on a small machine they share its cores: with a tiny model the HTTP and client
work, not the model, bounds the gain from batching (what the figures show, and why the code model is the one to
judge batching by). The streaming clients are ``stream_client.py``'s, HTTP/1.1 on asyncio's streams, one
keep-alive connection each: they take less of the server's cores than httpx's (its docstring has the measurement).
The soak's other requests go through httpx. Every part is bounded in requests and in time.

* Load, for 1, 4 and 16 concurrent clients, each sending streamed completions back to back (``--max-tokens``
  new tokens, sampled at temperature 0.8 with a seed per request, prompts cut from a fixed text), until
  ``--requests-per-client`` requests each (at least 16 per level: one client sends 16 in turn) or ``--seconds``
  have passed: output tokens per second (completion tokens from the usage chunks over the wall time of the
  level), time to first token p50/p95 (request sent to first text chunk, client side), and the server's mean
  decode batch (from /metrics). Against two servers of the
  same checkpoint, both up at once: continuous batching (``--max-batch 16``) and one at a time (``--max-batch
  1``). Every (server, clients) level runs once per round, in ``--load-rounds`` rounds (every other one in
  reverse order); tokens/s is the median over the rounds and the gains are medians of per-round ratios.
* Soak: ``--soak`` requests (default 1,000) from 16 clients against the batching server, every 10th one
  malformed (invalid JSON, unknown model, out-of-range fields, a prompt longer than the context, ...), a third of
  the good ones streamed: successes, 4xx answers to the malformed ones, anything else (a wrong status, a dropped
  connection, a timeout: "lost"), and the server's resident memory (VmRSS, its HTTP process and the engine's
  process together) after a warm-up and after the soak.
* Decode only (``--decode-only`` runs just this): batch-1 greedy decoding in this process, tokens per second of
  ``GPT.generate`` and of the serving engine at batch 1 (the scheduler's own cost, no HTTP).
  ``decode_contenders()`` is where other runtimes join; benchmarks/bench_decode_runtimes.py compares ember with
  llama.cpp and transformers on the exported model.

The checkpoint: ``--ckpt`` (a run folder of ``ember train gpt``), else a small character model trained here in
seconds (on Tiny Shakespeare when $EMBER_DATA has it, else on generated text).

  python benchmarks/bench_serve.py [--ckpt DIR] [--update-readme]      (minutes; on an otherwise idle machine)
  python benchmarks/bench_serve.py --quick                             (a dry run in seconds)
Writes benchmarks/results/serve.json, .md and .png (--quick: serve_quick.*), and with --update-readme the README
section between the ``bench_serve`` markers. ``ember bench --only serve`` runs it as an entry of the harness
(ember alone: it runs with ``--against none`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: F401, I001
import numpy as np

from stream_client import Connection, WrongStatus, streamed_completion  # noqa: E402
from ember.benchmarking import (REPO, Bars, Benchmark, Measured, Outcome, RunOptions, machine_info, machine_line,
                                publish, results_path, rounds, refuse_dry_run_in_readme)

MARKER = "bench_serve"
CLIENT_LEVELS = (1, 4, 16)
SERVERS = {"continuous": 16, "one_at_a_time": 1}  # name -> --max-batch
MALFORMED_EVERY = 10
MIN_REQUESTS = 16  # per load level at least (so 1 client sends 16 in turn): a level of 4 requests lasted ~1 s
CODE_MODEL = REPO / "runs" / "code-plain"  # issue 13's code model, where compute (not HTTP) dominates
TRAIN = dict(n_layer=4, n_head=4, n_embd=128, block_size=128, max_iters=150)
QUICK_TRAIN = dict(n_layer=1, n_head=2, n_embd=32, block_size=64, max_iters=10)
PROMPT_TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n")


# -- the checkpoint ------------------------------------------------------------------------------------------
def training_text(folder: Path) -> str:
    """Tiny Shakespeare when it is on disk (no download), else generated words: a --data argument."""
    from ember.data.registry import DatasetError, locate

    try:
        locate("tinyshakespeare", "input.txt", download=False)
        return "shakespeare-char"
    except DatasetError:
        rng = np.random.default_rng(0)
        words = ["speak", "citizen", "first", "all", "hear", "me", "proceed", "further", "die", "famish", "you"]
        path = folder / "words.txt"
        path.write_text(" ".join(rng.choice(words, 40_000)) + "\n" + PROMPT_TEXT * 20, encoding="utf-8")
        return str(path)


def train_small_model(folder: Path, shape: dict) -> Path:
    from ember.cli.main import main as ember_main

    out = folder / "serve-bench-char"
    argv = ["train", "gpt", "--data", training_text(folder), "--tokenizer", "char", "--out", str(out),
            "--batch-size", "8", "--eval-iters", "1", "--eval-interval", "100000", "--warmup-iters", "5",
            "--no-progress"]
    for key, value in shape.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    started = time.perf_counter()
    if ember_main(argv) != 0:
        raise SystemExit("training the benchmark's model failed")
    print(f"trained {out.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return out


def describe_model(ckpt: Path) -> dict:
    from ember.train.lm import load_lm

    model, tok, _ = load_lm(ckpt)
    c = model.config
    return {"name": ckpt.resolve().name, "params": model.num_parameters(), "n_layer": c.n_layer, "n_embd": c.n_embd,
            "context": c.block_size, "vocab_size": c.vocab_size}


# -- the server -------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(ckpt: Path, max_batch: int, log_folder: Path, engine: str = "process"):
    """``ember serve`` in a child process (``--engine``: ``engine``): (base url, pid) once /health answers 200."""
    import httpx

    port = free_port()
    log = open(log_folder / f"serve-{max_batch}-{engine}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "ember.cli.main", "serve", str(ckpt), "--port", str(port),
                             "--max-batch", str(max_batch), "--max-queue", "256", "--engine", engine],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env={**os.environ, "EMBER_API_KEY": ""})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"ember serve exited with {proc.returncode}: see {log.name}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"ember serve did not become healthy in 120 s: see {log.name}")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def rss_mb(pid: int) -> float:
    """The resident memory (VmRSS) in MB of a process and all its descendants: the server's HTTP process and the
    engine's process it spawns, which holds the model and the KV cache."""
    total = 0.0
    for one in process_tree(pid):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
                break
        else:
            raise RuntimeError(f"no VmRSS in /proc/{one}/status")
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc/<pid>/task/<tid>/children (Linux)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def server_metrics(url: str) -> dict[str, float]:
    """The unlabelled samples of /metrics, by name."""
    import httpx

    out = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


# -- clients ---------------------------------------------------------------------------------------------
def prompts(count: int, seed: int = 0) -> list[str]:
    """Prompts cut from a fixed text: 8 to 40 characters starting anywhere."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        start = int(rng.integers(0, len(PROMPT_TEXT) - 40))
        out.append(PROMPT_TEXT[start : start + int(rng.integers(8, 40))])
    return out


REQUEST_TIMEOUT_S = 120.0
STREAM_ERRORS = (OSError, EOFError, RuntimeError, ValueError, asyncio.TimeoutError)  # a request lost or refused


async def streamed(conn: Connection, model: str, prompt: str, max_tokens: int, seed: int) -> dict:
    """One streamed completion on ``conn`` (stream_client.py), bounded in time; a connection left in an unknown
    state by a failure is closed (the next request opens another)."""
    try:
        return await asyncio.wait_for(streamed_completion(conn, model, prompt, max_tokens, seed), REQUEST_TIMEOUT_S)
    except BaseException:
        await conn.close()
        raise


async def load_level(url: str, model: str, clients: int, per_client: int, max_tokens: int, seconds: float) -> dict:
    """``clients`` concurrent clients, each on a connection of its own (stream_client.py), sending requests back to
    back until ``per_client`` each or the deadline."""
    texts = prompts(clients * per_client, seed=clients)
    results, errors = [], []
    deadline = time.perf_counter() + seconds

    async def client(k: int) -> None:
        conn = Connection(url)
        try:
            for i in range(per_client):
                if time.perf_counter() > deadline:
                    return
                try:
                    results.append(await streamed(conn, model, texts[k * per_client + i], max_tokens,
                                                  seed=k * 1000 + i))
                except STREAM_ERRORS as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - started
    tokens = sum(r["tokens"] for r in results)
    ttfts = np.array([r["ttft"] for r in results])
    ttft = ttfts if results else np.array([np.nan])
    return {"clients": clients, "requests": len(results), "errors": len(errors), "first_errors": errors[:3],
            "output_tokens": tokens, "seconds": wall, "output_tokens_per_s": tokens / wall, "ttfts": ttfts,
            "ttft_p50_s": float(np.percentile(ttft, 50)), "ttft_p95_s": float(np.percentile(ttft, 95))}


def malformed_request(k: int, model: str, context: int) -> tuple[bytes | dict, str]:
    """The k-th malformed request (cycling through the kinds): (body, kind). Each must get a 4xx."""
    kinds = [
        (b"{\"model\": ", "invalid JSON"),
        ({"prompt": "a"}, "no model"),
        ({"model": "no-such-model", "prompt": "a"}, "unknown model"),
        ({"model": model, "prompt": "a", "max_tokens": 0}, "max_tokens 0"),
        ({"model": model, "prompt": "a", "max_tokens": context + 1}, "max_tokens past the context"),
        ({"model": model, "prompt": "a", "temperature": -1}, "negative temperature"),
        ({"model": model, "prompt": "e" * (context + 5)}, "prompt longer than the context"),
        ({"model": model, "prompt": "a", "frobnicate": 1}, "unknown field"),
        ({"model": model, "prompt": "a", "n": 10_000}, "n past max_batch"),
        ({"model": model, "prompt": ["a", "b"]}, "two prompts"),
        ({"model": model, "prompt": "a", "stop": ["a", "b", "c", "d", "e"]}, "five stop strings"),
    ]
    return kinds[k % len(kinds)]


async def soak(url: str, model: str, context: int, total: int, clients: int, max_tokens: int, seconds: float) -> dict:
    """``total`` requests, every MALFORMED_EVERY-th malformed, from ``clients`` concurrent clients."""
    import httpx

    texts = prompts(total, seed=99)
    counts = {"ok": 0, "rejected_4xx": 0, "wrong_status": 0, "lost": 0, "not_sent": 0}
    problems: list[str] = []
    queue = list(range(total))
    deadline = time.perf_counter() + seconds

    async def one(i: int, http, conn: Connection) -> None:
        if i % MALFORMED_EVERY == MALFORMED_EVERY - 1:
            body, kind = malformed_request(i // MALFORMED_EVERY, model, context)
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            response = await http.post(url + "/v1/completions", content=content,
                                       headers={"Content-Type": "application/json"})
            good = 400 <= response.status_code < 500 and set(response.json().get("error", {})) >= {"message", "type"}
            counts["rejected_4xx" if good else "wrong_status"] += 1
            if not good:
                problems.append(f"malformed ({kind}) got {response.status_code}")
            return
        if i % 3 == 0:
            await streamed(conn, model, texts[i], max_tokens, seed=i)
            counts["ok"] += 1
            return
        body = {"model": model, "prompt": texts[i], "max_tokens": max_tokens, "temperature": 0.8, "seed": i}
        response = await http.post(url + "/v1/completions", json=body)
        good = response.status_code == 200 and isinstance(response.json()["choices"][0]["text"], str)
        counts["ok" if good else "wrong_status"] += 1
        if not good:
            problems.append(f"good request got {response.status_code}: {response.text[:120]}")

    async def client(http) -> None:
        conn = Connection(url)
        try:
            while queue:
                i = queue.pop(0)
                if time.perf_counter() > deadline:
                    counts["not_sent"] += 1
                    continue
                try:
                    await one(i, http, conn)
                except WrongStatus as exc:
                    counts["wrong_status"] += 1
                    problems.append(f"request {i}: {exc}")
                except (httpx.HTTPError, *STREAM_ERRORS) as exc:
                    counts["lost"] += 1
                    problems.append(f"request {i}: {type(exc).__name__}: {exc}")
        finally:
            await conn.close()

    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"requests": total, "malformed": sum(i % MALFORMED_EVERY == MALFORMED_EVERY - 1 for i in range(total)),
            "clients": clients, "seconds": wall, **counts, "first_problems": problems[:5]}


# -- the parts -----------------------------------------------------------------------------------------------
def load_comparison(ckpt: Path, model: str, folder: Path, per_client: int, max_tokens: int, seconds: float,
                    rounds_n: int) -> dict:
    """Both servers up at once; in each of ``rounds_n`` rounds every (server, clients) level runs once, every other
    round in reverse order, so that a drift of the machine's speed favours no level. Per level: the median
    tokens/s over the rounds and time-to-first-token percentiles over all its requests."""
    measured: dict = {name: {str(c): [] for c in CLIENT_LEVELS} for name in SERVERS}
    order = [(name, clients) for name in SERVERS for clients in CLIENT_LEVELS]
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(server(ckpt, max_batch, folder))[0] for name, max_batch in SERVERS.items()}
        for url in urls.values():
            asyncio.run(load_level(url, model, 2, 1, 4, seconds))  # warm-up
        for r in range(rounds_n):
            for name, clients in order if r % 2 == 0 else order[::-1]:
                url = urls[name]
                before = server_metrics(url)
                each = max(per_client, -(-MIN_REQUESTS // clients))  # every level long enough to time
                level = asyncio.run(load_level(url, model, clients, each, max_tokens, seconds))
                after = server_metrics(url)
                steps = after["ember_decode_steps_total"] - before["ember_decode_steps_total"]
                rows = after["ember_decode_rows_total"] - before["ember_decode_rows_total"]
                level["mean_decode_batch"] = rows / steps if steps else 0.0
                measured[name][str(clients)].append(level)
                print(f"  round {r + 1}: {name} (--max-batch {SERVERS[name]}), {clients:>2} clients: "
                      f"{level['output_tokens_per_s']:.0f} tokens/s, TTFT p50 {level['ttft_p50_s'] * 1e3:.0f} ms "
                      f"p95 {level['ttft_p95_s'] * 1e3:.0f} ms, mean decode batch {level['mean_decode_batch']:.1f}, "
                      f"{level['requests']} requests, {level['errors']} errors", flush=True)
    return {name: {c: merge_levels(levels) for c, levels in per.items()} for name, per in measured.items()}


def merge_levels(levels: list[dict]) -> dict:
    """One load level's rounds as one row: median tokens/s (and each round's), TTFT percentiles over every
    request, sums of requests and errors."""
    ttft = np.concatenate([lv.pop("ttfts") for lv in levels])
    ttft = ttft if ttft.size else np.array([np.nan])
    return {"clients": levels[0]["clients"], "rounds": len(levels),
            "requests": sum(lv["requests"] for lv in levels), "errors": sum(lv["errors"] for lv in levels),
            "first_errors": [e for lv in levels for e in lv["first_errors"]][:3],
            "output_tokens": sum(lv["output_tokens"] for lv in levels),
            "output_tokens_per_s": float(np.median([lv["output_tokens_per_s"] for lv in levels])),
            "round_tokens_per_s": [lv["output_tokens_per_s"] for lv in levels],
            "ttft_p50_s": float(np.percentile(ttft, 50)), "ttft_p95_s": float(np.percentile(ttft, 95)),
            "mean_decode_batch": float(np.median([lv["mean_decode_batch"] for lv in levels]))}


def round_ratio(a: dict, b: dict) -> float:
    """The median over rounds of a's tokens/s over b's in the same round."""
    return float(np.median(np.array(a["round_tokens_per_s"]) / np.array(b["round_tokens_per_s"])))


def soak_run(ckpt: Path, model: str, context: int, folder: Path, total: int, max_tokens: int, seconds: float) -> dict:
    with server(ckpt, SERVERS["continuous"], folder) as (url, pid):
        asyncio.run(soak(url, model, context, 50, 16, max_tokens, seconds))  # warm-up: allocations settle
        time.sleep(1.0)
        before = rss_mb(pid)
        result = asyncio.run(soak(url, model, context, total, 16, max_tokens, seconds))
        time.sleep(1.0)
        after = rss_mb(pid)
        health = server_metrics(url)
    result.update(rss_before_mb=before, rss_after_mb=after, rss_ratio=after / before,
                  active_rows_after=health.get("ember_active_rows"), queue_after=health.get("ember_queue_length"))
    print(f"  soak: {result['ok']} ok, {result['rejected_4xx']} 4xx (of {result['malformed']} malformed), "
          f"{result['wrong_status']} wrong status, {result['lost']} lost, {result['not_sent']} not sent in time; "
          f"RSS {before:.0f} -> {after:.0f} MB in {result['seconds']:.0f} s", flush=True)
    return result


def decode_contenders(model, tok) -> dict:
    """name -> decode(prompt ids, n) -> (seconds, tokens) for n greedy tokens at batch 1: the hook where other
    runtimes join (benchmarks/bench_decode_runtimes.py runs llama.cpp and transformers on the exported model)."""
    from ember.serve.engine import Engine, SamplingParams

    engine = Engine(model, tok, max_batch=1)

    def generate(prompt, n):
        start = time.perf_counter()
        count = sum(1 for _ in model.generate(prompt, n, temperature=0))
        return time.perf_counter() - start, count

    def served(prompt, n):
        start = time.perf_counter()
        request = engine.submit(prompt, SamplingParams(max_tokens=n, temperature=0.0))
        while engine.step():
            pass
        return time.perf_counter() - start, request.completion_tokens

    return {"ember_generate": generate, "ember_engine_batch1": served}


def decode_speed(ckpt: Path, n_rounds: int) -> dict:
    from ember.train.lm import load_lm

    model, tok, _ = load_lm(ckpt)
    contenders = decode_contenders(model, tok)
    prompt = tok.encode(PROMPT_TEXT[:8])
    n = model.config.block_size - len(prompt)
    for decode in contenders.values():
        decode(prompt, 4)  # warm-up

    def counted(name, decode):  # a decoder that stops short would look fast: refuse it
        def call():
            took, count = decode(prompt, n)
            if count != n:
                raise RuntimeError(f"{name} decoded {count} tokens, not {n}")
            return Measured(took, count)
        return call

    timings = rounds({name: counted(name, d) for name, d in contenders.items()}, n_rounds, warmup=0)
    speeds = {name: n / s for name, s in timings.medians().items()}
    print("  decode, batch 1: " + ", ".join(f"{k} {v:.0f} tokens/s" for k, v in speeds.items()), flush=True)
    return {"new_tokens": n, "rounds": n_rounds, "tokens_per_s": speeds}


# -- the report --------------------------------------------------------------------------------------------------
def markdown(r: dict) -> str:
    m = r["model"]
    lines = [f"| {m['name']} ({m['params'] / 1e6:.2f}M params, context {m['context']}), {r['settings']['max_tokens']} "
             "new tokens per request | clients | output tokens/s | TTFT p50 / p95 (ms) | mean decode batch |",
             "|---|---:|---:|---:|---:|"]
    for name, levels in r.get("load", {}).items():
        label = {"continuous": "continuous batching (--max-batch 16)",
                 "one_at_a_time": "one at a time (--max-batch 1)"}[name]
        for clients, lv in levels.items():
            lines.append(f"| {label} | {clients} | {lv['output_tokens_per_s']:.0f} | {lv['ttft_p50_s'] * 1e3:.0f} / "
                         f"{lv['ttft_p95_s'] * 1e3:.0f} | {lv['mean_decode_batch']:.1f} |")
    if "load" in r:
        g = r["gains"]
        rounds = next(iter(r["load"]["continuous"].values())).get("rounds")
        how = (f" (medians of per-round ratios over {rounds} interleaved rounds; tokens/s: medians over the rounds)"
               if rounds else "")
        lines.append(f"\nContinuous batching at 16 clients: **{g['continuous_16_over_1']:.2f}x** its one-client "
                     f"throughput, **{g['continuous_over_one_at_a_time_16']:.2f}x** the one-at-a-time server's{how}.")
    if "soak" in r:
        s = r["soak"]
        lines.append(f"\nSoak: {s['requests']} requests from {s['clients']} clients in {s['seconds']:.0f} s, "
                     f"{s['malformed']} malformed: {s['ok']} succeeded, {s['rejected_4xx']} answered 4xx, "
                     f"{s['wrong_status']} wrong status, {s['lost']} lost, {s['not_sent']} not sent in time; "
                     f"server RSS {s['rss_before_mb']:.0f} MB after warm-up, {s['rss_after_mb']:.0f} MB after "
                     f"({(s['rss_ratio'] - 1) * 100:+.1f}%).")
    if "decode" in r:
        d = r["decode"]
        speeds = ", ".join(f"{k} {v:.0f}" for k, v in d["tokens_per_s"].items())
        lines.append(f"\nBatch-1 greedy decoding of {d['new_tokens']} tokens, tokens/s: {speeds}.")
    return "\n".join(lines)


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; server and clients on the same machine; "
            f"`python benchmarks/bench_serve.py` (results in `{path}`).")
    return meta, "\n\n".join(markdown(run) for run in r["runs"])


def render_loaded(r: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    first = r["runs"][0]
    if "gains" not in first:
        return f"{first['model']['name']}: decoding " + ", ".join(
            f"{k} {v:.0f} tokens/s" for k, v in first["decode"]["tokens_per_s"].items())
    parts = [f"{run['model']['name']}: batching at 16 clients {run['gains']['continuous_16_over_1']:.2f}x one "
             f"client's throughput" for run in r["runs"] if "gains" in run]
    if "soak" in first:
        parts.append(f"soak {first['soak']['lost']} lost of {first['soak']['requests']}")
    return "; ".join(parts)


def chart(r: dict) -> Bars | None:
    groups = {}
    for run in r["runs"]:
        for name, levels in run.get("load", {}).items():
            for clients, level in levels.items():
                label = f"{run['model']['name']}, {clients} client{'' if clients == '1' else 's'}"
                groups.setdefault(label, {})[
                    {"continuous": "continuous batching", "one_at_a_time": "one at a time"}[name]] = \
                    level["output_tokens_per_s"]
    if not groups:
        return None
    return Bars("ember serve: output tokens per second by concurrent clients", "output tokens/s (higher is better)",
                groups, note=r["machine"])


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("serve")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", action="append", default=None,
                        help="a run folder; repeat for several (default: a small char model trained here, then "
                             "runs/code-plain, the code model, when it exists); the soak runs on the first")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per load request (default 64)")
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=120.0, help="time limit of each load level and of the soak")
    parser.add_argument("--soak", type=int, default=1000, help="requests in the soak run (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the decode-only timing")
    parser.add_argument("--load-rounds", type=int, default=3,
                        help="interleaved rounds of the load levels (default 3); gains are medians of per-round ratios")
    parser.add_argument("--decode-only", action="store_true", help="only the in-process batch-1 decoding")
    parser.add_argument("--quick", action="store_true", help="a tiny model, few requests: a dry run in seconds")
    parser.add_argument("--out", default=None)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    if args.quick:
        args.max_tokens, args.requests_per_client, args.soak, args.rounds, args.load_rounds = 16, 2, 60, 1, 2
        args.seconds = min(args.seconds, 30.0)
    return args


def bench(args) -> Outcome:
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
              "quick": args.quick, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ckpts = [Path(c) for c in args.ckpt] if args.ckpt else [None]
        if not args.ckpt and not args.quick and CODE_MODEL.is_dir():
            ckpts.append(CODE_MODEL)
        for i, given in enumerate(ckpts):
            ckpt = given or train_small_model(folder, QUICK_TRAIN if args.quick else TRAIN)
            print(f"model: {ckpt if given else 'a small char model trained here'}", flush=True)
            result["runs"].append(bench_one(ckpt, given, folder, args, soak=i == 0))
    out = Path(args.out) if args.out else results_path("serve", 0, quick=args.quick)
    files = publish(MARKER, result, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(result), tuple(files))


def bench_one(ckpt: Path, given, folder: Path, args, soak: bool) -> dict:
    """The load comparison, the soak (``soak``) and the decode timing of one checkpoint."""
    model = describe_model(ckpt)
    result = {"ckpt": str(given) if given else "trained here", "model": model,
              "settings": {"max_tokens": args.max_tokens, "requests_per_client": args.requests_per_client,
                           "seconds": args.seconds, "client_levels": list(CLIENT_LEVELS)}}
    if not args.decode_only:
        print("load: streamed completions, continuous batching against one at a time", flush=True)
        result["load"] = load_comparison(ckpt, model["name"], folder, args.requests_per_client, args.max_tokens,
                                         args.seconds, args.load_rounds)
        cont, single = result["load"]["continuous"], result["load"]["one_at_a_time"]
        result["gains"] = {"continuous_16_over_1": round_ratio(cont["16"], cont["1"]),
                           "continuous_over_one_at_a_time_16": round_ratio(cont["16"], single["16"])}
        if soak:
            print(f"soak: {args.soak} requests, every {MALFORMED_EVERY}th malformed", flush=True)
            result["soak"] = soak_run(ckpt, model["name"], model["context"], folder, args.soak, 16, args.seconds)
    result["decode"] = decode_speed(ckpt, args.rounds)
    return result


BENCHMARK = Benchmark(name="serve", title="ember serve under load: continuous batching, a soak run, batch-1 decoding",
                      run=run, marker=MARKER, requires=("httpx", "starlette", "uvicorn"))

if __name__ == "__main__":
    sys.exit(main())
