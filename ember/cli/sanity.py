"""``ember sanity``: can a model overfit one fixed batch? A quick end-to-end check of autograd + optimizer."""

from __future__ import annotations

import numpy as np

from .common import non_negative_int, positive_float, positive_int, print_json, say


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sanity", help="overfit one fixed batch",
        description="Train on one fixed batch of 64 until it is memorised (100% training accuracy); "
                    "exit 1 if the step budget runs out first.",
    )
    p.add_argument("--model", choices=("mlp", "lenet"), default="mlp")
    p.add_argument("--data", choices=("synthetic", "mnist", "fashion-mnist"), default="synthetic",
                   help="random images with random labels (default), or the first 64 training images")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--steps", type=positive_int, default=200, help="step budget (default 200)")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(run=run)


def fixed_batch(data: str, data_dir, seed: int, n: int = 64):
    if data == "synthetic":
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)
    from ..data import image_classification

    ds, _ = image_classification(data, "train", data_dir)
    return ds.arrays[0][:n], ds.arrays[1][:n]


def run(args) -> int:
    import ember
    import ember.nn.functional as F

    from ..models import build

    ember.manual_seed(args.seed)
    images, labels = fixed_batch(args.data, args.data_dir, args.seed)
    x, y = ember.tensor(images), ember.tensor(labels)
    model = build(args.model)
    opt = ember.optim.Adam(model.parameters(), lr=args.lr)
    acc, loss, steps = 0.0, float("nan"), 0
    while steps < args.steps and acc < 1.0:
        steps += 1
        opt.zero_grad()
        logits = model(x)
        loss_t = F.cross_entropy(logits, y)
        loss_t.backward()
        opt.step()
        loss = loss_t.item()
        acc = float((logits.data.argmax(axis=1) == labels).mean())
    ok = acc == 1.0
    say(f"{args.model} on one batch of {len(labels)} ({args.data}): "
        f"{'memorised' if ok else 'NOT memorised'} after {steps} steps, loss {loss:.4f}, accuracy {acc:.2%}")
    print_json({"event": "sanity", "model": args.model, "data": args.data, "ok": ok, "steps": steps,
                "loss": round(loss, 6), "accuracy": acc})
    return 0 if ok else 1
