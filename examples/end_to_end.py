"""ember end to end on LeNet-5: train, profile, prune, quantise, export, and measure every stage.

    EMBER_DATA=../shared/data python examples/end_to_end.py [--epochs 2] [--train-images 60000] [--out DIR]

1. Train LeNet-5 on MNIST (AdamW, cosine schedule).
2. Profile one training step (``ember.profiler``): where the time goes, the step's peak memory.
3. Prune whole channels and neurons until the forward needs half the multiply-accumulates, then fine-tune
   (``ember.compress.prune_structured``): a smaller network, not a masked one.
4. Quantise to int8 (per-channel weights, inputs calibrated on a few batches; ``ember.compress.quantize_model``).
5. Export the pruned float model to ONNX and run it in onnxruntime (int8 layers have no ONNX export here; the
   file is the pruned network), checking that it computes what ember computes.

After each stage: test accuracy, weight bytes, multiply-accumulates per image and inference latency (ms per batch
of 1,000 test images, median of 5). The checkpoints go to ``--out``; each loads back with ``ember eval``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import ember
from ember import compress
from ember.data import DataLoader, TensorDataset, image_classification
from ember.io import save_checkpoint
from ember.models import LeNet5
from ember.optim import AdamW, CosineAnnealingLR
from ember.train import evaluate, fit


def latency_ms(run, x, repeats: int = 5) -> float:
    run(x)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def measure(stage: str, model, test_loader, images) -> dict:
    model.eval()
    _, accuracy = evaluate(model, test_loader)
    with ember.no_grad():
        ms = latency_ms(lambda x: model(x), ember.tensor(images))
    weights = compress.stored_weights(model)
    row = {"stage": stage, "accuracy": accuracy, "weight_bytes": weights["bytes"],
           "macs_per_image": compress.count_macs(model, ember.tensor(images[:1])), "ms_per_1000": ms}
    print(f"{stage:<24} accuracy {accuracy:7.2%}  weights {weights['bytes'] / 1e3:8.1f} kB  "
          f"MACs/image {row['macs_per_image']:>9,}  {ms:7.1f} ms per 1,000 images", flush=True)
    return row


def train(model, train_set, epochs: int, lr: float, seed: int, test_loader=None):
    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=seed)
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = CosineAnnealingLR(optimizer, T_max=max(1, epochs * len(loader)))
    fit(model, optimizer, loader, test_loader, epochs, progress=False, scheduler=scheduler, scheduler_per_batch=True)
    return model


def profile_step(model, train_set) -> dict:
    """One profiled training step: the five most expensive ops and the step's peak memory."""
    from ember.nn import functional as F

    x, y = train_set[np.arange(64)]
    optimizer = AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(2):  # warm-up outside the profile
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with ember.profiler.profile(record_shapes=True, profile_memory=True) as prof:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        prof.step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=5))
    return {"step_peak_memory_bytes": int(prof.step_peak_memory[-1])}


def export_onnx(model, path: Path, images) -> dict | None:
    try:
        import onnxruntime as ort

        from ember.io.export import export_onnx as write_onnx
    except ImportError as exc:
        print(f"ONNX: skipped ({exc}; pip install 'ember[onnx]')")
        return None
    write_onnx(model, path)
    session = ort.InferenceSession(str(path))
    with ember.no_grad():
        want = model(ember.tensor(images)).numpy()
    got = session.run(None, {"input": images})[0]
    ms = latency_ms(lambda x: session.run(None, {"input": x}), images)
    diff = float(np.abs(got - want).max())
    print(f"ONNX: {path} ({path.stat().st_size / 1e3:.1f} kB), onnxruntime within {diff:.1e} of ember, "
          f"{ms:.1f} ms per 1,000 images")
    return {"path": str(path), "max_abs_diff": diff, "ms_per_1000": ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--train-images", type=int, default=60_000, help="use the first N training images")
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--out", default="runs/end_to_end")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ember.manual_seed(args.seed)
    train_set, stats = image_classification("mnist", "train")
    test_set, _ = image_classification("mnist", "test", stats=stats)
    train_set = TensorDataset(*(a[: args.train_images] for a in train_set.arrays))
    test_set = TensorDataset(*(a[: args.test_images] for a in test_set.arrays))
    test_loader = DataLoader(test_set, batch_size=1000)
    images = test_set.arrays[0][:1000]
    rows = []

    print(f"1. training LeNet-5 on {len(train_set):,} images for {args.epochs} epochs", flush=True)
    model = train(LeNet5(), train_set, args.epochs, 2e-3, args.seed)
    rows.append(measure("trained (float32)", model, test_loader, images))
    save_checkpoint(out / "lenet.safetensors", model)

    print("2. profiling one training step", flush=True)
    profiled = profile_step(model, train_set)

    print("3. structured pruning to half the multiply-accumulates, then fine-tuning", flush=True)
    example = ember.tensor(images[:1])
    amount = compress.amount_for_macs(model, example, 0.5)
    pruned = compress.prune_structured(model, amount)
    rows.append(measure(f"pruned {amount:.0%} units", pruned, test_loader, images))
    train(pruned, train_set, args.finetune_epochs, 1e-3, args.seed + 1)
    rows.append(measure("pruned + fine-tuned", pruned, test_loader, images))
    compress.save_compressed(out / "lenet_pruned.safetensors", pruned)

    print("4. int8 quantisation, inputs calibrated on 4 batches", flush=True)
    calibration = [train_set[np.arange(i * 256, (i + 1) * 256)][0] for i in range(4)]
    quantized = compress.quantize_model(pruned, calibration_batches=calibration)
    rows.append(measure("pruned + int8", quantized, test_loader, images))
    compress.save_compressed(out / "lenet_pruned_int8.safetensors", quantized)

    print("5. ONNX export of the pruned network", flush=True)
    onnx = export_onnx(pruned, out / "lenet_pruned.onnx", images)

    first, last = rows[0], rows[-1]
    print(f"\nfrom the trained model to pruned + int8: accuracy {first['accuracy']:.2%} -> {last['accuracy']:.2%}, "
          f"weights {first['weight_bytes'] / last['weight_bytes']:.1f}x smaller, multiply-accumulates "
          f"{first['macs_per_image'] / last['macs_per_image']:.1f}x fewer")
    import json

    (out / "report.json").write_text(json.dumps({"stages": rows, "profile": profiled, "onnx": onnx}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
