"""Batch-1 greedy decoding of one model in ember, in llama.cpp (its GGUF export) and in transformers (its Hugging
Face export), side by side (issue 14, item 4), with the exports' agreement on the code model.

The model is a trained ``ember train gpt`` run folder (default ``runs/code-plain``, the code model of issue 13:
6 layers, n_embd 384, context 256, BPE 8,192, GELU tanh). It is exported to GGUF (F32) and to a Hugging Face
folder in a temporary directory; each runtime then decodes greedily from the same prompt until the context is
full, in ``--rounds`` interleaved rounds, with the same number of threads:

* ember: ``GPT.generate(prompt, n, temperature=0)`` with its KV cache;
* llama.cpp: ``llama-cpp-python`` in a child process (F32 KV cache), prompt evaluated first, only the n decode
  steps timed (the argmax of its logits fed back one token at a time);
* transformers: ``GPT2LMHeadModel.generate(do_sample=False, min_new_tokens=n)`` (its KV cache), under
  ``torch.no_grad``.

Also measured once: llama.cpp's logits against ember's over the first 32 greedy tokens, and how many leading
greedy tokens each runtime shares with ember.

  python benchmarks/bench_decode_runtimes.py [--ckpt runs/code-plain] [--rounds 3] [--threads N] [--update-readme]
  python benchmarks/bench_decode_runtimes.py --quick   (a tiny random model, seconds)
Writes benchmarks/results/bench_decode_runtimes.json, .md and .png (--quick: bench_decode_runtimes_quick.*).
``ember bench --only decode_runtimes`` runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

from ember.benchmarking import (REPO, Bars, Benchmark, Measured, Outcome, RunOptions, machine_info, machine_line,
                                publish, results_path, rounds, usable_cores, refuse_dry_run_in_readme)

MARKER = "bench_decode_runtimes"
DEFAULT_CKPT = REPO / "runs" / "code-plain"
PROMPT = "def fibonacci(n):\n"
PARITY_TOKENS = 32


def quick_model():
    """A tiny random char-level GPT (GELU tanh) and its tokenizer: a dry run of the whole benchmark."""
    from ember.models.gpt import GPT, GPTConfig
    from ember.text import CharTokenizer

    tok = CharTokenizer(sorted(set(PROMPT + "abcdefghijklmnopqrstuvwxyz ():=+-\n")))
    ember.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32, gelu="tanh"))
    for p in model.parameters():  # decisive logits, so that greedy decoding is not a tie-break contest
        p.data *= 8
    return model.eval(), tok


def exports(model, tok, folder: Path) -> dict:
    from ember.io.export import export_gguf, export_hf

    return {"gguf": export_gguf(model, tok, folder / "model.gguf"), "hf": export_hf(model, tok, folder / "hf")}


def contenders(model, prompt: list[int], paths: dict, threads: int) -> dict:
    """name -> decode(n): (n greedy ids, seconds of decoding)."""
    import torch
    from transformers import GPT2LMHeadModel

    from ember.testing.llama_cpp_runner import run_llama_cpp

    torch.set_num_threads(threads)
    hf = GPT2LMHeadModel.from_pretrained(paths["hf"]).eval()

    def ember_decode(n):
        start = time.perf_counter()
        ids = list(model.generate(prompt, n, temperature=0))
        return ids, time.perf_counter() - start

    def llama_decode(n):
        answer = run_llama_cpp(paths["gguf"], {"decode": {"prompt": prompt, "n": n}}, threads=threads)["decode"]
        return answer["tokens"], answer["seconds"]

    def hf_decode(n):
        x = torch.tensor([prompt])
        start = time.perf_counter()
        with torch.no_grad():
            out = hf.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n,
                              min_new_tokens=n, pad_token_id=0)
        return out[0, len(prompt):].tolist(), time.perf_counter() - start

    return {"ember": ember_decode, "llama.cpp": llama_decode, "transformers": hf_decode}


def leading_equal(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def llama_parity(model, prompt: list[int], path) -> dict:
    from ember.testing.llama_cpp_runner import run_llama_cpp

    answer = run_llama_cpp(path, {"greedy": {"prompt": prompt, "n": PARITY_TOKENS}})
    mine = list(model.generate(prompt, PARITY_TOKENS, temperature=0))
    seq = np.array([prompt + mine[:-1]])
    want = model(seq).numpy()[0].astype(np.float64)
    got = np.asarray(answer["logits"])[:, : model.config.vocab_size]
    return {"greedy_tokens_equal": leading_equal(answer["greedy"], mine), "of": PARITY_TOKENS,
            "max_abs_logit_diff": float(np.abs(got - want).max()), "logit_scale": float(np.abs(want).max())}


def measure(model, tok, n_rounds: int, threads: int) -> dict:
    prompt = tok.encode(PROMPT)
    n = model.config.block_size - len(prompt)

    def progress(index, timings):
        speeds = ", ".join(f"{k} {n / v[-1]:.0f} tokens/s" for k, v in timings.per_round.items())
        print(f"  round {index + 1}/{n_rounds}: {speeds}", flush=True)

    def self_timed(decode):  # each runtime times its own decoding (llama.cpp's child process: not its start-up)
        return lambda: Measured(*reversed(decode(n)))

    with tempfile.TemporaryDirectory() as tmp:
        paths = exports(model, tok, Path(tmp))
        parity = llama_parity(model, prompt, paths["gguf"])
        runs = contenders(model, prompt, paths, threads)
        for decode in runs.values():
            decode(4)  # warm-up: first calls compile kernels, fill allocators
        timings = rounds({name: self_timed(decode) for name, decode in runs.items()}, n_rounds, warmup=0,
                         on_round=progress)
    outputs = timings.results
    ratios = {name: timings.ratio("ember", to=name) for name in runs if name != "ember"}
    return {"new_tokens": n, "prompt_tokens": len(prompt), "rounds": n_rounds,
            "tokens_per_s": {k: n / s for k, s in timings.medians().items()},
            "speed_over_ember_median": ratios,
            "greedy_equal_to_ember": {k: leading_equal(v, outputs["ember"]) for k, v in outputs.items()
                                      if k != "ember"},
            "llama_cpp_parity": parity}


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; {r['threads']} threads each; llama-cpp-python "
            f"{r['versions']['llama_cpp']}, transformers {r['versions']['transformers']} on PyTorch "
            f"{r['versions']['torch']}; `python benchmarks/bench_decode_runtimes.py` (results in `{path}`).")
    d, p = r["decoding"], r["decoding"]["llama_cpp_parity"]
    lines = [f"| {r['model']}: batch-1 greedy decoding, {d['new_tokens']} new tokens | tokens/s | speed over ember's "
             f"(median of {d['rounds']} rounds) | leading greedy tokens equal to ember's |", "|---|---:|---:|---:|"]
    for name, tps in d["tokens_per_s"].items():
        ratio = "1" if name == "ember" else f"{d['speed_over_ember_median'][name]:.2f}x"
        same = "" if name == "ember" else f"{d['greedy_equal_to_ember'][name]} of {d['new_tokens']}"
        lines.append(f"| {name} | {tps:.0f} | {ratio} | {same} |")
    lines.append(f"\nllama.cpp (F32 GGUF, F32 KV cache) against ember on this model: {p['greedy_tokens_equal']} of "
                 f"{p['of']} greedy tokens equal, logits within {p['max_abs_logit_diff']:.1e} (largest logit "
                 f"{p['logit_scale']:.1f}).")
    return meta, "\n".join(lines)


def render_loaded(r: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    d = r["decoding"]
    return f"ember {d['tokens_per_s']['ember']:.0f} tokens/s; speed over ember's: " + ", ".join(
        f"{name} {ratio:.2f}x" for name, ratio in d["speed_over_ember_median"].items())


def chart(r: dict) -> Bars:
    d = r["decoding"]
    return Bars(f"Batch-1 greedy decoding, {r['model']}", "tokens per second (higher is faster)",
                {f"{d['new_tokens']} new tokens, {r['threads']} threads": d["tokens_per_s"]}, note=r["machine"])


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv(MARKER)))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default=None, help=f"a run folder (default {DEFAULT_CKPT.relative_to(REPO)})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="threads for every runtime (default: usable cores)")
    parser.add_argument("--quick", action="store_true", help="a tiny random model: a dry run in seconds")
    parser.add_argument("--out", default=None)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    if not args.quick and not (Path(args.ckpt) if args.ckpt else DEFAULT_CKPT).is_dir():
        parser.error(f"no run folder at {args.ckpt or DEFAULT_CKPT}: train the code model first "
                     "(benchmarks/code_model_report.py names the command) or pass --ckpt")
    return args


def bench(args) -> Outcome:
    if args.quick:
        model, tok = quick_model()
        name = "tiny random char model"
    else:
        from ember.train.lm import load_lm

        ckpt = Path(args.ckpt) if args.ckpt else DEFAULT_CKPT
        model, tok, _ = load_lm(ckpt)
        name = f"{ckpt.name} ({model.num_parameters() / 1e6:.1f}M parameters)"
    threads = args.threads or usable_cores()
    import llama_cpp
    import torch
    import transformers

    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
              "threads": threads, "model": name, "quick": args.quick,
              "versions": {"llama_cpp": llama_cpp.__version__, "transformers": transformers.__version__,
                           "torch": torch.__version__, "numpy": np.__version__},
              "decoding": measure(model, tok, 1 if args.quick else args.rounds, threads)}
    out = Path(args.out) if args.out else results_path(MARKER, 0, quick=args.quick)
    files = publish(MARKER, result, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(result), tuple(files))


BENCHMARK = Benchmark(name="decode_runtimes", title="Batch-1 greedy decoding: ember, llama.cpp (GGUF), "
                                                    "transformers (Hugging Face export)",
                      run=run, marker=MARKER, rivals=("llama_cpp", "transformers", "torch"))


if __name__ == "__main__":
    sys.exit(main())
