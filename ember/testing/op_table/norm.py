"""Op-table rows: normalisation; layer rows for GroupNorm, RMSNorm, Identity and Unflatten."""

from __future__ import annotations

import numpy as np

import ember
import ember.nn as nn
import ember.nn.functional as F

from .case import LayerCase, OpCase, _perturbed, _t, _twin

OPS: list[OpCase] = [
    OpCase("layer_norm", lambda x, w, b: F.layer_norm(x, 5, w, b),
           lambda T, x, w, b: T.nn.functional.layer_norm(x, (5,), w, b), ((2, 3, 5), (5,), (5,))),
    OpCase("layer_norm_nobias_2d", lambda x, w: F.layer_norm(x, (3, 4), w),
           lambda T, x, w: T.nn.functional.layer_norm(x, (3, 4), w), ((2, 3, 4), (3, 4))),
    OpCase("layer_norm_bias_only_2d", lambda x, b: F.layer_norm(x, (3, 4), None, b),
           lambda T, x, b: T.nn.functional.layer_norm(x, (3, 4), None, b), ((2, 3, 4), (3, 4))),
    OpCase("layer_norm_plain", lambda x: F.layer_norm(x, 6),
           lambda T, x: T.nn.functional.layer_norm(x, (6,)), ((4, 6),)),
    OpCase("batch_norm_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           lambda T, x, w, b: T.nn.functional.batch_norm(x, None, None, w, b, training=True),
           ((4, 3, 2, 2), (3,), (3,))),
    OpCase("batch_norm_1d_train", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           lambda T, x, w, b: T.nn.functional.batch_norm(x, None, None, w, b, training=True),
           ((6, 3), (3,), (3,))),
    OpCase("batch_norm_eval",
           lambda x, w, b: F.batch_norm(x, ember.tensor([0.1, -0.2, 0.3], dtype=x.dtype),
                                        ember.tensor([1.5, 0.5, 2.0], dtype=x.dtype), w, b, training=False),
           lambda T, x, w, b: T.nn.functional.batch_norm(x, _t(T, np.array([0.1, -0.2, 0.3])),
                                                         _t(T, np.array([1.5, 0.5, 2.0])), w, b, training=False),
           ((4, 3, 2, 2), (3,), (3,))),
    OpCase("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b),
           lambda T, x, w, b: T.nn.functional.group_norm(x, 2, w, b), ((3, 4, 2, 3), (4,), (4,))),
    OpCase("group_norm_plain_1d", lambda x: F.group_norm(x, 3, eps=1e-3),
           lambda T, x: T.nn.functional.group_norm(x, 3, eps=1e-3), ((2, 6, 5),)),
    OpCase("group_norm_weight_only", lambda x, w: F.group_norm(x, 1, w),
           lambda T, x, w: T.nn.functional.group_norm(x, 1, w), ((2, 3, 4), (3,))),
    # PyTorch's group_norm backward fails with a bias but no weight ("tensor does not have a device"):
    # the reference adds the bias after a plain group_norm.
    OpCase("group_norm_bias_only_per_channel", lambda x, b: F.group_norm(x, 3, None, b),
           lambda T, x, b: T.nn.functional.group_norm(x, 3) + b.reshape(1, 3, 1), ((2, 3, 4), (3,))),
    OpCase("group_norm_2d_input", lambda x, w, b: F.group_norm(x, 2, w, b),
           lambda T, x, w, b: T.nn.functional.group_norm(x, 2, w, b), ((3, 6), (6,), (6,))),
    OpCase("rms_norm", lambda x, w: F.rms_norm(x, (5,), w),
           lambda T, x, w: T.nn.functional.rms_norm(x, (5,), w), ((2, 3, 5), (5,))),
    OpCase("rms_norm_plain_2d_eps", lambda x: F.rms_norm(x, (3, 4), eps=1e-3),
           lambda T, x: T.nn.functional.rms_norm(x, (3, 4), eps=1e-3), ((2, 3, 4),)),
    OpCase("rms_norm_1d_input", lambda x, w: F.rms_norm(x, [6], w),
           lambda T, x, w: T.nn.functional.rms_norm(x, [6], w), ((6,), (6,))),
]


def _unflatten_twin(T):
    return T.nn.Unflatten(1, (2, 3))


LAYERS: list[LayerCase] = [
    LayerCase("GroupNorm", lambda: _perturbed(nn.GroupNorm(2, 4)), _twin(lambda T: T.nn.GroupNorm(2, 4)),
              (3, 4, 2, 2)),
    LayerCase("GroupNorm_no_affine", lambda: nn.GroupNorm(3, 3, affine=False),
              _twin(lambda T: T.nn.GroupNorm(3, 3, affine=False)), (2, 3, 5)),
    LayerCase("GroupNorm_no_bias", lambda: _perturbed(nn.GroupNorm(1, 4, bias=False)),
              _twin(lambda T: T.nn.GroupNorm(1, 4, bias=False)), (2, 4, 3)),
    LayerCase("RMSNorm", lambda: _perturbed(nn.RMSNorm(4)), _twin(lambda T: T.nn.RMSNorm(4)), (2, 3, 4)),
    LayerCase("RMSNorm_2d_no_affine_eps", lambda: nn.RMSNorm([3, 4], eps=1e-4, elementwise_affine=False),
              _twin(lambda T: T.nn.RMSNorm([3, 4], eps=1e-4, elementwise_affine=False)), (2, 3, 4)),
    LayerCase("Identity", lambda: nn.Identity(3, key="ignored"), _twin(lambda T: T.nn.Identity(3, key="ignored")),
              (2, 3)),
    LayerCase("Unflatten", lambda: nn.Unflatten(1, (2, 3)), _twin(_unflatten_twin), (4, 6)),
    LayerCase("Unflatten_inferred_negative_axis", lambda: nn.Unflatten(dim=-1, unflattened_size=[2, -1]),
              _twin(lambda T: T.nn.Unflatten(-1, (2, 3))), (4, 2, 6)),
]
