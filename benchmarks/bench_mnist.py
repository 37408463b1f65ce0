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
Options: [--datasets mnist fashion-mnist] [--models mlp lenet] [--epochs 10] [--rounds 15] [--load N]
Writes benchmarks/results/mnist.json and mnist.md (mnist_loaded.json and .md with --load), and the
README table with --update-readme.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for reference_numpy, harness

import ember.nn.functional as F
from ember import kernels
from ember.data import image_classification
from ember.models import build
from harness import (accuracy_epochs, add_load_argument, background_load, describe_load, load_record, machine_info,
                     machine_line, median_ratios, publish, results_path)

RECIPES = {"mlp": {"batch_size": 128, "lr": 1e-3}, "lenet": {"batch_size": 64, "lr": 1e-3}}


def torch_twin(torch, kind: str, model):
    """The same network in PyTorch, with ember's initial weights copied in."""
    nn = torch.nn
    if kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    else:
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    with torch.no_grad():
        for tp, p in zip(net.parameters(), model.parameters()):
            tp.copy_(torch.from_numpy(p.numpy().copy()))
    return net


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


def time_steps(runners: dict, batches, rounds, steps_per_round):
    """Interleaved rounds of every runner on the same batches; returns each runner's ms/step per round."""
    prepared = {name: [r.batch(x, y) for x, y in batches[:steps_per_round]] for name, r in runners.items()}
    for name, r in runners.items():  # warm-up (and the kernels' first-call compilation)
        for x, y in prepared[name][:5]:
            r.step(x, y)
    per_round = {name: [] for name in runners}
    for _ in range(rounds):
        for name, r in runners.items():
            start = time.perf_counter()
            for x, y in prepared[name]:
                r.step(x, y)
            per_round[name].append((time.perf_counter() - start) / len(prepared[name]) * 1e3)
    return per_round


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


def step_timing(torch, kind, xtr, ytr, recipe, total, seed, rounds, load) -> dict:
    """The interleaved step-time rounds (beside ``load`` busy processes), as the result's step fields."""
    rng = np.random.default_rng(seed)
    steps = 40 if kind == "mlp" else 12
    batches = [(xtr[i], ytr[i]) for i in epoch_batches(len(xtr), recipe["batch_size"], rng)[:steps]]
    contenders = step_contenders(torch, kind, recipe, total, seed)
    with background_load(load):
        per_round = time_steps(contenders, batches, rounds, steps)
        load_info = load_record(load)
    ms = {name: float(np.median(t)) for name, t in per_round.items()}
    ratios = median_ratios(per_round)

    def round_ratios(name):
        return [round(a / b, 3) for a, b in zip(per_round[name], per_round["torch"])]

    return {
        "ms_per_step": {name: round(ms[name], 3) for name in ("ember", "ember_reference_path", "torch")},
        "step_ratio_median": round(ratios["ember"], 3), "step_ratios": round_ratios("ember"),
        "step_ratio_reference_path_median": round(ratios["ember_reference_path"], 3),
        "step_ratios_reference_path": round_ratios("ember_reference_path"),
        "ember_over_reference_path_median": round(median_ratios(per_round, to="ember_reference_path")["ember"], 3),
        "numpy_reference": ({"ms_per_step": round(ms["numpy"], 3), "ratio_to_torch_median": round(ratios["numpy"], 3)}
                            if "numpy" in ms else None),
        "load": load_info,
    }


def run_case(torch, kind, dataset, epochs, data_dir, seed, rounds, load):
    recipe = RECIPES[kind]
    train, stats = image_classification(dataset, "train", data_dir)
    test, _ = image_classification(dataset, "test", data_dir, stats=stats)
    xtr, ytr = train.arrays
    xte, yte = test.arrays
    total = max(epochs, 1) * -(-len(xtr) // recipe["batch_size"])
    timing = step_timing(torch, kind, xtr, ytr, recipe, total, seed, rounds, load)
    result = {"model": kind, "dataset": dataset, "epochs": epochs, **recipe, "optimizer": "adam",
              "schedule": "cosine", **timing}
    ms = timing["ms_per_step"]
    print(f"  {kind} {dataset} step: ember {ms['ember']:.2f} ms, reference path {ms['ember_reference_path']:.2f} ms, "
          f"torch {ms['torch']:.2f} ms; ratios {timing['step_ratio_median']:.3f} and "
          f"{timing['step_ratio_reference_path_median']:.3f}", flush=True)
    if epochs == 0:
        return result

    # full training with the default kernels, alternating one epoch of each on identical batches
    ember.manual_seed(seed)
    model = build(kind)
    runners = [EmberRunner(model, recipe["lr"], total),
               TorchRunner(torch, torch_twin(torch, kind, model), recipe["lr"], total)]
    rng = np.random.default_rng(seed)
    epoch_s = [[], []]
    history = []
    for epoch in range(1, epochs + 1):
        order = epoch_batches(len(xtr), recipe["batch_size"], rng)
        for k, r in enumerate(runners):
            start = time.perf_counter()
            for idx in order:
                r.step(*r.batch(xtr[idx], ytr[idx]))
            epoch_s[k].append(time.perf_counter() - start)
        accs = [r.accuracy(xte, yte) for r in runners]
        history.append({"epoch": epoch, "ember_test_accuracy": accs[0], "torch_test_accuracy": accs[1]})
        print(f"  {kind} {dataset} epoch {epoch}: ember {accs[0]:.2%} ({epoch_s[0][-1]:.1f} s), "
              f"torch {accs[1]:.2%} ({epoch_s[1][-1]:.1f} s)", flush=True)
    epoch_ratios = [a / b for a, b in zip(*epoch_s)]
    result.update({
        "seconds_per_epoch": {"ember": round(float(np.median(epoch_s[0])), 2),
                              "torch": round(float(np.median(epoch_s[1])), 2)},
        "epoch_ratio_median": round(float(np.median(epoch_ratios)), 3),
        "test_accuracy": {"ember": history[-1]["ember_test_accuracy"], "torch": history[-1]["torch_test_accuracy"]},
        "history": history,
    })
    return result


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--models", nargs="+", default=["mlp", "lenet"], choices=list(RECIPES))
    parser.add_argument("--epochs", type=int, default=None, help="0: step timing only (default 10; 0 with --load)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    add_load_argument(parser)
    parser.add_argument("--out", default=None,
                        help="default results/mnist.json (results/mnist_loaded.json with --load)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    epochs = accuracy_epochs(parser, args, default=10)
    import torch

    torch.set_num_threads(2)
    info = machine_info()
    print(f"machine: {machine_line(info)}; busy processes: {args.load}", flush=True)
    results = []
    for dataset in args.datasets:
        for kind in args.models:
            print(f"{kind} on {dataset}", flush=True)
            results.append(run_case(torch, kind, dataset, epochs, args.data_dir, args.seed, args.rounds, args.load))
    report = {
        "benchmark": "bench_mnist", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
        "machine_info": info, "busy_processes": args.load, "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "ember_runtime": ember._runtime.applied,
        "results": results,
    }
    out = Path(args.out) if args.out else results_path("mnist", args.load)
    publish("bench_mnist", report, out, args.load, render_idle, render_loaded, args.update_readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
