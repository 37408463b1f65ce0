"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student learns from a large teacher's soft
targets, its class probabilities at a temperature T, which say which wrong classes are *nearly* right (a 7
that looks like a 1), information the hard labels do not hold.

    loss = alpha · T² · KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) · CE(s, y)

The T² keeps the soft term's gradients the same size whatever T (they scale as 1/T²). Built from the core's
ops (``log_softmax``, ``kl_div`` with log-probability targets, ``cross_entropy``), so gradients flow by the
core's backward passes; the teacher's logits are constants.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["distill", "distillation_loss", "mlp_student"]


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, targets, temperature: float = 4.0,
                      alpha: float = 0.9) -> Tensor:
    """Hinton's loss for (N, C) logits and (N,) class targets: alpha·T²·KL(teacher_T || student_T), per sample
    (``batchmean``), plus (1 - alpha)·cross-entropy with the labels. ``alpha=1``: soft targets only."""
    if temperature <= 0:
        raise ValueError(f"distillation_loss: temperature must be positive, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(f"distillation_loss: student and teacher logits must both be (N, C), got "
                         f"{student_logits.shape} and {teacher_logits.shape}")
    soft_student = F.log_softmax(student_logits * (1.0 / temperature), axis=1)
    soft_teacher = F.log_softmax(teacher_logits.detach() * (1.0 / temperature), axis=1)
    soft = F.kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True)
    loss = soft * (alpha * temperature**2)
    if alpha < 1.0:
        loss = loss + F.cross_entropy(student_logits, targets) * (1.0 - alpha)
    return loss


def mlp_student(teacher, hidden: tuple[int, ...]):
    """A new MLP with ``hidden`` widths that takes the teacher's inputs and predicts its classes."""
    from ..models import MLP, MLPConfig

    config = teacher.config
    if hasattr(config, "sizes"):
        inputs, classes = config.sizes[0], config.sizes[-1]
    elif hasattr(config, "widths"):
        inputs, classes = config.widths[0], config.widths[-1]
    elif hasattr(config, "in_channels"):  # LeNet-5: 28x28 images
        inputs, classes = config.in_channels * 28 * 28, config.num_classes
    else:
        raise TypeError(f"mlp_student: cannot tell the input size and classes of a {type(teacher).__name__}")
    return MLP(MLPConfig(sizes=(inputs, *hidden, classes))).to(dtype=next(teacher.parameters()).dtype)


def distill(student: nn.Module, teacher: nn.Module, train_loader, optimizer, epochs: int = 1,
            temperature: float = 4.0, alpha: float = 0.9, test_loader=None, scheduler=None,
            on_epoch: Callable | None = None) -> list:
    """Train ``student`` on ``train_loader`` with ``distillation_loss`` against ``teacher`` (run in eval mode,
    without a graph); ``scheduler`` steps per batch. After each epoch the student is evaluated on
    ``test_loader`` (if given) and ``on_epoch(stats)`` called. Returns the ``EpochStats`` of each epoch."""
    from ..train import EpochStats, NonFiniteGuard, evaluate

    guard = NonFiniteGuard()
    teacher.eval()
    history = []
    for epoch in range(1, epochs + 1):
        student.train()
        start, total, correct, seen = time.perf_counter(), 0.0, 0, 0
        for i, (x, y) in enumerate(train_loader):
            with no_grad():
                teacher_logits = teacher(x)
            optimizer.zero_grad()
            logits = student(x)
            loss = distillation_loss(logits, teacher_logits, y, temperature, alpha)
            value = loss.item()
            guard.ok(value, f"epoch {epoch}, batch {i + 1}")
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += value * len(y)
            correct += int((logits.data.argmax(axis=1) == y.data).sum())
            seen += len(y)
        seconds = time.perf_counter() - start
        test_acc = evaluate(student, test_loader)[1] if test_loader is not None else None
        stats = EpochStats(epoch, total / max(seen, 1), correct / max(seen, 1), test_acc, seconds)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    return history
