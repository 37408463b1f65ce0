"""Data-parallel training and the distributed forward-only solve on this machine (issue 17), and what they project.

Every configuration runs in fresh processes, in interleaved rounds: 1 process with 1 BLAS thread, 1 process with
2 threads, and 2 MPI processes (mpirun -np 2, 127.0.0.1) with 1 thread each:

* MLP and LeNet-5 epochs on MNIST through ``ember train`` (seconds per epoch, training only; 2 processes with the
  same global batch, half on each, and with the same batch per process);
* the char-level Shakespeare GPT (nanoGPT's CPU recipe, shortened to ``--gpt-iters``): ms per iteration and the
  final validation loss, 2 ranks x 12 sequences against one process with 24;
* the forward-only solve of the best MNIST experiment (``pca-conv-rp``): fit seconds and test accuracy;
* all-reduce time against message size between 2 ranks (ember's deadline-polled collective and MPI's blocking
  call), fitted to latency + bytes / bandwidth;

then projects steps per second at 8, 64 and 512 ranks on 25 Gb/s Ethernet and 400 Gb/s InfiniBand with the cost
model of docs/scaling.md (compute per step from the 1-thread runs, all-reduce 2(N-1)/N * bytes / bandwidth +
latency * log2 N).

  EMBER_DATA=../shared/data python benchmarks/bench_distributed.py          # the full run: an idle machine
  python benchmarks/bench_distributed.py --quick                             # a dry run in about a minute
  python benchmarks/bench_distributed.py --parts allreduce train             # some parts only

Writes benchmarks/results/distributed.json and .md (distributed_quick.* with --quick). Needs mpi4py and an mpirun
(pip install 'ember[mpi]').
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import numpy as np  # noqa: E402

from ember.benchmarking import (  # noqa: E402
    Bars, Benchmark, BenchmarkFailed, Outcome, RunOptions, machine_info, machine_line, publish, results_path,
    refuse_dry_run_in_readme)

PARTS = ("allreduce", "train", "gpt", "elm")
RANKS = (8, 64, 512)
NETWORKS = {  # bandwidth (bytes/s) and per-stage latency (s), the assumptions stated in docs/scaling.md
    "25 Gb/s Ethernet": (25e9 / 8, 25e-6),
    "400 Gb/s InfiniBand": (400e9 / 8, 2e-6),
}
MODELS = {"mlp": {"batch": 128, "params": 235_146}, "lenet": {"batch": 64, "params": 61_706}}
MNIST_TRAIN = 60_000
MPIRUN = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")


# -- launching ---------------------------------------------------------------------------------------------------
def launch(command: list[str], threads: int, ranks: int, timeout: float, env: dict | None = None) -> str:
    """Run ``command`` as 1 process with ``threads`` BLAS threads, or under ``mpirun -np ranks``, where
    ``ember.distributed.init`` gives each rank its share of the cores (1 each on 2 cores) and a rank that solves
    alone all of them: OpenBLAS started with OPENBLAS_NUM_THREADS=1 could not grow its pool later. Its stdout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT.parent), **(env or {})}
    for name in ("OPENBLAS_NUM_THREADS", "EMBER_BLAS_THREADS"):
        full_env.pop(name, None)
    if ranks == 1:
        full_env["OPENBLAS_NUM_THREADS"] = str(threads)
    if ranks > 1:
        if MPIRUN is None:
            raise BenchmarkFailed("no mpirun found (pip install 'ember[mpi]')")
        command = [MPIRUN, "-hosts", "127.0.0.1", "-np", str(ranks), *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT.parent)
    if proc.returncode != 0:
        raise BenchmarkFailed(f"{' '.join(command)} exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


CONFIGS = {  # name -> (BLAS threads per process, processes)
    "1 process, 1 thread": (1, 1),
    "1 process, 2 threads": (2, 1),
    "2 processes, 1 thread each": (1, 2),
}


# -- all-reduce against message size -------------------------------------------------------------------------------
def child_allreduce(out: Path, largest: int) -> None:
    """Under mpirun: median seconds of an in-place float32 all-reduce per size, ember's and MPI's blocking one."""
    import ember.distributed as dist

    world = dist.init(timeout=120)
    comm, MPI = world.comm, world.MPI
    rows = []
    for elements in [2**k for k in range(8, int(math.log2(largest)) + 1, 2)]:
        buffer = np.ones(elements, dtype=np.float32)
        shared = world.all_reduce_buffer(elements, np.float32)  # the gradient buckets' kind: shared memory here
        shared[...] = 1.0
        repeats = max(5, min(200, int(2e7 // elements)))
        timings = {}
        for name, call in (("ember", lambda b=buffer: world.all_reduce(b)),
                           ("ember_shared", lambda b=shared: world.all_reduce(b)),
                           ("mpi_blocking", lambda b=buffer: comm.Allreduce(MPI.IN_PLACE, b))):
            call()
            world.barrier()
            seconds = []
            for _ in range(repeats):
                started = time.perf_counter()
                call()
                seconds.append(time.perf_counter() - started)
            timings[name] = statistics.median(seconds)
        rows.append({"elements": elements, "bytes": 4 * elements, **timings})
    if world.is_main:
        out.write_text(json.dumps(rows))


def fit_latency_bandwidth(rows: list[dict], key: str = "ember") -> dict:
    """t = latency + bytes / bandwidth (2 ranks: 2(N-1)/N = 1): the latency is the smallest message's time, the
    bandwidth the large messages' (1 MiB and up; the largest measured when none is) bytes over their time beyond
    the latency. A least-squares line would let the largest sizes' noise swamp the microseconds."""
    latency = float(rows[0][key])
    large = [r for r in rows if r["bytes"] >= 2**20] or rows[-1:]
    spent = sum(max(r[key] - latency, 1e-12) for r in large)
    return {"latency_s": latency, "bandwidth_bytes_per_s": sum(r["bytes"] for r in large) / spent}


def bench_allreduce(args, tmp: Path) -> dict:
    out = tmp / "allreduce.json"
    launch([sys.executable, str(Path(__file__).resolve()), "--child", "allreduce", "--child-out", str(out),
            "--largest", str(2**18 if args.quick else 2**24)], threads=1, ranks=2, timeout=args.timeout)
    rows = json.loads(out.read_text())
    return {"rows": rows, "fit": fit_latency_bandwidth(rows), "fit_mpi_blocking": fit_latency_bandwidth(rows,
                                                                                                       "mpi_blocking"),
            "fit_shared": fit_latency_bandwidth(rows, "ember_shared")}


# -- training through ember train ----------------------------------------------------------------------------------
def write_synthetic_mnist(root: Path, n_train: int = 2048, n_test: int = 512) -> Path:
    """A small MNIST-shaped dataset (a bright block per class) for the dry run."""
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    arrays = []
    for n, seed in ((n_train, 0), (n_test, 1)):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 3 + (c // 5) * 13:8 + (c // 5) * 13, 1 + (c % 5) * 5:6 + (c % 5) * 5] = 255
        arrays += [images, labels]
    for name, a in zip(names, arrays):
        header = bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
        (folder / f"{name}.gz").write_bytes(gzip.compress(header + a.tobytes()))
    return root


NO_EXCHANGE = "no gradient exchange"


def train_once(model: str, batch: int, threads: int, ranks: int, args, data_dir: Path | None,
               exchange: bool = True) -> dict:
    """``ember train`` in fresh processes; ``exchange=False``: under ``--distributed`` but with the gradients left
    alone (``child_no_exchange``)."""
    start = [sys.executable, "-m", "ember"] if exchange else [sys.executable, str(Path(__file__).resolve()),
                                                              "--child", "no-exchange"]
    command = [*start, "train", model, "--epochs", str(args.epochs), "--batch-size",
               str(batch), "--json", "--no-progress", "--seed", "0", *(["--data-dir", str(data_dir)] if data_dir
                                                                          else []),
               *(["--distributed"] if ranks > 1 else [])]
    records = json_lines(launch(command, threads, ranks, args.timeout))
    epochs = [r for r in records if r["event"] == "epoch"]
    seconds = [r["seconds"] for r in epochs]
    # The first epoch also pays each process's one-time start (numba loading its cached kernels, about 0.45 s
    # here, the same in every configuration): kept apart, so that s/epoch is the rate of training itself.
    return {"first_epoch_seconds": seconds[0], "epoch_seconds": seconds[1:] or seconds,
            "test_accuracy": epochs[-1]["test_accuracy"], "loss": epochs[-1]["loss"]}


def bench_training(args, data_dir: Path | None) -> dict:
    results = {}
    for model in args.models:
        B = MODELS[model]["batch"]
        runs = {f"1 process, 1 thread, batch {B}": (1, 1, B), f"1 process, 2 threads, batch {B}": (2, 1, B),
                f"2 processes, 1 thread each, batch {B // 2} each (global {B})": (1, 2, B // 2),
                f"2 processes, 1 thread each, batch {B} each (global {2 * B})": (1, 2, B)}
        if args.no_exchange:
            runs[f"2 processes, batch {B} each, {NO_EXCHANGE}"] = (1, 2, B, False)
        measured = {name: {"epoch_seconds": [], "round_seconds": [], "first_epoch_seconds": [], "test_accuracy": []}
                    for name in runs}
        for _ in range(args.rounds):
            for name, (threads, ranks, batch, *exchange) in runs.items():
                got = train_once(model, batch, threads, ranks, args, data_dir, *exchange)
                measured[name]["epoch_seconds"] += got["epoch_seconds"]
                measured[name]["round_seconds"].append(statistics.median(got["epoch_seconds"]))
                measured[name]["first_epoch_seconds"].append(got["first_epoch_seconds"])
                measured[name]["test_accuracy"].append(got["test_accuracy"])
                print(f"{model} | {name}: {statistics.median(got['epoch_seconds']):.2f} s/epoch, "
                      f"test {got['test_accuracy']:.2%}", flush=True)
        for m in measured.values():
            m["median_epoch_s"] = statistics.median(m["epoch_seconds"])
            m["median_first_epoch_s"] = statistics.median(m["first_epoch_seconds"])
        results[model] = {"batch": B, "runs": {name: {**m, **dict(zip(("threads", "processes", "batch_per_process",
                                                                          "exchange"), runs[name]))}
                                               for name, m in measured.items()}}
    return results


# -- the GPT ----------------------------------------------------------------------------------------------------------
def gpt_once(batch: int, threads: int, ranks: int, args, out: Path) -> dict:
    quick = ["--tokenizer", "char", "--data", str(args.quick_text), "--n-layer", "1", "--n-head", "2", "--n-embd",
             "32", "--block-size", "32"] if args.quick else []
    iters = str(args.gpt_iters)
    command = [sys.executable, "-m", "ember", "train", "gpt", *quick, "--max-iters", iters, "--eval-interval", iters,
               "--eval-iters", "5" if args.quick else "50", "--batch-size", str(batch), "--out", str(out), "--force",
               "--json", "--no-progress", *(["--distributed"] if ranks > 1 else [])]
    stdout = launch(command, threads, ranks, args.timeout)
    summary = json_lines(stdout)[-1]
    params = re.search(r"([\d,]+) parameters", stdout)
    return {"ms_per_iter": summary["ms_per_iter"], "val_loss": summary["val_loss"],
            "parameters": int(params.group(1).replace(",", "")) if params else None}


def bench_gpt(args, tmp: Path) -> dict:
    runs = {"1 process, 1 thread, batch 24": (1, 1, 24), "1 process, 2 threads, batch 24": (2, 1, 24),
            "2 processes, 1 thread each, batch 12 each (global 24)": (1, 2, 12),
            "1 process, 1 thread, batch 12": (1, 1, 12)}
    measured = {name: {"ms_per_iter": [], "val_loss": []} for name in runs}
    for _ in range(args.rounds):
        for name, (threads, ranks, batch) in runs.items():
            got = gpt_once(batch, threads, ranks, args, tmp / "gpt")
            args.gpt_params = got.pop("parameters")
            for key in got:
                measured[name][key].append(got[key])
            print(f"gpt | {name}: {got['ms_per_iter']:.1f} ms/iter, val loss {got['val_loss']:.4f}", flush=True)
    return {"iters": args.gpt_iters, "runs": {name: {**m, "median_ms_per_iter": statistics.median(m["ms_per_iter"]),
                                                     "threads": runs[name][0], "processes": runs[name][1],
                                                     "batch_per_process": runs[name][2]}
                                              for name, m in measured.items()}}


# -- the forward-only solve -----------------------------------------------------------------------------------------
def child_no_exchange(argv: list[str]) -> int:
    """Under mpirun: ``ember train ... --distributed`` with a wrapper that leaves the gradients alone in place of
    DistributedDataParallel. Each rank trains its own replica on its shard, and the ranks still meet at every step
    (the loss's agreement): the shards, the meeting and the cores' difference in speed, without a byte of gradient
    moved. A reference for what the exchange costs, not a strict bound: replicas that are never averaged compute
    on other values, and LeNet-5's ran slower than the data-parallel run."""
    import ember.distributed as dist
    from ember.cli.main import main as ember_main
    from ember.nn import Module

    class NoExchange(Module):
        def __init__(self, module, world=None, **options):
            super().__init__()
            self.module = module

        def forward(self, *args, **kwargs):
            return self.module(*args, **kwargs)

    dist.DistributedDataParallel = NoExchange  # looked up by `ember train` when it runs
    return ember_main(argv)


def child_elm(out: Path, experiment: str, quick: bool) -> None:
    """Under mpirun or alone: fit ``experiment`` with its Gram matrix summed over the ranks; rank 0 writes JSON."""
    import ember.distributed as dist
    from ember.distributed import forward_only

    world = dist.init(timeout=600)
    if quick:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((4000, 1, 28, 28)).astype(np.float32)
        y = (X[:, 0, 10:18, 10:18].mean(axis=(1, 2)) * 40).astype(np.int64) % 10
        result = _tiny_elm(world, (X[:3000], y[:3000], X[3000:], y[3000:]))
    else:
        result = forward_only.run_experiment(experiment, world, download=False)
    if world.is_main:
        out.write_text(json.dumps(result))


def _tiny_elm(world, data) -> dict:
    """The dry run's stand-in: a 512-unit random ReLU layer and its ridge readout."""
    from ember.distributed.forward_only import fit_elm, score
    from ember.elm.features import RandomProjection
    from ember.elm.learners import ELMClassifier

    X, y, Xt, yt = data
    world.barrier()
    started = time.perf_counter()
    learner = fit_elm(ELMClassifier(RandomProjection(512, "relu", 0)), X, y, world)
    world.barrier()
    seconds = time.perf_counter() - started
    return {"experiment": "tiny", "ranks": world.size, "test_accuracy": score(learner, Xt, yt, world),
            "seconds": round(seconds, 2)}


def bench_elm(args, tmp: Path) -> dict:
    experiment = "tiny" if args.quick else args.elm_experiment
    measured = {name: {"seconds": [], "test_accuracy": []} for name in CONFIGS}
    for _ in range(args.elm_rounds):
        for name, (threads, ranks) in CONFIGS.items():
            out = tmp / "elm.json"
            launch([sys.executable, str(Path(__file__).resolve()), "--child", "elm", "--child-out", str(out),
                    "--elm-experiment", experiment, *(["--quick"] if args.quick else [])], threads, ranks,
                   args.timeout)
            got = json.loads(out.read_text())
            measured[name]["seconds"].append(got["seconds"])
            measured[name]["test_accuracy"].append(got["test_accuracy"])
            print(f"elm {experiment} | {name}: {got['seconds']:.1f} s, test {got['test_accuracy']:.2%}", flush=True)
    return {"experiment": experiment, "runs": {name: {**m, "median_seconds": statistics.median(m["seconds"])}
                                               for name, m in measured.items()}}


# -- the cost model -------------------------------------------------------------------------------------------------
def allreduce_seconds(nbytes: float, ranks: int, bandwidth: float, latency: float) -> float:
    """The model's all-reduce: a ring's 2(N-1)/N * bytes / bandwidth plus latency * log2 N (a tree's stages)."""
    return 2 * (ranks - 1) / ranks * nbytes / bandwidth + latency * math.log2(ranks)


def project(step_s: float, nbytes: float, batch: int) -> list[dict]:
    """Steps per second (and samples per second, efficiency) at each rank count on each network, no overlap: the
    gradients' all-reduce (the 8-byte one with which ``ember train --distributed`` agrees on each loss is in
    flight beside it, started before backward, and adds no wait of its own)."""
    rows = []
    for network, (bandwidth, latency) in NETWORKS.items():
        for n in RANKS:
            comm = allreduce_seconds(nbytes, n, bandwidth, latency)
            steps = 1.0 / (step_s + comm)
            rows.append({"network": network, "ranks": n, "compute_ms": 1e3 * step_s, "allreduce_ms": 1e3 * comm,
                         "steps_per_s": steps, "samples_per_s": steps * n * batch,
                         "efficiency": step_s / (step_s + comm)})
    return rows


def projections(report: dict) -> dict:
    """Per model: its compute time per step at the per-rank batch (the 1-thread runs) and the projected rows."""
    out = {}
    train = report.get("train", {})
    for model, spec in MODELS.items():
        if model not in train:
            continue
        B = spec["batch"]
        runs = train[model]["runs"]
        seconds = runs[f"1 process, 1 thread, batch {B}"]["median_epoch_s"]
        step = seconds / math.ceil(report["train_images"] / B)
        out[model] = {"batch_per_rank": B, "gradient_bytes": 4 * spec["params"], "compute_s_per_step": step,
                      "rows": project(step, 4 * spec["params"], B)}
    gpt = report.get("gpt")
    if gpt and report.get("gpt_params"):
        step = gpt["runs"]["1 process, 1 thread, batch 12"]["median_ms_per_iter"] / 1e3
        out["gpt"] = {"batch_per_rank": 12, "gradient_bytes": 4 * report["gpt_params"], "compute_s_per_step": step,
                      "rows": project(step, 4 * report["gpt_params"], 12)}
    return out


# -- the report ------------------------------------------------------------------------------------------------------
def against_no_exchange(runs: dict) -> float | None:
    """The data-parallel run's speed over that of the run without gradient exchange at the same batch per process
    (the median of per-round ratios), or None when there is no such run."""
    alone = next((k for k in runs if NO_EXCHANGE in k), None)
    if alone is None:
        return None
    batch = runs[alone]["batch_per_process"]
    ours = next((k for k, v in runs.items() if k.startswith("2 processes") and NO_EXCHANGE not in k
                 and v.get("batch_per_process") == batch), None)
    if ours is None:
        return None
    return statistics.median(a / o for a, o in zip(runs[alone]["round_seconds"], runs[ours]["round_seconds"]))


def speedups(runs: dict, key: str) -> dict:
    """Each run's speed-up over the 1-process runs: the median of per-round ratios where the runs kept their
    rounds (a round's load weighs on all its runs alike), else the ratio of the medians."""
    base1 = next(k for k in runs if k.startswith("1 process, 1 thread"))
    base2 = next(k for k in runs if k.startswith("1 process, 2 threads"))
    if all(len(v.get("round_seconds", ())) > 0 for v in runs.values()):
        def ratio(base, name):
            return statistics.median(a / b for a, b in zip(runs[base]["round_seconds"], runs[name]["round_seconds"]))
    else:
        def ratio(base, name):
            return runs[base][key] / runs[name][key]
    return {name: {"vs_1_thread": ratio(base1, name), "vs_2_threads": ratio(base2, name)} for name in runs}


def part_note(part: dict, report: dict) -> str:
    """A blank line, or where a part was carried over from an earlier run (``--parts`` ran the others), when."""
    when = part.get("measured")
    if not when or when["date"] == report["date"] and when["load_average"] == report["load_average"]:
        return ""
    return f"\n(Measured {when['date']}, load average at its start {when['load_average']}.)\n"


def markdown(report: dict) -> str:
    lines = [f"Measured {report['date']} on {report['machine']}{' (dry run)' if report['quick'] else ''}; "
             f"load average at the start: {report['load_average']}.", ""]
    for model, result in report.get("train", {}).items():
        steady = "median_first_epoch_s" in next(iter(result["runs"].values()))
        lines += [f"**{model}** epochs ({report['train_images']:,} images; training time only"
                  + ("; s/epoch: the median of the epochs after the first, which also pays the process's one-time "
                     "kernel loading; speed-ups: the median of per-round ratios" if steady else "") + "):", "",
                  "| configuration | s/epoch | vs 1 thread | vs 2 threads | first epoch s | test acc |",
                  "|---|---:|---:|---:|---:|---:|"]
        ups = speedups(result["runs"], "median_epoch_s")
        for name, run in result["runs"].items():
            first = run.get("median_first_epoch_s")
            lines.append(f"| {name} | {run['median_epoch_s']:.2f} | {ups[name]['vs_1_thread']:.2f}x | "
                         f"{ups[name]['vs_2_threads']:.2f}x | {'' if first is None else f'{first:.2f}'} | "
                         f"{statistics.median(run['test_accuracy']):.2%} |")
        reached = against_no_exchange(result["runs"])
        if reached is not None:
            lines += ["", f"With the same batch per process, ember's data parallelism runs at {reached:.0%} of the "
                          f"speed of the same processes exchanging no gradients (median of per-round ratios)."]
        lines.append(part_note(result, report))
    if "gpt" in report:
        lines += [f"**GPT** (char Shakespeare, {report['gpt']['iters']} iterations):", "",
                  "| configuration | ms/iter | vs 1 thread | vs 2 threads | val loss |", "|---|---:|---:|---:|---:|"]
        runs = {k: v for k, v in report["gpt"]["runs"].items() if "batch 12" not in k or "each" in k}
        ups = speedups(runs, "median_ms_per_iter")
        for name, run in runs.items():
            lines.append(f"| {name} | {run['median_ms_per_iter']:.1f} | {ups[name]['vs_1_thread']:.2f}x | "
                         f"{ups[name]['vs_2_threads']:.2f}x | {statistics.median(run['val_loss']):.4f} |")
        lines.append(part_note(report["gpt"], report))
    if "elm" in report:
        lines += [f"**Forward-only** `{report['elm']['experiment']}` (fit wall time, Gram summed over ranks):", "",
                  "| configuration | fit s | vs 1 thread | test acc |", "|---|---:|---:|---:|"]
        runs = report["elm"]["runs"]
        ups = speedups(runs, "median_seconds")
        for name, run in runs.items():
            lines.append(f"| {name} | {run['median_seconds']:.1f} | {ups[name]['vs_1_thread']:.2f}x | "
                         f"{statistics.median(run['test_accuracy']):.2%} |")
        lines.append(part_note(report["elm"], report))
    if "allreduce" in report:
        fit, raw = report["allreduce"]["fit"], report["allreduce"]["fit_mpi_blocking"]
        shared = report["allreduce"].get("fit_shared")
        lines += ["**All-reduce** between 2 local ranks (float32, in place; ember through MPI's non-blocking call, and "
                  "a buffer from `all_reduce_buffer` in the ranks' shared memory, as the gradient buckets are):", "",
                  "| bytes | ember ms | ember, shared buffer ms | MPI blocking ms |", "|---:|---:|---:|---:|"]
        for r in report["allreduce"]["rows"]:
            in_shared = f"{1e3 * r['ember_shared']:.3f}" if "ember_shared" in r else "-"
            lines.append(f"| {r['bytes']:,} | {1e3 * r['ember']:.3f} | {in_shared} | {1e3 * r['mpi_blocking']:.3f} |")
        lines += ["", f"Fit: latency {1e6 * fit['latency_s']:.1f} µs, bandwidth "
                      f"{fit['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s" +
                  (f"; shared buffer {1e6 * shared['latency_s']:.1f} µs, "
                   f"{shared['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s" if shared else "") +
                  f" (MPI's blocking call: {1e6 * raw['latency_s']:.1f} µs, "
                  f"{raw['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s).", part_note(report["allreduce"], report)]
    for model, p in report.get("projections", {}).items():
        lines += [f"**Projection, {model}** (batch {p['batch_per_rank']} per rank, "
                  f"{p['gradient_bytes'] / 2**20:.2f} MiB of gradients, {1e3 * p['compute_s_per_step']:.2f} ms of "
                  f"compute per step):", "", "| network | ranks | all-reduce ms | steps/s | samples/s | efficiency |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in p["rows"]:
            lines.append(f"| {r['network']} | {r['ranks']} | {r['allreduce_ms']:.3f} | {r['steps_per_s']:.1f} | "
                         f"{r['samples_per_s']:,.0f} | {r['efficiency']:.0%} |")
        lines.append("")
    return "\n".join(lines).rstrip()


def render_idle(report: dict, path: str):
    return f"`python benchmarks/bench_distributed.py` (results in `{path}`)", markdown(report)


def render_loaded(report: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def chart(report: dict) -> Bars | None:
    groups = {model: {name: run["median_epoch_s"] for name, run in result["runs"].items()}
              for model, result in report.get("train", {}).items()}
    return Bars("Data-parallel epochs on this machine", "seconds per epoch", groups, note=report["machine"]) \
        if groups else None


def headline(report: dict) -> str:
    parts = []
    for model, result in report.get("train", {}).items():
        ups = speedups(result["runs"], "median_epoch_s")
        best = max((name for name in ups if name.startswith("2 processes") and NO_EXCHANGE not in name),
                   key=lambda n: ups[n]["vs_1_thread"])
        parts.append(f"{model} 2 processes {ups[best]['vs_1_thread']:.2f}x vs 1 thread")
    return "; ".join(parts) or "all-reduce and forward-only figures"


# -- the run ---------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS),
                        help="the image models of the train part")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per training run (default 2; quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 2; quick 1)")
    parser.add_argument("--gpt-iters", type=int, default=None, help="GPT iterations per run (default 500)")
    parser.add_argument("--elm-experiment", default="pca-conv-rp")
    parser.add_argument("--elm-rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per launched run")
    parser.add_argument("--quick", action="store_true", help="a dry run: synthetic data, tiny models, 1 round")
    parser.add_argument("--out", default=None, help="default benchmarks/results/distributed.json")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--skip-no-exchange", dest="no_exchange", action="store_false",
                        help="skip the training runs that exchange no gradients (what the exchange costs)")
    parser.add_argument("--child", choices=("allreduce", "elm"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--largest", type=int, default=2**24, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.gpt_iters = args.gpt_iters or (10 if args.quick else 500)
    args.out = Path(args.out) if args.out else results_path("distributed", quick=args.quick)
    return args


def carry_over(report: dict, args) -> None:
    """The parts (and image models) this run skipped, from the results on file, each with the date it was
    measured: ``--parts elm`` adds the forward-only figures without dropping the training tables."""
    try:
        previous = json.loads(Path(args.out).read_text())
    except (OSError, ValueError):
        return
    if previous.get("quick"):
        return
    old = {"date": previous.get("date"), "load_average": previous.get("load_average")}
    for part in ("allreduce", "gpt", "elm"):
        if part not in report and part in previous:
            report[part] = {"measured": old, **previous[part]}
            if part == "gpt" and "gpt_params" in previous:
                report["gpt_params"] = previous["gpt_params"]
    for model, result in previous.get("train", {}).items():
        if model not in report.get("train", {}):
            report.setdefault("train", {})[model] = {"measured": old, **result}


def bench(args) -> Outcome:
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    report = {"benchmark": "bench_distributed", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
              "machine_info": info, "quick": args.quick, "load_average": [round(v, 2) for v in os.getloadavg()],
              "networks": {k: {"bandwidth_bytes_per_s": b, "latency_s": lat} for k, (b, lat) in NETWORKS.items()}}
    with tempfile.TemporaryDirectory(prefix="ember-bench-distributed-") as folder:
        tmp = Path(folder)
        data_dir = write_synthetic_mnist(tmp / "data") if args.quick else None
        report["train_images"] = 2048 if args.quick else MNIST_TRAIN
        if args.quick:
            args.quick_text = tmp / "words.txt"
            args.quick_text.write_text(" ".join(np.random.default_rng(0).choice(["ab", "cd", "ef", "gh"], 4000)))
        if "allreduce" in args.parts:
            report["allreduce"] = bench_allreduce(args, tmp)
        if "train" in args.parts:
            report["train"] = bench_training(args, data_dir)
        if "gpt" in args.parts:
            report["gpt"] = bench_gpt(args, tmp)
            report["gpt_params"] = args.gpt_params
        if "elm" in args.parts:
            report["elm"] = bench_elm(args, tmp)
    stamp = {"date": report["date"], "load_average": report["load_average"]}
    for part in ("allreduce", "gpt", "elm"):
        if part in report:
            report[part]["measured"] = stamp
    for result in report.get("train", {}).values():
        result["measured"] = stamp
    if not args.quick:
        carry_over(report, args)
    report["projections"] = projections(report)
    files = publish("bench_distributed", report, args.out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("distributed")))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["--child", "no-exchange"]:
        return child_no_exchange(argv[2:])
    args = parse_args(argv)
    if args.child == "allreduce":
        child_allreduce(Path(args.child_out), args.largest)
        return 0
    if args.child == "elm":
        child_elm(Path(args.child_out), args.elm_experiment, args.quick)
        return 0
    try:
        bench(args)
    except BenchmarkFailed as exc:
        print(f"bench_distributed: {exc}", file=sys.stderr)
        return 1
    return 0


BENCHMARK = Benchmark(name="distributed", title="Data-parallel MLP, LeNet-5 and GPT, the distributed forward-only "
                                                "solve, all-reduce cost, and the scaling projection",
                      run=run, marker="bench_distributed", requires=("mpi4py",))


if __name__ == "__main__":
    sys.exit(main())
