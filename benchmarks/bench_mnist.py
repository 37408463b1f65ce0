"""MLP and LeNet-5 on MNIST / Fashion-MNIST: ember against plain PyTorch, same machine, same run.

Both frameworks start from the same initial weights (ember's, copied into PyTorch), see the
same batches in the same order and use the same optimizer settings (Adam, lr 1e-3 decayed to 0
by a per-step cosine schedule, as `ember train` does by default), so their accuracies differ
only by floating-point rounding. Speed is measured two ways, always interleaved:

* step time: rounds of K training steps of each contender on the same batches: ember with its
  compiled kernels (the default), ember on its NumPy reference path (``kernels.use("numpy")``, a
  twin from the same initial weights), PyTorch, and for the MLP a hand-written NumPy step; each
  ratio to PyTorch is the median of the per-round ratios (the machines are noisy);
* epoch time: the full training alternates one ember epoch (default kernels) and one PyTorch epoch.

With ``--load N`` the step-time rounds run beside N busy processes (pure-Python loops, killed at
the end) and nothing else runs; the results go to mnist_loaded.json, shown below the idle table.

Full runs (on an otherwise idle 2-core machine: about 10 minutes; loaded, 3-6 minutes, most of it
PyTorch, whose two threads slow down the most beside the busy loops):
  EMBER_DATA=../shared/data python benchmarks/bench_mnist.py --update-readme
  EMBER_DATA=../shared/data python benchmarks/bench_mnist.py --load 2 --update-readme
Dry run (seconds: MNIST only, one epoch on 2,048 images, 2 rounds of a few steps):
  EMBER_DATA=../shared/data python benchmarks/bench_mnist.py --quick
Options: [--datasets mnist fashion-mnist] [--models mlp lenet] [--epochs 10] [--rounds 15] [--load N] [--quick]
Writes benchmarks/results/mnist.json, .md and .png (mnist_loaded.* with --load, mnist_quick.* with --quick),
and the README table with --update-readme. ``ember bench --only mnist`` runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import platform
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for reference_numpy

import ember.nn.functional as F
from ember import kernels
from ember.testing.torch_models import torch_twin
from ember.benchmarking import (Bars, Benchmark, Outcome, RunOptions, accuracy_epochs, add_load_argument,
                                background_load, cycling, describe_load, load_record, machine_info, machine_line,
                                publish, results_path, rounds, streaming, refuse_dry_run_in_readme)
from ember.data import image_classification
from ember.models import build

RECIPES = {"mlp": {"batch_size": 128, "lr": 1e-3}, "lenet": {"batch_size": 64, "lr": 1e-3}}
STEPS_PER_ROUND = {"mlp": 40, "lenet": 12}
WARMUP_STEPS = 5
# the dry run: MNIST only, one epoch on a subset, 2 rounds of a few steps (seconds, not minutes)
QUICK = {"datasets": ["mnist"], "epochs": 1, "rounds": 2, "train_subset": 2048, "test_subset": 1000,
         "steps_per_round": {"mlp": 8, "lenet": 4}, "warmup": 2}


class EmberRunner:
    """ember's training step; ``reference=True`` runs it on the NumPy reference kernels (``kernels.use("numpy")``)."""

    def __init__(self, model, lr, total_steps, reference=False):
        self.model = model
        self.opt = ember.optim.Adam(model.parameters(), lr=lr)
        self.sched = ember.optim.CosineAnnealingLR(self.opt, T_max=total_steps)
        self.kernel_path = functools.partial(kernels.use, "numpy") if reference else contextlib.nullcontext

    def step(self, x, y):
        with self.kernel_path():
            self.opt.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.opt.step()
            self.sched.step()
        return loss

    def batch(self, x, y):
        return ember.from_numpy(x), ember.from_numpy(y)

    def accuracy(self, x, y, bs=1000):
        self.model.eval()
        with ember.no_grad():
            hits = sum(int((self.model(ember.from_numpy(x[i:i + bs])).data.argmax(1) == y[i:i + bs]).sum())
                       for i in range(0, len(x), bs))
        self.model.train()
        return hits / len(x)


class TorchRunner:
    def __init__(self, torch, net, lr, total_steps):
        self.torch, self.model = torch, net
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=total_steps)

    def step(self, x, y):
        self.opt.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss

    def batch(self, x, y):
        return self.torch.from_numpy(x), self.torch.from_numpy(y)

    def accuracy(self, x, y, bs=1000):
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            hits = sum(int((self.model(torch.from_numpy(x[i:i + bs])).argmax(1).numpy() == y[i:i + bs]).sum())
                       for i in range(0, len(x), bs))
        self.model.train()
        return hits / len(x)


def epoch_batches(n, batch_size, rng):
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


class NumpyRunner:
    """The hand-written NumPy MLP step (benchmarks/reference_numpy.py), for the step timing only."""

    def __init__(self, model, lr):
        from reference_numpy import NumpyMLP

        self.net = NumpyMLP([p.numpy() for p in model.parameters()], lr=lr)

    def step(self, x, y):
        return self.net.step(x, y)

    def batch(self, x, y):
        return x, y


def time_steps(runners: dict, batches, n_rounds, warmup=WARMUP_STEPS):
    """Interleaved rounds of every runner on the same batches (each round: every batch once, per runner), after
    ``warmup`` steps each (and the kernels' first-call compilation); the rounds' Timings."""
    steps = {name: cycling(r.step, [r.batch(x, y) for x, y in batches]) for name, r in runners.items()}
    return rounds(steps, n_rounds, warmup=warmup, calls=len(batches))


def step_contenders(torch, kind, recipe, total, seed):
    """Throw-away models for the step timing, all from the same initial weights: ember (default kernels), its
    twin on the reference path, PyTorch and, for the MLP, the hand-written NumPy step."""
    ember.manual_seed(seed)
    fast_model = build(kind)
    ember.manual_seed(seed)
    reference_model = build(kind)
    contenders = {"ember": EmberRunner(fast_model, recipe["lr"], total),
                  "ember_reference_path": EmberRunner(reference_model, recipe["lr"], total, reference=True),
                  "torch": TorchRunner(torch, torch_twin(torch, kind, fast_model), recipe["lr"], total)}
    if kind == "mlp":
        contenders["numpy"] = NumpyRunner(fast_model, recipe["lr"])
    return contenders


def step_timing(torch, kind, xtr, ytr, recipe, total, args) -> dict:
    """The interleaved step-time rounds (beside ``args.load`` busy processes), as the result's step fields."""
    rng = np.random.default_rng(args.seed)
    batches = [(xtr[i], ytr[i]) for i in epoch_batches(len(xtr), recipe["batch_size"], rng)[:args.steps[kind]]]
    contenders = step_contenders(torch, kind, recipe, total, args.seed)
    with background_load(args.load):
        timings = time_steps(contenders, batches, args.rounds, args.warmup)
        load_info = load_record(args.load)
    ms, ratios = timings.medians(1e3), timings.ratios("torch")

    def round_ratios(name):
        return [round(r, 3) for r in timings.round_ratios(name, "torch")]

    return {
        "ms_per_step": {name: round(ms[name], 3) for name in ("ember", "ember_reference_path", "torch")},
        "step_ratio_median": round(ratios["ember"], 3), "step_ratios": round_ratios("ember"),
        "step_ratio_reference_path_median": round(ratios["ember_reference_path"], 3),
        "step_ratios_reference_path": round_ratios("ember_reference_path"),
        "ember_over_reference_path_median": round(timings.ratio("ember", "ember_reference_path"), 3),
        "numpy_reference": ({"ms_per_step": round(ms["numpy"], 3), "ratio_to_torch_median": round(ratios["numpy"], 3)}
                            if "numpy" in ms else None),
        "load": load_info,
    }


def load_split(dataset, data_dir, subsets):
    """The training and test arrays, standardised as `ember train` does; a dry run keeps the first images."""
    train, stats = image_classification(dataset, "train", data_dir)
    test, _ = image_classification(dataset, "test", data_dir, stats=stats)
    (xtr, ytr), (xte, yte) = train.arrays, test.arrays
    n_train, n_test = subsets
    return xtr[:n_train], ytr[:n_train], xte[:n_test], yte[:n_test]


def run_case(torch, kind, dataset, args):
    recipe, epochs, seed = RECIPES[kind], args.epochs, args.seed
    xtr, ytr, xte, yte = load_split(dataset, args.data_dir, args.subsets)
    total = max(epochs, 1) * -(-len(xtr) // recipe["batch_size"])
    timing = step_timing(torch, kind, xtr, ytr, recipe, total, args)
    result = {"model": kind, "dataset": dataset, "epochs": epochs, **recipe, "optimizer": "adam",
              "schedule": "cosine", **timing}
    ms = timing["ms_per_step"]
    print(f"  {kind} {dataset} step: ember {ms['ember']:.2f} ms, reference path {ms['ember_reference_path']:.2f} ms, "
          f"torch {ms['torch']:.2f} ms; ratios {timing['step_ratio_median']:.3f} and "
          f"{timing['step_ratio_reference_path_median']:.3f}", flush=True)
    if epochs == 0:
        return result
    result.update(train_side_by_side(torch, kind, dataset, (xtr, ytr, xte, yte), total, epochs, seed))
    return result


def train_side_by_side(torch, kind, dataset, data, total, epochs, seed) -> dict:
    """Full training with the default kernels, one epoch of each in turn on identical batches (an interleaved
    round per epoch), test accuracy after each; the result's epoch fields."""
    xtr, ytr, xte, yte = data
    recipe = RECIPES[kind]
    ember.manual_seed(seed)
    model = build(kind)
    runners = {"ember": EmberRunner(model, recipe["lr"], total),
               "torch": TorchRunner(torch, torch_twin(torch, kind, model), recipe["lr"], total)}
    rng = np.random.default_rng(seed)
    orders = [epoch_batches(len(xtr), recipe["batch_size"], rng) for _ in range(epochs)]
    history = []

    def epoch_of(r):
        return streaming(lambda order: [r.step(*r.batch(xtr[idx], ytr[idx])) for idx in order], orders)

    def evaluate(index, timings):
        accs = {name: r.accuracy(xte, yte) for name, r in runners.items()}
        history.append({"epoch": index + 1, "ember_test_accuracy": accs["ember"], "torch_test_accuracy": accs["torch"]})
        s = {name: t[-1] for name, t in timings.per_round.items()}
        print(f"  {kind} {dataset} epoch {index + 1}: ember {accs['ember']:.2%} ({s['ember']:.1f} s), "
              f"torch {accs['torch']:.2%} ({s['torch']:.1f} s)", flush=True)

    timings = rounds({name: epoch_of(r) for name, r in runners.items()}, epochs, warmup=0, on_round=evaluate)
    return {
        "seconds_per_epoch": {name: round(s, 2) for name, s in timings.medians().items()},
        "epoch_ratio_median": round(timings.ratio("ember", "torch"), 3),
        "test_accuracy": {"ember": history[-1]["ember_test_accuracy"], "torch": history[-1]["torch_test_accuracy"]},
        "history": history,
    }


def markdown(results) -> str:
    lines = [
        "| model | dataset | ms/step ember | ms/step PyTorch | step ratio ember/PyTorch | "
        "ember reference path/PyTorch | hand-written NumPy/PyTorch | s/epoch ember | s/epoch PyTorch | "
        "test acc ember | test acc PyTorch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['ms_per_step']['ember']:.2f} | {r['ms_per_step']['torch']:.2f} | "
            f"**{r['step_ratio_median']:.2f}** | {reference_path_ratio(r)} | {numpy_ratio(r)} | "
            f"{r['seconds_per_epoch']['ember']:.1f} | {r['seconds_per_epoch']['torch']:.1f} | "
            f"{r['test_accuracy']['ember']:.2%} | {r['test_accuracy']['torch']:.2%} |"
        )
    return "\n".join(lines)


def reference_path_ratio(r) -> str:
    """The reference path's ratio, or "-" for results from before it was timed."""
    ratio = r.get("step_ratio_reference_path_median")
    return "-" if ratio is None else f"{ratio:.2f}"


def numpy_ratio(r) -> str:
    ref = r.get("numpy_reference")
    return f"{ref['ratio_to_torch_median']:.2f}" if ref else "-"


def render_idle(report, path):
    """The README's meta line and table, or None for a run without the accuracy epochs."""
    if not report["results"] or any("test_accuracy" not in r for r in report["results"]):
        return None
    meta = (f"Measured {report['date']} on {report['machine']}, PyTorch {report['torch']} with "
            f"{report['torch_threads']} threads, NumPy {report['numpy']}; `python benchmarks/bench_mnist.py` "
            f"(results in `{path}`).")
    return meta, markdown(report["results"])


def render_loaded(report, path) -> str:
    """The loaded run's step times: a sentence saying how it was measured, and a small table."""
    n = report["busy_processes"]
    lines = [
        f"Beside {describe_load(n)} (`python benchmarks/bench_mnist.py --load {n}`, measured {report['date']} on "
        f"{report['machine']}; results in `{path}`):",
        "",
        "| model | dataset | ms/step ember | ms/step ember reference path | ms/step PyTorch | ember/PyTorch | "
        "reference path/PyTorch | hand-written NumPy/PyTorch | ember's BLAS threads at the end |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        ms = r["ms_per_step"]
        lines.append(f"| {r['model']} | {r['dataset']} | {ms['ember']:.2f} | {ms['ember_reference_path']:.2f} | "
                     f"{ms['torch']:.2f} | **{r['step_ratio_median']:.2f}** | {reference_path_ratio(r)} | "
                     f"{numpy_ratio(r)} | {r['load']['blas_threads_at_end']} |")
    return "\n".join(lines)


def headline(report) -> str:
    """The step-time ratio of each case: what the README's table leads with."""
    return "step ember/PyTorch: " + ", ".join(f"{r['model']} {r['dataset']} {r['step_ratio_median']:.2f}x"
                                                for r in report["results"])


def chart(report) -> Bars:
    names = {"ember": "ember", "ember_reference_path": "ember reference path", "torch": "PyTorch"}
    groups = {}
    for r in report["results"]:
        bars = {names[k]: v for k, v in r["ms_per_step"].items()}
        if r.get("numpy_reference"):
            bars["hand-written NumPy"] = r["numpy_reference"]["ms_per_step"]
        groups[f"{r['model']} {r['dataset']}"] = bars
    load = f", beside {describe_load(report['busy_processes'])}" if report["busy_processes"] else ""
    return Bars(f"Training step, MLP and LeNet-5{load}", "ms per step (lower is faster)", groups,
                note=report["machine"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=None, help="default mnist fashion-mnist (mnist with --quick)")
    parser.add_argument("--models", nargs="+", default=["mlp", "lenet"], choices=list(RECIPES))
    parser.add_argument("--epochs", type=int, default=None, help="0: step timing only (default 10; 0 with --load)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    add_load_argument(parser)
    parser.add_argument("--quick", action="store_true", help="a dry run in seconds (tiny figures: not results)")
    parser.add_argument("--out", default=None,
                        help="default results/mnist.json (results/mnist_loaded.json with --load)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    sizes = QUICK if args.quick else {}
    args.datasets = args.datasets or sizes.get("datasets", ["mnist", "fashion-mnist"])
    args.rounds = args.rounds or sizes.get("rounds", 15)
    args.epochs = accuracy_epochs(parser, args, default=sizes.get("epochs", 10))
    args.subsets = (sizes.get("train_subset"), sizes.get("test_subset"))
    args.steps = sizes.get("steps_per_round", STEPS_PER_ROUND)
    args.warmup = sizes.get("warmup", WARMUP_STEPS)
    return args


def bench(args) -> Outcome:
    import torch

    # a dry run takes 1 thread: beside other work, PyTorch's OpenMP threads wait on each other at every op
    torch.set_num_threads(1 if args.quick else 2)
    info = machine_info()
    print(f"machine: {machine_line(info)}; busy processes: {args.load}", flush=True)
    results = []
    for dataset in args.datasets:
        for kind in args.models:
            print(f"{kind} on {dataset}", flush=True)
            results.append(run_case(torch, kind, dataset, args))
    report = {
        "benchmark": "bench_mnist", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
        "machine_info": info, "busy_processes": args.load, "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "ember_runtime": ember._runtime.applied,
        "quick": args.quick, "results": results,
    }
    out = Path(args.out) if args.out else results_path("mnist", args.load, quick=args.quick)
    files = publish("bench_mnist", report, out, args.load, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("mnist")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


BENCHMARK = Benchmark(name="mnist", title="MLP and LeNet-5 training steps and epochs on MNIST and Fashion-MNIST",
                      run=run, marker="bench_mnist", rivals=("torch",))

if __name__ == "__main__":
    sys.exit(main())
