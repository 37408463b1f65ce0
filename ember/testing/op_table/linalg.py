"""Op-table rows: matrix products, linear layers and embedding lookups."""

from __future__ import annotations

import ember
import ember.nn.functional as F

from .case import EMBED_IDS, OpCase, _t

OPS: list[OpCase] = [
    OpCase("matmul_2d", lambda a, b: a @ b, lambda T, a, b: a @ b, ((3, 4), (4, 5))),
    OpCase("matmul_batched", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 3, 4), (2, 4, 5))),
    OpCase("matmul_broadcast_batch", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 1, 3, 4), (3, 4, 2))),
    OpCase("matmul_shared_weight", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 3, 4), (4, 5))),
    OpCase("matmul_vec_mat", lambda a, b: a @ b, lambda T, a, b: a @ b, ((4,), (2, 4, 3))),
    OpCase("matmul_mat_vec", lambda a, b: a @ b, lambda T, a, b: a @ b, ((2, 3, 4), (4,))),
    OpCase("matmul_dot", lambda a, b: a @ b, lambda T, a, b: a @ b, ((4,), (4,))),
    OpCase("linear", lambda x, w, b: F.linear(x, w, b), lambda T, x, w, b: T.nn.functional.linear(x, w, b),
           ((4, 3), (5, 3), (5,))),
    OpCase("linear_3d_nobias", lambda x, w: F.linear(x, w), lambda T, x, w: T.nn.functional.linear(x, w),
           ((2, 3, 4), (5, 4))),
    OpCase("embedding_repeats", lambda w: F.embedding(ember.tensor(EMBED_IDS), w),
           lambda T, w: T.nn.functional.embedding(_t(T, EMBED_IDS), w), ((7, 3),)),
]
