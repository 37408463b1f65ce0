"""Op-table rows: the Sinkhorn–Knopp projection; layer rows for hyper-connections around a branch."""

from __future__ import annotations

import numpy as np

import ember.nn as nn
import ember.nn.functional as F

from ..torch_gpt import hyper_maps, sinkhorn
from .case import LayerCase, OpCase


def torch_sinkhorn(T, logits, iters):
    """The same unrolled log-domain iterations in PyTorch, differentiated by its autograd: the reference for
    ember's hand-derived backward."""
    return sinkhorn(logits, iters)


OPS: list[OpCase] = [
    OpCase("sinkhorn_3x3", lambda a: F.sinkhorn(a, 5), lambda T, a: torch_sinkhorn(T, a, 5), ((3, 3),)),
    OpCase("sinkhorn_batched_4x4", lambda a: F.sinkhorn(a, 20), lambda T, a: torch_sinkhorn(T, a, 20),
           ((2, 3, 4, 4),)),
    OpCase("rms_project", lambda x, w: F.rms_project(x, w),
           lambda T, x, w: T.nn.functional.rms_norm(x, (x.shape[-1],), eps=T.finfo(x.dtype).eps) @ w,
           ((2, 3, 8), (8, 5))),
    OpCase("rms_project_eps", lambda x, w: F.rms_project(x, w, eps=0.5),
           lambda T, x, w: T.nn.functional.rms_norm(x, (x.shape[-1],), eps=0.5) @ w, ((4, 6), (6, 3))),
    OpCase("stream_read_dynamic", lambda h, x: F.stream_read(h, x), lambda T, h, x: (h.unsqueeze(-1) * x).sum(-2),
           ((2, 3, 4), (2, 3, 4, 5))),
    OpCase("stream_read_static", lambda h, x: F.stream_read(h, x), lambda T, h, x: (h.unsqueeze(-1) * x).sum(-2),
           ((3,), (2, 4, 3, 5))),
    OpCase("stream_write_dynamic", lambda x, y, h, m: F.stream_write(x, y, h, m),
           lambda T, x, y, h, m: m @ x + h.unsqueeze(-1) * y.unsqueeze(-2), ((2, 3, 4, 5), (2, 3, 5), (2, 3, 4),
                                                                            (2, 3, 4, 4))),
    OpCase("stream_write_static", lambda x, y, h, m: F.stream_write(x, y, h, m),
           lambda T, x, y, h, m: m @ x + h.unsqueeze(-1) * y.unsqueeze(-2), ((2, 3, 5), (2, 5), (3,), (3, 3))),
    OpCase("stream_write_no_mix", lambda x, y, h: F.stream_write(x, y, h),
           lambda T, x, y, h: x + h.unsqueeze(-1) * y.unsqueeze(-2), ((4, 2, 3), (4, 3), (4, 2))),
    OpCase("sinkhorn_2x2_one_iteration", lambda a: F.sinkhorn(a, 1), lambda T, a: torch_sinkhorn(T, a, 1),
           ((5, 2, 2),)),
]


class Around(nn.Module):
    """A hyper-connection around a Linear branch with its parameters moved off their initial values (so the
    streams differ, φ is non-zero and the mix is not at its start): one sub-layer of an n-stream network."""

    def __init__(self, mode: str, streams: int, dim: int = 3, mix: bool = True):
        super().__init__()
        self.hc = nn.HyperConnection(mode, streams, dim, index=1, sinkhorn_iters=7, mix=mix)
        self.branch = nn.Linear(dim, dim)
        rng = np.random.default_rng(11)
        for p in self.hc.parameters():
            p.data[...] = p.data + rng.uniform(-0.6, 0.6, size=p.shape).astype(p.dtype)

    def forward(self, x):
        c = self.hc.coefficients(x)
        return self.hc.write(x, self.branch(self.hc.read(x, c)), c)


def torch_around(T, m: Around):
    """``Around`` written again in PyTorch from the formulas (ember/nn/layers/hyper.py), with m's parameters."""
    hc = m.hc

    class Twin(T.nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = T.nn.Linear(hc.dim, hc.dim, dtype=getattr(T, m.branch.weight.dtype.name))
            self.hc = T.nn.Module()
            for name, p in hc.named_parameters():
                self.hc.register_parameter(name, T.nn.Parameter(T.tensor(p.numpy().copy())))
            with T.no_grad():
                self.branch.weight.copy_(T.tensor(m.branch.weight.numpy()))
                self.branch.bias.copy_(T.tensor(m.branch.bias.numpy()))

        def maps(self, x):
            return hyper_maps(T, self.hc, hc.mode, hc.streams, hc.dim, hc.mix, hc.sinkhorn_iters, x)

        def forward(self, x):
            h_pre, h_post, h_res = self.maps(x)
            y = self.branch((h_pre.unsqueeze(-1) * x).sum(-2))
            return (x if h_res is None else h_res @ x) + h_post.unsqueeze(-1) * y.unsqueeze(-2)

    return Twin()


LAYERS: list[LayerCase] = [
    LayerCase("HyperConnection_hc", lambda: Around("hc", 3), torch_around, (2, 3, 3, 3)),
    LayerCase("HyperConnection_mhc", lambda: Around("mhc", 3), torch_around, (2, 3, 3, 3)),
    LayerCase("HyperConnection_mhc_no_mix", lambda: Around("mhc", 2, mix=False), torch_around, (4, 2, 3)),
    LayerCase("HyperConnection_mhc2", lambda: Around("mhc2", 2), torch_around, (2, 4, 2, 3)),
]
