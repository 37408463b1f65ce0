"""Op-table rows: losses."""

from __future__ import annotations

import ember
import ember.nn.functional as F

from .case import BINARY_TARGETS, LOSS_MASK, ROW_MASK, SOFT_TARGETS, TARGETS_3D, TARGETS_IGNORE, OpCase, TARGETS_4x5, _t
from .references import _masked_mean_torch

OPS: list[OpCase] = [
    OpCase("cross_entropy", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5)), ((4, 5),)),
    OpCase("cross_entropy_sum_smoothing",
           lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5), reduction="sum", label_smoothing=0.1),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), reduction="sum", label_smoothing=0.1),
           ((4, 5),)),
    OpCase("cross_entropy_ignore_index", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_IGNORE)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_IGNORE)), ((4, 5),)),
    OpCase("cross_entropy_none", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5), reduction="none"),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), reduction="none"), ((4, 5),)),
    OpCase("cross_entropy_3d", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_3D), label_smoothing=0.2),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_3D), label_smoothing=0.2), ((2, 4, 3),)),
    OpCase("cross_entropy_soft", lambda x: F.cross_entropy(x, ember.tensor(SOFT_TARGETS, dtype=x.dtype)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, SOFT_TARGETS)), ((4, 5),)),
    OpCase("cross_entropy_soft_target_grad", lambda x, q: F.cross_entropy(x, q.softmax(), label_smoothing=0.1),
           lambda T, x, q: T.nn.functional.cross_entropy(x, q.softmax(-1), label_smoothing=0.1), ((4, 5), (4, 5))),
    OpCase("masked_cross_entropy", lambda x: F.masked_cross_entropy(x, ember.tensor(TARGETS_4x5), ROW_MASK),
           lambda T, x: _masked_mean_torch(
               T, T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), reduction="none"), ROW_MASK),
           ((4, 5),)),
    OpCase("nll_loss", lambda x: F.nll_loss(F.log_softmax(x), ember.tensor(TARGETS_IGNORE)),
           lambda T, x: T.nn.functional.nll_loss(T.log_softmax(x, -1), _t(T, TARGETS_IGNORE)), ((4, 5),)),
    OpCase("mse_loss", lambda x, y: F.mse_loss(x, y), lambda T, x, y: T.nn.functional.mse_loss(x, y),
           ((4, 3), (4, 3))),
    OpCase("mse_loss_sum", lambda x, y: F.mse_loss(x, y, reduction="sum"),
           lambda T, x, y: T.nn.functional.mse_loss(x, y, reduction="sum"), ((4, 3), (4, 3))),
    OpCase("huber_loss", lambda x, y: F.huber_loss(x, y, delta=0.5),
           lambda T, x, y: T.nn.functional.huber_loss(x, y, delta=0.5), ((4, 3), (4, 3))),
    OpCase("masked_mse_loss", lambda x, y: F.masked_mse_loss(x, y, LOSS_MASK),
           lambda T, x, y: _masked_mean_torch(T, (x - y) ** 2, LOSS_MASK), ((4, 3), (4, 3))),
    OpCase("masked_huber_loss", lambda x, y: F.masked_huber_loss(x, y, LOSS_MASK, delta=0.7),
           lambda T, x, y: _masked_mean_torch(
               T, T.nn.functional.huber_loss(x, y, delta=0.7, reduction="none"), LOSS_MASK), ((4, 3), (4, 3))),
    OpCase("bce_with_logits",
           lambda x: F.binary_cross_entropy_with_logits(x, ember.tensor(BINARY_TARGETS, dtype=x.dtype)),
           lambda T, x: T.nn.functional.binary_cross_entropy_with_logits(x, _t(T, BINARY_TARGETS)), ((4, 3),)),
    OpCase("bce_with_logits_soft_pos_weight",
           lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=2.0, reduction="sum"),
           lambda T, x, y: T.nn.functional.binary_cross_entropy_with_logits(
               x, y.sigmoid(), pos_weight=T.tensor(2.0, dtype=x.dtype), reduction="sum"), ((4, 3), (4, 3))),
]
