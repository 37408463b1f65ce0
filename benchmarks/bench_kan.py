"""KAN [784, 64, 10] (G=5, k=3) on MNIST: ember against an efficient-kan-style PyTorch layer.

The PyTorch KAN below is the same equation written the way efficient-kan writes it (the
Cox–de Boor recursion on (batch, in, G+2k) tensors, differentiated by autograd, then two
GEMMs). Both start from ember's initial weights and see the same batches. Measured in one run:

* ms per training step (AdamW), batch 256: interleaved rounds, median of per-round ratios;
* ms per inference batch of 256: ember's training layer (no_grad), the baked model, PyTorch;
* test accuracy after 3 epochs (AdamW lr 1e-3, weight decay 1e-4, cosine decay, batch 256);
* peak memory of one training step at batch 4,096: each framework in a fresh process, the
  rise of the resident set's high-water mark over the step (same method for both).

Run:  EMBER_DATA=../shared/data python benchmarks/bench_kan.py [--epochs 3] [--update-readme]
Writes benchmarks/results/kan.json and kan.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

import ember.nn.functional as F
from ember.data import image_classification
from ember.kan import BakedKAN
from ember.models import KAN

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
WIDTHS, GRID, ORDER, BATCH = (784, 64, 10), 5, 3, 256


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


def interleaved(fns, rounds, reps):
    """Median ms per call of each fn, and each fn's median per-round ratio to the last one."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    for _ in range(rounds):
        for k, f in enumerate(fns):
            start = time.perf_counter()
            for _ in range(reps):
                f()
            times[k].append((time.perf_counter() - start) / reps * 1e3)
    ratios = [float(np.median(np.array(t) / np.array(times[-1]))) for t in times]
    return [float(np.median(t)) for t in times], ratios


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--memory-batch", type=int, default=4096)
    parser.add_argument("--out", default=str(RESULTS / "kan.json"))
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    stats = (np.array([0.5], np.float32), np.array([0.5], np.float32))  # pixels to [-1, 1]
    train, _ = image_classification("mnist", "train", args.data_dir, stats=stats)
    test, _ = image_classification("mnist", "test", args.data_dir, stats=stats)
    xtr, ytr = train.arrays[0].reshape(len(train), -1), train.arrays[1]
    xte, yte = test.arrays[0].reshape(len(test), -1), test.arrays[1]
    steps_per_epoch = -(-len(xtr) // BATCH)
    total = max(args.epochs, 1) * steps_per_epoch

    # speed: throw-away copies of both, fixed batches
    ember.manual_seed(0)
    probe = KAN(widths=WIDTHS, grid_size=GRID, spline_order=ORDER)
    e_step, e_batch = ember_runner(probe, 1e-3, total)
    t_step, t_batch = torch_runner(torch, torch_kan(torch, probe), 1e-3, total)
    rng = np.random.default_rng(0)
    idx = [rng.permutation(len(xtr))[:BATCH] for _ in range(4)]
    eb = [e_batch(xtr[i], ytr[i]) for i in idx]
    tb = [t_batch(xtr[i], ytr[i]) for i in idx]
    counter = {"e": 0, "t": 0}

    def e_train():
        counter["e"] += 1
        e_step(*eb[counter["e"] % 4])

    def t_train():
        counter["t"] += 1
        t_step(*tb[counter["t"] % 4])

    (ms_e, ms_t), (ratio, _) = interleaved([e_train, t_train], args.rounds, 5)
    print(f"train step: ember {ms_e:.2f} ms, torch {ms_t:.2f} ms, ratio {ratio:.3f}", flush=True)

    ember.manual_seed(0)
    model = KAN(widths=WIDTHS, grid_size=GRID, spline_order=ORDER)
    net = torch_kan(torch, model)
    baked = BakedKAN.from_model(model)
    x_inf = xte[:BATCH]
    x_inf_e, x_inf_t = ember.from_numpy(x_inf), torch.from_numpy(x_inf)

    def e_infer():
        with ember.no_grad():
            model(x_inf_e)

    def t_infer():
        with torch.no_grad():
            net(x_inf_t)

    (ms_layer, ms_baked, ms_tinf), (r_layer, r_baked, _) = interleaved(
        [e_infer, lambda: baked(x_inf), t_infer], args.rounds, 10)
    print(f"inference: layer {ms_layer:.2f} ms, baked {ms_baked:.2f} ms, torch {ms_tinf:.2f} ms", flush=True)

    # accuracy after a few epochs, alternating one epoch of each on identical batches
    e_step, e_batch = ember_runner(model, 1e-3, total)
    t_step, t_batch = torch_runner(torch, net, 1e-3, total)
    rng = np.random.default_rng(1)
    epoch_s, history = [[], []], []
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(xtr))
        batches = [order[i:i + BATCH] for i in range(0, len(xtr), BATCH)]
        for k, (step, to_batch) in enumerate(((e_step, e_batch), (t_step, t_batch))):
            start = time.perf_counter()
            for b in batches:
                step(*to_batch(xtr[b], ytr[b]))
            epoch_s[k].append(time.perf_counter() - start)
        accs = (accuracy_ember(model, xte, yte), accuracy_torch(torch, net, xte, yte))
        history.append({"epoch": epoch, "ember_test_accuracy": accs[0], "torch_test_accuracy": accs[1]})
        print(f"epoch {epoch}: ember {accs[0]:.2%} ({epoch_s[0][-1]:.1f} s), torch {accs[1]:.2%} "
              f"({epoch_s[1][-1]:.1f} s)", flush=True)

    mem_e = peak_memory("ember", args.memory_batch)
    mem_t = peak_memory("torch", args.memory_batch)
    print(f"peak step memory at batch {args.memory_batch}: ember {mem_e / 2**20:.0f} MiB, "
          f"torch {mem_t / 2**20:.0f} MiB", flush=True)

    baked_path = RESULTS / ".kan-baked-probe.safetensors"
    baked.save(baked_path)
    round_trip = bool(np.array_equal(BakedKAN.load(baked_path)(x_inf), baked(x_inf)))
    baked_path.unlink()
    result = {
        "benchmark": "bench_kan", "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__, "numpy": np.__version__, "widths": list(WIDTHS), "grid_size": GRID,
        "spline_order": ORDER, "batch": BATCH,
        "train_ms_per_step": {"ember": round(ms_e, 3), "torch": round(ms_t, 3)}, "train_step_ratio": round(ratio, 3),
        "inference_ms_per_batch": {"ember_layer": round(ms_layer, 3), "ember_baked": round(ms_baked, 3),
                                   "torch": round(ms_tinf, 3)},
        "inference_ratio_to_torch": {"ember_layer": round(r_layer, 3), "ember_baked": round(r_baked, 3)},
        "baked_vs_layer": round(ms_baked / ms_layer, 3),
        "baked_round_trip_bit_identical": round_trip,
        "seconds_per_epoch": {"ember": round(float(np.median(epoch_s[0])), 2),
                              "torch": round(float(np.median(epoch_s[1])), 2)},
        "test_accuracy": {"ember": history[-1]["ember_test_accuracy"], "torch": history[-1]["torch_test_accuracy"]},
        "epochs": args.epochs, "history": history,
        "peak_step_memory_bytes": {"batch": args.memory_batch, "ember": mem_e, "torch": mem_t},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    meta = (f"Measured {result['date']} on {result['machine']}, PyTorch {torch.__version__} (2 threads); "
            f"`python benchmarks/bench_kan.py` (results in `benchmarks/results/kan.json`).")
    out.with_suffix(".md").write_text(meta + "\n\n" + table + "\n")
    print(table)
    if args.update_readme:
        from readme import update_readme

        update_readme("bench_kan", table, meta)
    return 0


def markdown(r) -> str:
    mb = 2**20
    mem = r["peak_step_memory_bytes"]
    return "\n".join([
        "| KAN [784, 64, 10], G=5, k=3 | ember | PyTorch (efficient-kan style) | ember/PyTorch |",
        "|---|---:|---:|---:|",
        f"| training step, batch {r['batch']} (ms) | {r['train_ms_per_step']['ember']:.2f} | "
        f"{r['train_ms_per_step']['torch']:.2f} | **{r['train_step_ratio']:.2f}** |",
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
    ])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
