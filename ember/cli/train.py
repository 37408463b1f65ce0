"""``ember train {mlp,lenet}``: train a classifier on an image dataset, report each epoch, save a checkpoint
(``--distributed``: data-parallel over the processes of an MPI job, see ``dist.py``)."""

from __future__ import annotations

import time

from . import train_gpt, train_kan
from .common import (
    add_data_args,
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
    summary_fields,
)

MODEL_DEFAULTS = {  # the reference recipes: Adam, lr 1e-3 with cosine decay; batch 128 (MLP) or 64 (LeNet-5)
    "mlp": {"batch_size": 128},
    "lenet": {"batch_size": 64},
}


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="train a model", description="Train a model and report its accuracy.")
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True)
    for name, defaults in MODEL_DEFAULTS.items():
        p = models.add_parser(name, help=f"train {name} on MNIST-style images")
        add_data_args(p)
        p.add_argument("--epochs", type=positive_int, default=10)
        p.add_argument("--batch-size", type=positive_int, default=defaults["batch_size"])
        p.add_argument("--lr", type=positive_float, default=1e-3)
        p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam")
        p.add_argument("--momentum", type=non_negative_float, default=0.9, help="SGD momentum (default 0.9)")
        p.add_argument("--weight-decay", type=non_negative_float, default=0.0)
        p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                       help="learning rate: cosine decay from --lr to 0 over all steps (default), or constant")
        p.add_argument("--seed", type=non_negative_int, default=0)
        add_device_arg(p)
        p.add_argument("--save", metavar="PATH", default=None,
                       help="write the trained weights (safetensors); checked before training starts")
        p.add_argument("--skip-nonfinite", action="store_true",
                       help="skip a batch whose loss is NaN/inf instead of stopping the run")
        p.add_argument("--json", action="store_true", help="print each epoch as a JSON line too")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        add_log_args(p, "epoch")
        add_distributed_arg(p)
        p.set_defaults(run=run)
    train_kan.add_parser(models)
    train_gpt.add_parser(models)


def make_optimizer(name: str, params, lr: float, momentum: float, weight_decay: float):
    from .. import optim

    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return optim.AdamW(params, lr=lr, weight_decay=weight_decay or 1e-2)


def run(args) -> int:
    with distributed(args) as world:
        return train_classifier(args, world)


def train_classifier(args, world=None) -> int:
    """The run; ``world``: the MPI job's World with ``--distributed`` (each rank trains on its shard)."""
    import ember

    from ..data import DataLoader, image_classification
    from ..models import build
    from ..train import fit

    device = resolve_device(args.device)
    check_save_destination(args.save)
    check_log_args(args)
    ember.manual_seed(args.seed)
    download = not args.no_download
    with first_on_rank_zero(world):
        train_set, stats = image_classification(args.dataset, "train", args.data_dir, download)
        test_set, _ = image_classification(args.dataset, "test", args.data_dir, download, stats=stats)
    model = build(args.model).to(device)  # built on the CPU, so its initial weights do not depend on the device
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr, args.momentum, args.weight_decay)
    if world is None:
        net = model
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed, device=device)
    else:
        from ..distributed import DistributedDataLoader, DistributedDataParallel

        net = DistributedDataParallel(model, world)  # the same start on every rank, gradients averaged in backward
        train_loader = DistributedDataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed,
                                             device=device, world=world)
    scheduler = None
    if args.schedule == "cosine":
        scheduler = ember.optim.CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))
    test_loader = DataLoader(test_set, batch_size=1000, device=device)
    say(f"training {args.model} ({model.num_parameters():,} parameters) on {args.dataset}: "
        f"{len(train_set):,} train / {len(test_set):,} test images, {args.optimizer} lr {args.lr}, "
        f"({args.schedule}), {batch_words(args.batch_size, world)}, {args.epochs} epochs, seed {args.seed}, "
        f"on {device}")

    start = time.perf_counter()
    with training_logs(args, "epoch") as logs:
        train_optimizer, report = log_epochs(logs, optimizer, epoch_reporter(args), len(train_set))
        history = fit(net, train_optimizer, train_loader, test_loader, args.epochs, on_epoch=epoch_means(report, world),
                      progress=not args.no_progress, scheduler=scheduler, scheduler_per_batch=True,
                      on_nonfinite=nonfinite_policy("skip" if args.skip_nonfinite else "stop", world))
        total = time.perf_counter() - start
    last = history[-1]
    summary = {
        "event": "summary", "model": args.model, "dataset": args.dataset, "epochs": args.epochs,
        "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr, "schedule": args.schedule,
        "seed": args.seed, "device": str(device),
        "final_loss": round(last.loss, 6), "train_accuracy": round(last.train_accuracy, 6),
        "test_accuracy": round(last.test_accuracy, 6), "seconds": round(total, 2),
        "seconds_per_epoch": round(sum(s.seconds for s in history) / len(history), 3),
        **summary_fields(args.batch_size, world),
    }
    status = 0
    if args.save:
        extra = {"dataset": args.dataset, "test_accuracy": last.test_accuracy, "epochs": args.epochs,
                 "normalization": {"mean": stats[0].tolist(), "std": stats[1].tolist()}}
        status = save_to_summary(summary, args.save, model, extra)
    say(f"test accuracy: {last.test_accuracy:.2%}")
    print_json(summary)
    return status
