"""ember on CuPy against PyTorch on CUDA, same run, inside a hard time budget (issue 18, item 6).

A lent GPU machine is held for minutes, so the whole benchmark fits in ``--budget-s`` seconds (the
clock starts when the script does, imports included) and writes its JSON after every part (and
every few seconds while the GPT trains): a run killed at any point leaves what it measured. Parts,
in the order they run (each gets a share of the time still left; the GPT, last, takes the rest):

* ``mlp``, ``lenet``: the MNIST MLP (784-256-128-10, batch 128) and LeNet-5 (batch 64), Adam lr 1e-3
  with a per-step cosine schedule, ember and its PyTorch twin from the same initial weights on the
  same batches (bench_mnist's twins). ms per step: interleaved rounds, median of per-round ratios.
  Then, if it fits in the part's share, one epoch of each from fresh identical weights: seconds and
  test accuracy (every batch is copied host to device inside the timed epoch, in both, as a data
  loader does).
* ``elm``: the best forward-only experiment (``pca-conv-rp``) through ``ember.elm.experiments.run`` with
  ``device=``, in a child process killed when its share runs out: fit seconds and test accuracy.
* ``gpt``: nanoGPT's GPU recipe on Tiny Shakespeare (6 layers, 6 heads, n_embd 384, block 256, batch
  64, dropout 0.2, AdamW lr 1e-3, warmup 100, cosine to 1e-4, beta2 0.99, weight decay 0.1, clip 1.0,
  float32, no torch.compile): ms per iteration, ember against the PyTorch twin (ember.testing.torch_gpt)
  from the same weights on the same batches, interleaved rounds; training tokens per second; then
  ember alone trains for as many iterations as the time left allows, with the cosine schedule
  compressed to those iterations (the recipe's 5,000 do not fit), and reports train and val loss.

GPUs run asynchronously: every timed span starts and ends with a device synchronisation (CuPy's and
torch's). Each contender's first step (CuPy compiles its kernels then) is timed on its own and
reported as ``first_step_s``, outside the step medians. Speed figures name the GPU, CUDA and the
TF32 settings (matmuls in both are full float32 by default; torch's cuDNN convolutions use TF32).

Run (the owner's benchmarks/gpu_check.sh does it on a GPU machine):
  EMBER_DATA=../shared/data python benchmarks/bench_gpu.py --budget-s 240 --out benchmarks/results/gpu.json
A dry run on the CPU (torch on the CPU too) in seconds; ``--device cpu:other`` uses the test-double
device, which refuses host arrays as a GPU does:
  EMBER_DATA=../shared/data python benchmarks/bench_gpu.py --device cpu --quick --budget-s 120
Options: [--parts mlp,lenet,elm,gpt] [--elm-experiment NAME] [--seed 0] [--data-dir D] [--update-readme]
Writes --out (JSON) and the same name with .md (the table) and .png (a chart); nothing without --out.
``ember bench --only gpu`` runs it as an entry of the harness where a CUDA GPU is found (skipped elsewhere).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

STARTED = time.perf_counter()  # the budget counts from here: imports and data loading are part of the run

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: E402, I001
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for bench_mnist, bench_gpt

from bench_gpt import TorchRun  # noqa: E402
from bench_mnist import RECIPES, EmberRunner, TorchRunner, torch_twin  # noqa: E402

from ember.benchmarking import (  # noqa: E402
    REPO, RESULTS, Bars, Benchmark, BenchmarkFailed, Contender, Outcome, RunOptions, machine_info, machine_line,
    rounds, shown, write_chart)

PART_ORDER = ("mlp", "lenet", "elm", "gpt")
# Each part's share of the time left when it starts, relative to the parts still to run; the GPT runs last
# and trains with whatever the others left over.
PART_WEIGHTS = {"mlp": 0.15, "lenet": 0.15, "elm": 0.25, "gpt": 0.45}
BEST_ELM = "pca-conv-rp"  # the README's forward-only table: the best here with no gradient step
QUICK_ELM = "hebbian2048"  # pca-conv-rp takes minutes on a CPU even on 500 images: the dry run takes this path
REFERENCE_ELM_ACCURACY = 0.9885  # the reference C++/CUDA system's best MNIST result, on a 32 GB GPU
NANOGPT_VAL_LOSS, NANOGPT_ITERS = 1.47, 5000  # nanoGPT's shakespeare_char on an A100, about 3 minutes
REFERENCE_TOKENS_PER_S = 2300  # the reference Rust system's 17M code model on an RTX 4090
GPT_RECIPE = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "batch_size": 64, "dropout": 0.2,
              "bias": False, "lr": 1e-3, "min_lr": 1e-4, "warmup_iters": 100, "beta2": 0.99, "weight_decay": 0.1,
              "grad_clip": 1.0, "max_iters": NANOGPT_ITERS}
QUICK_GPT = {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 4}
SAVE_EVERY_S = 10.0  # how often the GPT's training run rewrites the JSON


# -- sizes: the real run and the dry run ---------------------------------------------------------------
def sizes(quick: bool) -> dict:
    """Steps per timing round, rounds, warm-up steps and data subsets: the real run's, or seconds' worth."""
    if quick:
        return {"mlp_steps": 4, "lenet_steps": 3, "gpt_steps": 2, "warmup": 1, "min_rounds": 2, "max_rounds": 3,
                "train_subset": 512, "test_subset": 256, "gpt_max_iters": 20, "gpt_eval_iters": (2, 2),
                "elm_subset": (1000, 500)}
    return {"mlp_steps": 40, "lenet_steps": 20, "gpt_steps": 5, "warmup": 5, "min_rounds": 3, "max_rounds": 10,
            "train_subset": None, "test_subset": None, "gpt_max_iters": NANOGPT_ITERS, "gpt_eval_iters": (20, 200),
            "elm_subset": None}


# -- the budget ---------------------------------------------------------------------------------------------
class Budget:
    """Seconds left of ``--budget-s``, and each part's share of them when it starts."""

    def __init__(self, seconds: float, parts: list[str]):
        self.end = STARTED + seconds
        self.pending = list(parts)

    def left(self) -> float:
        return max(0.0, self.end - time.perf_counter())

    def claim(self, part: str) -> float:
        """The deadline (perf_counter time) of ``part``: its weight's share of what is left now."""
        total = sum(PART_WEIGHTS[p] for p in self.pending)
        share = self.left() * PART_WEIGHTS[part] / total
        self.pending.remove(part)
        return time.perf_counter() + share


# -- devices and clocks -----------------------------------------------------------------------------------
def register_test_double(spec: str) -> None:
    """``cpu:other`` exists once ember.testing.device_double is imported (the dry run's stand-in for a GPU)."""
    if spec.strip().lower() == "cpu:other":
        importlib.import_module("ember.testing.device_double")


class Devices:
    """ember's device and torch's matching one, and how to wait for each to finish its queued work."""

    def __init__(self, torch, spec: str):
        register_test_double(spec)
        self.ember = ember.device(spec)
        self.on_gpu = self.ember.type == "cuda"
        self.torch = torch.device(f"cuda:{self.ember.index or 0}" if self.on_gpu else "cpu")
        self._torch = torch

    def sync_ember(self) -> None:
        if self.on_gpu:
            self.ember.xp.cuda.Device(self.ember.index or 0).synchronize()

    def sync_torch(self) -> None:
        if self.on_gpu:
            self._torch.cuda.synchronize(self.torch)

    def sync(self) -> None:
        self.sync_ember()
        self.sync_torch()


def timed(fn, sync) -> float:
    """Seconds ``fn()`` took, the device's queue drained before and after."""
    return Contender(fn, sync=sync).span(1, time.perf_counter)[0]


def interleaved_rounds(one_round: dict, sync: dict, size: dict, deadline: float):
    """The library's interleaved rounds of each contender's ``one_round[name]()`` (its device drained at both
    ends of every span): at least ``min_rounds``, at most ``max_rounds``, and no new round that would end past
    ``deadline``."""
    contenders = {name: Contender(fn, sync=sync[name]) for name, fn in one_round.items()}
    return rounds(contenders, size["max_rounds"], warmup=0, until=deadline, min_rounds=size["min_rounds"])


def gpu_info(torch, devs: Devices) -> dict | None:
    """The GPU, CUDA and the float32 settings both frameworks computed with (None on the CPU)."""
    if not devs.on_gpu:
        return None
    cupy = devs.ember.xp
    props = torch.cuda.get_device_properties(devs.torch)
    return {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
            "cupy": cupy.__version__, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "cuda_driver": cupy.cuda.runtime.driverGetVersion(), "torch_cuda": torch.version.cuda,
            "torch_matmul_tf32": setting(torch.backends.cuda.matmul, "allow_tf32"),
            "torch_cudnn_tf32": setting(torch.backends.cudnn, "allow_tf32"),
            "CUPY_TF32": os.environ.get("CUPY_TF32", "0")}


def setting(namespace, name: str):
    """A torch backend flag, or None where this torch version has dropped it (never fails the run)."""
    try:
        return getattr(namespace, name)
    except Exception:  # a removed or deprecated-and-raising flag
        return None


def device_memory(devs: Devices) -> dict | None:
    """Bytes each framework's allocator holds on the GPU now (CuPy's pool keeps freed blocks: near its peak)."""
    if not devs.on_gpu:
        return None
    return {"ember_cupy_pool_bytes": int(devs.ember.xp.get_default_memory_pool().total_bytes()),
            "torch_max_allocated_bytes": int(devs._torch.cuda.max_memory_allocated(devs.torch))}


# -- the report, written as it grows ----------------------------------------------------------------------
class Report:
    """The results so far; ``save()`` rewrites ``out`` atomically (a killed run leaves the last complete file)."""

    def __init__(self, out: Path | None, header: dict):
        self.out = out
        self.data = {**header, "results": {}, "complete": False}

    def part(self, name: str, fields: dict) -> None:
        self.data["results"][name] = fields
        self.save()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - STARTED, 1)
        if self.out is None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=plain) + "\n")
        os.replace(tmp, self.out)


def plain(value):
    """JSON for what json cannot write itself: NumPy and CuPy scalars as Python numbers, anything else as text (a
    stray type must not cost the results file)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and getattr(value, "size", 0) == 1 else str(value)


def say(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f} s] {text}", flush=True)


# -- MNIST: the MLP and LeNet-5 ------------------------------------------------------------------------------
def mnist_runners(torch, devs: Devices, kind: str, seed: int, total_steps: int):
    """ember's runner and PyTorch's on their devices, from the same initial weights (bench_mnist's twins)."""
    lr = RECIPES[kind]["lr"]
    ember.manual_seed(seed)
    model = ember.models.build(kind)
    net = torch_twin(torch, kind, model).to(devs.torch)
    model.to(devs.ember)
    return DeviceEmberRunner(model, lr, total_steps, devs.ember), DeviceTorchRunner(torch, net, lr, total_steps,
                                                                                   devs.torch)


class DeviceEmberRunner:
    """bench_mnist's ember step, with batches and evaluation on ``dev``."""

    def __init__(self, model, lr, total_steps, dev):
        self.inner = EmberRunner(model, lr, total_steps)
        self.dev = dev

    def step(self, x, y):
        return self.inner.step(x, y)

    def batch(self, x, y):
        return ember.tensor(x, device=self.dev), ember.tensor(y, device=self.dev)

    def accuracy(self, x, y, bs=1000):
        model = self.inner.model
        model.eval()
        with ember.no_grad():
            hits = sum(int((model(ember.tensor(x[i:i + bs], device=self.dev)).numpy().argmax(1) == y[i:i + bs]).sum())
                       for i in range(0, len(x), bs))
        model.train()
        return hits / len(x)


class DeviceTorchRunner:
    """bench_mnist's PyTorch step, with batches and evaluation on ``device``."""

    def __init__(self, torch, net, lr, total_steps, device):
        self.inner = TorchRunner(torch, net, lr, total_steps)
        self.torch, self.device = torch, device

    def step(self, x, y):
        return self.inner.step(x, y)

    def batch(self, x, y):
        return self.torch.from_numpy(x).to(self.device), self.torch.from_numpy(y).to(self.device)

    def accuracy(self, x, y, bs=1000):
        torch, net = self.torch, self.inner.model
        net.eval()
        with torch.no_grad():
            hits = sum(int((net(torch.from_numpy(x[i:i + bs]).to(self.device)).argmax(1).cpu().numpy()
                            == y[i:i + bs]).sum()) for i in range(0, len(x), bs))
        net.train()
        return hits / len(x)


def load_mnist(data_dir, size: dict, seed: int):
    """MNIST standardised as `ember train` does; the dry run keeps a random subset of each split."""
    from ember.data import image_classification

    train, stats = image_classification("mnist", "train", data_dir, download=False)
    test, _ = image_classification("mnist", "test", data_dir, download=False, stats=stats)
    (xtr, ytr), (xte, yte) = train.arrays, test.arrays
    rng = np.random.default_rng(seed)
    if size["train_subset"]:
        keep = rng.permutation(len(xtr))[:size["train_subset"]]
        xtr, ytr = xtr[keep], ytr[keep]
    if size["test_subset"]:
        xte, yte = xte[:size["test_subset"]], yte[:size["test_subset"]]
    return xtr, ytr, xte, yte


def epoch_order(n: int, batch_size: int, rng) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def mnist_step_timing(torch, devs, kind, data, size, seed, deadline) -> dict:
    """First step of each, warm-up, then interleaved rounds of the same batches (already on the device)."""
    xtr, ytr = data[0], data[1]
    batch_size = RECIPES[kind]["batch_size"]
    order = epoch_order(len(xtr), batch_size, np.random.default_rng(seed))
    steps = min(size[f"{kind}_steps"], len(order))
    contenders = dict(zip(("ember", "torch"), mnist_runners(torch, devs, kind, seed, len(order))))
    sync = {"ember": devs.sync_ember, "torch": devs.sync_torch}
    prepared = {name: [r.batch(xtr[i], ytr[i]) for i in order[:steps]] for name, r in contenders.items()}
    first = {name: timed(lambda r=r, b=prepared[name][0]: r.step(*b), sync[name]) for name, r in contenders.items()}
    for name, r in contenders.items():
        for b in prepared[name][:size["warmup"]]:
            r.step(*b)

    def round_of(name):
        return lambda: [contenders[name].step(*b) for b in prepared[name]]

    timings = interleaved_rounds({name: round_of(name) for name in contenders}, sync, size, deadline)
    ms = {name: v / steps for name, v in timings.medians(1e3).items()}
    return {"steps_per_round": steps, "rounds": timings.n_rounds,
            "ms_per_step": {name: round(v, 3) for name, v in ms.items()},
            "step_ratio_median": round(timings.ratio("ember", "torch"), 3),
            "step_ratios": [round(r, 3) for r in timings.round_ratios("ember", "torch")],
            "first_step_s": {name: round(v, 3) for name, v in first.items()}}


def mnist_epoch(torch, devs, kind, data, seed) -> dict:
    """One epoch of each from fresh identical weights on identical batches, then test accuracy."""
    xtr, ytr, xte, yte = data
    order = epoch_order(len(xtr), RECIPES[kind]["batch_size"], np.random.default_rng(seed + 1))
    runners = dict(zip(("ember", "torch"), mnist_runners(torch, devs, kind, seed, len(order))))
    sync = {"ember": devs.sync_ember, "torch": devs.sync_torch}
    seconds, accuracy = {}, {}
    for name, r in runners.items():
        seconds[name] = timed(lambda r=r: [r.step(*r.batch(xtr[i], ytr[i])) for i in order], sync[name])
        accuracy[name] = r.accuracy(xte, yte)
    return {"epoch_steps": len(order), "train_examples": len(xtr), "test_examples": len(xte),
            "seconds_per_epoch": {k: round(v, 2) for k, v in seconds.items()},
            "epoch_ratio": round(seconds["ember"] / seconds["torch"], 3), "test_accuracy": accuracy}


def mnist_part(torch, devs, kind, data, size, seed, deadline) -> dict:
    """Step timing in up to 40% of the part's time, then one epoch each if the rest holds it."""
    start = time.perf_counter()
    result = {"model": kind, "dataset": "mnist", **RECIPES[kind], "optimizer": "adam", "schedule": "cosine"}
    result.update(mnist_step_timing(torch, devs, kind, data, size, seed, start + 0.4 * (deadline - start)))
    ms = result["ms_per_step"]
    say(f"{kind} step: ember {ms['ember']:.2f} ms, torch {ms['torch']:.2f} ms, ratio {result['step_ratio_median']:.2f}"
        f" ({result['rounds']} rounds); first step ember {result['first_step_s']['ember']:.2f} s, "
        f"torch {result['first_step_s']['torch']:.2f} s")
    steps = -(-len(data[0]) // RECIPES[kind]["batch_size"])
    needed = 1.5 * steps * (ms["ember"] + ms["torch"]) / 1e3 + 2.0  # both epochs, batch copies, evaluation
    left = deadline - time.perf_counter()
    if needed > left:
        result["epoch_skipped"] = f"one epoch of each needs about {needed:.0f} s, {left:.0f} s left in this part"
        say(f"{kind} epoch skipped: {result['epoch_skipped']}")
        return result
    result.update(mnist_epoch(torch, devs, kind, data, seed))
    s, acc = result["seconds_per_epoch"], result["test_accuracy"]
    say(f"{kind} epoch: ember {s['ember']:.1f} s ({acc['ember']:.2%}), torch {s['torch']:.1f} s ({acc['torch']:.2%})")
    result["gpu_memory"] = device_memory(devs)
    return result


# -- nanoGPT's GPU recipe ---------------------------------------------------------------------------------------
def gpt_config(data_dir, quick: bool, **overrides):
    from ember.train.lm import LMTrainConfig

    return LMTrainConfig(**{**GPT_RECIPE, **(QUICK_GPT if quick else {}), "data_dir": data_dir, **overrides})


class DeviceTorchRun:
    """bench_gpt's PyTorch rival (same optimizer groups, schedule, clipping), its batches moved to ``device``."""

    def __init__(self, torch, model, config, device):
        self.inner = TorchRun(torch, model, config)
        self.torch, self.device = torch, device

    def train_step(self, batches) -> float:
        torch, run, c = self.torch, self.inner, self.inner.config
        for group in run.optimizer.param_groups:
            group["lr"] = c.lr_at(run.iter)
        run.model.train()
        x, y = (torch.from_numpy(a).to(self.device) for a in batches[0])
        _, loss = run.model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), c.grad_clip)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        run.iter += 1
        return loss.item()


def gpt_contenders(torch, devs, config):
    """ember's trainer on its device and the PyTorch twin holding the same initial weights on its own."""
    from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights
    from ember.train.lm import LMTrainer

    trainer = LMTrainer(config, download=False)
    twin = copy_gpt_weights(torch, trainer.model, build_torch_gpt(torch, trainer.model.config), torch.float32)
    trainer.model.to(devs.ember)
    return trainer, DeviceTorchRun(torch, twin.to(devs.torch), config, devs.torch)


def gpt_step_timing(torch, devs, config, size, seed, deadline) -> tuple[dict, object]:
    """ms per training iteration, ember and PyTorch on the same batches in interleaved rounds; and the corpus."""
    from ember.data.text import random_windows

    trainer, rival = gpt_contenders(torch, devs, config)
    steps = size["gpt_steps"]
    rng = np.random.default_rng(seed)
    draw = [random_windows(trainer.corpus.train, config.batch_size, config.block_size, rng)
            for _ in range(1 + size["warmup"] + steps * size["max_rounds"])]
    contenders = {"ember": trainer.train_step, "torch": rival.train_step}
    sync = {"ember": devs.sync_ember, "torch": devs.sync_torch}
    first = {name: timed(lambda f=f: f([draw[0]]), sync[name]) for name, f in contenders.items()}
    for b in draw[1:1 + size["warmup"]]:
        for f in contenders.values():
            f([b])
    fresh = iter(range(1 + size["warmup"], len(draw), steps))
    chunks = {}

    def round_of(name):
        def one_round():
            if name == "ember":  # both contenders of a round take the same batches
                chunks["now"] = draw[next(fresh):][:steps]
            for b in chunks["now"]:
                contenders[name]([b])
        return one_round

    timings = interleaved_rounds({name: round_of(name) for name in contenders}, sync, size, deadline)
    ms = {name: v / steps for name, v in timings.medians(1e3).items()}
    tokens = config.batch_size * config.block_size
    return {"steps_per_round": steps, "rounds": timings.n_rounds,
            "ms_per_iter": {name: round(v, 2) for name, v in ms.items()},
            "step_ratio_median": round(timings.ratio("ember", "torch"), 3),
            "step_ratios": [round(r, 3) for r in timings.round_ratios("ember", "torch")],
            "tokens_per_s": {name: round(tokens / (v / 1e3)) for name, v in ms.items()},
            "first_step_s": {name: round(v, 3) for name, v in first.items()}}, trainer.corpus


def eval_batches_that_fit(ms_per_iter: float, seconds: float, bounds: tuple[int, int]) -> int:
    """How many evaluation batches per split fit in ``seconds`` (a forward is about a third of an iteration)."""
    low, high = bounds
    return int(min(high, max(low, seconds / (2 * ms_per_iter / 3e3))))


def gpt_training(devs, corpus, data_dir, quick, size, ms_per_iter, deadline, report, progress) -> dict:
    """ember's own run (seed 1337, its own batches) for the iterations that fit before ``deadline``, the cosine
    schedule compressed to them; then nanoGPT's estimate of the train and val loss."""
    from ember.train.lm import LMTrainer

    left = deadline - time.perf_counter()
    eval_iters = eval_batches_that_fit(ms_per_iter, 0.1 * left, size["gpt_eval_iters"])
    eval_s = 2 * eval_iters * ms_per_iter / 3e3
    planned = int(min(size["gpt_max_iters"], max(1, (left - eval_s - 5.0) / (ms_per_iter / 1e3) * 0.95)))
    config = gpt_config(data_dir, quick, max_iters=planned, lr_decay_iters=planned, eval_iters=eval_iters)
    trainer = LMTrainer(config, corpus=corpus, download=False)
    trainer.model.to(devs.ember)
    progress.update({"planned_iters": planned, "lr_decay_iters": planned, "eval_iters": eval_iters, "iters_done": 0})
    train_until = deadline - eval_s - 2.0
    start = last_save = time.perf_counter()
    losses = []
    while trainer.iter < planned and time.perf_counter() < train_until:
        losses.append(trainer.train_step())
        if time.perf_counter() - last_save > SAVE_EVERY_S:
            last_save = time.perf_counter()
            progress.update({"iters_done": trainer.iter, "train_seconds": round(last_save - start, 1),
                             "recent_train_loss": float(np.mean(losses[-20:]))})
            report.save()
            say(f"gpt training: iteration {trainer.iter}/{planned}, loss {progress['recent_train_loss']:.3f}")
    devs.sync_ember()
    seconds = time.perf_counter() - start
    losses_now = trainer.estimate_loss()
    tokens = config.batch_size * config.block_size
    return {**progress, "iters_done": trainer.iter, "train_seconds": round(seconds, 2),
            "stopped_by_budget": trainer.iter < planned,
            "tokens_per_s": round(trainer.iter * tokens / seconds) if trainer.iter else None,
            "train_loss": losses_now["train"], "val_loss": losses_now["val"],
            "note": f"{trainer.iter} of the recipe's {NANOGPT_ITERS} iterations fit in the budget; the cosine "
                    f"schedule was compressed to {planned} iterations, so this val loss is not the recipe's "
                    f"(nanoGPT: {NANOGPT_VAL_LOSS} after {NANOGPT_ITERS} on an A100)"}


def gpt_part(torch, devs, data_dir, quick, size, seed, deadline, report) -> dict:
    """Step timing in up to 25% of the part's time, then ember trains until the deadline."""
    start = time.perf_counter()
    config = gpt_config(data_dir, quick)
    result = {"recipe": {k: getattr(config, k) for k in GPT_RECIPE}, "dtype": config.dtype, "torch_compile": False,
              "torch_attention": "scaled_dot_product_attention"}
    timing, corpus = gpt_step_timing(torch, devs, config, size, seed, start + 0.25 * (deadline - start))
    result.update(timing)
    ms = result["ms_per_iter"]
    say(f"gpt iteration: ember {ms['ember']:.1f} ms, torch {ms['torch']:.1f} ms, ratio "
        f"{result['step_ratio_median']:.2f} ({result['rounds']} rounds); ember {result['tokens_per_s']['ember']:,} "
        f"tokens/s; first iteration ember {result['first_step_s']['ember']:.1f} s, "
        f"torch {result['first_step_s']['torch']:.1f} s")
    result["code_model"] = (f"the code model of the code-model issue does not exist yet: these are the GPT's training "
                            f"tokens/s, against the reference system's {REFERENCE_TOKENS_PER_S:,} tokens/s (17M code "
                            f"model, RTX 4090) and the issue's target of {10 * REFERENCE_TOKENS_PER_S:,}")
    result["gpu_memory"] = device_memory(devs)
    if devs.on_gpu:  # the twin is gone: its cached blocks go back to the GPU for ember's training run
        torch.cuda.empty_cache()
    result["training"] = progress = {}
    report.part("gpt", result)
    progress.update(gpt_training(devs, corpus, data_dir, quick, size, ms["ember"], deadline, report, progress))
    say(f"gpt training: {progress['iters_done']} iterations in {progress['train_seconds']:.0f} s "
        f"({progress['tokens_per_s'] or 0:,} tokens/s), val loss {progress['val_loss']:.3f} "
        f"(nanoGPT {NANOGPT_VAL_LOSS} after {NANOGPT_ITERS})")
    return result


# -- the forward-only experiment ------------------------------------------------------------------------------------
def elm_accepts_device() -> bool:
    from ember.elm import experiments

    return "device" in inspect.signature(experiments.run).parameters


def elm_part(devs, args, deadline) -> dict:
    """The experiment in a child process, killed when the part's share runs out."""
    name = args.elm_experiment or (QUICK_ELM if args.quick else BEST_ELM)
    result = {"experiment": name, "reference_test_accuracy": REFERENCE_ELM_ACCURACY}
    if not elm_accepts_device():
        if devs.ember != ember.device("cpu"):
            return {**result, "skipped": "ember.elm.experiments.run takes no device= yet: not run on the GPU"}
    timeout = deadline - time.perf_counter()
    cmd = [sys.executable, __file__, "--elm-child", name, "--device", args.device, "--seed", str(args.seed)]
    cmd += (["--quick"] if args.quick else []) + (["--data-dir", args.data_dir] if args.data_dir else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1.0), env=env)
    except subprocess.TimeoutExpired:
        return {**result, "error": f"did not finish within its {timeout:.0f} s share of the budget"}
    result["wall_s"] = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        return {**result, "error": proc.stderr.strip().splitlines()[-5:]}
    return {**result, **json.loads(proc.stdout.strip().splitlines()[-1])}


def elm_child(args) -> int:
    """In the child: fit the experiment on the device, print one JSON line (no activation statistics)."""
    from ember.elm import experiments

    register_test_double(args.device)
    data = experiments.load_images("mnist", args.data_dir, download=False)
    subset = sizes(args.quick)["elm_subset"]
    if subset:
        data = (data[0][:subset[0]], data[1][:subset[0]], data[2][:subset[1]], data[3][:subset[1]])
    kwargs = {"device": args.device} if elm_accepts_device() else {}
    row = experiments.run(args.elm_child, "mnist", args.seed, data=data, **kwargs)
    row.pop("activations", None)
    row.update({"train_examples": len(data[0]), "test_examples": len(data[2])})
    if ember.device(args.device).type == "cuda":
        row["ember_cupy_pool_bytes"] = int(ember.device(args.device).xp.get_default_memory_pool().total_bytes())
    print(json.dumps(row))
    return 0


# -- the table ------------------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    """The results as one table: measure, ember, PyTorch, ember / PyTorch, the issue's figure to reach."""
    r = report["results"]
    lines = ["| measure | ember | PyTorch | ember / PyTorch | to reach |", "|---|---:|---:|---:|---|"]
    for kind, label in (("mlp", "MLP"), ("lenet", "LeNet-5")):
        lines += mnist_rows(r.get(kind), label)
    lines += gpt_rows(r.get("gpt"))
    lines += elm_rows(r.get("elm"))
    return "\n".join(lines)


def unfinished(part: dict | None, label: str) -> list[str]:
    """A row saying why a part has no figures, or [] when it has them."""
    if part is None:
        return []
    for reason in ("error", "skipped"):
        if reason in part:
            return [f"| {label}: {reason} ({part[reason]}) | | | | |"]
    return []


def mnist_rows(m: dict | None, label: str) -> list[str]:
    if m is None or unfinished(m, label):
        return unfinished(m, label)
    ms, first = m["ms_per_step"], m["first_step_s"]
    rows = [f"| {label} ms per step, batch {m['batch_size']} (median of {m['rounds']} interleaved rounds) | "
            f"{ms['ember']:.2f} | {ms['torch']:.2f} | **{m['step_ratio_median']:.2f}x** | |",
            f"| {label} first step, s (CuPy compiles its kernels) | {first['ember']:.2f} | {first['torch']:.2f} | | |"]
    if "seconds_per_epoch" in m:
        s, acc = m["seconds_per_epoch"], m["test_accuracy"]
        rows += [f"| {label} seconds per MNIST epoch | {s['ember']:.2f} | {s['torch']:.2f} | "
                 f"**{m['epoch_ratio']:.2f}x** | within 2x |",
                 f"| {label} test accuracy after one epoch | {acc['ember']:.2%} | {acc['torch']:.2%} | | |"]
    else:
        rows.append(f"| {label} epoch: skipped ({m.get('epoch_skipped', 'not run')}) | | | | |")
    return rows


def gpt_rows(g: dict | None) -> list[str]:
    if g is None or unfinished(g, "GPT"):
        return unfinished(g, "GPT")
    ms, tps, first = g["ms_per_iter"], g["tokens_per_s"], g["first_step_s"]
    rows = [f"| GPT ms per iteration, nanoGPT's GPU recipe (median of {g['rounds']} interleaved rounds) | "
            f"{ms['ember']:.1f} | {ms['torch']:.1f} | **{g['step_ratio_median']:.2f}x** | within 1.5x |",
            f"| GPT first iteration, s | {first['ember']:.1f} | {first['torch']:.1f} | | |",
            f"| GPT training tokens/s (the code model does not exist yet) | {tps['ember']:,} | {tps['torch']:,} | | "
            f"{10 * REFERENCE_TOKENS_PER_S:,} (10x the reference's {REFERENCE_TOKENS_PER_S:,}) |"]
    t = g.get("training", {})
    if "val_loss" in t:
        rows.append(f"| GPT val loss after {t['iters_done']} of {NANOGPT_ITERS} iterations "
                    f"({t['train_seconds']:.0f} s, schedule compressed to {t['lr_decay_iters']}) | "
                    f"**{t['val_loss']:.3f}** | | | "
                    f"<= 1.50 at {NANOGPT_ITERS} (nanoGPT {NANOGPT_VAL_LOSS}) |")
    elif t:
        rows.append(f"| GPT training: stopped at iteration {t.get('iters_done', 0)} before its evaluation | | | | |")
    return rows


def elm_rows(e: dict | None) -> list[str]:
    if e is None:
        return []
    if unfinished(e, f"forward-only {e['experiment']}"):
        return unfinished(e, f"forward-only {e['experiment']}")
    return [f"| forward-only {e['experiment']}: fit seconds / test accuracy ({e['train_examples']:,} training "
            f"images) | {e['seconds']:.1f} s / **{e['test_accuracy']:.2%}** | | | "
            f"the reference's {e['reference_test_accuracy']:.2%} |"]


def meta_line(report: dict) -> str:
    """Where and how the figures were measured: the GPU, CUDA, both frameworks and their float32 settings."""
    gpu = report.get("gpu")
    where = f"{report['device']} (no GPU)"
    if gpu:
        where = (f"{gpu['name']} (CUDA runtime {gpu['cuda_runtime']}, CuPy {gpu['cupy']}, PyTorch {report['torch']} "
                 f"eager, float32; TF32 in PyTorch's matmuls: {gpu['torch_matmul_tf32']}, in its cuDNN convolutions: "
                 f"{gpu['torch_cudnn_tf32']}, in CuPy's: {gpu['CUPY_TF32'] == '1'})")
    return (f"Measured {report['date']} on {where}; host {report['machine']}; budget {report['budget_s']:.0f} s, "
            f"`python benchmarks/bench_gpu.py` (results in `{report.get('out') or '-'}`).")


# -- the run ----------------------------------------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="ember's device: cuda (default), cuda:N, cpu or cpu:other")
    parser.add_argument("--budget-s", type=float, default=240.0, help="the whole run's seconds, imports included")
    parser.add_argument("--parts", default=",".join(PART_ORDER), help=f"comma-separated, of {','.join(PART_ORDER)}")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of every part in seconds")
    parser.add_argument("--elm-experiment", default=None, help=f"default {BEST_ELM} ({QUICK_ELM} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ and tinyshakespeare/ (default "
                                                         "$EMBER_DATA)")
    parser.add_argument("--out", default=None, help="JSON results, rewritten after every part (and .md beside it)")
    parser.add_argument("--update-readme", action="store_true", help="the README's bench_gpu section")
    parser.add_argument("--elm-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PART_ORDER))
    if unknown or not parts:
        parser.error(f"--parts {args.parts!r}: unknown {unknown}; expected a comma-separated list of "
                     f"{', '.join(PART_ORDER)}")
    if args.budget_s <= 0:
        parser.error(f"--budget-s {args.budget_s}: must be positive")
    if args.update_readme and (args.quick or not args.device.startswith("cuda")):
        parser.error(f"--update-readme with --device {args.device}{' --quick' if args.quick else ''}: a dry run's "
                     "figures are no result; the README shows a full run on a GPU (--device cuda)")
    args.parts = [p for p in PART_ORDER if p in parts]
    return args


def header(torch, devs: Devices, args) -> dict:
    info = machine_info()
    cupy = devs.ember.xp if devs.on_gpu else None
    return {"benchmark": "bench_gpu", "date": time.strftime("%Y-%m-%d"), "device": str(devs.ember),
            "torch_device": str(devs.torch), "gpu": gpu_info(torch, devs), "machine": machine_line(info),
            "machine_info": info, "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "cupy": cupy.__version__ if cupy else None, "budget_s": args.budget_s,
            "quick": args.quick, "parts": args.parts, "seed": args.seed,
            "out": shown(Path(args.out)) if args.out else None}


def run_part(name: str, fn, report: Report) -> None:
    """Run one part; a failure is recorded (and printed) and the next part still runs."""
    say(f"{name}: start")
    try:
        report.part(name, fn())
    except Exception as exc:  # one part's failure must not cost the others on a machine held for minutes
        traceback.print_exc()
        report.part(name, {**report.data["results"].get(name, {}), "error": f"{type(exc).__name__}: {exc}"})
        say(f"{name}: failed ({type(exc).__name__}: {exc})")


def run_parts(torch, devs, args, report: Report) -> None:
    budget = Budget(args.budget_s, args.parts)
    size = sizes(args.quick)
    mnist = {}

    def mnist_data():
        if not mnist:
            mnist["data"] = load_mnist(args.data_dir, size, args.seed)
        return mnist["data"]

    for name in args.parts:
        deadline = budget.claim(name)
        if name in ("mlp", "lenet"):
            run_part(name, lambda k=name, d=deadline: mnist_part(torch, devs, k, mnist_data(), size, args.seed, d),
                     report)
        elif name == "elm":
            run_part(name, lambda d=deadline: elm_part(devs, args, d), report)
        else:
            run_part(name, lambda d=deadline: gpt_part(torch, devs, args.data_dir, args.quick, size, args.seed, d,
                                                       report), report)
        say(f"{name}: done; {budget.left():.0f} s of the budget left")


def finish(report: Report, args) -> list[Path]:
    """The table and the chart beside the JSON (and the table in the README with --update-readme), the table
    printed either way; the files written."""
    table, meta = markdown(report.data), meta_line(report.data)
    print(meta + "\n\n" + table, flush=True)
    written = []
    if args.out:
        out = Path(args.out)
        out.with_suffix(".md").write_text(meta + "\n\n" + table + "\n")
        written = [out, out.with_suffix(".md")]
        bars = chart(report.data)
        if bars is not None and (png := write_chart(bars, out.with_suffix(".png"))):
            written.append(png)
    if args.update_readme:
        from readme import update_readme

        update_readme("bench_gpu", table, meta)
    return written


def chart(report: dict) -> Bars | None:
    """ms per step (MLP, LeNet-5) and per iteration (GPT), ember and PyTorch on the GPU."""
    r = report["results"]
    groups = {label: {"ember": r[kind][unit]["ember"], "PyTorch": r[kind][unit]["torch"]}
              for kind, unit, label in (("mlp", "ms_per_step", "MLP ms per step"),
                                        ("lenet", "ms_per_step", "LeNet-5 ms per step"),
                                        ("gpt", "ms_per_iter", "GPT ms per iteration"))
              if unit in r.get(kind, {})}
    if not groups:
        return None
    where = (report.get("gpu") or {}).get("name", report["device"])
    return Bars(f"ember on CuPy against PyTorch, {where}", "ms (lower is faster)", groups, note=report["machine"])


def stop_on_sigterm(signum, frame):
    """`timeout` sends SIGTERM: unwind so that the report says how far the run got."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.elm_child:
        return elm_child(args)
    return measure(args)[0]


def measure(args) -> tuple[int, dict, list[Path]]:
    """The run: its exit status (0: complete, every part measured), the report and the files written."""
    import torch

    try:
        devs = Devices(torch, args.device)
    except (RuntimeError, ValueError) as exc:  # no CuPy, no GPU, an unknown device: say so, measure nothing
        say(f"--device {args.device}: {exc}")
        return 2, {}, []
    if not devs.on_gpu:
        torch.set_num_threads(1)  # a dry run: its CPU figures are no result, and two threads fight ember for the cores
    report = Report(Path(args.out) if args.out else None, header(torch, devs, args))
    say(f"ember on {devs.ember}, PyTorch {torch.__version__} on {devs.torch}; "
        f"{(report.data['gpu'] or {}).get('name', 'no GPU')}; host: {report.data['machine']}")
    say(f"budget {args.budget_s:.0f} s for {', '.join(args.parts)}{' (quick)' if args.quick else ''}")
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        run_parts(torch, devs, args, report)
        report.data["complete"] = True
    except KeyboardInterrupt as exc:
        report.data["interrupted"] = str(exc) or "KeyboardInterrupt"
        say(f"interrupted ({report.data['interrupted']}): the results so far are kept")
    finally:
        signal.signal(signal.SIGTERM, previous)
        report.save()
    written = []
    with contextlib.suppress(Exception) if report.data.get("interrupted") else contextlib.nullcontext():
        written = finish(report, args)
    failed = [name for name, part in report.data["results"].items() if "error" in part]
    if failed:
        say(f"failed parts: {', '.join(failed)}")
    return (0 if report.data["complete"] and not failed else 1), report.data, written


def headline(report: dict) -> str:
    r = report["results"]
    parts = [f"{label} ember/PyTorch {r[kind]['step_ratio_median']:.2f}x" for kind, label in
             (("mlp", "MLP step"), ("lenet", "LeNet-5 step"), ("gpt", "GPT iteration"))
             if "step_ratio_median" in r.get(kind, {})]
    return ", ".join(parts) or "no part measured"


def run(options: RunOptions) -> Outcome:
    """On the GPU: the dry run in 90 s of budget (--quick), or the full run in 240 s."""
    budget = ["--quick", "--budget-s", "90"] if options.quick else ["--budget-s", "240"]
    args = parse_args(["--device", "cuda", *budget, "--out", str(options.out_file("gpu", RESULTS / "gpu")),
                       *(["--update-readme"] if options.update_readme else [])])
    status, report, files = measure(args)
    if status != 0:
        raise BenchmarkFailed(f"bench_gpu: exit status {status} (failed or unfinished parts; see {args.out})")
    return Outcome(headline(report), tuple(files))


BENCHMARK = Benchmark(name="gpu", title="ember on CuPy against PyTorch on CUDA: MLP, LeNet-5, forward-only, GPT",
                      run=run, marker="bench_gpu", rivals=("torch",), requires=("cupy",), needs_gpu=True)


if __name__ == "__main__":
    sys.exit(main())
