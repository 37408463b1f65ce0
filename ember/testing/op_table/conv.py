"""Op-table rows: convolution and pooling."""

from __future__ import annotations

import ember.nn.functional as F

from .case import OpCase

OPS: list[OpCase] = [
    OpCase("conv2d", lambda x, w, b: F.conv2d(x, w, b), lambda T, x, w, b: T.nn.functional.conv2d(x, w, b),
           ((2, 2, 5, 5), (3, 2, 3, 3), (3,))),
    OpCase("conv2d_stride_pad", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
           lambda T, x, w, b: T.nn.functional.conv2d(x, w, b, stride=2, padding=1),
           ((2, 2, 6, 5), (3, 2, 3, 3), (3,))),
    OpCase("conv2d_nobias_k1", lambda x, w: F.conv2d(x, w), lambda T, x, w: T.nn.functional.conv2d(x, w),
           ((2, 3, 4, 4), (2, 3, 1, 1))),
    OpCase("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda T, x: T.nn.functional.max_pool2d(x, 2),
           ((2, 3, 4, 6),)),
    OpCase("max_pool2d_overlap_pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
           lambda T, x: T.nn.functional.max_pool2d(x, 3, stride=2, padding=1), ((2, 2, 5, 5),)),
    OpCase("max_pool2d_odd", lambda x: F.max_pool2d(x, 2), lambda T, x: T.nn.functional.max_pool2d(x, 2),
           ((1, 2, 5, 5),)),
    OpCase("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda T, x: T.nn.functional.avg_pool2d(x, 2),
           ((2, 3, 4, 6),)),
    OpCase("avg_pool2d_pad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
           lambda T, x: T.nn.functional.avg_pool2d(x, 3, stride=2, padding=1), ((1, 2, 5, 5),)),
]
