"""MLP and LeNet-5 on MNIST / Fashion-MNIST: ember against plain PyTorch, same machine, same run.

Both frameworks start from the same initial weights (ember's, copied into PyTorch), see the
same batches in the same order and use the same optimizer settings (Adam, lr 1e-3 decayed to 0
by a per-step cosine schedule, as `ember train` does by default), so their accuracies differ
only by floating-point rounding. Speed is measured two ways, always interleaved:

* step time: rounds of K training steps of ember then K of PyTorch on the same batches;
  the reported ratio is the median of the per-round ratios (the machines are noisy);
* epoch time: the full training alternates one ember epoch and one PyTorch epoch.

Run:  EMBER_DATA=../shared/data python benchmarks/bench_mnist.py [--datasets mnist fashion-mnist]
      [--models mlp lenet] [--epochs 10] [--update-readme]
Writes benchmarks/results/mnist.json and mnist.md (and the README table with --update-readme).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for reference_numpy

import ember.nn.functional as F
from ember.data import image_classification
from ember.models import build

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
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
    def __init__(self, model, lr, total_steps):
        self.model = model
        self.opt = ember.optim.Adam(model.parameters(), lr=lr)
        self.sched = ember.optim.CosineAnnealingLR(self.opt, T_max=total_steps)

    def step(self, x, y):
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


def time_steps(runners, batches, rounds, steps_per_round):
    """Interleaved rounds; returns per-runner median ms/step and each runner's median per-round ratio
    to the second runner (PyTorch)."""
    prepared = [[r.batch(x, y) for x, y in batches[:steps_per_round]] for r in runners]
    for r, prep in zip(runners, prepared):  # warm-up
        for x, y in prep[:5]:
            r.step(x, y)
    per_round = [[] for _ in runners]
    for _ in range(rounds):
        for k, (r, prep) in enumerate(zip(runners, prepared)):
            start = time.perf_counter()
            for x, y in prep:
                r.step(x, y)
            per_round[k].append((time.perf_counter() - start) / len(prep) * 1e3)
    ratios = [[a / b for a, b in zip(times, per_round[1])] for times in per_round]
    return [float(np.median(t)) for t in per_round], [float(np.median(r)) for r in ratios], ratios[0]


def run_case(torch, kind, dataset, epochs, data_dir, seed, rounds):
    recipe = RECIPES[kind]
    train, stats = image_classification(dataset, "train", data_dir)
    test, _ = image_classification(dataset, "test", data_dir, stats=stats)
    xtr, ytr = train.arrays
    xte, yte = test.arrays
    total = max(epochs, 1) * -(-len(xtr) // recipe["batch_size"])
    ember.manual_seed(seed)
    model = build(kind)
    runners = [EmberRunner(model, recipe["lr"], total),
               TorchRunner(torch, torch_twin(torch, kind, model), recipe["lr"], total)]

    # step time on a fixed set of batches, from a throw-away copy of both models
    ember.manual_seed(seed)
    probe_model = build(kind)
    probe = [EmberRunner(probe_model, recipe["lr"], total),
             TorchRunner(torch, torch_twin(torch, kind, probe_model), recipe["lr"], total)]
    if kind == "mlp":
        probe.append(NumpyRunner(probe_model, recipe["lr"]))
    rng = np.random.default_rng(seed)
    steps = 40 if kind == "mlp" else 12
    batches = [(xtr[i], ytr[i]) for i in epoch_batches(len(xtr), recipe["batch_size"], rng)[:steps]]
    ms, step_ratios, ratios = time_steps(probe, batches, rounds, steps)
    ms_ember, ms_torch, step_ratio = ms[0], ms[1], step_ratios[0]

    result = {
        "model": kind, "dataset": dataset, "epochs": epochs, **recipe, "optimizer": "adam", "schedule": "cosine",
        "ms_per_step": {"ember": round(ms_ember, 3), "torch": round(ms_torch, 3)},
        "step_ratio_median": round(step_ratio, 3), "step_ratios": [round(r, 3) for r in ratios],
        "numpy_reference": ({"ms_per_step": round(ms[2], 3), "ratio_to_torch_median": round(step_ratios[2], 3)}
                            if len(ms) > 2 else None),
    }
    print(f"  {kind} {dataset} step: ember {ms_ember:.2f} ms, torch {ms_torch:.2f} ms, ratio {step_ratio:.3f}",
          flush=True)
    if epochs == 0:
        return result

    # full training, alternating one epoch of each on identical batches
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
        "| model | dataset | ms/step ember | ms/step PyTorch | step ratio ember/PyTorch | hand-written NumPy/PyTorch | "
        "s/epoch ember | s/epoch PyTorch | test acc ember | test acc PyTorch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ref = r.get("numpy_reference")
        ref_ratio = f"{ref['ratio_to_torch_median']:.2f}" if ref else "-"
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['ms_per_step']['ember']:.2f} | {r['ms_per_step']['torch']:.2f} | "
            f"**{r['step_ratio_median']:.2f}** | {ref_ratio} | {r['seconds_per_epoch']['ember']:.1f} | "
            f"{r['seconds_per_epoch']['torch']:.1f} | {r['test_accuracy']['ember']:.2%} | "
            f"{r['test_accuracy']['torch']:.2%} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--models", nargs="+", default=["mlp", "lenet"], choices=list(RECIPES))
    parser.add_argument("--epochs", type=int, default=10, help="0: step timing only")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(RESULTS / "mnist.json"))
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    results = []
    for dataset in args.datasets:
        for kind in args.models:
            print(f"{kind} on {dataset}", flush=True)
            results.append(run_case(torch, kind, dataset, args.epochs, args.data_dir, args.seed, args.rounds))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    report = {
        "benchmark": "bench_mnist", "date": time.strftime("%Y-%m-%d"), "machine": machine,
        "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "ember_runtime": ember._runtime.applied, "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if args.epochs == 0:
        return 0
    table = markdown(results)
    meta = (f"Measured {report['date']} on {machine}, PyTorch {torch.__version__} with 2 threads, NumPy "
            f"{np.__version__}; `python benchmarks/bench_mnist.py` (results in `benchmarks/results/mnist.json`).")
    out.with_suffix(".md").write_text(meta + "\n\n" + table + "\n")
    print(table)
    if args.update_readme:
        from readme import update_readme

        update_readme("bench_mnist", table, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
