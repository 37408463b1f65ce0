"""The serving engine with HTTP and without (issue 14's analysis): what the engine decodes alone, what changes
where it runs, and what parts of a decode step cost against what they replaced.

* Engine alone, no HTTP: output tokens per second of requests of ``--max-tokens`` sampled tokens (temperature 0.8,
  a seed each, prompts as bench_serve.py's), 16 at a time (a finished one replaced at once, 32 requests in all)
  and one at a time (8 requests), the engine driven in this thread (``Engine.step``) and in a process of its own
  through its pipe (``serve.worker.EngineProcess``, what ``ember serve`` runs).
* Parts of a 16-row decode step, each against what it replaced: a prompt's 12-token chunk in the decode rows'
  forward (``GPT.forward_last``) against a forward of its own; the rows sampled in one pass (``sample_rows``, the
  draw compiled) against ``sample_next`` row by row (the same ids: tests/models/test_gpt.py); the tanh GELU's
  compiled forward against NumPy's passes (``kernels.use("numpy")``); a whole 16-row decode step with the
  attention's queries split over two threads (``kernels.pair``) against one.
* Servers: ``ember serve --engine thread`` against ``--engine process`` (16 rows each, both up at once), 1 and 16
  streaming clients as bench_serve.py's load levels (clients in this process, on the same cores).

Every part runs in interleaved rounds (every other one in reverse order); ratios are medians of per-round ratios.
The model: ``--ckpt``, else runs/code-plain (the code model) when it exists, else a small char model trained here.

  python benchmarks/bench_serve_engine.py [--ckpt DIR] [--update-readme]   (about 5 minutes; an idle machine)
  python benchmarks/bench_serve_engine.py --quick                          (a dry run)
Writes benchmarks/results/serve_engine.json, .md and .png (serve_engine_quick.* with --quick), and with
--update-readme the README section between the ``bench_serve_engine`` markers. ``ember bench --only
serve_engine`` runs it as an entry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ember  # noqa: E402, F401  (first: ember's runtime settings precede NumPy's import)
import numpy as np  # noqa: E402

import bench_serve  # noqa: E402
from ember.benchmarking import (  # noqa: E402
    Bars, Benchmark, Measured, Outcome, RunOptions, machine_info, machine_line, publish, results_path, rounds,
    refuse_dry_run_in_readme)

MARKER = "bench_serve_engine"
CONCURRENT, TOTAL, ALONE = 16, 32, 8  # requests at a time and in all; requests one at a time
ENGINES = ("thread", "process")
CLIENTS = (1, 16)


# -- the engine alone ------------------------------------------------------------------------------------------------
def drive(submit, pump, tok, texts: list[str], concurrent: int, total: int, max_tokens: int) -> Measured:
    """``total`` requests, ``concurrent`` at a time (each finished one replaced at once), through ``submit(prompt,
    params)``; ``pump()`` advances the engine (a step in this thread, or a wait for the process's next events).
    Measured(seconds, output tokens)."""
    from ember.serve.engine import Done, SamplingParams

    def start(i):
        return submit(tok.encode(texts[i % len(texts)]), SamplingParams(max_tokens=max_tokens, temperature=0.8,
                                                                        seed=i))

    began = time.perf_counter()
    active, sent, tokens = [start(i) for i in range(min(concurrent, total))], min(concurrent, total), 0
    while active:
        pump()
        still = []
        for request in active:
            done = [e for e in request.drain() if isinstance(e, Done)]
            if not done:
                still.append(request)
                continue
            tokens += done[0].completion_tokens
            if sent < total:
                still.append(start(sent))
                sent += 1
        active = still
    return Measured(time.perf_counter() - began, tokens)


def engine_alone(ckpt: Path, n_rounds: int, max_tokens: int) -> dict:
    from ember.serve.engine import Engine
    from ember.serve.worker import EngineProcess, engine_from_run
    from ember.train.lm import load_lm

    model, tok, _ = load_lm(ckpt)
    texts = bench_serve.prompts(TOTAL, seed=5)
    local = Engine(model, tok, max_batch=CONCURRENT)
    woken = threading.Event()

    def wait_for_events():
        woken.wait(1.0)
        woken.clear()

    remote = EngineProcess(functools.partial(engine_from_run, ckpt, max_batch=CONCURRENT)).start()
    try:
        ways = {"thread": (local.submit, local.step),
                "process": (functools.partial(remote.submit, notify=woken.set), wait_for_events)}
        contenders = {}
        for where, (submit, pump) in ways.items():
            for label, concurrent, total in ((f"{CONCURRENT} at a time", CONCURRENT, TOTAL),
                                             ("one at a time", 1, ALONE)):
                contenders[f"{where}, {label}"] = functools.partial(drive, submit, pump, tok, texts, concurrent,
                                                                    total, max_tokens)
        tokens: dict = {name: [] for name in contenders}

        def count(index, timings):
            for name in contenders:
                tokens[name].append(timings.results[name])

        timings = rounds(contenders, n_rounds, warmup=1, alternate=True, on_round=count)
    finally:
        remote.stop()
    per_round = {name: [n / s for n, s in zip(tokens[name], timings.per_round[name])] for name in contenders}
    out = {"tokens_per_s": {name: float(np.median(v)) for name, v in per_round.items()},
           "round_tokens_per_s": per_round}
    ratio = lambda a, b: float(np.median(np.array(per_round[a]) / np.array(per_round[b])))  # noqa: E731
    out["batching_gain"] = {w: ratio(f"{w}, {CONCURRENT} at a time", f"{w}, one at a time") for w in ENGINES}
    out["process_over_thread"] = {k: ratio(f"process, {k}", f"thread, {k}")
                                  for k in (f"{CONCURRENT} at a time", "one at a time")}
    print("engine alone, tokens/s: " + ", ".join(f"{k} {v:.0f}" for k, v in out["tokens_per_s"].items()), flush=True)
    return out


# -- parts of a decode step -------------------------------------------------------------------------------------------
def step_parts(ckpt: Path, n_rounds: int) -> dict:
    """Changes to a 16-row decode step, each against what it replaced, in this process: a prompt's chunk in the
    decode rows' forward (``forward_last``) against a forward of its own; sampling the rows in one pass against row
    by row; the tanh GELU's compiled forward against NumPy's passes; a whole decode step (16 rows, 40 cached
    positions each, as bench_serve's requests) with its attention's queries split over two threads
    (``kernels.pair``) against one."""
    from ember import kernels
    from ember.kernels import attention as attention_kernels
    from ember.models.gpt import sample_next, sample_rows
    from ember.nn import functional as F
    from ember.train.lm import load_lm

    model, tok, _ = load_lm(ckpt)
    c = model.config
    rng = np.random.default_rng(0)
    cache = model.new_cache(batch=CONCURRENT)
    held = min(40, c.block_size // 2)
    model.forward_cached(rng.integers(0, c.vocab_size, (CONCURRENT, held)), cache)
    decoding = [[int(t)] for t in rng.integers(0, c.vocab_size, CONCURRENT - 1)]
    chunk = [int(t) for t in rng.integers(0, c.vocab_size, 12)]  # a prompt of bench_serve's length, in one chunk
    rows = list(range(CONCURRENT))
    default_split = attention_kernels.SPLIT_KEYS

    def one_forward():
        model.forward_last(decoding + [chunk], cache, rows)
        cache.lengths[:] = held

    def two_forwards():
        model.forward_last(decoding, cache, rows[:-1])
        model.forward_cached(np.array([chunk]), cache, rows=rows[-1:], last_only=True)
        cache.lengths[:] = held

    logits = rng.standard_normal((CONCURRENT, c.vocab_size))
    generators = [np.random.default_rng(i) for i in range(CONCURRENT)]
    t, none = [0.8] * CONCURRENT, [None] * CONCURRENT

    def together():
        sample_rows(logits, t, none, none, generators)

    def one_by_one():
        for r in range(CONCURRENT):
            sample_next(logits[r], 0.8, None, None, generators[r])

    hidden = ember.tensor(rng.standard_normal((CONCURRENT, 4 * c.n_embd)).astype(np.float32))

    def gelu(backend):
        def call():
            with kernels.use(backend):
                F.gelu(hidden, approximate="tanh")
        return call

    def decode_step(split_keys):
        def call():
            attention_kernels.SPLIT_KEYS = split_keys
            try:
                model.forward_last(decoding + [[1]], cache, rows)
            finally:
                attention_kernels.SPLIT_KEYS = default_split
                cache.lengths[:] = held
        return call

    pairs = {"prompt chunk in the step's forward": (one_forward, two_forwards),
             f"sampling {CONCURRENT} rows of {c.vocab_size:,} classes": (together, one_by_one),
             f"tanh GELU of {CONCURRENT} x {4 * c.n_embd}": (gelu("numba"), gelu("numpy")),
             f"{CONCURRENT}-row decode step, attention over two threads": (decode_step(default_split),
                                                                           decode_step(1 << 60))}
    out = {}
    for name, (new, old) in pairs.items():
        if (name.startswith("tanh") or "two threads" in name) and "numba" not in kernels.available():
            continue
        timings = rounds({"now": new, "before": old}, max(n_rounds, 10), warmup=2, calls=10, alternate=True)
        ms = timings.medians(1e3)
        out[name] = {"now_ms": ms["now"], "before_ms": ms["before"], "speedup": timings.ratio("before", "now")}
        print(f"{name}: {ms['before']:.2f} -> {ms['now']:.2f} ms ({out[name]['speedup']:.2f}x)", flush=True)
    return out


# -- servers ---------------------------------------------------------------------------------------------------------
def servers(ckpt: Path, model: str, n_rounds: int, max_tokens: int, seconds: float) -> dict:
    folder = Path(tempfile.mkdtemp())
    order = [(engine, clients) for clients in CLIENTS for engine in ENGINES]
    measured = {f"{e}, {c}": [] for e, c in order}
    with contextlib.ExitStack() as stack:
        urls = {e: stack.enter_context(bench_serve.server(ckpt, CONCURRENT, folder, engine=e))[0] for e in ENGINES}
        for url in urls.values():
            asyncio.run(bench_serve.load_level(url, model, 2, 1, 4, seconds))  # warm-up
        for r in range(n_rounds):
            for engine, clients in order if r % 2 == 0 else order[::-1]:
                each = max(4, -(-bench_serve.MIN_REQUESTS // clients))
                level = asyncio.run(bench_serve.load_level(urls[engine], model, clients, each, max_tokens, seconds))
                measured[f"{engine}, {clients}"].append(level["output_tokens_per_s"])
                print(f"  round {r + 1}: --engine {engine}, {clients:>2} clients: {level['output_tokens_per_s']:.0f} "
                      f"tokens/s, {level['errors']} errors", flush=True)
    ratio = lambda a, b: float(np.median(np.array(measured[a]) / np.array(measured[b])))  # noqa: E731
    return {"tokens_per_s": {k: float(np.median(v)) for k, v in measured.items()}, "round_tokens_per_s": measured,
            "process_over_thread": {str(c): ratio(f"process, {c}", f"thread, {c}") for c in CLIENTS},
            "batching_gain": {e: ratio(f"{e}, 16", f"{e}, 1") for e in ENGINES}}


# -- the report ------------------------------------------------------------------------------------------------------
def markdown(r: dict) -> str:
    e, s, v = r["engine_alone"], r["step_parts"], r.get("servers")
    lines = [f"| {r['model']['name']} ({r['model']['params'] / 1e6:.2f}M params), {r['max_tokens']} new tokens per "
             "request | engine in a thread | engine in its own process | process / thread |",
             "|---|---:|---:|---:|"]
    for k in (f"{CONCURRENT} at a time", "one at a time"):
        lines.append(f"| engine alone, {k} (tokens/s) | {e['tokens_per_s'][f'thread, {k}']:.0f} | "
                     f"{e['tokens_per_s'][f'process, {k}']:.0f} | {e['process_over_thread'][k]:.2f}x |")
    lines.append(f"| engine alone, {CONCURRENT} at a time over one at a time | {e['batching_gain']['thread']:.2f}x | "
                 f"{e['batching_gain']['process']:.2f}x | |")
    if v:
        for c in CLIENTS:
            lines.append(f"| ember serve, {c} streaming client{'s' if c > 1 else ''} (tokens/s) | "
                         f"{v['tokens_per_s'][f'thread, {c}']:.0f} | {v['tokens_per_s'][f'process, {c}']:.0f} | "
                         f"{v['process_over_thread'][str(c)]:.2f}x |")
        lines.append(f"| ember serve, 16 clients over 1 | {v['batching_gain']['thread']:.2f}x | "
                     f"{v['batching_gain']['process']:.2f}x | |")
    lines += ["", f"| part of a {CONCURRENT}-row decode step | before (ms) | now (ms) | speed-up |",
              "|---|---:|---:|---:|"]
    lines += [f"| {name} | {p['before_ms']:.2f} | {p['now_ms']:.2f} | {p['speedup']:.2f}x |" for name, p in s.items()]
    return "\n".join(lines)


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; {r['rounds']} interleaved rounds, medians of per-round "
            f"ratios; `python benchmarks/bench_serve_engine.py` (results in `{path}`).")
    return meta, markdown(r)


def render_loaded(r: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    e = r["engine_alone"]
    text = f"engine alone: {CONCURRENT} at a time {e['batching_gain']['process']:.2f}x one at a time"
    if r.get("servers"):
        text += f"; ember serve, process/thread at 16 clients {r['servers']['process_over_thread']['16']:.2f}x"
    return text


def chart(r: dict) -> Bars:
    groups = {f"engine alone, {k}": {w: r["engine_alone"]["tokens_per_s"][f"{w}, {k}"] for w in ENGINES}
              for k in (f"{CONCURRENT} at a time", "one at a time")}
    if r.get("servers"):
        groups.update({f"ember serve, {c} clients": {w: r["servers"]["tokens_per_s"][f"{w}, {c}"] for w in ENGINES}
                       for c in CLIENTS})
    return Bars("The serving engine in a thread and in its own process", "tokens/s (higher is faster)", groups,
                note=r["machine"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=None, help="a run folder (default: runs/code-plain when it exists, else "
                                                     "a small char model trained here)")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per request (default 64)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of each part (default 4)")
    parser.add_argument("--seconds", type=float, default=120.0, help="time limit of each server load level")
    parser.add_argument("--no-servers", action="store_true", help="the engine and the step's parts only (no HTTP)")
    parser.add_argument("--quick", action="store_true", help="a tiny model, 2 rounds of 16 new tokens: a dry run")
    parser.add_argument("--out", default=None)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    if args.quick:
        args.rounds, args.max_tokens, args.seconds = 2, 16, min(args.seconds, 30.0)
    return args


def bench(args) -> Outcome:
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.ckpt:
            ckpt = Path(args.ckpt)
        elif not args.quick and bench_serve.CODE_MODEL.is_dir():
            ckpt = bench_serve.CODE_MODEL
        else:
            ckpt = bench_serve.train_small_model(Path(tmp), bench_serve.QUICK_TRAIN if args.quick
                                                 else bench_serve.TRAIN)
        model = bench_serve.describe_model(ckpt)
        print(f"model: {model['name']} ({model['params']:,} parameters)", flush=True)
        report = {"benchmark": "bench_serve_engine", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
                  "machine_info": info, "quick": args.quick, "rounds": args.rounds, "max_tokens": args.max_tokens,
                  "model": model,
                  "engine_alone": engine_alone(ckpt, args.rounds, args.max_tokens),
                  "step_parts": step_parts(ckpt, args.rounds)}
        if not args.no_servers:
            report["servers"] = servers(ckpt, model["name"], args.rounds, args.max_tokens, args.seconds)
    out = Path(args.out) if args.out else results_path("serve_engine", quick=args.quick)
    files = publish(MARKER, report, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("serve_engine")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


BENCHMARK = Benchmark(name="serve_engine", title="The serving engine alone, in a thread and in its own process, "
                                                 "and parts of its decode step", run=run, marker=MARKER,
                      requires=("httpx", "starlette", "uvicorn"))

if __name__ == "__main__":
    sys.exit(main())
