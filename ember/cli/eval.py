"""``ember eval CKPT``: evaluate a saved classifier on a dataset's test split."""

from __future__ import annotations

import numpy as np

from .common import add_data_args, print_json, say


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint", description="Evaluate a saved model on a test split.")
    p.add_argument("checkpoint", metavar="CKPT", help="a .safetensors file written by `ember train --save`")
    add_data_args(p)
    p.add_argument("--batch-size", type=int, default=1000)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..data import DataLoader, image_classification
    from ..io.checkpoint import load_model
    from ..train import evaluate

    model, meta = load_model(args.checkpoint)
    norm = meta["extra"].get("normalization")
    stats = (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)) if norm else None
    if stats is None:  # an older or foreign checkpoint: standardise with the training split's statistics
        stats = image_classification(args.dataset, "train", args.data_dir, not args.no_download)[1]
    test_set, _ = image_classification(args.dataset, "test", args.data_dir, not args.no_download, stats=stats)
    loss, acc = evaluate(model, DataLoader(test_set, batch_size=args.batch_size))
    trained_on = meta["extra"].get("dataset")
    if trained_on and trained_on != args.dataset:
        say(f"note: the model was trained on {trained_on}, evaluated on {args.dataset}")
    say(f"{meta['model']} on {args.dataset} test: loss {loss:.4f}, accuracy {acc:.2%}")
    print_json({"event": "eval", "model": meta["model"], "dataset": args.dataset, "checkpoint": args.checkpoint,
                "test_loss": round(loss, 6), "test_accuracy": round(acc, 6)})
    return 0
