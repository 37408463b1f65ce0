"""The supervised classification loop shared by the CLI, the benchmarks and the tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from tqdm import tqdm

from ..autograd import no_grad
from ..nn import functional as F
from ..optim import clip_grad_norm_
from .guard import NonFiniteGuard


@dataclass
class EpochStats:
    epoch: int
    loss: float  # mean training loss over the epoch
    train_accuracy: float  # running accuracy over the epoch's batches (train mode)
    test_accuracy: float | None
    seconds: float  # training time of the epoch (evaluation excluded)
    skipped_batches: int = 0  # batches dropped for a non-finite loss (on_nonfinite="skip")

    def as_dict(self) -> dict:
        return asdict(self)


def train_epoch(model, loader, optimizer, loss_fn: Callable = F.cross_entropy, progress: str | None = None,
                scheduler=None, grad_clip: float | None = None, guard: NonFiniteGuard | None = None,
                where: str = "") -> tuple[float, float]:
    """One pass over ``loader``; returns (mean loss, accuracy) over the batches that were applied.

    ``scheduler`` steps per batch if given; ``grad_clip`` clips the global gradient norm; ``guard``
    decides what a non-finite loss or gradient norm does (default: stop with ``TrainingDiverged``).
    """
    guard = guard or NonFiniteGuard()
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=progress, leave=False, file=sys.stderr, disable=True if progress is None else None,
               dynamic_ncols=True)
    for i, (x, y) in enumerate(bar):
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y)
        value = loss.item()
        if not guard.check_loss(value, f"{where}batch {i + 1}"):
            continue
        loss.backward()
        if not guard.settle():  # a postponed check (data-parallel ranks agree on the loss while backward runs)
            optimizer.zero_grad()
            continue
        if grad_clip:
            norm = clip_grad_norm_(model.parameters(), grad_clip)
            if not guard.ok(float(norm), f"{where}batch {i + 1}", "gradient norm"):
                optimizer.zero_grad()
                continue
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = len(y)
        total_loss += value * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
        if i % 20 == 0:
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
    return total_loss / max(seen, 1), correct / max(seen, 1)


@no_grad()
def evaluate(model, loader, loss_fn: Callable = F.cross_entropy) -> tuple[float, float]:
    """Mean loss and accuracy over ``loader`` in eval mode, without recording a graph."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        logits = model(x)
        n = len(y)
        total_loss += loss_fn(logits, y).item() * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
    return total_loss / max(seen, 1), correct / max(seen, 1)


def fit(model, optimizer, train_loader, test_loader=None, epochs: int = 1, loss_fn: Callable = F.cross_entropy,
        on_epoch: Callable[[EpochStats], None] | None = None, progress: bool = True, scheduler=None,
        scheduler_per_batch: bool = False, grad_clip: float | None = None,
        on_nonfinite: str | NonFiniteGuard = "stop") -> list[EpochStats]:
    """Train for ``epochs``; after each, evaluate on ``test_loader`` and call ``on_epoch(stats)``.

    ``on_nonfinite``: "stop" (raise ``TrainingDiverged`` at the first NaN/inf loss) or "skip" the batch, or a
    guard that decides (data-parallel ranks use one that agrees with the other ranks)."""
    history = []
    guard = on_nonfinite if isinstance(on_nonfinite, NonFiniteGuard) else NonFiniteGuard(on_nonfinite)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        desc = f"epoch {epoch}/{epochs}" if progress else None
        skipped_before = guard.skipped
        loss, acc = train_epoch(model, train_loader, optimizer, loss_fn, desc,
                                scheduler if scheduler_per_batch else None, grad_clip, guard, f"epoch {epoch}, ")
        seconds = time.perf_counter() - start
        if scheduler is not None and not scheduler_per_batch:
            scheduler.step()
        test_acc = evaluate(model, test_loader, loss_fn)[1] if test_loader is not None else None
        stats = EpochStats(epoch, loss, acc, test_acc, seconds, guard.skipped - skipped_before)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return history
