"""What profiling costs: a training step under ``ember.profiler.profile`` against the same step unprofiled, and
``torch.profiler`` on the same models in PyTorch for reference.

Cases: the MLP (784-256-128-10, batch 128) and LeNet-5 (batch 64) on MNIST-shaped random data with Adam, and
nanoGPT's CPU recipe shape (4 layers, 4 heads, n_embd 128, context 64, batch 12, 65 tokens) with AdamW. The
PyTorch twins start from ember's weights. Contenders, per framework: no profiler; the profiler (CPU times only);
the profiler with ``record_shapes=True``; and, for ember, also with ``profile_memory=True``. They take turns in
rounds of K steps on the same batch (every other round in reverse order); each profiled contender opens a fresh
profile per round (its install and removal are paid, as a user pays them) and marks every step (``prof.step()``).
Reported: ms per step (median over rounds), and each profiled contender's overhead as the median of per-round
ratios to its framework's unprofiled run of the same round (the machines are noisy: a round's ratio cancels what
the round's load did to both).

Full run (an otherwise idle 2-core machine: about 3 minutes):
  python benchmarks/bench_profiler.py
Options: [--models mlp lenet gpt] [--rounds 15] [--steps K] [--no-torch] [--load N] [--out PATH]
Writes benchmarks/results/profiler.json and .md (profiler_loaded.* with --load).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

import ember.nn.functional as F
from ember import profiler, threads
from ember.models import build
from ember.benchmarking import (Bars, Benchmark, Measured, Outcome, RunOptions, add_load_argument, background_load,
                               describe_load, load_record, machine_info, machine_line, median_ratios, publish,
                               results_path, rounds, refuse_dry_run_in_readme)

BATCH = {"mlp": 128, "lenet": 64, "gpt": 12}
STEPS = {"mlp": 20, "lenet": 10, "gpt": 4}  # steps per round: tens of ms at least, so the timer's noise is small
EMBER_MODES = {"ember": None, "ember_profiled": {}, "ember_profiled_shapes": {"record_shapes": True},
               "ember_profiled_shapes_memory": {"record_shapes": True, "profile_memory": True}}
TORCH_MODES = {"torch": None, "torch_profiled": {}, "torch_profiled_shapes": {"record_shapes": True}}


# -- the training steps -----------------------------------------------------------------------------------------
def random_batch(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "gpt":
        ids = rng.integers(0, 65, (BATCH[kind], 65))
        return ids[:, :-1], ids[:, 1:]
    return rng.standard_normal((BATCH[kind], 1, 28, 28)).astype(np.float32), rng.integers(0, 10, BATCH[kind])


def ember_step(kind: str, model, batch):
    """One training step of ``model`` on ``batch`` (forward, loss, backward, optimizer step)."""
    if kind == "gpt":
        opt = model.configure_optimizer(1e-3, 0.1, (0.9, 0.99))
        x, y = batch

        def loss_of():
            return model(x, y)[1]
    else:
        opt = ember.optim.Adam(model.parameters(), lr=1e-3)
        x, y = ember.tensor(batch[0]), ember.tensor(batch[1])

        def loss_of():
            return F.cross_entropy(model(x), y)

    def step():
        opt.zero_grad()
        loss_of().backward()
        opt.step()

    return step


def torch_twin(torch, kind: str, model):
    """The same network in PyTorch, holding ``model``'s weights."""
    if kind == "gpt":
        from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights

        return copy_gpt_weights(torch, model, build_torch_gpt(torch, model.config), torch.float32)
    from ember.testing.torch_models import torch_twin as mlp_or_lenet

    return mlp_or_lenet(torch, kind, model)


def torch_step(torch, kind: str, net, batch):
    x, y = (torch.from_numpy(a) for a in batch)
    if kind == "gpt":
        opt = net.configure_optimizer(1e-3, 0.1, (0.9, 0.99))

        def loss_of():
            return net(x, y)[1]
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def loss_of():
            return torch.nn.functional.cross_entropy(net(x), y)

    def step():
        opt.zero_grad()
        loss_of().backward()
        opt.step()

    return step


# -- the profilers ----------------------------------------------------------------------------------------------
def ember_profile(options):
    return profiler.profile(**options)


def torch_profile(torch):
    def start(options):
        return torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], **options)

    return start


def run_steps(step, steps: int, open_profile, options) -> float:
    """Seconds for ``steps`` steps, inside a fresh profile (with ``prof.step()`` after each) unless ``options`` is
    None."""
    start = time.perf_counter()
    if options is None:
        for _ in range(steps):
            step()
    else:
        with open_profile(options) as prof:
            for _ in range(steps):
                step()
                prof.step()
    return time.perf_counter() - start


def contenders(kind: str, torch) -> dict:
    """Each contender's (step, how it opens a profile, the profile's options); ember's share one model, as do
    PyTorch's: a profiled step must time the same work as an unprofiled one."""
    ember.manual_seed(0)
    model, batch = build(kind), random_batch(kind)
    step = ember_step(kind, model, batch)
    found = {name: (step, ember_profile, options) for name, options in EMBER_MODES.items()}
    if torch is not None:
        twin = torch_step(torch, kind, torch_twin(torch, kind, model), batch)
        found.update({name: (twin, torch_profile(torch), options) for name, options in TORCH_MODES.items()})
    return found


def time_case(kind: str, torch, rounds_n: int, steps: int) -> dict:
    runners = contenders(kind, torch)
    for step, open_profile, options in runners.values():  # warm-up: compilation, optimizer state, profiler start-up
        run_steps(step, 2, open_profile, options)
    settle = time.perf_counter() + 1.2 * threads.INTERVAL_S  # and ember's BLAS thread policy looks at the machine
    while time.perf_counter() < settle:
        runners["ember"][0]()
    # each contender times its own steps (run_steps returns seconds); every other round in reverse order, so that
    # a drift in the load favours no contender
    timed = {name: (lambda step=step, op=open_profile, o=options: Measured(run_steps(step, steps, op, o)))
             for name, (step, open_profile, options) in runners.items()}
    seconds = rounds(timed, rounds_n, warmup=0, alternate=True).per_round
    ms = {name: float(np.median(s)) / steps * 1e3 for name, s in seconds.items()}
    overhead = median_ratios({n: seconds[n] for n in EMBER_MODES}, to="ember")
    if torch is not None:
        overhead.update(median_ratios({n: seconds[n] for n in TORCH_MODES}, to="torch"))
    quartiles = {name: [float(q) for q in np.percentile(np.array(seconds[name]) / np.array(seconds[base]), [25, 75])]
                 for name, base in ((n, n.split("_")[0]) for n in overhead)}
    return {"model": kind, "batch_size": BATCH[kind], "rounds": rounds_n, "steps_per_round": steps,
            "ms_per_step": {k: round(v, 3) for k, v in ms.items()},
            "overhead_median": {k: round(v, 3) for k, v in overhead.items()},
            "overhead_quartiles": {k: [round(q, 3) for q in v] for k, v in quartiles.items()}}


# -- the report -------------------------------------------------------------------------------------------------
LABELS = {"gpt": "GPT (nanoGPT CPU recipe shape)", "mlp": "MLP (MNIST shape)", "lenet": "LeNet-5 (MNIST shape)"}


def markdown(report: dict) -> str:
    lines = ["| model | ember ms/step | profiled | + shapes | + shapes + memory | PyTorch ms/step | torch.profiler "
             "| + shapes |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        ms = r["ms_per_step"]
        o = {name: f"{ratio:.2f}x" for name, ratio in r["overhead_median"].items()}
        torch_ms = f"{ms['torch']:.2f}" if "torch" in ms else "-"
        lines.append(f"| {LABELS[r['model']]}, batch {r['batch_size']} | {ms['ember']:.2f} | {o['ember_profiled']} "
                     f"| **{o['ember_profiled_shapes']}** | {o['ember_profiled_shapes_memory']} | {torch_ms} | "
                     f"{o.get('torch_profiled', '-')} | {o.get('torch_profiled_shapes', '-')} |")
    return "\n".join(lines)


def render_idle(report: dict, path: str):
    torch = f"PyTorch {report['torch']} with {report['torch_threads']} threads" if report["torch"] else "no PyTorch"
    r0 = report["results"][0]
    meta = (f"Measured {report['date']} on {report['machine']}; {torch}, NumPy {report['numpy']}; "
            f"{r0['rounds']} interleaved rounds, overhead = median of per-round ratios to the unprofiled step; "
            f"`python benchmarks/bench_profiler.py` (results in `{path}`).")
    return meta, markdown(report)


def render_loaded(report: dict, path: str) -> str:
    return (f"Beside {describe_load(report['busy_processes'])} (`python benchmarks/bench_profiler.py --load "
            f"{report['busy_processes']}`, measured {report['date']}; results in `{path}`):\n\n{markdown(report)}")


def import_torch(wanted: bool):
    if not wanted:
        return None
    try:
        import torch
    except ImportError:
        print("PyTorch not installed: ember only", flush=True)
        return None
    torch.set_num_threads(2)
    return torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mlp", "lenet", "gpt"], choices=list(BATCH))
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default: mlp 20, lenet 10, gpt 4)")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch.profiler reference")
    parser.add_argument("--quick", action="store_true", help="a dry run in seconds (MLP only, 3 rounds)")
    add_load_argument(parser)
    parser.add_argument("--out", default=None,
                        help="default results/profiler.json (results/profiler_loaded.json with --load)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    if args.quick:
        args.models, args.rounds, args.steps = ["mlp"], 3, 5
    return args


def headline(report: dict) -> str:
    return "; ".join(f"{r['model']}: profiled step {r['overhead_median'].get('ember_shapes', float('nan')):.2f}x "
                     "with shapes" for r in report["results"])


def chart(report: dict) -> Bars:
    return Bars("Training step with a profiler, over the same step without", "time ratio (lower is better)",
                {LABELS.get(r["model"], r["model"]): dict(r["overhead_median"]) for r in report["results"]},
                note=report["machine"])


def bench(args) -> Outcome:
    torch = import_torch(not args.no_torch)
    info = machine_info()
    print(f"machine: {machine_line(info)}; busy processes: {args.load}", flush=True)
    results = []
    with background_load(args.load):
        for kind in args.models:
            print(f"{kind}: {args.rounds} rounds", flush=True)
            results.append(time_case(kind, torch, args.rounds, args.steps or STEPS[kind]))
            print(f"  overhead (median of per-round ratios): {results[-1]['overhead_median']}", flush=True)
        load = load_record(args.load)
    report = {
        "benchmark": "bench_profiler", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
        "machine_info": info, "busy_processes": args.load, "load": load, "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__ if torch else None,
        "torch_threads": torch.get_num_threads() if torch else None, "results": results, "quick": args.quick,
    }
    out = Path(args.out) if args.out else results_path("profiler", args.load, quick=args.quick)
    files = publish("bench_profiler", report, out, args.load, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    argv = options.argv("profiler")
    return bench(parse_args(argv + ([] if options.against == "torch" else ["--no-torch"])))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


BENCHMARK = Benchmark(name="profiler", title="Profiler overhead on training steps, beside torch.profiler's", run=run,
                      marker="bench_profiler", rivals=())


if __name__ == "__main__":
    sys.exit(main())
