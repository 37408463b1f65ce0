"""Op-table rows: normalisation."""

from __future__ import annotations

import numpy as np

import ember
import ember.nn.functional as F

from .case import OpCase, _t

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
]
