"""A plain PyTorch GPT with nanoGPT's architecture and parameter names: the reference for parity
tests and the rival in ``benchmarks/bench_gpt.py``.

PyTorch is never imported here; every function receives the ``torch`` module. Attention is
written out (scores, causal mask, softmax, dropout) as nanoGPT's fallback path does, or uses
``scaled_dot_product_attention`` (nanoGPT's fast path) with ``sdpa=True``.
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

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = LayerNorm(c.n_embd, c.bias), Attention()
            self.ln_2, self.mlp = LayerNorm(c.n_embd, c.bias), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict({
                "wte": nn.Embedding(c.vocab_size, c.n_embd),
                "wpe": nn.Embedding(c.block_size, c.n_embd),
                "drop": nn.Dropout(c.dropout),
                "h": nn.ModuleList([Block() for _ in range(c.n_layer)]),
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
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            if targets is None:
                return logits
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            return logits, loss

        def configure_optimizer(self, lr, weight_decay, betas):
            params = [p for p in self.parameters() if p.requires_grad]
            groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
            return torch.optim.AdamW(groups, lr=lr, betas=betas)

    return TorchGPT()


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
