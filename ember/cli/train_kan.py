"""``ember train kan``: a Kolmogorov–Arnold network on an image dataset or a function-fitting task."""

from __future__ import annotations

import argparse
import math
import time

from .common import (
    UsageError,
    add_device_arg,
    add_log_args,
    check_log_args,
    check_save_destination,
    epoch_reporter,
    log_epochs,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
    resolve_device,
    save_to_summary,
    say,
    training_logs,
)
from .dist import (
    add_distributed_arg,
    batch_words,
    distributed,
    epoch_means,
    first_on_rank_zero,
    nonfinite_policy,
    refuse,
    summary_fields,
)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 784,64,10, got {text!r}") from None


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t.replace("pi", str(math.pi))) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected lo,hi like -1,1, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"expected finite lo < hi, got {text!r}")
    return lo, hi


def _schedule(text: str) -> dict[int, int]:
    try:
        return {int(a): int(b) for a, b in (part.split(":") for part in text.split(",") if part)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected step:grid pairs like 1000:10,2000:20, got {text!r}") from None


def add_parser(models) -> None:
    p = models.add_parser(
        "kan", help="train a Kolmogorov–Arnold network",
        description="Train a KAN on MNIST-style images (--dataset) or fit a documented function (--task).",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", choices=("mnist", "fashion-mnist", "kmnist"))
    what.add_argument("--task", choices=("sinusoid", "exp-sin"),
                      help="sinusoid: sin(x) on [-pi, pi]; exp-sin: exp(sin(pi x) + y^2) on [-1, 1]^2")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--widths", type=_int_list, default=None, help="layer widths (default 784,64,10 or 1,1 / 2,5,1)")
    p.add_argument("--grid-size", type=positive_int, default=5)
    p.add_argument("--spline-order", type=positive_int, default=3)
    p.add_argument("--grid-range", type=_range, default=None, help="lo,hi of the initial grid (default: the data's)")
    p.add_argument("--epochs", type=positive_int, default=10, help="image datasets")
    p.add_argument("--steps", type=positive_int, default=4000, help="function tasks (full batch)")
    p.add_argument("--grid-schedule", type=_schedule, default=None,
                   help="task grid extensions step:G,... (default 1000:10,2000:20 for sinusoid)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=None, help="default 1e-3 (images) or 1e-2 (tasks)")
    p.add_argument("--weight-decay", type=non_negative_float, default=1e-4)
    p.add_argument("--grad-clip", type=non_negative_float, default=1.0, help="global gradient-norm clip (0: off)")
    p.add_argument("--regularization", type=non_negative_float, default=0.0,
                   help="lambda of the L1 + entropy edge penalty")
    p.add_argument("--seed", type=non_negative_int, default=0)
    add_device_arg(p)
    p.add_argument("--save", metavar="PATH", default=None,
                   help="write the trained weights (safetensors); checked before training starts")
    p.add_argument("--skip-nonfinite", action="store_true",
                   help="skip a batch or step whose loss is NaN/inf instead of stopping the run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    add_log_args(p, "epoch (images) or logged step (tasks)")
    add_distributed_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import ember

    if args.task:
        refuse(args, f"--task {args.task} fits a function full-batch in one process; --distributed shares out "
                     "the batches of an image dataset (--dataset)")
    with distributed(args) as world:
        device = resolve_device(args.device)
        check_save_destination(args.save)
        check_log_args(args)
        ember.manual_seed(args.seed)
        return _run_task(args, device) if args.task else _run_images(args, device, world)


def _run_images(args, device, world=None) -> int:
    import numpy as np

    import ember

    from ..data import DataLoader, image_classification
    from ..models import KAN, KANConfig
    from ..train import fit

    widths = args.widths or (784, 64, 10)
    if widths[0] != 784 or widths[-1] != 10:
        raise UsageError(f"{args.dataset} needs widths 784,...,10, got {','.join(map(str, widths))}")
    # pixels to [-1, 1], the grid's range (efficient-kan's MNIST normalisation)
    stats = (np.array([0.5], np.float32), np.array([0.5], np.float32))
    with first_on_rank_zero(world):
        train_set, _ = image_classification(args.dataset, "train", args.data_dir, not args.no_download, stats=stats)
        test_set, _ = image_classification(args.dataset, "test", args.data_dir, not args.no_download, stats=stats)
    config = KANConfig(widths=widths, grid_size=args.grid_size, spline_order=args.spline_order,
                       grid_range=args.grid_range or (-1.0, 1.0))
    model = KAN(config).to(device)
    lr = args.lr or 1e-3
    opt = ember.optim.AdamW(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    net = model
    if world is None:
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed, device=device)
    else:
        from ..distributed import DistributedDataLoader, DistributedDataParallel

        net = DistributedDataParallel(model, world)  # the same start on every rank, gradients averaged in backward
        loader = DistributedDataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed,
                                       device=device, world=world)
    sched = ember.optim.CosineAnnealingLR(opt, T_max=args.epochs * len(loader))
    say(f"training kan {list(widths)} (G={args.grid_size}, k={args.spline_order}, "
        f"{model.num_parameters():,} parameters) on {args.dataset}: AdamW lr {lr} (cosine), "
        f"weight decay {args.weight_decay}, clip {args.grad_clip}, {batch_words(args.batch_size, world)}, "
        f"{args.epochs} epochs, on {device}")

    start = time.perf_counter()
    test_loader = DataLoader(test_set, batch_size=1000, device=device)
    with training_logs(args, "epoch") as logs:
        train_opt, report = log_epochs(logs, opt, epoch_reporter(args), len(train_set), args.grad_clip)
        history = fit(net, train_opt, loader, test_loader, args.epochs, on_epoch=epoch_means(report, world),
                      progress=not args.no_progress, scheduler=sched, scheduler_per_batch=True,
                      grad_clip=args.grad_clip or None,
                      on_nonfinite=nonfinite_policy("skip" if args.skip_nonfinite else "stop", world))
        seconds = time.perf_counter() - start
    last = history[-1]
    summary = {"event": "summary", "model": "kan", "widths": list(widths), "dataset": args.dataset,
               "grid_size": args.grid_size, "spline_order": args.spline_order, "epochs": args.epochs,
               "seed": args.seed, "device": str(device), "final_loss": round(last.loss, 6),
               "train_accuracy": round(last.train_accuracy, 6),
               "test_accuracy": round(last.test_accuracy, 6), "seconds": round(seconds, 2),
               **summary_fields(args.batch_size, world)}
    status = 0
    if args.save:
        extra = {"dataset": args.dataset, "test_accuracy": last.test_accuracy,
                 "normalization": {"mean": [0.5], "std": [0.5]}}
        status = save_to_summary(summary, args.save, model, extra)
    say(f"test accuracy: {last.test_accuracy:.2%}")
    print_json(summary)
    return status


def _run_task(args, device) -> int:
    from ..models import KAN, KANConfig
    from ..train.regression import fit_regression, get_task

    task = get_task(args.task)
    widths = args.widths or ((1, 1) if task.dims == 1 else (2, 5, 1))
    if widths[0] != task.dims or widths[-1] != 1:
        raise UsageError(f"task {task.name} needs widths {task.dims},...,1, got {','.join(map(str, widths))}")
    schedule = args.grid_schedule
    if schedule is None:
        schedule = {1000: 10, 2000: 20} if args.steps >= 3000 else {}
    config = KANConfig(widths=widths, grid_size=args.grid_size, spline_order=args.spline_order,
                       grid_range=args.grid_range or task.domain)
    model = KAN(config).to(device)
    lr = args.lr or 1e-2
    say(f"fitting {task.formula} on {list(task.domain)}^{task.dims} with kan {list(widths)} "
        f"(G={args.grid_size}, grid schedule {schedule}), AdamW lr {lr} (cosine), {args.steps} full-batch steps, "
        f"on {device}")

    def log(entry):
        say(f"step {entry['step']:>6}  train mse {entry['train_mse']:.3e}  val mse {entry['val_mse']:.3e}")
        if args.json:
            print_json({"event": "log", **entry})

    with training_logs(args, "step") as logs:
        on_log = log if logs is None else log_regression(log, logs)
        result = fit_regression(model, task, steps=args.steps, lr=lr, weight_decay=args.weight_decay,
                                grad_clip=args.grad_clip or None, seed=args.seed, grid_schedule=schedule,
                                regularization=args.regularization, on_log=on_log,
                                log_every=max(args.steps // 10, 1),
                                on_nonfinite="skip" if args.skip_nonfinite else "stop")
    summary = {"event": "summary", "model": "kan", "task": task.name, "widths": list(widths),
               "grid_size": model.config.grid_size, "steps": args.steps, "seed": args.seed,
               "device": str(device), "train_mse": result.train_mse, "val_mse": result.val_mse,
               "test_mse": result.test_mse,
               "seconds": round(result.seconds, 2)}
    status = 0
    if args.save:
        status = save_to_summary(summary, args.save, model, {"task": task.name, "test_mse": result.test_mse,
                                                             "seed": args.seed})
    say(f"test mse on 10,000 fresh points: {result.test_mse:.3e}")
    print_json(summary)
    return status


def log_regression(report, logs):
    """An ``on_log`` for ``fit_regression`` that reports each entry and logs its scalars, with the steps per second
    since the previous entry (wall time: the steps, the validation and any grid extension between them)."""
    from ..train.scalars import regression_scalars

    last = {"step": 0, "time": time.perf_counter()}

    def report_and_log(entry):
        now = time.perf_counter()
        report(entry)
        steps_per_s = (entry["step"] - last["step"]) / (now - last["time"]) if now > last["time"] else None
        last.update(step=entry["step"], time=now)
        logs.log(entry["step"], regression_scalars(entry, steps_per_s))

    return report_and_log
