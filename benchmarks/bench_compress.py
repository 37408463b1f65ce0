"""Compression on the models ember trains: int8 quantization, pruning and distillation (``ember.compress``).

On real MNIST an MLP (784-256-128-10) and LeNet-5 are trained with ember's trainer (Adam, lr 1e-3, cosine decay
per step, as ``ember train``), then:

* int8 post-training quantization: weights per output channel, and (calibrated on 8 training batches) the
  layers' inputs per tensor, with min/max or percentile ranges; test accuracy, checkpoint size and the time of
  one inference batch of 1000 images, float against int8 in interleaved rounds. Target: at most 0.3 points
  lost at ~4x smaller weights.
* unstructured pruning of 90% of the MLP's weights: one-shot without fine-tuning (global and per-layer ranking;
  PyTorch's global L1 lost 2.1 points here, per-layer 26), then iteratively (the cubic schedule, fine-tuning
  after each round with the zeros held). Target: at most 0.5 points lost after fine-tuning.
* structured pruning of LeNet-5 to half its multiply-accumulates (whole channels and neurons removed, the
  smallest amount that halves them), fine-tuned; its training step and inference batch timed against the
  original's in interleaved rounds. Target: at most 0.5 points lost and a faster step.
* distillation of LeNet-5 into an MLP 784-32-10: the student trained from the teacher's soft targets (T = 4,
  alpha = 0.9) against the same student (same initial weights) trained on the labels alone.

And a char-level GPT (nanoGPT's CPU recipe, briefly trained on Tiny Shakespeare) quantized to int8: the
validation loss over the whole validation split before and after. Target: a rise of at most 0.02.

Run (on an otherwise idle machine; about 10 minutes on 2 cores):
  EMBER_DATA=../shared/data python benchmarks/bench_compress.py [--update-readme]
Dry run (a minute or two, smaller figures: 20,000 training images, 1 epoch, a 60-iteration GPT):
  EMBER_DATA=../shared/data python benchmarks/bench_compress.py --quick
Writes benchmarks/results/compress.json, .md and .png (compress_quick.* with --quick);
``ember bench --only compress`` runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import platform
import sys
import tempfile
import time
from pathlib import Path

import ember  # noqa: I001  (runtime settings first)
import numpy as np

from ember import optim
from ember.benchmarking import (Bars, Benchmark, Outcome, RunOptions, machine_info, machine_line, publish,
                                results_path, rounds, refuse_dry_run_in_readme)
from ember.compress import (MaskedOptimizer, amount_for_macs, count_macs, distill, mlp_student, prune_and_finetune,
                            prune_magnitude, prune_structured, quantize_model, save_compressed, sparsity,
                            sparsity_schedule, stored_weights)
from ember.data import DataLoader, TensorDataset, image_classification
from ember.io import save_checkpoint
from ember.models import build
from ember.train import evaluate, fit

FULL = {"train_images": None, "epochs": 2, "prune_rounds": 3, "finetune_epochs": 1, "structured_finetune_epochs": 2,
        "distill_epochs": 5, "gpt_iters": 600, "gpt_val_tokens": None, "timing_rounds": 15}
QUICK = {"train_images": 20_000, "epochs": 1, "prune_rounds": 2, "finetune_epochs": 1,
         "structured_finetune_epochs": 1, "distill_epochs": 1, "gpt_iters": 60, "gpt_val_tokens": 20_000,
         "timing_rounds": 3}
BATCH = {"mlp": 128, "lenet": 64}
CALIBRATION_BATCHES = 8
# "4x smaller weights": int8 codes plus the float32 per-channel scales and biases, against float32 (3.9x for LeNet-5,
# whose 236 channels and biases weigh more against its 61,470 weights than the MLP's)
TARGETS = {"ptq_points": 0.3, "ptq_weights_smaller": 3.85, "gpt_val_loss": 0.02, "prune_points": 0.5,
           "structured_points": 0.5}
STUDENT_HIDDEN = (32,)


# ----------------------------------------------------------------------------- data and training


class Images:
    """MNIST standardised as ``ember train`` does; the dry run keeps the first training images."""

    def __init__(self, data_dir, train_images):
        train, stats = image_classification("mnist", "train", data_dir)
        test, _ = image_classification("mnist", "test", data_dir, stats=stats)
        x, y = train.arrays
        self.train = TensorDataset(x[:train_images], y[:train_images]) if train_images else train
        self.test = test
        self.x_test = test.arrays[0]

    def loader(self, batch_size: int, seed: int = 0) -> DataLoader:
        return DataLoader(self.train, batch_size=batch_size, shuffle=True, seed=seed)

    def accuracy(self, model) -> float:
        return evaluate(model, DataLoader(self.test, batch_size=1000))[1]


def train(model, images: Images, epochs: int, batch_size: int, seed: int = 0, masked: bool = False) -> None:
    """Adam at lr 1e-3 with a per-step cosine decay to 0 (``ember train``'s recipe); ``masked``: pruned weights
    held at zero."""
    loader = images.loader(batch_size, seed)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    fit(model, MaskedOptimizer(optimizer, model) if masked else optimizer, loader, epochs=epochs, progress=False,
        scheduler=scheduler, scheduler_per_batch=True)


def trained(kind: str, images: Images, epochs: int):
    ember.manual_seed(0)
    model = build(kind)
    start = time.perf_counter()
    train(model, images, epochs, BATCH[kind])
    accuracy = images.accuracy(model)
    print(f"{kind}: {epochs} epoch(s) in {time.perf_counter() - start:.1f} s, test accuracy {accuracy:.2%}",
          flush=True)
    return model.eval(), accuracy


def points(after: float, before: float) -> float:
    """Accuracy lost, in percentage points (negative: gained)."""
    return round(100 * (before - after), 3)


def inference_ms(models: dict, x: np.ndarray, n_rounds: int) -> dict[str, float]:
    """Median ms of one forward pass of ``x`` through each model, interleaved rounds."""
    xt = ember.tensor(x) if x.dtype.kind == "f" else x

    def forward(model):
        def call():
            with ember.no_grad():
                model(xt)
        return call

    timings = rounds({name: forward(m.eval()) for name, m in models.items()}, n_rounds, warmup=1, calls=3)
    return {name: round(ms, 3) for name, ms in timings.medians(1e3).items()}


def file_bytes(model, folder: Path, name: str) -> int:
    """The size of ``model``'s checkpoint, written as ``ember compress`` writes it."""
    return save_compressed(folder / f"{name}.safetensors", model).stat().st_size


# ----------------------------------------------------------------------------- the parts


def ptq(kind: str, model, accuracy: float, images: Images, folder: Path, n_rounds: int) -> dict:
    """int8 weights alone, and weights and inputs with min/max or percentile ranges."""
    calibration = [x for x, _ in itertools.islice(images.loader(128, seed=1), CALIBRATION_BATCHES)]
    variants = {"int8 weights": quantize_model(model),
                "int8 weights+inputs (min/max)": quantize_model(model, calibration, observer="minmax"),
                "int8 weights+inputs (percentile)": quantize_model(model, calibration, observer="percentile")}
    float_bytes = save_checkpoint(folder / f"{kind}.safetensors", model).stat().st_size
    times = inference_ms({"float32": model, **variants}, images.x_test[:1000], n_rounds)
    float_weights = stored_weights(model)["bytes"]
    result = {"model": kind, "float_accuracy": accuracy, "float_file_bytes": float_bytes,
              "float_weight_bytes": float_weights, "float_ms_per_batch": times["float32"], "variants": {}}
    for name, qmodel in variants.items():
        acc = images.accuracy(qmodel)
        size = file_bytes(qmodel, folder, f"{kind}-{len(result['variants'])}")
        weights = stored_weights(qmodel)["bytes"]
        result["variants"][name] = {"accuracy": acc, "points_lost": points(acc, accuracy), "file_bytes": size,
                                    "smaller": round(float_bytes / size, 3), "weight_bytes": weights,
                                    "weights_smaller": round(float_weights / weights, 3), "ms_per_batch": times[name]}
        print(f"  {kind} {name}: {acc:.2%} ({points(acc, accuracy):+.2f} points lost), weights "
              f"{float_weights / weights:.2f}x and file {float_bytes / size:.2f}x smaller, {times[name]:.2f} ms per "
              f"batch of 1000 (float {times['float32']:.2f})", flush=True)
    variants = result["variants"].values()
    result["target_met"] = (max(v["points_lost"] for v in variants) <= TARGETS["ptq_points"]
                            and min(v["weights_smaller"] for v in variants) >= TARGETS["ptq_weights_smaller"])
    return result


def unstructured(model, accuracy: float, images: Images, sizes: dict) -> dict:
    """90% of the MLP's weights: one-shot (global, per layer), then iterative with fine-tuning."""
    result = {"model": "mlp", "amount": 0.9, "float_accuracy": accuracy}
    for scope in ("global", "layer"):
        pruned = copy.deepcopy(model)
        prune_magnitude(pruned, 0.9, scope=scope)
        acc = images.accuracy(pruned)
        result[f"one_shot_{scope}"] = {"accuracy": acc, "points_lost": points(acc, accuracy)}
        print(f"  mlp pruned 90% one-shot ({scope}), no fine-tuning: {acc:.2%}", flush=True)
    schedule = sparsity_schedule(0.9, sizes["prune_rounds"])
    rounds_seen = []

    def finetune(m, r):
        train(m, images, sizes["finetune_epochs"], BATCH["mlp"], seed=r, masked=True)
        acc = images.accuracy(m)
        rounds_seen.append({"round": r, "sparsity": round(sparsity(m), 4), "accuracy": acc})
        print(f"  mlp round {r}: sparsity {sparsity(m):.1%}, after fine-tuning {acc:.2%}", flush=True)
        return {"accuracy": acc}

    pruned, _ = prune_and_finetune(copy.deepcopy(model), schedule, finetune, scope="global")
    acc = images.accuracy(pruned)
    result["iterative"] = {"schedule": [round(a, 4) for a in schedule], "finetune_epochs_per_round":
                           sizes["finetune_epochs"], "rounds": rounds_seen, "sparsity": round(sparsity(pruned), 4),
                           "accuracy": acc, "points_lost": points(acc, accuracy)}
    result["target_met"] = points(acc, accuracy) <= TARGETS["prune_points"]
    return result


def step_ms(models: dict, images: Images, n_rounds: int) -> dict[str, float]:
    """Median ms of one training step (forward, backward, Adam) of each model on the same batches."""
    batches = list(itertools.islice(images.loader(BATCH["lenet"], seed=2), 8))

    def stepper(model):
        model = copy.deepcopy(model).train()
        optimizer = optim.Adam(model.parameters(), lr=1e-4)
        state = {"i": 0}

        def call():
            x, y = batches[state["i"] % len(batches)]
            state["i"] += 1
            optimizer.zero_grad()
            ember.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        return call

    timings = rounds({name: stepper(m) for name, m in models.items()}, n_rounds, warmup=2, calls=10)
    return {name: round(ms, 3) for name, ms in timings.medians(1e3).items()} | {
        "ratio": round(timings.ratio("pruned", "original"), 3)}


def structured(model, accuracy: float, images: Images, sizes: dict, n_rounds: int) -> dict:
    """LeNet-5 cut to half its multiply-accumulates, fine-tuned, timed against the original."""
    example = ember.tensor(images.x_test[:1])
    amount = amount_for_macs(model, example, 0.5)
    pruned = prune_structured(model, amount)
    before_ft = images.accuracy(pruned)
    train(pruned, images, sizes["structured_finetune_epochs"], BATCH["lenet"], seed=3)
    acc = images.accuracy(pruned)
    macs = (count_macs(model, example), count_macs(pruned, example))
    steps = step_ms({"original": model, "pruned": pruned}, images, n_rounds)
    infer = inference_ms({"original": model, "pruned": pruned}, images.x_test[:1000], n_rounds)
    shapes = {name: list(getattr(pruned, name).weight.shape) for name in ("conv1", "conv2", "fc1", "fc2", "fc3")}
    print(f"  lenet structured ({amount:.3f} of the units): MACs {macs[0]:,} -> {macs[1]:,}, {before_ft:.2%} before "
          f"fine-tuning, {acc:.2%} after; step {steps['original']:.2f} -> {steps['pruned']:.2f} ms "
          f"({steps['ratio']:.2f}x), inference {infer['original']:.2f} -> {infer['pruned']:.2f} ms", flush=True)
    return {"model": "lenet", "amount": round(amount, 4), "shapes": shapes, "macs": list(macs),
            "macs_ratio": round(macs[1] / macs[0], 4), "float_accuracy": accuracy,
            "accuracy_before_finetuning": before_ft, "finetune_epochs": sizes["structured_finetune_epochs"],
            "accuracy": acc, "points_lost": points(acc, accuracy), "train_step_ms": steps,
            "inference_ms_per_batch": infer,
            "target_met": points(acc, accuracy) <= TARGETS["structured_points"] and steps["ratio"] < 1.0}


def distillation(teacher, teacher_accuracy: float, images: Images, epochs: int, n_rounds: int) -> dict:
    """A 784-32-10 MLP from LeNet-5's soft targets, against the same student on the labels alone."""
    ember.manual_seed(4)
    alone = mlp_student(teacher, STUDENT_HIDDEN)
    student = copy.deepcopy(alone)
    train(alone, images, epochs, BATCH["mlp"], seed=4)
    loader = images.loader(BATCH["mlp"], seed=4)
    optimizer = optim.Adam(student.parameters(), lr=1e-3)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    distill(student, teacher, loader, optimizer, epochs, temperature=4.0, alpha=0.9, scheduler=scheduler)
    accs = {"teacher": teacher_accuracy, "labels alone": images.accuracy(alone), "distilled": images.accuracy(student)}
    params = {"teacher": teacher.num_parameters(), "student": student.num_parameters()}
    times = inference_ms({"teacher": teacher, "student": student}, images.x_test[:1000], n_rounds)
    print(f"  distillation: teacher {accs['teacher']:.2%} ({params['teacher']:,} parameters, "
          f"{times['teacher']:.2f} ms), student on labels {accs['labels alone']:.2%}, distilled "
          f"{accs['distilled']:.2%} "
          f"({params['student']:,} parameters, {times['student']:.2f} ms)", flush=True)
    return {"teacher": "lenet", "student_sizes": list(student.config.sizes), "epochs": epochs, "temperature": 4.0,
            "alpha": 0.9, "accuracy": accs, "parameters": params, "inference_ms_per_batch": times}


def gpt(data_dir, iters: int, val_tokens: int | None, folder: Path) -> dict:
    """nanoGPT's char-level recipe on Tiny Shakespeare, briefly trained, then int8."""
    from ember.data.text import random_windows
    from ember.train.lm import LMTrainConfig, LMTrainer
    from ember.train.lm_eval import evaluate_lm

    start = time.perf_counter()
    trainer = LMTrainer(LMTrainConfig(data_dir=data_dir, max_iters=iters, eval_interval=iters, eval_iters=2,
                                      log_interval=iters, warmup_iters=min(100, iters // 5)))
    trainer.run(progress=False)
    model, corpus = trainer.model.eval(), trainer.corpus
    print(f"gpt: {iters} iterations in {time.perf_counter() - start:.1f} s", flush=True)
    rng = np.random.default_rng(5)
    calibration = [random_windows(corpus.train, 12, model.config.block_size, rng)[0]
                   for _ in range(CALIBRATION_BATCHES)]
    variants = {"float32": model, "int8 weights": quantize_model(model),
                "int8 weights+inputs (min/max)": quantize_model(model, calibration)}
    result = {"iters": iters, "val_tokens": None, "variants": {}}
    float_bytes = save_checkpoint(folder / "gpt.safetensors", model).stat().st_size
    for name, m in variants.items():
        evaluated = evaluate_lm(m, corpus.tokenizer, corpus.val, batch_size=32, max_tokens=val_tokens)
        size = float_bytes if m is model else file_bytes(m, folder, f"gpt-{len(result['variants'])}")
        result["val_tokens"] = evaluated.tokens
        result["variants"][name] = {"val_loss": round(evaluated.loss, 5), "file_bytes": size,
                                    "smaller": round(float_bytes / size, 3)}
        print(f"  gpt {name}: val loss {evaluated.loss:.4f} over {evaluated.tokens:,} tokens, file "
              f"{float_bytes / size:.2f}x smaller", flush=True)
    base = result["variants"]["float32"]["val_loss"]
    for v in result["variants"].values():
        v["rise"] = round(v["val_loss"] - base, 5)
    result["target_met"] = result["variants"]["int8 weights"]["rise"] <= TARGETS["gpt_val_loss"]
    return result


# ----------------------------------------------------------------------------- report


def markdown(r: dict) -> str:
    lines = ["int8 post-training quantization (test accuracy on MNIST's 10,000 test images; time of one batch of "
             "1000):", "",
             "| model | float32 | int8 weights | int8 weights + inputs, min/max | int8 weights + inputs, percentile | "
             "weights | checkpoint | ms/batch float32 → int8 (weights+inputs, min/max) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in r["ptq"]:
        v = p["variants"]
        cells = [f"{x['accuracy']:.2%} ({-x['points_lost']:+.2f})" for x in v.values()]
        mm = v["int8 weights+inputs (min/max)"]
        lines.append(f"| {p['model']} | {p['float_accuracy']:.2%} | {' | '.join(cells)} | "
                     f"{p['float_weight_bytes'] / 1e3:,.0f} kB → {mm['weight_bytes'] / 1e3:,.0f} kB "
                     f"({mm['weights_smaller']:.2f}x) | {p['float_file_bytes'] / 1e3:,.0f} kB → "
                     f"{mm['file_bytes'] / 1e3:,.0f} kB ({mm['smaller']:.2f}x) | {p['float_ms_per_batch']:.2f} → "
                     f"{mm['ms_per_batch']:.2f} |")
    g = r["gpt"]
    gv = g["variants"]
    lines += ["", f"Char-level GPT ({g['iters']} iterations of nanoGPT's CPU recipe), validation loss over "
              f"{g['val_tokens']:,} tokens: float32 {gv['float32']['val_loss']:.4f}; int8 weights "
              f"{gv['int8 weights']['val_loss']:.4f} ({gv['int8 weights']['rise']:+.4f}, checkpoint "
              f"{gv['int8 weights']['smaller']:.2f}x smaller); int8 weights + inputs "
              f"{gv['int8 weights+inputs (min/max)']['val_loss']:.4f} "
              f"({gv['int8 weights+inputs (min/max)']['rise']:+.4f})."]
    u, s, d = r["unstructured"], r["structured"], r["distillation"]
    layers = ", ".join("x".join(map(str, v[:2])) for v in s["shapes"].values())
    it = u["iterative"]
    lines += ["", "Pruning (points of test accuracy lost):", "",
              "| model | pruned | float32 | without fine-tuning | after fine-tuning | speed |",
              "|---|---|---:|---:|---:|---|",
              f"| mlp | 90% of the weights, global magnitude, {len(it['schedule'])} rounds of "
              f"{it['finetune_epochs_per_round']} epoch(s) | {u['float_accuracy']:.2%} | one-shot global "
              f"{u['one_shot_global']['accuracy']:.2%} ({-u['one_shot_global']['points_lost']:+.2f}); per layer "
              f"{u['one_shot_layer']['accuracy']:.2%} ({-u['one_shot_layer']['points_lost']:+.2f}) | "
              f"{it['accuracy']:.2%} ({-it['points_lost']:+.2f}) | dense tensors: unchanged |",
              f"| lenet | whole channels and neurons: MACs {s['macs'][0]:,} → {s['macs'][1]:,} "
              f"({s['macs_ratio']:.2f}x), layers {layers} | "
              f"{s['float_accuracy']:.2%} | {s['accuracy_before_finetuning']:.2%} | {s['accuracy']:.2%} "
              f"({-s['points_lost']:+.2f}) | training step {s['train_step_ms']['original']:.2f} → "
              f"{s['train_step_ms']['pruned']:.2f} ms ({s['train_step_ms']['ratio']:.2f}x), inference "
              f"{s['inference_ms_per_batch']['original']:.2f} → {s['inference_ms_per_batch']['pruned']:.2f} ms |",
              "", f"Distillation of LeNet-5 into an MLP {'-'.join(map(str, d['student_sizes']))} ({d['epochs']} "
              f"epochs, T = {d['temperature']:g}, alpha = {d['alpha']:g}): teacher {d['accuracy']['teacher']:.2%} "
              f"({d['parameters']['teacher']:,} parameters, {d['inference_ms_per_batch']['teacher']:.2f} ms per "
              f"batch); student on the labels alone {d['accuracy']['labels alone']:.2%}, distilled "
              f"{d['accuracy']['distilled']:.2%} ({d['parameters']['student']:,} parameters, "
              f"{d['inference_ms_per_batch']['student']:.2f} ms).", "",
              "Targets: " + "; ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in targets(r).items()) + "."]
    return "\n".join(lines)


def targets(r: dict) -> dict[str, bool]:
    ptq_target = f"<= {TARGETS['ptq_points']} points, weights >= {TARGETS['ptq_weights_smaller']}x smaller"
    return {**{f"int8 {p['model']} ({ptq_target})": p["target_met"] for p in r["ptq"]},
            f"int8 GPT (val loss + <= {TARGETS['gpt_val_loss']})": r["gpt"]["target_met"],
            f"90% pruned MLP (<= {TARGETS['prune_points']} points)": r["unstructured"]["target_met"],
            f"LeNet-5 at half the MACs (<= {TARGETS['structured_points']} points, faster step)":
                r["structured"]["target_met"]}


def render_idle(report, path):
    meta = (f"Measured {report['date']} on {report['machine']}, NumPy {report['numpy']}"
            f"{' (a --quick dry run: smaller figures)' if report['quick'] else ''}; "
            f"`python benchmarks/bench_compress.py` (results in `{path}`).")
    return meta, markdown(report)


def render_loaded(report, path) -> str:
    return ""


def headline(r: dict) -> str:
    ptq_part = ", ".join(f"{p['model']} {-max(v['points_lost'] for v in p['variants'].values()):+.2f} pts"
                         for p in r["ptq"])
    return (f"int8: {ptq_part}, GPT val loss {r['gpt']['variants']['int8 weights']['rise']:+.4f}; 90% pruned MLP "
            f"{-r['unstructured']['iterative']['points_lost']:+.2f} pts; LeNet-5 at "
            f"{r['structured']['macs_ratio']:.2f}x MACs {-r['structured']['points_lost']:+.2f} pts, step "
            f"{r['structured']['train_step_ms']['ratio']:.2f}x")


def chart(r: dict) -> Bars:
    groups = {f"{p['model']} int8": {"float32": 100 * p["float_accuracy"],
                                     **{k: 100 * v["accuracy"] for k, v in p["variants"].items()}} for p in r["ptq"]}
    u, s = r["unstructured"], r["structured"]
    groups["mlp 90% pruned"] = {"float32": 100 * u["float_accuracy"],
                                "one-shot": 100 * u["one_shot_global"]["accuracy"],
                                "fine-tuned": 100 * u["iterative"]["accuracy"]}
    groups["lenet half MACs"] = {"float32": 100 * s["float_accuracy"],
                                 "one-shot": 100 * s["accuracy_before_finetuning"], "fine-tuned": 100 * s["accuracy"]}
    return Bars("Compressed models on MNIST", "test accuracy (%)", groups, note=r["machine"])


# ----------------------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ and tinyshakespeare/ ($EMBER_DATA)")
    parser.add_argument("--quick", action="store_true", help="a dry run (a minute or two; smaller figures)")
    parser.add_argument("--out", default=None, help="default results/compress.json (compress_quick.json with --quick)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    args.sizes = QUICK if args.quick else FULL
    return args


def bench(args) -> Outcome:
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    sizes, n_rounds = args.sizes, args.sizes["timing_rounds"]
    started = time.perf_counter()
    images = Images(args.data_dir, sizes["train_images"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mlp, mlp_acc = trained("mlp", images, sizes["epochs"])
        lenet, lenet_acc = trained("lenet", images, sizes["epochs"])
        report = {"benchmark": "bench_compress", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
                  "machine_info": info, "python": platform.python_version(), "numpy": np.__version__,
                  "quick": args.quick, "sizes": sizes, "targets": TARGETS}
        report["ptq"] = [ptq("mlp", mlp, mlp_acc, images, folder, n_rounds),
                         ptq("lenet", lenet, lenet_acc, images, folder, n_rounds)]
        report["unstructured"] = unstructured(mlp, mlp_acc, images, sizes)
        report["structured"] = structured(lenet, lenet_acc, images, sizes, n_rounds)
        report["distillation"] = distillation(lenet, lenet_acc, images, sizes["distill_epochs"], n_rounds)
        report["gpt"] = gpt(args.data_dir, sizes["gpt_iters"], sizes["gpt_val_tokens"], folder)
    report["targets_met"] = targets(report)
    report["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out) if args.out else results_path("compress", quick=args.quick)
    files = publish("bench_compress", report, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("compress")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


BENCHMARK = Benchmark(name="compress", title="int8 quantization, pruning and distillation of MNIST models and a GPT",
                      run=run, marker="bench_compress")

if __name__ == "__main__":
    sys.exit(main())
