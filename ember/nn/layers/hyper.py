"""Hyper-connections: n residual streams around one sub-layer (HC, mHC and the n = 2 closed form).

The residual state of a token is X (n, C), n streams. Around a sub-layer F (a pre-norm attention or MLP):

    u  = h_pre · X                        read the branch input (a weighted sum of the streams)
    y  = F(u)
    X' = H_res · X + h_postᵀ y            mix the OLD streams, then add the branch output to each

``coefficients(X)`` computes (h_pre, h_post, H_res) once; ``read`` and ``write`` use them. The training
forward (``GPT._hidden``) and the KV-cache decode (``GPT.forward_cached``) both call these two methods,
so the two paths cannot disagree on where H_res is applied (the reference system's bug: training
applied ``H_res (X + h_post y)``).

Modes (``ember/../shared/specs/mhc.md``; the README's "Hyper-connections" section):

- ``hc``: static hyper-connections (Zhu et al.): h_pre, h_post, H_res free parameters, initialised to a
  one-hot read of the home stream (k mod n for the k-th sub-layer), ones, and the identity.
- ``mhc``: manifold-constrained (Xie et al.): from the RMS-normalised flattened state x' (1, nC),
  h_pre = sigmoid(α₀ x'φ_pre + b_pre), h_post = 2 sigmoid(α₁ x'φ_post + b_post),
  H_res = Sinkhorn(α₂ mat(x'φ_res) + b_res); φ zero-initialised, α = 0.01, b_pre = +3 on the home
  stream and -3 elsewhere, b_post = 0 (h_post = 1), b_res = 2I - 1 (a moderate start: diagonal 0.71 at
  n = 4, a = sigmoid(2) = 0.88 at n = 2, not the near-identity that barely learns).
- ``mhc2``: n = 2 with the exact closed form H_res = [[a, 1-a], [1-a, a]], a = sigmoid(logit), logit 2;
  static h_pre = sigmoid(±3 logits), h_post = 2 sigmoid(0).

At initialisation every stream carries the plain residual stream: h_post = 1 and H_res's rows sum to 1,
so equal streams stay equal and each receives y; the branch reads sum(h_pre)·x, which its pre-norm
LayerNorm cannot tell from x (up to its eps). The streams are summed before the final LayerNorm.

``mix=False`` leaves out H_res (the identity). The GPT does so in ``mhc``/``mhc2`` where a doubly stochastic
mix cannot matter, so its gradient would be exactly zero: the first sub-layer (its streams are equal copies
of the embedding, and H·[x; ...; x] = [x; ...; x] for any H whose rows sum to 1) and the last one (its
streams are summed next, and 1ᵀH = 1ᵀ). The streams separate only through h_pre's home streams, which
rotate with depth, and the h_post they make learn differently.
"""

from __future__ import annotations

import numpy as np

from ... import backend
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module, Parameter

__all__ = ["HyperConnection", "RESIDUAL_MODES"]

RESIDUAL_MODES = ("plain", "hc", "mhc", "mhc2")
HOME_LOGIT = 3.0  # h_pre's logit on the home stream (and minus it elsewhere): sigmoid(3) = 0.953
RES_GAP = 2.0  # b_res = RES_GAP·I - RES_GAP/2: the diagonal's logit lead over the off-diagonal
ALPHA_INIT = 0.01


class HyperConnection(Module):
    """The maps (h_pre, h_post, H_res) of n residual streams around one sub-layer (see the module docstring).

    ``index`` is the sub-layer's position in the network (its home stream is ``index % n``); ``dim`` is C.
    """

    def __init__(self, mode: str, streams: int, dim: int, index: int, sinkhorn_iters: int = 20, mix: bool = True):
        super().__init__()
        if mode not in ("hc", "mhc", "mhc2"):
            raise ValueError(f"HyperConnection: mode must be 'hc', 'mhc' or 'mhc2', got {mode!r}")
        if streams < 2 or (mode == "mhc2" and streams != 2):
            raise ValueError(f"HyperConnection: {mode} needs {'exactly 2' if mode == 'mhc2' else 'at least 2'} "
                             f"streams, got {streams}")
        if sinkhorn_iters < 1:
            raise ValueError(f"HyperConnection: sinkhorn_iters must be at least 1, got {sinkhorn_iters}")
        self.mode, self.streams, self.dim, self.home = mode, streams, dim, index % streams
        self.sinkhorn_iters, self.mix = sinkhorn_iters, mix
        n = streams
        if mode == "hc":
            self.h_pre = Parameter(np.zeros(n, dtype=np.float32))
            self.h_post = Parameter(np.zeros(n, dtype=np.float32))
            self.h_res = Parameter(np.zeros((n, n), dtype=np.float32)) if mix else None
        elif mode == "mhc":
            width = 2 * n + (n * n if mix else 0)
            self.phi = Parameter(np.zeros((n * dim, width), dtype=np.float32))
            self.alpha = Parameter(np.zeros(3, dtype=np.float32))
            self.b_pre = Parameter(np.zeros(n, dtype=np.float32))
            self.b_post = Parameter(np.zeros(n, dtype=np.float32))
            self.b_res = Parameter(np.zeros((n, n), dtype=np.float32)) if mix else None
        else:
            self.pre_logits = Parameter(np.zeros(2, dtype=np.float32))
            self.post_logits = Parameter(np.zeros(2, dtype=np.float32))
            self.mix_logit = Parameter(np.zeros((), dtype=np.float32)) if mix else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation that makes the streams carry the plain residual stream (module docstring)."""
        n, home = self.streams, self.home
        one_hot = np.eye(n)[home]
        if self.mode == "hc":
            _fill(self.h_pre, one_hot)
            _fill(self.h_post, np.ones(n))
            if self.mix:
                _fill(self.h_res, np.eye(n))
        elif self.mode == "mhc":
            init.zeros_(self.phi)
            _fill(self.alpha, np.full(3, ALPHA_INIT))
            _fill(self.b_pre, HOME_LOGIT * (2 * one_hot - 1))
            init.zeros_(self.b_post)
            if self.mix:
                _fill(self.b_res, RES_GAP * np.eye(n) - RES_GAP / 2)
        else:
            _fill(self.pre_logits, HOME_LOGIT * (2 * one_hot - 1))
            init.zeros_(self.post_logits)
            if self.mix:
                _fill(self.mix_logit, RES_GAP)

    def static_parameters(self) -> list[Parameter]:
        """The parameters that get no weight decay (all but mHC's dynamic projection φ), as in HC."""
        return [p for name, p in self.named_parameters() if name != "phi"]

    # -- the three maps ------------------------------------------------------------------------
    def coefficients(self, x: Tensor):
        """(h_pre, h_post, H_res or None) for streams x (..., n, C): shapes (n,), (n,), (n, n) for the static
        modes, (..., n), (..., n), (..., n, n) for mHC's dynamic ones."""
        if self.mode == "hc":
            return self.h_pre, self.h_post, self.h_res
        if self.mode == "mhc2":
            h_pre = self.pre_logits.sigmoid()
            h_post = 2.0 * self.post_logits.sigmoid()
            if not self.mix:
                return h_pre, h_post, None
            a = self.mix_logit.sigmoid()
            eye = Tensor(np.eye(2, dtype=a.dtype), device=a.device)
            swap = Tensor(np.array([[0.0, 1.0], [1.0, 0.0]], dtype=a.dtype), device=a.device)
            return h_pre, h_post, a * eye + (1.0 - a) * swap
        n = self.streams
        lead = tuple(x.shape[:-2])
        d = F.rms_project(x.reshape(*lead, n * self.dim), self.phi)  # RMS-normalised flat state @ φ
        alpha = self.alpha
        h_pre = (alpha[0] * d[..., :n] + self.b_pre).sigmoid()
        h_post = 2.0 * (alpha[1] * d[..., n : 2 * n] + self.b_post).sigmoid()
        if not self.mix:
            return h_pre, h_post, None
        res = alpha[2] * d[..., 2 * n :].reshape(*lead, n, n) + self.b_res
        return h_pre, h_post, F.sinkhorn(res, self.sinkhorn_iters)

    def read(self, x: Tensor, coefficients) -> Tensor:
        """The branch input u = h_pre · X: (..., C) from streams (..., n, C)."""
        return F.stream_read(coefficients[0], x)

    def write(self, x: Tensor, y: Tensor, coefficients) -> Tensor:
        """The next streams H_res · X + h_postᵀ y, from streams x (..., n, C) and the branch output y (..., C)."""
        _, h_post, h_res = coefficients
        return F.stream_write(x, y, h_post, h_res)

    def extra_repr(self) -> str:
        return (f"{self.mode}, streams={self.streams}, dim={self.dim}, home={self.home}"
                + (f", sinkhorn_iters={self.sinkhorn_iters}" if self.mode == "mhc" else "")
                + ("" if self.mix else ", mix=False"))


def _fill(p: Parameter, values) -> None:
    p.data[...] = backend.to_device(np.asarray(values, dtype=p.dtype), p.device)
