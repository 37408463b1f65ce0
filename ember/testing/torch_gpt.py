"""A plain PyTorch GPT with nanoGPT's architecture and parameter names: the reference for parity
tests and the rival in ``benchmarks/bench_gpt.py``.

PyTorch is never imported here; every function receives the ``torch`` module. Attention is
written out (scores, causal mask, softmax, dropout) as nanoGPT's fallback path does, or uses
``scaled_dot_product_attention`` (nanoGPT's fast path) with ``sdpa=True``.

Hyper-connections (``config.residual`` 'hc', 'mhc', 'mhc2') are written again here from their formulas
(../shared/specs/mhc.md), not from ember's code, so that the twin is an independent check of ember's mHC:
n streams copied from the embedding and summed before ``ln_f``; around each sub-layer u = h_pre · X,
X' = H_res · X + h_postᵀ F(u), with h_pre = sigmoid, h_post = 2·sigmoid, and for mHC the maps read from the
RMS-normalised flattened state (eps = the dtype's machine epsilon) through φ, scaled by α, plus biases, and
H_res by log-domain Sinkhorn (columns, then rows). As in ember, mhc/mhc2 leave out the first sub-layer's and
the last sub-layer's H_res (a doubly stochastic mix of equal streams, or of streams summed next, changes
nothing). Parameter names are ember's (``transformer.h.{i}.hc_attn.phi``, ...).
"""

from __future__ import annotations

import math

import numpy as np


def build_torch_gpt(torch, config, sdpa: bool = True, nanogpt_init: bool = False):
    """A torch.nn.Module twin of ``ember.models.GPT(config)`` (same names, same init recipe).

    ``nanogpt_init``: draw the initial weights in nanoGPT's exact order (``self.apply(_init_weights)``
    over modules, the tied head drawn twice, then every c_proj re-drawn), so that after
    ``torch.manual_seed(1337)`` the weights are nanoGPT's own.
    """
    nn, F = torch.nn, torch.nn.functional
    c = config

    class LayerNorm(nn.Module):
        def __init__(self, n, bias):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))
            self.bias = nn.Parameter(torch.zeros(n)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
            self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
            self.resid_dropout = nn.Dropout(c.dropout)
            self.register_buffer("tril", torch.tril(torch.ones(c.block_size, c.block_size, dtype=torch.bool)),
                                 persistent=False)

        def forward(self, x):
            b, t, ch = x.shape
            q, k, v = self.c_attn(x).split(c.n_embd, dim=2)
            q, k, v = (z.view(b, t, c.n_head, ch // c.n_head).transpose(1, 2) for z in (q, k, v))
            p = c.dropout if self.training else 0.0
            if sdpa:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
                att = att.masked_fill(~self.tril[:t, :t], float("-inf")).softmax(dim=-1)
                y = F.dropout(att, p, self.training) @ v
            y = y.transpose(1, 2).contiguous().view(b, t, ch)
            return self.resid_dropout(self.c_proj(y))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
            self.gelu = nn.GELU(approximate=c.gelu)
            self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
            self.dropout = nn.Dropout(c.dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class HyperConnection(nn.Module):
        """n streams around one sub-layer: read u = h_pre · X, run the branch, write H_res · X + h_postᵀ y.

        The initial values make every stream carry the plain residual stream: hc reads the home stream
        (index mod n) and writes ones with H_res = I; mhc has φ = 0, α = 0.01, b_pre = ±3 (home stream +3),
        b_post = 0 (h_post = 1), b_res = 2I - 1; mhc2 has the same read and write logits and a mix logit of 2.
        """

        def __init__(self, index, mix):
            super().__init__()
            n, home = c.streams, index % c.streams
            self.mix = mix
            read_logits = 3.0 * (2 * torch.eye(n)[home] - 1)
            if c.residual == "hc":
                self.h_pre = nn.Parameter(torch.eye(n)[home].clone())
                self.h_post = nn.Parameter(torch.ones(n))
                self.h_res = nn.Parameter(torch.eye(n)) if mix else None
            elif c.residual == "mhc":
                self.phi = nn.Parameter(torch.zeros(n * c.n_embd, 2 * n + (n * n if mix else 0)))
                self.alpha = nn.Parameter(torch.full((3,), 0.01))
                self.b_pre = nn.Parameter(read_logits)
                self.b_post = nn.Parameter(torch.zeros(n))
                self.b_res = nn.Parameter(2.0 * torch.eye(n) - 1.0) if mix else None
            else:
                self.pre_logits = nn.Parameter(read_logits)
                self.post_logits = nn.Parameter(torch.zeros(2))
                self.mix_logit = nn.Parameter(torch.tensor(2.0)) if mix else None

        def maps(self, x):
            """(h_pre, h_post, H_res or None) for streams x (..., n, C)."""
            return hyper_maps(torch, self, c.residual, c.streams, c.n_embd, self.mix, c.sinkhorn_iters, x)

        def forward(self, x, branch):
            h_pre, h_post, h_res = self.maps(x)
            y = branch((h_pre.unsqueeze(-1) * x).sum(-2))
            mixed = x if h_res is None else h_res @ x  # mix the OLD streams, then add the branch output
            return mixed + h_post.unsqueeze(-1) * y.unsqueeze(-2)

    class Block(nn.Module):
        def __init__(self, index):
            super().__init__()
            self.ln_1, self.attn = LayerNorm(c.n_embd, c.bias), Attention()
            self.ln_2, self.mlp = LayerNorm(c.n_embd, c.bias), MLP()
            if c.residual != "plain":
                constrained = c.residual in ("mhc", "mhc2")
                self.hc_attn = HyperConnection(2 * index, mix=not (constrained and index == 0))
                self.hc_mlp = HyperConnection(2 * index + 1, mix=not (constrained and index == c.n_layer - 1))

        def forward(self, x):
            if c.residual == "plain":
                x = x + self.attn(self.ln_1(x))
                return x + self.mlp(self.ln_2(x))
            x = self.hc_attn(x, lambda u: self.attn(self.ln_1(u)))
            return self.hc_mlp(x, lambda u: self.mlp(self.ln_2(u)))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict({
                "wte": nn.Embedding(c.vocab_size, c.n_embd),
                "wpe": nn.Embedding(c.block_size, c.n_embd),
                "drop": nn.Dropout(c.dropout),
                "h": nn.ModuleList([Block(i) for i in range(c.n_layer)]),
                "ln_f": LayerNorm(c.n_embd, c.bias),
            })
            self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight
            if nanogpt_init:
                self.apply(self._nanogpt_init)
                for name, p in self.named_parameters():
                    if name.endswith("c_proj.weight"):
                        nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layer))
                return
            for name, p in self.named_parameters():
                if ".hc_" in name:
                    continue  # hyper-connections start as the plain residual (HyperConnection.__init__)
                if p.dim() >= 2:
                    std = 0.02 / math.sqrt(2 * c.n_layer) if name.endswith("c_proj.weight") else 0.02
                    nn.init.normal_(p, 0.0, std)
                elif name.endswith("bias"):
                    nn.init.zeros_(p)

        @staticmethod
        def _nanogpt_init(module):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

        def forward(self, idx, targets=None):
            t = idx.size(1)
            pos = torch.arange(t, device=idx.device)
            x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
            n = c.streams
            if n > 1:  # every stream starts as a copy of the embedding (B, T, n, C) ...
                x = x.unsqueeze(-2).expand(*x.shape[:-1], n, x.shape[-1])
            for block in self.transformer.h:
                x = block(x)
            if n > 1:  # ... and they are summed before the final LayerNorm
                x = x.sum(-2)
            logits = self.lm_head(self.transformer.ln_f(x))
            if targets is None:
                return logits
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            return logits, loss

        def configure_optimizer(self, lr, weight_decay, betas):
            """Decay on matmul weights and embeddings; none on biases, gains and the static hyper-connection
            maps (every hyper-connection parameter but mHC's dynamic φ), as HC prescribes."""
            params = [(name, p) for name, p in self.named_parameters() if p.requires_grad]

            def decayed(name, p):
                static = ".hc_" in name and not name.endswith(".phi")
                return p.dim() >= 2 and not static

            groups = [{"params": [p for name, p in params if decayed(name, p)], "weight_decay": weight_decay},
                      {"params": [p for name, p in params if not decayed(name, p)], "weight_decay": 0.0}]
            return torch.optim.AdamW(groups, lr=lr, betas=betas)

    return TorchGPT()


def hyper_maps(torch, p, mode: str, streams: int, dim: int, mix: bool, sinkhorn_iters: int, x):
    """One hyper-connection's (h_pre, h_post, H_res or None) in PyTorch, from parameters ``p`` named as ember's
    (``p.phi``, ``p.b_pre``, ``p.mix_logit``, ...), for streams x (..., n, C): the formulas of
    ember/nn/layers/hyper.py written again, for the twins of the op table and of the GPT."""
    if mode == "hc":
        return p.h_pre, p.h_post, (p.h_res if mix else None)
    if mode == "mhc2":
        h_res = None
        if mix:
            a = torch.sigmoid(p.mix_logit)
            eye = torch.eye(2, dtype=x.dtype, device=x.device)
            h_res = a * eye + (1 - a) * (1 - eye)  # [[a, 1-a], [1-a, a]]
        return torch.sigmoid(p.pre_logits), 2 * torch.sigmoid(p.post_logits), h_res
    n = streams
    flat = x.reshape(*x.shape[:-2], n * dim)
    flat = flat * torch.rsqrt(flat.pow(2).mean(-1, keepdim=True) + torch.finfo(x.dtype).eps)
    d = flat @ p.phi
    h_pre = torch.sigmoid(p.alpha[0] * d[..., :n] + p.b_pre)
    h_post = 2 * torch.sigmoid(p.alpha[1] * d[..., n : 2 * n] + p.b_post)
    if not mix:
        return h_pre, h_post, None
    logits = p.alpha[2] * d[..., 2 * n :].reshape(*x.shape[:-2], n, n) + p.b_res
    return h_pre, h_post, sinkhorn(logits, sinkhorn_iters)


def sinkhorn(logits, iters):
    """Sinkhorn–Knopp in the log domain: ``iters`` times normalise the columns of exp(logits), then the rows."""
    for _ in range(iters):
        logits = logits.log_softmax(dim=-2)
        logits = logits.log_softmax(dim=-1)
    return logits.exp()


def copy_gpt_weights(torch, ember_model, torch_model, dtype=None):
    """Copy every ember parameter into the twin by name (lm_head.weight is the tied wte)."""
    dtype = dtype or torch.float64
    state = {k: torch.from_numpy(np.array(v.numpy())).to(dtype) for k, v in ember_model.state_dict().items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    torch_model.to(dtype)
    missing, unexpected = torch_model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.endswith("tril")]:
        raise KeyError(f"copy_gpt_weights: missing {missing}, unexpected {unexpected}")
    return torch_model
