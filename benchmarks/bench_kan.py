"""KAN [784, 64, 10] (G=5, k=3) on MNIST: ember against an efficient-kan-style PyTorch layer.

The PyTorch KAN below is the same equation written the way efficient-kan writes it (the
Cox–de Boor recursion on (batch, in, G+2k) tensors, differentiated by autograd, then two
GEMMs). Both start from ember's initial weights and see the same batches. Measured in one run:

* ms per training step (AdamW), batch 256: interleaved rounds of ember with its compiled kernels
  (the default), ember on its NumPy reference path (``kernels.use("numpy")``, a twin from the same
  initial weights) and PyTorch; each ratio to PyTorch is the median of per-round ratios;
* ms per inference batch of 256: ember's training layer (no_grad), the baked model, PyTorch;
* test accuracy after 3 epochs (AdamW lr 1e-3, weight decay 1e-4, cosine decay, batch 256),
  ember with its default kernels;
* peak memory of one training step at batch 4,096: each framework in a fresh process, the
  rise of the resident set's high-water mark over the step (same method for both).

With ``--load N`` only the timing rounds (training step and inference) run, beside N busy
processes (pure-Python loops, killed at the end); the results go to kan_loaded.json, shown below
the idle table.

Full runs (on an otherwise idle 2-core machine: about 2 minutes; loaded, about 1 minute):
  EMBER_DATA=../shared/data python benchmarks/bench_kan.py --update-readme
  EMBER_DATA=../shared/data python benchmarks/bench_kan.py --load 2 --update-readme
Dry run (seconds: one epoch on 2,048 images, 2 rounds, the memory probe at batch 256):
  EMBER_DATA=../shared/data python benchmarks/bench_kan.py --quick
Options: [--epochs 3] [--rounds 9] [--memory-batch 4096] [--load N] [--quick] [--out PATH]
Writes benchmarks/results/kan.json, .md and .png (kan_loaded.* with --load, kan_quick.* with --quick), and the
README table with --update-readme. ``ember bench --only kan`` runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

import ember.nn.functional as F
from ember.benchmarking import (Bars, Benchmark, Outcome, RunOptions, accuracy_epochs, add_load_argument,
                                background_load, cycling, describe_load, load_record, machine_info, machine_line,
                                on_reference_path, publish, results_path, rounds, streaming, refuse_dry_run_in_readme)
from ember.data import image_classification
from ember.kan import BakedKAN
from ember.models import KAN

ROOT = Path(__file__).resolve().parent
WIDTHS, GRID, ORDER, BATCH = (784, 64, 10), 5, 3, 256
# the dry run: one epoch on a subset, 2 rounds, the memory probe on a small batch (seconds, not minutes)
QUICK = {"epochs": 1, "rounds": 2, "train_subset": 2048, "test_subset": 1000, "memory_batch": 256}


def torch_kan(torch, model):
    """The efficient-kan formulation in PyTorch, with ember's parameters copied in."""

    class KANLinear(torch.nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.k = layer.spline_order
            self.register_buffer("grid", torch.from_numpy(layer.grid.numpy().copy()))
            self.base_weight = torch.nn.Parameter(torch.from_numpy(layer.base_weight.numpy().copy()))
            self.spline_weight = torch.nn.Parameter(torch.from_numpy(layer.spline_weight.numpy().copy()))
            self.spline_scaler = torch.nn.Parameter(torch.from_numpy(layer.spline_scaler.numpy().copy()))

        def b_splines(self, x):
            grid, x = self.grid, x.unsqueeze(-1)
            bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
            for p in range(1, self.k + 1):
                bases = ((x - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)]) * bases[:, :, :-1]) + (
                    (grid[:, p + 1 :] - x) / (grid[:, p + 1 :] - grid[:, 1:(-p)]) * bases[:, :, 1:])
            return bases.contiguous()

        def forward(self, x):
            base = torch.nn.functional.linear(torch.nn.functional.silu(x), self.base_weight)
            coef = self.spline_weight * self.spline_scaler.unsqueeze(-1)
            spline = torch.nn.functional.linear(self.b_splines(x).view(x.size(0), -1), coef.view(coef.size(0), -1))
            return base + spline

    return torch.nn.Sequential(*[KANLinear(layer) for layer in model.layers])


def ember_runner(model, lr, total):
    opt = ember.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = ember.optim.CosineAnnealingLR(opt, T_max=total)

    def step(x, y):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()

    return step, (lambda x, y: (ember.from_numpy(x), ember.from_numpy(y)))


def torch_runner(torch, net, lr, total):
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)

    def step(x, y):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        sched.step()

    return step, (lambda x, y: (torch.from_numpy(x), torch.from_numpy(y)))


def train_step_times(torch, xtr, ytr, total, n_rounds):
    """ms per training step of ember (default kernels), its reference-path twin and PyTorch, in interleaved
    rounds on four fixed batches, from throw-away models with the same initial weights."""
    ember.manual_seed(0)
    fast = KAN(widths=WIDTHS, grid_size=GRID, spline_order=ORDER)
    ember.manual_seed(0)
    reference = KAN(widths=WIDTHS, grid_size=GRID, spline_order=ORDER)
    rng = np.random.default_rng(0)
    idx = [rng.permutation(len(xtr))[:BATCH] for _ in range(4)]
    steps = {}
    for name, model in (("ember", fast), ("ember_reference_path", reference)):
        step, to_batch = ember_runner(model, 1e-3, total)
        steps[name] = cycling(step, [to_batch(xtr[i], ytr[i]) for i in idx])
    steps["ember_reference_path"] = on_reference_path(steps["ember_reference_path"])
    step, to_batch = torch_runner(torch, torch_kan(torch, fast), 1e-3, total)
    steps["torch"] = cycling(step, [to_batch(xtr[i], ytr[i]) for i in idx])
    return rounds(steps, n_rounds, warmup=1, calls=5)


def inference_times(torch, model, net, baked, x_inf, n_rounds):
    """ms per inference batch: ember's training layer under no_grad, the baked model, PyTorch."""
    x_inf_e, x_inf_t = ember.from_numpy(x_inf), torch.from_numpy(x_inf)

    def e_infer():
        with ember.no_grad():
            model(x_inf_e)

    def t_infer():
        with torch.no_grad():
            net(x_inf_t)

    return rounds({"ember_layer": e_infer, "ember_baked": lambda: baked(x_inf), "torch": t_infer}, n_rounds,
                  warmup=1, calls=10)


def timing(torch, xtr, ytr, xte, total, n_rounds, load) -> tuple[dict, tuple]:
    """The timing rounds (beside ``load`` busy processes) as the result's fields, and the accuracy run's
    models (ember's KAN, its PyTorch twin, the baked model) with the inference batch."""
    ember.manual_seed(0)
    model = KAN(widths=WIDTHS, grid_size=GRID, spline_order=ORDER)
    net = torch_kan(torch, model)
    baked = BakedKAN.from_model(model)
    x_inf = xte[:BATCH]
    with background_load(load):
        train = train_step_times(torch, xtr, ytr, total, n_rounds)
        infer = inference_times(torch, model, net, baked, x_inf, n_rounds)
        load_info = load_record(load)
    ms, ratios = train.medians(1e3), train.ratios("torch")
    print(f"train step: ember {ms['ember']:.2f} ms, reference path {ms['ember_reference_path']:.2f} ms, torch "
          f"{ms['torch']:.2f} ms; ratios {ratios['ember']:.3f} and {ratios['ember_reference_path']:.3f}", flush=True)
    inf_ms, inf_ratios = infer.medians(1e3), infer.ratios("torch")
    print(f"inference: layer {inf_ms['ember_layer']:.2f} ms, baked {inf_ms['ember_baked']:.2f} ms, "
          f"torch {inf_ms['torch']:.2f} ms", flush=True)
    fields = {
        "train_ms_per_step": {name: round(v, 3) for name, v in ms.items()},
        "train_step_ratio": round(ratios["ember"], 3),
        "train_step_ratio_reference_path": round(ratios["ember_reference_path"], 3),
        "train_ember_over_reference_path": round(train.ratio("ember", "ember_reference_path"), 3),
        "inference_ms_per_batch": {name: round(v, 3) for name, v in inf_ms.items()},
        "inference_ratio_to_torch": {name: round(v, 3) for name, v in inf_ratios.items()},
        "baked_vs_layer": round(inf_ms["ember_baked"] / inf_ms["ember_layer"], 3),
        "load": load_info,
    }
    return fields, (model, net, baked, x_inf)


def accuracy_ember(model, x, y):
    with ember.no_grad():
        return float(np.mean(np.concatenate([model(ember.from_numpy(x[i:i + 1000])).data.argmax(1)
                                              for i in range(0, len(x), 1000)]) == y))


def accuracy_torch(torch, net, x, y):
    with torch.no_grad():
        return float(np.mean(np.concatenate([net(torch.from_numpy(x[i:i + 1000])).argmax(1).numpy()
                                              for i in range(0, len(x), 1000)]) == y))


MEMORY_PROBE = r"""
import sys, json, numpy as np
import ember  # noqa: F401  (runtime settings for both, so the two measurements match)
def rss():
    fields = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)
    return int(fields['VmRSS'].split()[0]) * 1024, int(fields['VmHWM'].split()[0]) * 1024
which, batch = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
x_np = rng.uniform(-1, 1, (batch, 784)).astype(np.float32); y_np = rng.integers(0, 10, batch)
ember.manual_seed(0)
from ember.models import KAN
model = KAN(widths=(784, 64, 10), grid_size=5, spline_order=3)
if which == 'ember':
    import ember.nn.functional as F
    opt = ember.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = ember.tensor(x_np), ember.tensor(y_np)
    def step():
        opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
else:
    import torch
    torch.set_num_threads(2)
    sys.path.insert(0, sys.argv[3])
    from bench_kan import torch_kan
    net = torch_kan(torch, model)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    def step():
        opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
open('/proc/self/clear_refs', 'w').write('5')  # reset the high-water mark: count only the step
before, _ = rss()
step()
_, peak = rss()
print(json.dumps({'framework': which, 'batch': batch, 'step_peak_bytes': peak - before}))
"""


def peak_memory(which: str, batch: int) -> int:
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, which, str(batch), str(ROOT)], check=True,
                         capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])["step_peak_bytes"]


def accuracy_run(torch, model, net, xtr, ytr, xte, yte, epochs, total) -> dict:
    """Train ember's KAN (default kernels) and its PyTorch twin, alternating one epoch of each on identical
    batches; the result's epoch and accuracy fields."""
    rng = np.random.default_rng(1)
    orders = [rng.permutation(len(xtr)) for _ in range(epochs)]
    epochs_of = [[order[i:i + BATCH] for i in range(0, len(xtr), BATCH)] for order in orders]
    history = []

    def epoch_of(step, to_batch):
        return streaming(lambda batches: [step(*to_batch(xtr[b], ytr[b])) for b in batches], epochs_of)

    def evaluate(index, timings):
        accs = (accuracy_ember(model, xte, yte), accuracy_torch(torch, net, xte, yte))
        history.append({"epoch": index + 1, "ember_test_accuracy": accs[0], "torch_test_accuracy": accs[1]})
        s = {name: t[-1] for name, t in timings.per_round.items()}
        print(f"epoch {index + 1}: ember {accs[0]:.2%} ({s['ember']:.1f} s), torch {accs[1]:.2%} "
              f"({s['torch']:.1f} s)", flush=True)

    contenders = {"ember": epoch_of(*ember_runner(model, 1e-3, total)),
                  "torch": epoch_of(*torch_runner(torch, net, 1e-3, total))}
    timings = rounds(contenders, epochs, warmup=0, on_round=evaluate)
    return {
        "seconds_per_epoch": {name: round(s, 2) for name, s in timings.medians().items()},
        "test_accuracy": {"ember": history[-1]["ember_test_accuracy"], "torch": history[-1]["torch_test_accuracy"]},
        "history": history,
    }


def baked_round_trip(baked, x) -> bool:
    """Whether the baked model saved and loaded again gives bit-identical outputs."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kan-baked-probe.safetensors"
        baked.save(path)
        return bool(np.array_equal(BakedKAN.load(path)(x), baked(x)))


def load_mnist(data_dir, subsets=(None, None)):
    """MNIST as flat float32 rows in [-1, 1] and labels: (x_train, y_train, x_test, y_test); a dry run keeps the
    first ``subsets`` images of each split."""
    stats = (np.array([0.5], np.float32), np.array([0.5], np.float32))  # pixels to [-1, 1]
    train, _ = image_classification("mnist", "train", data_dir, stats=stats)
    test, _ = image_classification("mnist", "test", data_dir, stats=stats)
    n_train, n_test = subsets
    return (train.arrays[0].reshape(len(train), -1)[:n_train], train.arrays[1][:n_train],
            test.arrays[0].reshape(len(test), -1)[:n_test], test.arrays[1][:n_test])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="accuracy epochs (default 3; 0 with --load)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 9)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--memory-batch", type=int, default=None, help="default 4096")
    add_load_argument(parser)
    parser.add_argument("--quick", action="store_true", help="a dry run in seconds (tiny figures: not results)")
    parser.add_argument("--out", default=None,
                        help="default results/kan.json (results/kan_loaded.json with --load)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    sizes = QUICK if args.quick else {}
    args.rounds = args.rounds or sizes.get("rounds", 9)
    args.memory_batch = args.memory_batch or sizes.get("memory_batch", 4096)
    args.epochs = accuracy_epochs(parser, args, default=sizes.get("epochs", 3))
    args.subsets = (sizes.get("train_subset"), sizes.get("test_subset"))
    return args


def bench(args) -> Outcome:
    import torch

    epochs = args.epochs
    # a dry run takes 1 thread: beside other work, PyTorch's OpenMP threads wait on each other at every op
    torch.set_num_threads(1 if args.quick else 2)
    info = machine_info()
    print(f"machine: {machine_line(info)}; busy processes: {args.load}", flush=True)
    xtr, ytr, xte, yte = load_mnist(args.data_dir, args.subsets)
    total = max(epochs, 1) * -(-len(xtr) // BATCH)
    fields, (model, net, baked, x_inf) = timing(torch, xtr, ytr, xte, total, args.rounds, args.load)
    result = {
        "benchmark": "bench_kan", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
        "machine_info": info, "busy_processes": args.load, "torch": torch.__version__, "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(), "widths": list(WIDTHS), "grid_size": GRID, "spline_order": ORDER,
        "batch": BATCH, "quick": args.quick, **fields,
    }
    if not args.load:
        if epochs:
            result.update(accuracy_run(torch, model, net, xtr, ytr, xte, yte, epochs, total))
        result["epochs"] = epochs
        mem_e = peak_memory("ember", args.memory_batch)
        mem_t = peak_memory("torch", args.memory_batch)
        print(f"peak step memory at batch {args.memory_batch}: ember {mem_e / 2**20:.0f} MiB, "
              f"torch {mem_t / 2**20:.0f} MiB", flush=True)
        result["peak_step_memory_bytes"] = {"batch": args.memory_batch, "ember": mem_e, "torch": mem_t}
        result["baked_round_trip_bit_identical"] = baked_round_trip(baked, x_inf)
    out = Path(args.out) if args.out else results_path("kan", args.load, quick=args.quick)
    files = publish("bench_kan", result, out, args.load, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(result), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("kan")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


def headline(r) -> str:
    return f"training step ember/PyTorch {r['train_step_ratio']:.2f}x"


def chart(r) -> Bars:
    ms, inf = r["train_ms_per_step"], r["inference_ms_per_batch"]
    load = f", beside {describe_load(r['busy_processes'])}" if r["busy_processes"] else ""
    return Bars(f"KAN [784, 64, 10], batch {r['batch']}{load}", "ms (lower is faster)", {
        "training step": {"ember": ms["ember"], "ember reference path": ms["ember_reference_path"],
                          "PyTorch": ms["torch"]},
        "inference, training layer": {"ember": inf["ember_layer"], "PyTorch": inf["torch"]},
        "inference, baked model": {"ember": inf["ember_baked"]},
    }, note=r["machine"])


def reference_path_row(r) -> str:
    """The training-step row of ember's reference path, or nothing for results from before it was timed."""
    if "train_step_ratio_reference_path" not in r:
        return ""
    return (f"| training step, batch {r['batch']}, ember's reference path (ms) | "
            f"{r['train_ms_per_step']['ember_reference_path']:.2f} | {r['train_ms_per_step']['torch']:.2f} | "
            f"{r['train_step_ratio_reference_path']:.2f} |")


def markdown(r) -> str:
    mb = 2**20
    mem = r["peak_step_memory_bytes"]
    rows = [
        "| KAN [784, 64, 10], G=5, k=3 | ember | PyTorch (efficient-kan style) | ember/PyTorch |",
        "|---|---:|---:|---:|",
        f"| training step, batch {r['batch']} (ms) | {r['train_ms_per_step']['ember']:.2f} | "
        f"{r['train_ms_per_step']['torch']:.2f} | **{r['train_step_ratio']:.2f}** |",
        reference_path_row(r),
        f"| inference, batch {r['batch']}, training layer (ms) | {r['inference_ms_per_batch']['ember_layer']:.2f} | "
        f"{r['inference_ms_per_batch']['torch']:.2f} | {r['inference_ratio_to_torch']['ember_layer']:.2f} |",
        f"| inference, batch {r['batch']}, baked model (ms) | {r['inference_ms_per_batch']['ember_baked']:.2f} | - | "
        f"{r['inference_ratio_to_torch']['ember_baked']:.2f} |",
        f"| seconds per epoch | {r['seconds_per_epoch']['ember']:.1f} | {r['seconds_per_epoch']['torch']:.1f} | "
        f"{r['seconds_per_epoch']['ember'] / r['seconds_per_epoch']['torch']:.2f} |",
        f"| test accuracy after {r['epochs']} epochs | {r['test_accuracy']['ember']:.2%} | "
        f"{r['test_accuracy']['torch']:.2%} | |",
        f"| peak memory of a training step, batch {mem['batch']} (MiB) | {mem['ember'] / mb:.0f} | "
        f"{mem['torch'] / mb:.0f} | {mem['ember'] / max(mem['torch'], 1):.2f} |",
    ]
    return "\n".join(row for row in rows if row)


def render_idle(r, path):
    """The README's meta line and table, or None for a run without the accuracy epochs."""
    if "test_accuracy" not in r:
        return None
    meta = (f"Measured {r['date']} on {r['machine']}, PyTorch {r['torch']} ({r.get('torch_threads', 2)} threads); "
            f"`python benchmarks/bench_kan.py` (results in `{path}`).")
    return meta, markdown(r)


def render_loaded(r, path) -> str:
    """The loaded run's timings: a sentence saying how it was measured, and a small table."""
    n, ms, inf = r["busy_processes"], r["train_ms_per_step"], r["inference_ms_per_batch"]
    return "\n".join([
        f"Beside {describe_load(n)} (`python benchmarks/bench_kan.py --load {n}`, measured {r['date']} on "
        f"{r['machine']}; ember's BLAS threads at the end: {r['load']['blas_threads_at_end']}; results in `{path}`):",
        "",
        "| KAN [784, 64, 10], beside a load | ember | ember reference path | PyTorch | ember/PyTorch | "
        "reference path/PyTorch |",
        "|---|---:|---:|---:|---:|---:|",
        f"| training step, batch {r['batch']} (ms) | {ms['ember']:.2f} | {ms['ember_reference_path']:.2f} | "
        f"{ms['torch']:.2f} | **{r['train_step_ratio']:.2f}** | {r['train_step_ratio_reference_path']:.2f} |",
        f"| inference, batch {r['batch']}, training layer (ms) | {inf['ember_layer']:.2f} | | {inf['torch']:.2f} | "
        f"{r['inference_ratio_to_torch']['ember_layer']:.2f} | |",
        f"| inference, batch {r['batch']}, baked model (ms) | {inf['ember_baked']:.2f} | | - | "
        f"{r['inference_ratio_to_torch']['ember_baked']:.2f} | |",
    ])


BENCHMARK = Benchmark(name="kan", title="KAN [784, 64, 10] on MNIST: training step, inference, accuracy, peak memory",
                      run=run, marker="bench_kan", rivals=("torch",))

if __name__ == "__main__":
    sys.exit(main())
