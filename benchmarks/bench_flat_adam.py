"""Issue 12's "one flat parameter buffer": per-tensor fused Adam calls against one call over a flat buffer.

Three contenders, interleaved, 200 rounds, medians (`python benchmarks/bench_flat_adam.py`): the fused
kernel called once per parameter (what ember does), one call over a flat buffer into which the gradients
are first copied (what a flat optimizer needs while backward writes each gradient as its own array), and
one call with no copy (the bound if backward wrote every gradient straight into a view of the buffer).
Shapes: the MNIST MLP 784-256-128-10 and nanoGPT's CPU-recipe GPT.

Dry run (20 rounds): python benchmarks/bench_flat_adam.py --quick
Writes benchmarks/results/flat_adam.json, .md and .png (flat_adam_quick.* with --quick); it has no README
section (the README quotes its figures in prose). ``ember bench --only flat_adam`` runs it as an entry.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ember.benchmarking import (  # noqa: E402
    Bars, Benchmark, Outcome, RunOptions, machine_info, machine_line, publish, results_path, rounds)
from ember.kernels import optim as K  # noqa: E402

F32 = np.float32
MLP = [(256, 784), (256,), (128, 256), (128,), (10, 128), (10,)]
GPT = [(65, 128), (64, 128)] + [(128,), (384, 128), (128, 128), (128,), (512, 128), (128, 512)] * 4 + [(128,)]
# b1, b2, step, eps, decay, wd, tiny
ARGS = (F32(0.9), F32(0.999), F32(1e-3), F32(1e-8), F32(1.0), F32(0.0), F32(np.finfo(F32).tiny))
SHAPES = {"MLP": MLP, "GPT": GPT}
ROUNDS, QUICK_ROUNDS = 200, 20
BASELINE = "per-tensor"


def contenders(shapes):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(F32) for s in shapes]
    grads = [rng.standard_normal(s).astype(F32) for s in shapes]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    n = sum(p.size for p in params)
    flat_p, flat_g, flat_m, flat_v = (np.zeros(n, F32) for _ in range(4))

    def per_tensor():
        for p, g, (m, v) in zip(params, grads, moments):
            K.adam(p, g, m, v, *ARGS)

    def flat_with_copy():
        np.concatenate([g.reshape(-1) for g in grads], out=flat_g)
        K.adam(flat_p, flat_g, flat_m, flat_v, *ARGS)

    def flat_views():
        K.adam(flat_p, flat_g, flat_m, flat_v, *ARGS)

    return n, {BASELINE: per_tensor, "flat, gradients copied in": flat_with_copy, "flat, no copy": flat_views}


def measure(name: str, shapes, n_rounds: int) -> dict:
    n, fns = contenders(shapes)
    timings = rounds(fns, n_rounds, warmup=1)
    us = timings.medians(1e6)
    print(f"{name}: {n} parameters in {len(shapes)} tensors: " + ", ".join(f"{k} {v:.0f} µs" for k, v in us.items()),
          flush=True)
    return {"shapes": name, "parameters": n, "tensors": len(shapes), "us_per_step": us,
            "ratio_to_per_tensor_median": timings.ratios(BASELINE)}


def markdown(rows: list[dict]) -> str:
    names = list(rows[0]["us_per_step"])
    lines = ["| shapes | parameters | tensors | " + " | ".join(f"{k} (µs)" for k in names) + " | "
             + " | ".join(f"{k} / {BASELINE}" for k in names if k != BASELINE) + " |",
             "|---|---:|---:|" + "---:|" * (2 * len(names) - 1)]
    for r in rows:
        cells = [r["shapes"], f"{r['parameters']:,}", str(r["tensors"]),
                 *(f"{r['us_per_step'][k]:.0f}" for k in names),
                 *(f"{r['ratio_to_per_tensor_median'][k]:.2f}" for k in names if k != BASELINE)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; {r['rounds']} interleaved rounds, medians; "
            f"`python benchmarks/bench_flat_adam.py` (results in `{path}`).")
    return meta, markdown(r["results"])


def render_loaded(r: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    return ", ".join(f"{x['shapes']}: flat with the copy / per-tensor "
                     f"{x['ratio_to_per_tensor_median']['flat, gradients copied in']:.2f}x" for x in r["results"])


def chart(r: dict) -> Bars:
    return Bars("Fused Adam: per tensor or over one flat buffer", "µs per optimizer step (lower is faster)",
                {f"{x['shapes']} ({x['parameters']:,} parameters)": x["us_per_step"] for x in r["results"]},
                note=r["machine"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help=f"interleaved rounds (default {ROUNDS})")
    parser.add_argument("--quick", action="store_true", help=f"a dry run: {QUICK_ROUNDS} rounds")
    parser.add_argument("--out", default=None, help="default results/flat_adam.json")
    parser.add_argument("--update-readme", action="store_true", help=argparse.SUPPRESS)  # it has no README section
    args = parser.parse_args(argv)
    if args.update_readme:
        parser.error("--update-readme: this benchmark has no README section (the README quotes it in prose)")
    args.rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    return args


def bench(args) -> Outcome:
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    report = {"benchmark": "bench_flat_adam", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
              "machine_info": info, "rounds": args.rounds, "quick": args.quick,
              "results": [measure(name, shapes, args.rounds) for name, shapes in SHAPES.items()]}
    out = Path(args.out) if args.out else results_path("flat_adam", quick=args.quick)
    files = publish(None, report, out, 0, render_idle, render_loaded, False, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("flat_adam")))


def main(argv=None) -> None:
    bench(parse_args(argv))


BENCHMARK = Benchmark(name="flat_adam", title="Fused Adam per tensor against one call over a flat buffer",
                      run=run)

if __name__ == "__main__":
    main()
