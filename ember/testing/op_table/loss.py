"""Op-table rows: losses and cosine similarity; layer rows for the loss modules (on fixed targets)."""

from __future__ import annotations

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F

from .case import (
    BINARY_TARGETS,
    LOSS_MASK,
    ROW_MASK,
    SOFT_TARGETS,
    TARGETS_3D,
    TARGETS_IGNORE,
    LayerCase,
    OpCase,
    TARGETS_4x5,
    _t,
    _twin,
)
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

# Constants shared by both frameworks for the rows below.
_rng = np.random.default_rng(4321)
CLASS_WEIGHTS_5 = np.array([0.5, 2.0, 1.0, 0.2, 1.5])
CLASS_WEIGHTS_4 = np.array([1.5, 0.3, 1.0, 2.5])
TARGET_0D = np.array(3)
UNIT_TARGETS = _rng.uniform(0.0, 1.0, size=(4, 3))
ELEMENT_WEIGHTS = _rng.uniform(0.2, 2.0, size=(4, 3))
COLUMN_WEIGHTS = np.array([0.5, 1.0, 2.0])
POS_WEIGHT_COLUMNS = np.array([3.0, 0.5, 1.5])
POS_WEIGHT_ROWS = np.array([[2.0], [0.5], [1.0], [4.0]])
PROB_TARGET_3 = np.array([0.2, 0.5, 0.3])
OTHER_VECTORS = _rng.standard_normal((4, 3))


def _e(a, like):
    """A constant as an ember tensor of the row input's dtype."""
    return ember.tensor(a, dtype=like.dtype)


OPS += [
    OpCase("cross_entropy_weight", lambda x: F.cross_entropy(x, ember.tensor(TARGETS_4x5), _e(CLASS_WEIGHTS_5, x)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), _t(T, CLASS_WEIGHTS_5)), ((4, 5),)),
    OpCase("cross_entropy_weight_ignore_smoothing",
           lambda x: F.cross_entropy(x, TARGETS_IGNORE, weight=_e(CLASS_WEIGHTS_5, x), label_smoothing=0.2),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_IGNORE), weight=_t(T, CLASS_WEIGHTS_5),
                                                      label_smoothing=0.2), ((4, 5),)),
    OpCase("cross_entropy_weight_none_smoothing",
           lambda x: F.cross_entropy(x, TARGETS_IGNORE, weight=_e(CLASS_WEIGHTS_5, x), reduction="none",
                                     label_smoothing=0.3),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_IGNORE), weight=_t(T, CLASS_WEIGHTS_5),
                                                      reduction="none", label_smoothing=0.3), ((4, 5),)),
    OpCase("cross_entropy_weight_sum",
           lambda x: F.cross_entropy(x, TARGETS_4x5, weight=_e(CLASS_WEIGHTS_5, x), reduction="sum"),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), weight=_t(T, CLASS_WEIGHTS_5),
                                                      reduction="sum"), ((4, 5),)),
    OpCase("cross_entropy_weight_3d_smoothing",
           lambda x: F.cross_entropy(x, TARGETS_3D, weight=_e(CLASS_WEIGHTS_4, x), label_smoothing=0.1),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_3D), weight=_t(T, CLASS_WEIGHTS_4),
                                                      label_smoothing=0.1), ((2, 4, 3),)),
    OpCase("cross_entropy_custom_ignore_index", lambda x: F.cross_entropy(x, TARGETS_4x5, ignore_index=2),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGETS_4x5), ignore_index=2), ((4, 5),)),
    OpCase("cross_entropy_1d_input", lambda x: F.cross_entropy(x, TARGET_0D, label_smoothing=0.1),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, TARGET_0D), label_smoothing=0.1), ((5,),)),
    OpCase("cross_entropy_soft_weight",
           lambda x: F.cross_entropy(x, _e(SOFT_TARGETS, x), weight=_e(CLASS_WEIGHTS_5, x)),
           lambda T, x: T.nn.functional.cross_entropy(x, _t(T, SOFT_TARGETS), weight=_t(T, CLASS_WEIGHTS_5)),
           ((4, 5),)),
    OpCase("cross_entropy_soft_weight_smoothing_target_grad",
           lambda x, q: F.cross_entropy(x, q.softmax(), weight=_e(CLASS_WEIGHTS_5, x), label_smoothing=0.25,
                                        reduction="none"),
           lambda T, x, q: T.nn.functional.cross_entropy(x, q.softmax(-1), weight=_t(T, CLASS_WEIGHTS_5),
                                                         label_smoothing=0.25, reduction="none"), ((4, 5), (4, 5))),
    OpCase("cross_entropy_soft_1d", lambda x, q: F.cross_entropy(x, q.softmax()),
           lambda T, x, q: T.nn.functional.cross_entropy(x, q.softmax(-1)), ((5,), (5,))),
    OpCase("nll_loss_weight", lambda x: F.nll_loss(x, TARGETS_IGNORE, _e(CLASS_WEIGHTS_5, x)),
           lambda T, x: T.nn.functional.nll_loss(x, _t(T, TARGETS_IGNORE), _t(T, CLASS_WEIGHTS_5)), ((4, 5),)),
    OpCase("nll_loss_weight_none", lambda x: F.nll_loss(x, TARGETS_4x5, weight=_e(CLASS_WEIGHTS_5, x),
                                                        reduction="none"),
           lambda T, x: T.nn.functional.nll_loss(x, _t(T, TARGETS_4x5), weight=_t(T, CLASS_WEIGHTS_5),
                                                 reduction="none"), ((4, 5),)),
    OpCase("nll_loss_3d_weight_sum", lambda x: F.nll_loss(F.log_softmax(x, dim=1), TARGETS_3D,
                                                           _e(CLASS_WEIGHTS_4, x), reduction="sum"),
           lambda T, x: T.nn.functional.nll_loss(T.log_softmax(x, 1), _t(T, TARGETS_3D), _t(T, CLASS_WEIGHTS_4),
                                                 reduction="sum"), ((2, 4, 3),)),
    OpCase("nll_loss_1d_input", lambda x: F.nll_loss(x, TARGET_0D),
           lambda T, x: T.nn.functional.nll_loss(x, _t(T, TARGET_0D)), ((5,),)),
    OpCase("mse_loss_weight", lambda x, y: F.mse_loss(x, y, weight=_e(ELEMENT_WEIGHTS, x)),
           lambda T, x, y: T.nn.functional.mse_loss(x, y, weight=_t(T, ELEMENT_WEIGHTS)), ((4, 3), (4, 3))),
    OpCase("mse_loss_0d", lambda x, y: F.mse_loss(x, y), lambda T, x, y: T.nn.functional.mse_loss(x, y),
           ((), ())),
    OpCase("l1_loss", lambda x, y: F.l1_loss(x, y), lambda T, x, y: T.nn.functional.l1_loss(x, y),
           ((4, 3), (4, 3))),
    OpCase("l1_loss_none", lambda x, y: F.l1_loss(x, y, reduction="none"),
           lambda T, x, y: T.nn.functional.l1_loss(x, y, reduction="none"), ((2, 3, 2), (2, 3, 2))),
    OpCase("l1_loss_weight_sum", lambda x, y: F.l1_loss(x, y, reduction="sum", weight=_e(ELEMENT_WEIGHTS, x)),
           lambda T, x, y: T.nn.functional.l1_loss(x, y, reduction="sum", weight=_t(T, ELEMENT_WEIGHTS)),
           ((4, 3), (4, 3))),
    OpCase("l1_loss_0d", lambda x, y: F.l1_loss(x, y), lambda T, x, y: T.nn.functional.l1_loss(x, y), ((), ())),
    OpCase("smooth_l1_loss", lambda x, y: F.smooth_l1_loss(x, y),
           lambda T, x, y: T.nn.functional.smooth_l1_loss(x, y), ((4, 3), (4, 3))),
    OpCase("smooth_l1_loss_beta_none", lambda x, y: F.smooth_l1_loss(x, y, reduction="none", beta=0.5),
           lambda T, x, y: T.nn.functional.smooth_l1_loss(x, y, reduction="none", beta=0.5), ((4, 3), (4, 3))),
    OpCase("smooth_l1_loss_beta0_is_l1", lambda x, y: F.smooth_l1_loss(x, y, reduction="sum", beta=0.0),
           lambda T, x, y: T.nn.functional.smooth_l1_loss(x, y, reduction="sum", beta=0.0), ((4, 3), (4, 3))),
    OpCase("smooth_l1_loss_0d", lambda x, y: F.smooth_l1_loss(x, y, beta=2.0),
           lambda T, x, y: T.nn.functional.smooth_l1_loss(x, y, beta=2.0), ((), ())),
    OpCase("huber_loss_weight", lambda x, y: F.huber_loss(x, y, delta=0.8, weight=_e(ELEMENT_WEIGHTS, x)),
           lambda T, x, y: T.nn.functional.huber_loss(x, y, delta=0.8, weight=_t(T, ELEMENT_WEIGHTS)),
           ((4, 3), (4, 3))),
    OpCase("huber_loss_none_positional", lambda x, y: F.huber_loss(x, y, "none", 0.5),
           lambda T, x, y: T.nn.functional.huber_loss(x, y, "none", 0.5), ((4, 3), (4, 3))),
    OpCase("binary_cross_entropy", lambda p: F.binary_cross_entropy(p, _e(UNIT_TARGETS, p)),
           lambda T, p: T.nn.functional.binary_cross_entropy(p, _t(T, UNIT_TARGETS)), ((4, 3),), domain="unit"),
    OpCase("binary_cross_entropy_target_grad_none", lambda p, y: F.binary_cross_entropy(p, y, reduction="none"),
           lambda T, p, y: T.nn.functional.binary_cross_entropy(p, y, reduction="none"), ((4, 3), (4, 3)),
           domain="unit"),
    OpCase("binary_cross_entropy_weight_sum",
           lambda p: F.binary_cross_entropy(p, _e(BINARY_TARGETS, p), _e(COLUMN_WEIGHTS, p), reduction="sum"),
           lambda T, p: T.nn.functional.binary_cross_entropy(p, _t(T, BINARY_TARGETS), _t(T, COLUMN_WEIGHTS),
                                                             reduction="sum"), ((4, 3),), domain="unit"),
    OpCase("binary_cross_entropy_0d", lambda p, y: F.binary_cross_entropy(p, y),
           lambda T, p, y: T.nn.functional.binary_cross_entropy(p, y), ((), ()), domain="unit"),
    OpCase("bce_with_logits_weight_pos_weight_tensor",
           lambda x: F.binary_cross_entropy_with_logits(x, _e(BINARY_TARGETS, x), _e(COLUMN_WEIGHTS, x),
                                                        pos_weight=_e(POS_WEIGHT_COLUMNS, x)),
           lambda T, x: T.nn.functional.binary_cross_entropy_with_logits(
               x, _t(T, BINARY_TARGETS), _t(T, COLUMN_WEIGHTS), pos_weight=_t(T, POS_WEIGHT_COLUMNS)), ((4, 3),)),
    OpCase("bce_with_logits_pos_weight_rows_target_grad",
           lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=_e(POS_WEIGHT_ROWS, x),
                                                           reduction="none"),
           lambda T, x, y: T.nn.functional.binary_cross_entropy_with_logits(
               x, y.sigmoid(), pos_weight=_t(T, POS_WEIGHT_ROWS), reduction="none"), ((4, 3), (4, 3))),
    OpCase("bce_with_logits_element_weight_sum",
           lambda x: F.binary_cross_entropy_with_logits(x, _e(UNIT_TARGETS, x), weight=_e(ELEMENT_WEIGHTS, x),
                                                        reduction="sum"),
           lambda T, x: T.nn.functional.binary_cross_entropy_with_logits(
               x, _t(T, UNIT_TARGETS), weight=_t(T, ELEMENT_WEIGHTS), reduction="sum"), ((4, 3),)),
    OpCase("bce_with_logits_0d", lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid()),
           lambda T, x, y: T.nn.functional.binary_cross_entropy_with_logits(x, y.sigmoid()), ((), ())),
    OpCase("kl_div", lambda x, y: F.kl_div(F.log_softmax(x), y.softmax()),
           lambda T, x, y: T.nn.functional.kl_div(T.log_softmax(x, -1), y.softmax(-1)), ((4, 5), (4, 5))),
    OpCase("kl_div_batchmean", lambda x, y: F.kl_div(F.log_softmax(x), y.softmax(), reduction="batchmean"),
           lambda T, x, y: T.nn.functional.kl_div(T.log_softmax(x, -1), y.softmax(-1), reduction="batchmean"),
           ((4, 5), (4, 5))),
    OpCase("kl_div_sum_log_target", lambda x, y: F.kl_div(x, F.log_softmax(y), reduction="sum", log_target=True),
           lambda T, x, y: T.nn.functional.kl_div(x, T.log_softmax(y, -1), reduction="sum", log_target=True),
           ((4, 5), (4, 5))),
    OpCase("kl_div_none_log_target", lambda x, y: F.kl_div(x, y, reduction="none", log_target=True),
           lambda T, x, y: T.nn.functional.kl_div(x, y, reduction="none", log_target=True), ((3, 4), (3, 4))),
    OpCase("kl_div_broadcast_target", lambda x, y: F.kl_div(x, y.softmax(), reduction="batchmean"),
           lambda T, x, y: T.nn.functional.kl_div(x, y.softmax(-1), reduction="batchmean"), ((2, 3, 4), (3, 4))),
    OpCase("kl_div_batchmean_0d", lambda x, y: F.kl_div(x, y, reduction="batchmean"),
           lambda T, x, y: T.nn.functional.kl_div(x, y, reduction="batchmean"), ((), ()), domain="unit"),
    OpCase("cosine_similarity", lambda a, b: F.cosine_similarity(a, b),
           lambda T, a, b: T.nn.functional.cosine_similarity(a, b), ((4, 3), (4, 3))),
    OpCase("cosine_similarity_broadcast_dim", lambda a, b: F.cosine_similarity(a, b, dim=-1),
           lambda T, a, b: T.nn.functional.cosine_similarity(a, b, dim=-1), ((2, 1, 3), (4, 3))),
    OpCase("cosine_similarity_broadcast_along_axis", lambda a, b: F.cosine_similarity(a, b, 1, eps=1e-6),
           lambda T, a, b: T.nn.functional.cosine_similarity(a, b, 1, eps=1e-6), ((4, 1), (4, 3))),
    OpCase("cosine_similarity_axis0", lambda a, b: F.cosine_similarity(a, b, axis=0),
           lambda T, a, b: T.nn.functional.cosine_similarity(a, b, dim=0), ((3, 2, 2), (3, 2, 2))),
    OpCase("cosine_similarity_0d", lambda a, b: F.cosine_similarity(a, b, dim=0),
           lambda T, a, b: T.nn.functional.cosine_similarity(a, b, dim=0), ((), ()), domain="away_from_zero"),
]


class _OnFixedTarget(nn.Module):
    """A loss module applied to the layer row's input and a fixed target (so the layer table can drive it)."""

    def __init__(self, loss, target, float_target: bool = True, squash: bool = False):
        super().__init__()
        self.loss, self.target, self.float_target, self.squash = loss, target, float_target, squash

    def forward(self, x):
        target = ember.tensor(self.target, dtype=x.dtype) if self.float_target else ember.tensor(self.target)
        return self.loss(x.sigmoid() if self.squash else x, target)


def _torch_on_fixed_target(T, loss, target, float_target=True, squash=False):
    class OnFixedTarget(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.loss = loss

        def forward(self, x):
            t = T.from_numpy(np.asarray(target))
            return self.loss(x.sigmoid() if squash else x, t.to(x.dtype) if float_target else t)

    return OnFixedTarget()


def _loss_row(name, build, torch_build, target, input_shape, float_target=True, squash=False):
    return LayerCase(
        name,
        lambda: _OnFixedTarget(build(), target, float_target, squash),
        _twin(lambda T: _torch_on_fixed_target(T, torch_build(T), target, float_target, squash)),
        input_shape,
    )


LAYERS: list[LayerCase] = [
    _loss_row("CrossEntropyLoss_weight_smoothing",
              lambda: nn.CrossEntropyLoss(ember.tensor(CLASS_WEIGHTS_5), label_smoothing=0.1),
              lambda T: T.nn.CrossEntropyLoss(T.ones(5), label_smoothing=0.1), TARGETS_IGNORE, (4, 5),
              float_target=False),
    _loss_row("CrossEntropyLoss_ignore_index_none", lambda: nn.CrossEntropyLoss(ignore_index=3, reduction="none"),
              lambda T: T.nn.CrossEntropyLoss(ignore_index=3, reduction="none"), TARGETS_4x5, (4, 5),
              float_target=False),
    _loss_row("NLLLoss_weight", lambda: nn.NLLLoss(CLASS_WEIGHTS_4, reduction="sum"),
              lambda T: T.nn.NLLLoss(T.ones(4), reduction="sum"), TARGETS_3D, (2, 4, 3), float_target=False),
    _loss_row("MSELoss_sum", lambda: nn.MSELoss(reduction="sum"), lambda T: T.nn.MSELoss(reduction="sum"),
              UNIT_TARGETS, (4, 3)),
    _loss_row("L1Loss", lambda: nn.L1Loss(), lambda T: T.nn.L1Loss(), UNIT_TARGETS, (4, 3)),
    _loss_row("SmoothL1Loss_beta", lambda: nn.SmoothL1Loss(beta=0.5), lambda T: T.nn.SmoothL1Loss(beta=0.5),
              UNIT_TARGETS, (4, 3)),
    _loss_row("HuberLoss_delta", lambda: nn.HuberLoss(delta=0.5), lambda T: T.nn.HuberLoss(delta=0.5),
              UNIT_TARGETS, (4, 3)),
    _loss_row("BCELoss_weight", lambda: nn.BCELoss(COLUMN_WEIGHTS), lambda T: T.nn.BCELoss(T.ones(3)),
              UNIT_TARGETS, (4, 3), squash=True),
    _loss_row("BCEWithLogitsLoss_weight_pos_weight",
              lambda: nn.BCEWithLogitsLoss(ELEMENT_WEIGHTS, pos_weight=POS_WEIGHT_COLUMNS),
              lambda T: T.nn.BCEWithLogitsLoss(T.ones(4, 3), pos_weight=T.ones(3)), BINARY_TARGETS, (4, 3)),
    _loss_row("KLDivLoss_batchmean", lambda: nn.KLDivLoss(reduction="batchmean"),
              lambda T: T.nn.KLDivLoss(reduction="batchmean"), SOFT_TARGETS, (4, 5)),
    _loss_row("KLDivLoss_log_target", lambda: nn.KLDivLoss(log_target=True),
              lambda T: T.nn.KLDivLoss(log_target=True), OTHER_VECTORS, (4, 3)),
    _loss_row("CosineSimilarity", lambda: nn.CosineSimilarity(dim=-1), lambda T: T.nn.CosineSimilarity(dim=-1),
              OTHER_VECTORS, (2, 4, 3)),
]
