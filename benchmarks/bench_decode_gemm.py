"""The decode loop's Linear layers: ``x @ W.T`` (the Linear op, as training runs it) against ``(W @ x.T).T``, the
decode loop itself (``ember.models.gpt._linear``: ``(W @ x.T).T`` for one row, ``kernels.rows``' compiled product
from 2 to ``MOST_ROWS`` rows, ``(W @ x.T).T`` again up to ``FEW_ROWS``, the op above), its int8 form, and
PyTorch's ``F.linear`` on the same shapes.

The shapes are the code model's (6 layers of 384 wide, MLP 1,536, vocabulary 8,192): per forward, for each layer
the QKV, attention-output, MLP-in and MLP-out products, then the head, all with the same number of rows: 1 (one
request decoding), 4 and 8 (a few), 16 (a full batch of the server), 32, 64 and 128 (prefill chunks; the decode
loop's head takes only their last row, which this does not model). The weights of a forward (55 MB) do not fit
the caches, as in a real step: each shape timed alone, with its weight cached, flatters ``(W @ x.T).T`` (2.2x at
16 rows, here).
Float32 weights as stored ((out, in), C order), default BLAS threads, PyTorch with as many. Contenders
interleaved, each settled by ``SETTLE_S`` of untimed forwards before its timed ones (after the compiled kernels,
or any 10 ms pause, BLAS ran 1.5-1.7x slower here for 20-40 ms: timed at once, it lost to whatever ran before it),
medians of per-round ratios.

  python benchmarks/bench_decode_gemm.py            (about 5 minutes; an otherwise idle machine)
  python benchmarks/bench_decode_gemm.py --quick    (a dry run in seconds)
Writes benchmarks/results/decode_gemm.json, .md and .png (decode_gemm_quick.* with --quick); it has no README
section (the README quotes it in prose). ``ember bench --only decode_gemm`` runs it as an entry.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ember  # noqa: E402, F401  (first: ember's runtime settings precede NumPy's import)
import numpy as np  # noqa: E402

from ember import nn, threads  # noqa: E402
from ember.benchmarking import (  # noqa: E402
    Bars, Benchmark, Outcome, RunOptions, machine_info, machine_line, publish, results_path, rounds)
from ember.compress.quant import QuantizedLinear  # noqa: E402
from ember.kernels import rows as rows_kernels  # noqa: E402
from ember.models.gpt import FEW_ROWS, _linear, _linear_transposed, _run  # noqa: E402
from ember.ops import linalg as L  # noqa: E402

WIDTH, HIDDEN, VOCAB, LAYERS = 384, 1536, 8192, 6
ROWS = (1, 4, 8, 16, 32, 64, 128)
ROUNDS, QUICK_ROUNDS = 40, 3
SETTLE_S = 0.1  # untimed forwards before each timed span, this long: after the compiled kernels BLAS ran 1.5x slower
#                for 20-40 ms, and 5 settling forwards still left the contender after int8's 10-40% behind
BASELINE = "x @ W.T (Linear op)"
TRANSPOSED = "(W @ x.T).T"
DECODE = "decode loop"
INT8 = "decode loop, int8 weights"
TORCH = "PyTorch F.linear"


def layers(rng) -> list[nn.Linear]:
    """One forward's Linear layers, weights drawn as nanoGPT initialises them."""
    shapes = [(WIDTH, 3 * WIDTH), (WIDTH, WIDTH), (WIDTH, HIDDEN), (HIDDEN, WIDTH)] * LAYERS + [(WIDTH, VOCAB)]
    out = []
    for fan_in, fan_out in shapes:
        layer = nn.Linear(fan_in, fan_out, bias=fan_out != VOCAB)
        layer.weight.data[...] = rng.standard_normal(layer.weight.shape).astype(np.float32) * 0.02
        out.append(layer)
    return out


def contenders(rows: int, torch) -> dict:
    rng = np.random.default_rng(rows)
    model = layers(rng)
    xs = {layer.in_features: rng.standard_normal((rows, layer.in_features)).astype(np.float32) for layer in model}

    def op():
        for layer in model:
            args = (layer.weight.data,) if layer.bias is None else (layer.weight.data, layer.bias.data)
            _run(L.Linear, xs[layer.in_features], *args)

    def transposed():
        for layer in model:
            _linear_transposed(xs[layer.in_features], layer)

    def decode():
        for layer in model:
            _linear(xs[layer.in_features], layer)

    quantized = [QuantizedLinear.from_float(layer) for layer in model]

    def decode_int8():
        for layer in quantized:
            _linear(xs[layer.in_features], layer)

    found = {BASELINE: op, TRANSPOSED: transposed, DECODE: decode, INT8: decode_int8}
    if torch is not None:  # (imported with OMP_WAIT_POLICY=PASSIVE: its idle threads must not spin on our cores)
        tw = [(torch.from_numpy(layer.weight.data), None if layer.bias is None else torch.from_numpy(layer.bias.data))
              for layer in model]
        tx = {k: torch.from_numpy(v) for k, v in xs.items()}
        linear = torch.nn.functional.linear

        def torch_linear():
            with torch.no_grad():
                for w, b in tw:
                    linear(tx[w.shape[1]], w, b)

        found[TORCH] = torch_linear
    return found


def check_equal(rows: int) -> float:
    """Both forms of the decode loop's products equal the Linear op's (largest relative difference)."""
    rng = np.random.default_rng(rows)
    worst = 0.0
    for layer in layers(rng):
        x = rng.standard_normal((rows, layer.in_features)).astype(np.float32)
        args = (layer.weight.data,) if layer.bias is None else (layer.weight.data, layer.bias.data)
        want = _run(L.Linear, x, *args)
        for got in (_linear(x, layer), _linear_transposed(x, layer)):
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
        int8 = QuantizedLinear.from_float(layer)  # against the float product with the int8 layer's own weights
        args = (int8.weight.data,) if int8.bias is None else (int8.weight.data, int8.bias.data)
        want = _run(L.Linear, x, *args)
        worst = max(worst, float(np.abs(_linear(x, int8) - want).max() / np.abs(want).max()))
    if worst > 1e-5:
        raise SystemExit(f"bench_decode_gemm: the decode loop's Linear differs from the op's by {worst:.2e}")
    return worst


def measure(rows: int, torch, n_rounds: int) -> dict:
    timings = rounds(contenders(rows, torch), n_rounds, warmup=2, calls=5, alternate=True, settle=SETTLE_S)
    ms = timings.medians(1e3)
    ratios = timings.ratios(BASELINE)
    print(f"{rows:>3} rows: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()), flush=True)
    out = {"rows": rows, "ms_per_forward": ms, "speedup_over_op": {k: 1 / v for k, v in ratios.items()},
           "int8_over_float_decode": 1 / timings.ratios(DECODE)[INT8], "max_relative_difference": check_equal(rows)}
    if torch is not None:
        out["ratio_to_torch"] = {k: v for k, v in timings.ratios(TORCH).items()}
    return out


def markdown(r: dict) -> str:
    names = list(r["results"][0]["ms_per_forward"])
    lines = ["| rows | " + " | ".join(f"{k} (ms)" for k in names) + " | (W @ x.T).T / op speed-up | decode loop / op "
             "speed-up | int8 / float decode loop speed-up |" + (" decode loop / PyTorch time |" if TORCH in names
                                                                  else ""),
             "|---:|" + "---:|" * (len(names) + 3 + (TORCH in names))]
    for x in r["results"]:
        cells = [str(x["rows"]), *(f"{x['ms_per_forward'][k]:.2f}" for k in names),
                 f"{x['speedup_over_op'][TRANSPOSED]:.2f}x", f"{x['speedup_over_op'][DECODE]:.2f}x",
                 f"{x['int8_over_float_decode']:.2f}x"]
        if TORCH in names:
            cells.append(f"{x['ratio_to_torch'][DECODE]:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; {r['blas_threads']} BLAS threads; {r['rounds']} interleaved "
            f"rounds, medians of per-round ratios; the decode loop takes {decode_forms(r)}; "
            f"`python benchmarks/bench_decode_gemm.py` (results in `{path}`).")
    return meta, markdown(r)


def decode_forms(r: dict) -> str:
    most = r.get("rows_kernel_most")
    if not most:  # results from before kernels.rows
        return f"(W @ x.T).T up to {r['few_rows']} rows"
    return f"(W @ x.T).T for 1 row, kernels.rows from 2 to {most}, (W @ x.T).T up to {r['few_rows']}"


def render_loaded(r: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    return ", ".join(f"{x['rows']} rows: decode loop {x['speedup_over_op'][DECODE]:.2f}x the op" for x in r["results"])


def chart(r: dict) -> Bars:
    return Bars("The code model's Linear layers, one forward", "ms (lower is faster)",
                {f"{x['rows']} rows": x["ms_per_forward"] for x in r["results"]}, note=r["machine"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help=f"interleaved rounds (default {ROUNDS})")
    parser.add_argument("--quick", action="store_true", help=f"a dry run: {QUICK_ROUNDS} rounds")
    parser.add_argument("--no-torch", action="store_true", help="ember's contenders only")
    parser.add_argument("--out", default=None, help="default results/decode_gemm.json")
    parser.add_argument("--update-readme", action="store_true", help=argparse.SUPPRESS)  # it has no README section
    args = parser.parse_args(argv)
    if args.update_readme:
        parser.error("--update-readme: this benchmark has no README section (the README quotes it in prose)")
    args.rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    return args


def import_torch(wanted: bool):
    if not wanted:
        return None
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads.blas_threads())
    return torch


def bench(args) -> Outcome:
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    torch = import_torch(not args.no_torch)
    report = {"benchmark": "bench_decode_gemm", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
              "machine_info": info, "rounds": args.rounds, "quick": args.quick, "blas_threads": threads.blas_threads(),
              "few_rows": FEW_ROWS, "rows_kernel_most": rows_kernels.MOST_ROWS if rows_kernels.applies(
                  np.zeros((2, 1), np.float32), np.zeros((1, 1), np.float32)) else None,
              "torch": torch.__version__ if torch is not None else None,
              "results": [measure(rows, torch, args.rounds) for rows in ROWS]}
    out = Path(args.out) if args.out else results_path("decode_gemm", quick=args.quick)
    files = publish(None, report, out, 0, render_idle, render_loaded, False, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    argv = options.argv("decode_gemm") + (["--no-torch"] if options.against == "none" else [])
    return bench(parse_args(argv))


def main(argv=None) -> None:
    bench(parse_args(argv))


BENCHMARK = Benchmark(name="decode_gemm", title="The decode loop's Linear layers: (W @ x.T).T against x @ W.T",
                      run=run)

if __name__ == "__main__":
    main()
