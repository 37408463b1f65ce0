"""Hyper-connection maps moved off their initial values, for tests that must see them matter.

At initialisation every stream is equal and h_post is uniform, so many wrong variants of a hyper-connection
agree with the right one (mixing before or after adding the branch output gives the same streams); a test
of parity or of gradients needs asymmetric maps.
"""

from __future__ import annotations

import math

import numpy as np

from .. import nn


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def perturb_hyper_connections(model, seed: int = 3) -> None:
    """In place: a = 0.7 and h_post = [0.6, 1.4] in ``mhc2``; φ ~ N(0, 0.5²) in ``mhc``; every other map, α and
    bias moved by U(-0.8, 0.8)."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if not isinstance(module, nn.HyperConnection):
            continue
        for name, p in module.named_parameters():
            if module.mode == "mhc2" and name == "mix_logit":
                p.data[...] = logit(0.7)
            elif module.mode == "mhc2" and name == "post_logits":
                p.data[...] = np.array([logit(0.3), logit(0.7)], dtype=p.dtype)  # 2σ: 0.6, 1.4
            elif name == "phi":
                p.data[...] = rng.standard_normal(p.shape).astype(p.dtype) * 0.5
            else:
                p.data[...] = p.data + rng.uniform(-0.8, 0.8, p.shape).astype(p.dtype)
