"""The code model's training step and decoding speed: ember against the same model in PyTorch (issue 13, item 4).

The model is the code model's shape (6 layers, 6 heads, n_embd 384, context 256, a byte-level BPE of 8,192
tokens, GELU tanh; batch 8), with a plain residual, mHC with 4 streams and the 2-stream closed form mhc2.
The rival is ``ember.testing.torch_gpt``: the same GPT written plainly in PyTorch (``scaled_dot_product_attention``),
its hyper-connections written again from the formulas, holding ember's weights (``copy_gpt_weights``).

Measured:

* ms per training iteration and tokens per second (forward, backward, clipping at 1.0, AdamW with ember's
  parameter groups), both frameworks on the same batches from the same weights; the contenders take turns
  in ``--rounds`` interleaved rounds of ``--steps`` iterations each (every mode, ember then PyTorch, in each
  round), so each round's machine load touches all of them; medians of per-round ratios: ember over PyTorch
  for each mode, and each mode's step over the plain model's, per framework (the mHC step cost);
* decoding: tokens per second of greedy generation of 256 new tokens after a one-token prompt (the whole
  sequence fits the context of 256, so ember's KV cache serves every step), for the plain and the mHC n = 4
  model: ember with its cache (``model.generate(..., use_cache=True)``) and without, and PyTorch recomputing
  the context every token, as nanoGPT's generate does (the twin has no cache).

Batches are random token ids: the step time does not depend on what the tokens are. Nothing here trains a
model to a loss; the first step's losses of both frameworks are recorded as a check that they start equal.

Full run (on an otherwise idle machine; several minutes on 2 cores):
  python benchmarks/bench_code_model.py --update-readme
Dry run on tiny shapes (seconds): python benchmarks/bench_code_model.py --quick --out /tmp/bench.json
Options: [--rounds 5] [--steps 3] [--new-tokens 256] [--torch-threads N] [--quick] [--out PATH] [--update-readme]
Writes benchmarks/results/bench_code_model.json, .md and .png (with --quick: bench_code_model_quick.*), and the
README section between the ``bench_code_model`` markers with --update-readme. ``ember bench --only code_model``
runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

from ember.benchmarking import (Bars, Benchmark, Outcome, RunOptions, machine_info, machine_line, median_ratios,
                                publish, results_path, rounds, streaming, usable_cores, refuse_dry_run_in_readme)
from ember.models.gpt import GPT, GPTConfig
from ember.optim import clip_grad_norm_
from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights

MARKER = "bench_code_model"
CODE_MODEL = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=8192, gelu="tanh")
QUICK_MODEL = dict(n_layer=2, n_head=2, n_embd=16, block_size=16, vocab_size=64, gelu="tanh")
BATCH, QUICK_BATCH = 8, 2
MODES = (("plain", 1), ("mhc", 4), ("mhc2", 2))  # (residual, streams)
DECODE_MODES = (("plain", 1), ("mhc", 4))
LR, WEIGHT_DECAY, BETAS, GRAD_CLIP = 1e-3, 0.1, (0.9, 0.95), 1.0
SEED = 0


def import_torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    return torch


def mode_name(residual: str, streams: int) -> str:
    return residual if residual != "mhc" else f"mhc{streams}"


def build_pair(torch, shape: dict, residual: str, streams: int):
    """ember's GPT (float32, seed SEED) and the PyTorch twin holding its weights."""
    ember.manual_seed(SEED)
    model = GPT(GPTConfig(**shape, residual=residual, streams=streams))
    return model, copy_gpt_weights(torch, model, build_torch_gpt(torch, model.config), torch.float32)


class EmberStep:
    """One training iteration of ember: forward, backward, clipping, AdamW (ember's parameter groups)."""

    def __init__(self, model: GPT):
        self.model, self.optimizer = model, model.configure_optimizer(LR, WEIGHT_DECAY, BETAS)

    def __call__(self, x, y) -> float:
        self.model.train()
        _, loss = self.model(x, y)
        loss.backward()
        clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.item()


class TorchStep:
    """The same iteration in PyTorch, on the twin."""

    def __init__(self, torch, twin):
        self.torch, self.model = torch, twin
        self.optimizer = twin.configure_optimizer(LR, WEIGHT_DECAY, BETAS)

    def __call__(self, x, y) -> float:
        torch = self.torch
        self.model.train()
        _, loss = self.model(torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def random_batches(count: int, batch: int, shape: dict, seed: int = 1) -> list:
    """``count`` (x, y) pairs of random token ids (batch, block): the step time does not depend on the tokens."""
    rng = np.random.default_rng(seed)
    windows = rng.integers(0, shape["vocab_size"], (count, batch, shape["block_size"] + 1))
    return [(w[:, :-1].astype(np.int64), w[:, 1:].astype(np.int64)) for w in windows]


def step_rounds(torch, shape: dict, batch: int, n_rounds: int, steps: int) -> dict:
    """Every mode in both frameworks, taking turns in ``n_rounds`` rounds of ``steps`` iterations (same batches)."""
    contenders, first_loss, params = {}, {}, {}
    warm_up = random_batches(1, batch, shape, seed=0)[0]
    for residual, streams in MODES:
        name = mode_name(residual, streams)
        model, twin = build_pair(torch, shape, residual, streams)
        params[name] = model.num_parameters()
        contenders[f"ember_{name}"], contenders[f"torch_{name}"] = EmberStep(model), TorchStep(torch, twin)
        # the first step from equal weights on one batch: the two frameworks must agree (and kernels compile here)
        first_loss[name] = {f: contenders[f"{f}_{name}"](*warm_up) for f in ("ember", "torch")}
    batches = random_batches(n_rounds * steps, batch, shape)

    def progress(index, timings):
        print(f"  round {index + 1}/{n_rounds}: " + ", ".join(f"{k} {v[-1] * 1e3:.0f} ms"
                                                           for k, v in timings.per_round.items()), flush=True)

    timed = {name: streaming(lambda b, step=step: step(*b), batches) for name, step in contenders.items()}
    times = rounds(timed, n_rounds, warmup=0, calls=steps, on_round=progress).scaled(1e3)
    tokens = batch * shape["block_size"]
    training, cost = {}, {}
    for residual, streams in MODES:
        name = mode_name(residual, streams)
        ms = {f: float(np.median(times[f"{f}_{name}"])) for f in ("ember", "torch")}
        training[name] = {
            "residual": residual, "streams": streams, "params": params[name],
            "ember_ms_per_iter": ms["ember"], "torch_ms_per_iter": ms["torch"],
            "ember_tokens_per_s": tokens / ms["ember"] * 1e3, "torch_tokens_per_s": tokens / ms["torch"] * 1e3,
            "ember_over_torch_median": median_ratios({"ember": times[f"ember_{name}"],
                                                      "torch": times[f"torch_{name}"]})["ember"],
            "first_step_loss": first_loss[name],
            "ms_per_round": {f: times[f"{f}_{name}"] for f in ("ember", "torch")},
        }
        if residual != "plain":
            cost[name] = {f: median_ratios({"mode": times[f"{f}_{name}"], "plain": times[f"{f}_plain"]},
                                           to="plain")["mode"] for f in ("ember", "torch")}
    return {"rounds": n_rounds, "steps_per_round": steps, "tokens_per_iter": tokens, "modes": training,
            "step_cost_over_plain": cost}


def decoding(torch, shape: dict, new_tokens: int, n_rounds: int) -> dict:
    """Greedy tokens/s after a one-token prompt: ember with and without its KV cache, PyTorch recomputing."""
    prompt = [int(np.random.default_rng(2).integers(0, shape["vocab_size"]))]
    result = {"prompt_tokens": len(prompt), "new_tokens": new_tokens, "block_size": shape["block_size"],
              "rounds": n_rounds, "modes": {}}
    for residual, streams in DECODE_MODES:
        name = mode_name(residual, streams)
        model, twin = build_pair(torch, shape, residual, streams)
        result["modes"][name] = decode_rounds(generators(torch, model.eval(), twin.eval(), prompt), new_tokens,
                                              n_rounds)
        print(f"  decoding {name}: " + ", ".join(f"{k} {v:.0f} tokens/s"
                                                 for k, v in result["modes"][name]["tokens_per_s"].items()), flush=True)
    return result


def generators(torch, model: GPT, twin, prompt: list[int]) -> dict:
    """name -> generate(n): n greedy ids after ``prompt``."""

    def torch_uncached(n):  # nanoGPT's generate(): the whole context every token
        idx = torch.tensor([prompt])
        with torch.no_grad():
            for _ in range(n):
                idx = torch.cat([idx, twin(idx)[:, -1].argmax(-1, keepdim=True)], dim=1)
        return idx[0, len(prompt):].tolist()

    return {"ember_cached": lambda n: list(model.generate(prompt, n, temperature=0, use_cache=True)),
            "ember_uncached": lambda n: list(model.generate(prompt, n, temperature=0, use_cache=False)),
            "torch_uncached": torch_uncached}


def decode_rounds(contenders: dict, new_tokens: int, n_rounds: int) -> dict:
    """Tokens/s of each generator (median over ``n_rounds`` interleaved rounds, after a 2-token warm-up)."""
    for generate in contenders.values():
        generate(2)  # first calls: kernel compilation, allocator warm-up
    timings = rounds({name: (lambda g=generate: g(new_tokens)) for name, generate in contenders.items()}, n_rounds,
                     warmup=0)
    outputs = timings.results
    return {"tokens_per_s": {k: new_tokens / s for k, s in timings.medians().items()},
            "cached_equals_uncached": outputs["ember_cached"] == outputs["ember_uncached"],
            "ember_equals_torch_greedy": outputs["ember_cached"] == outputs["torch_uncached"]}


def markdown(r: dict) -> str:
    s = r["shape"]
    train, decode = r["training"], r["decoding"]
    lines = [
        f"| measure ({s['n_layer']} layers, {s['n_head']} heads, n_embd {s['n_embd']}, context {s['block_size']}, "
        f"vocab {s['vocab_size']}, batch {r['batch']}) | ember | PyTorch | ember / PyTorch |",
        "|---|---:|---:|---:|",
    ]
    for name, m in train["modes"].items():
        label = {"plain": "plain", "mhc2": "mHC n = 2 (closed form)"}.get(name, f"mHC n = {m['streams']}")
        lines += [
            f"| {label}: ms per training iteration ({m['params'] / 1e6:.1f}M params; median of {train['rounds']} "
            f"rounds) | {m['ember_ms_per_iter']:.0f} | {m['torch_ms_per_iter']:.0f} | "
            f"**{m['ember_over_torch_median']:.2f}x** |",
            f"| {label}: tokens per second | {m['ember_tokens_per_s']:.0f} | {m['torch_tokens_per_s']:.0f} | |",
        ]
        if name in train["step_cost_over_plain"]:
            c = train["step_cost_over_plain"][name]
            lines.append(f"| {label}: step time over plain's (median of per-round ratios) | **{c['ember']:.2f}x** | "
                         f"{c['torch']:.2f}x | |")
    for name, d in decode["modes"].items():
        t = d["tokens_per_s"]
        label = "plain" if name == "plain" else f"mHC n = {name.removeprefix('mhc')}"
        lines += [
            f"| {label}: decoding, tokens/s with the KV cache ({decode['new_tokens']} new tokens) | "
            f"{t['ember_cached']:.0f} | | |",
            f"| {label}: decoding, tokens/s recomputing the context | {t['ember_uncached']:.0f} | "
            f"{t['torch_uncached']:.0f} | {t['torch_uncached'] / t['ember_uncached']:.2f}x |",
        ]
    return "\n".join(lines)


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; PyTorch {r['torch']} with {r['torch_threads']} threads, NumPy "
            f"{r['numpy']}; `python benchmarks/bench_code_model.py` (results in `{path}`). Random token batches, the "
            "same for both; ember / PyTorch is a time ratio (below 1: ember is faster).")
    return meta, markdown(r)


def render_loaded(r: dict, path: str) -> str:
    """This benchmark has no loaded runs; a loaded file placed beside the results is only named."""
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    return "training iteration ember/PyTorch: " + ", ".join(f"{name} {m['ember_over_torch_median']:.2f}x"
                                                            for name, m in r["training"]["modes"].items())


def chart(r: dict) -> list[Bars]:
    """Two panels: ms per training iteration of each mode, decoding tokens per second."""
    s = r["shape"]
    steps = {name: {"ember": m["ember_ms_per_iter"], "PyTorch": m["torch_ms_per_iter"]}
             for name, m in r["training"]["modes"].items()}
    names = {"ember_cached": "ember, KV cache", "ember_uncached": "ember", "torch_uncached": "PyTorch"}
    decoding = {name: {names[k]: v for k, v in d["tokens_per_s"].items()} for name, d in r["decoding"]["modes"].items()}
    return [Bars(f"Code-model shape ({s['n_layer']} layers, n_embd {s['n_embd']}, context {s['block_size']}, batch "
                 f"{r['batch']}): training", "ms per iteration (lower is faster)", steps),
            Bars(f"Decoding, {r['decoding']['new_tokens']} new tokens (ember, PyTorch: recomputing the context)",
                 "tokens per second (higher is faster)", decoding, note=r["machine"])]


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("bench_code_model")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the step timing")
    parser.add_argument("--steps", type=int, default=3, help="training iterations per contender and round")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens generated per decoding run")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds of 1 step: a dry run in seconds")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="PyTorch's threads (default: the usable cores; on a busy machine its OpenMP threads wait "
                             "on each other at every op, so a dry run beside other work takes 1)")
    parser.add_argument("--out", default=None, help="default results/bench_code_model.json")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    if args.rounds < 1 or args.steps < 1:
        parser.error(f"--rounds and --steps must be at least 1, got {args.rounds} and {args.steps}")
    return args


def bench(args) -> Outcome:
    shape, batch = (QUICK_MODEL, QUICK_BATCH) if args.quick else (CODE_MODEL, BATCH)
    rounds, steps = (2, 1) if args.quick else (args.rounds, args.steps)
    new_tokens = min(args.new_tokens, shape["block_size"])  # after a 1-token prompt, every step fits the cache
    torch = import_torch(args.torch_threads or usable_cores())
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
        "torch": torch.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
        "quick": args.quick, "shape": shape, "batch": batch,
    }
    print(f"training steps: {', '.join(mode_name(*m) for m in MODES)}, ember and PyTorch ({rounds} rounds of "
          f"{steps})", flush=True)
    result["training"] = step_rounds(torch, shape, batch, rounds, steps)
    print(f"decoding {new_tokens} tokens", flush=True)
    result["decoding"] = decoding(torch, shape, new_tokens, min(rounds, 3))
    out = Path(args.out) if args.out else results_path(MARKER, 0, quick=args.quick)
    files = publish(MARKER, result, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(result), tuple(files))


BENCHMARK = Benchmark(name="code_model", title="The code model's training step (plain, mHC) and decoding",
                      run=run, marker=MARKER, rivals=("torch",))


if __name__ == "__main__":
    sys.exit(main())
