"""GPT with nanoGPT's architecture, KV-cache decoding and sampling.

    tok = wte[idx] + wpe[0..T)            # learned absolute positions
    x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))   for each block (pre-LN)
    logits = ln_f(x) @ wteᵀ               # the head is tied to the token embedding

Parameter names follow nanoGPT (transformer.wte, transformer.h.{i}.attn.c_attn, ...), so export
tables and PyTorch parity mappings are one dictionary. Init: every Linear and Embedding weight
N(0, 0.02), biases 0, and the two residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/√(2·L)).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..autograd import no_grad
from ..kernels import int8 as int8_kernels
from ..kernels import rows as rows_kernels
from ..kernels import sampling
from ..nn import functional as F
from ..ops import elementwise as E
from ..ops import linalg as L
from ..ops import nn as N
from ..ops.attention import attend_cached_rows, causal_mask_t
from ..tensor import Tensor


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # nanoGPT's default: no biases in Linears and LayerNorms
    gelu: str = "none"  # 'none' (exact erf, nanoGPT) or 'tanh' (GPT-2, llama.cpp)
    residual: str = "plain"  # 'plain', or hyper-connections 'hc' | 'mhc' | 'mhc2' (ember/nn/layers/hyper.py)
    streams: int = 0  # residual streams n; 0 = the mode's default (plain 1, hc/mhc 4, mhc2 2)
    sinkhorn_iters: int = 20  # mhc's Sinkhorn–Knopp iterations (training and decoding use the same)

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"GPTConfig: {name} must be positive, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.gelu not in ("none", "tanh"):
            raise ValueError(f"GPTConfig: gelu must be 'none' or 'tanh', got {self.gelu!r}")
        if self.residual not in nn.RESIDUAL_MODES:
            raise ValueError(f"GPTConfig: residual must be one of {', '.join(nn.RESIDUAL_MODES)}, "
                             f"got {self.residual!r}")
        if not self.streams:
            self.streams = {"plain": 1, "hc": 4, "mhc": 4, "mhc2": 2}[self.residual]
        if self.residual == "plain" and self.streams != 1:
            raise ValueError(f"GPTConfig: a plain residual has one stream, got streams={self.streams}; "
                             "choose residual 'hc', 'mhc' or 'mhc2' for more")
        if self.residual in ("hc", "mhc") and self.streams < 2:
            raise ValueError(f"GPTConfig: residual {self.residual!r} needs streams >= 2, got {self.streams}")
        if self.residual == "mhc2" and self.streams != 2:
            raise ValueError(f"GPTConfig: residual 'mhc2' is the closed form for exactly 2 streams, got {self.streams}")
        if int(self.sinkhorn_iters) < 1:
            raise ValueError(f"GPTConfig: sinkhorn_iters must be at least 1, got {self.sinkhorn_iters}")


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        y = F.causal_self_attention(self.c_attn(x), self.n_head, self.dropout, self.training)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(config.gelu)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm attention then MLP, each around a plain residual or a hyper-connection (``hc_attn``,
    ``hc_mlp``; then x holds the streams (B, T, n, C))."""

    def __init__(self, config: GPTConfig, index: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.hc_attn = self.hc_mlp = None
        if config.residual != "plain":
            make = functools.partial(nn.HyperConnection, config.residual, config.streams, config.n_embd,
                                     sinkhorn_iters=config.sinkhorn_iters)
            # A doubly stochastic mix cannot change equal streams (the first sub-layer's: copies of the
            # embedding) nor their sum (the last sub-layer's, summed next): both would only ever get a zero
            # gradient, so mhc/mhc2 leave them out. (hc's unconstrained H_res can scale, and stays.)
            constrained = config.residual in ("mhc", "mhc2")
            self.hc_attn = make(2 * index, mix=not (constrained and index == 0))
            self.hc_mlp = make(2 * index + 1, mix=not (constrained and index == config.n_layer - 1))

    def forward(self, x):
        if self.hc_attn is None:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        x = _around(self.hc_attn, x, lambda u: self.attn(self.ln_1(u)))
        return _around(self.hc_mlp, x, lambda u: self.mlp(self.ln_2(u)))


def _around(hc: nn.HyperConnection, x, branch):
    """One sub-layer inside a hyper-connection: read the branch input, run it, write it back."""
    c = hc.coefficients(x)
    return hc.write(x, branch(hc.read(x, c)), c)


def _run(op, *arrays, **attrs):
    """An op's forward on raw arrays, outside the graph: the decode loop's fast path. The same forward code
    the layers run, without the Tensor wrapping, dtype checks and dispatch that dominate one-token steps."""
    fn = op()
    fn.xp = backend.device_of(arrays[0]).xp
    return fn.forward(*arrays, **attrs)


def _layer_norm(x, ln: nn.LayerNorm):
    params = [p.data for p in (ln.weight, ln.bias) if p is not None]
    return _run(N.LayerNorm, x, *params, ndim=len(ln.normalized_shape), eps=ln.eps,
                has_weight=ln.weight is not None, has_bias=ln.bias is not None)


FEW_ROWS = 32  # up to this many rows the decode loop's Linear runs as (W @ x.T).T (benchmarks/bench_decode_gemm.py)


def _linear(x, layer: nn.Linear):
    """``x @ W.T + b`` for the decode loop, in the form measured fastest for its rows
    (``benchmarks/bench_decode_gemm.py``): from 2 to ``kernels.rows.MOST_ROWS`` rows (a few requests decoding) a
    compiled product that reads the weight where it lies (``kernels.rows``); one row, and up to ``FEW_ROWS``,
    ``(W @ x.T).T`` (``_linear_transposed``: OpenBLAS streams the large weight as stored and packs only the small
    operand); more rows (a prefill chunk) ``x @ W.T``, the Linear op's own forward. An int8 layer's few rows
    multiply its int8 codes directly (``kernels.int8``, up to ``kernels.int8.MOST_ROWS`` rows), never its
    dequantized ``weight``."""
    # an int8 layer (ember.compress) offers its codes; a plain Linear skips the lookup, which would cost a failed
    # attribute search through Module.__getattr__ at every call
    codes = None if type(layer) is nn.Linear else getattr(layer, "weight_q", None)
    if codes is not None and getattr(layer, "input_quantized", False):
        codes = None  # (the decode loop feeds such a layer float inputs: see QuantizedLinear) its dequantized weight
    n_rows = math.prod(x.shape[:-1])
    if n_rows > (int8_kernels.MOST_ROWS if codes is not None else FEW_ROWS):
        return _linear_op(x, layer)
    x2 = x.reshape(n_rows, x.shape[-1])
    out = None
    if codes is not None:
        if int8_kernels.applies(x2, codes.data, layer.weight_scale.data):
            out = int8_kernels.int8_matmul(x2, codes.data, layer.weight_scale.data)
    elif x2.shape[0] > 1:
        w = layer.weight.data  # (an int8 layer with quantized inputs dequantizes here, once)
        if rows_kernels.applies(x2, w):
            out = rows_kernels.rows_matmul(x2, w)
    if out is None:
        return _linear_transposed(x, layer) if n_rows <= FEW_ROWS else _linear_op(x, layer)
    if layer.bias is not None:
        out += layer.bias.data
    return out.reshape(x.shape[:-1] + (out.shape[-1],))


def _linear_op(x, layer: nn.Linear):
    """``x @ W.T + b`` through the Linear op's forward (many rows: a prefill chunk)."""
    return _run(L.Linear, x, *([layer.weight.data] + ([] if layer.bias is None else [layer.bias.data])))


def _linear_transposed(x, layer: nn.Linear):
    """``x @ W.T + b`` as ``(W @ x.T).T``, made C-contiguous again for the compiled kernels that follow."""
    w = layer.weight.data
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    out = backend.device_of(w).xp.ascontiguousarray((w @ x2.T).T)
    if layer.bias is not None:
        out += layer.bias.data
    return out.reshape(lead + (w.shape[0],))


def _embedding_rows(table, ids):
    """Rows ``ids`` of an embedding (an int8 one, from ember.compress, dequantizes only those rows: its ``weight``
    would dequantize the whole table at every step)."""
    if getattr(table, "weight_q", None) is not None:
        return table(ids).data
    return F.embedding(ids, table.weight).data


def _enter(hc, x):
    """The branch input of a decode step and the maps used to write back: (x, None) for a plain residual, or
    the hyper-connection's read of the streams x with its coefficients."""
    if hc is None:
        return x, None
    streams = Tensor(x)
    coefficients = hc.coefficients(streams)
    return hc.read(streams, coefficients).data, coefficients


def _leave(hc, x, y, coefficients):
    """x + y (plain), or the hyper-connection's write of the branch output y into the streams x: the same
    ``write`` the training forward runs, so training and decoding cannot place H_res differently."""
    if hc is None:
        return x + y
    return hc.write(Tensor(x), Tensor(y), coefficients).data


def _row_mask(xp, positions: np.ndarray, tk: int, dtype):
    """Additive mask (B, 1, T_k, t) in key-major layout: key j is visible to row b's query i when j <= its
    position positions[b, i] (keys past a row's length are stale or another request's, never seen)."""
    visible = np.arange(tk)[None, :, None] <= positions[:, None, :]
    mask = np.where(visible, 0.0, -np.inf).astype(dtype)[:, None]
    return xp.asarray(mask)


class KVCache:
    """Keys and values of every layer for incremental decoding: (n_layer, 2, B, H, T_max, D), and the number of
    positions each row holds (``lengths``).

    Rows are independent sequences: a server keeps one request per row, each at its own length, and decodes
    the rows it chooses in one forward (``GPT.forward_cached(ids, cache, rows=...)``). ``pos`` is the common
    length when every row holds the same number of positions (batch decoding of one prompt, ``generate``).

    With learned absolute positions the cache is only valid while the whole sequence fits in the
    model's context: once it would slide, every cached key was computed at a different position.
    """

    def __init__(self, config: GPTConfig, batch: int, max_len: int, dtype, xp=np):
        if max_len > config.block_size:
            raise ValueError(f"KVCache: {max_len} positions exceed the model's context of {config.block_size}")
        if batch < 1:
            raise ValueError(f"KVCache: batch must be at least 1, got {batch}")
        d = config.n_embd // config.n_head
        self.kv = xp.zeros((config.n_layer, 2, batch, config.n_head, max_len, d), dtype=dtype)
        self.lengths = np.zeros(batch, dtype=np.int64)  # on the host: the decode loop reads them every step
        self.max_len = max_len

    @property
    def batch(self) -> int:
        return len(self.lengths)

    @property
    def pos(self) -> int:
        """The length every row holds; an error when the rows differ (then read ``lengths``)."""
        first = int(self.lengths[0])
        if (self.lengths != first).any():
            raise ValueError(f"KVCache.pos: the rows hold different lengths {self.lengths.tolist()}; read .lengths")
        return first

    @pos.setter
    def pos(self, value: int) -> None:
        self.lengths[:] = value

    def reset(self, rows=None) -> None:
        """Forget the given rows (default all): their next tokens start at position 0, and the positions they had
        written are zeroed. Attention gives a row's stale positions zero weight, but the reference path (rows
        at different lengths in one chunk, or kernels off) multiplies them out: a key or value that an earlier
        request left infinite or NaN would make a later request's output NaN (0 * NaN), unless cleared."""
        rows = np.arange(self.batch) if rows is None else self.check_rows(rows)
        used = int(self.lengths[rows].max()) if rows.size else 0
        if used:
            xp = backend.device_of(self.kv).xp
            self.kv[:, :, xp.asarray(rows), :, :used] = 0
        self.lengths[rows] = 0

    def copy_rows(self, source: int, rows) -> None:
        """Row ``source``'s positions into ``rows``: n continuations of one prompt prefilled once."""
        rows = self.check_rows(rows)
        source = int(self.check_rows([source])[0])
        n = int(self.lengths[source])
        xp = backend.device_of(self.kv).xp
        self.kv[:, :, xp.asarray(rows), :, :n] = self.kv[:, :, source : source + 1, :, :n]
        self.lengths[rows] = n

    def check_rows(self, rows) -> np.ndarray:
        """``rows`` as distinct row indices of this cache (an int array), or a ValueError naming the bad one."""
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.dtype.kind not in "iu" or not rows.size:
            raise ValueError(f"KVCache: rows must be a non-empty 1-d sequence of row indices, got {rows!r}")
        bad = rows[(rows < 0) | (rows >= self.batch)]
        if bad.size:
            raise ValueError(f"KVCache: row {int(bad[0])} is out of range for a cache of {self.batch} rows")
        if np.unique(rows).size != rows.size:
            raise ValueError(f"KVCache: rows repeat a row: {rows.tolist()}")
        return rows.astype(np.int64, copy=False)


class _Chunk:
    """B sequences of t new tokens each, continuing cache rows ``rows`` from their lengths: their positions, mask
    and where their keys and values go. Checked against the cache's room."""

    def __init__(self, ids: np.ndarray, rows: np.ndarray, cache: KVCache):
        self.ids, self.rows = ids, rows
        self.b, self.t = ids.shape
        self.starts = starts = cache.lengths[rows]
        if starts.max() + self.t > cache.max_len:
            raise ValueError(f"KVCache full: {int(starts.max())} + {self.t} tokens exceed its {cache.max_len} "
                             f"positions")
        self.xp = xp = backend.device_of(cache.kv).xp
        self.uniform = bool((starts == starts[0]).all())
        start, end = int(starts[0]), int(starts.max()) + self.t
        self.positions = starts[:, None] + np.arange(self.t)  # (B, t)
        self._at = None
        dtype = cache.kv.dtype
        if self.uniform:
            self.mask = causal_mask_t(xp, end, self.t, offset=start, dtype=dtype) if self.t > 1 else None
            self.all_rows = rows.size == cache.batch and bool((rows == np.arange(cache.batch)).all())
        else:  # rows at different lengths: each query sees its own row's keys up to its own position
            self.mask = _row_mask(xp, self.positions, end, dtype)
            self.all_rows = False

    def embed(self, tr):
        """Token plus position embeddings of the chunk's tokens, (B·t, C)."""
        if getattr(tr["wpe"], "weight_q", None) is not None:  # int8 (ember.compress): only the rows used
            wpe = _embedding_rows(tr["wpe"], self.xp.asarray(self.positions.reshape(-1)))
            wpe = wpe.reshape(self.b, self.t, -1)
        elif self.uniform:
            start = int(self.starts[0])
            wpe = tr["wpe"].weight.data[start : start + self.t]
        else:
            wpe = tr["wpe"].weight.data[self.xp.asarray(self.positions)]
        x = _embedding_rows(tr["wte"], self.ids) + wpe  # ids checked
        return x.reshape(self.b * self.t, x.shape[-1])

    def write(self, kv, heads) -> None:
        """The chunk's new keys and values (heads[1], heads[2]: (B, H, t, D)) into one layer's cache."""
        if self.uniform and self.all_rows:
            start = int(self.starts[0])
            kv[:, :, :, start : start + self.t] = heads[1:]
        else:  # advanced indices around a slice: the indexed view is (B, t, H, D)
            if self._at is None:  # on the cache's device, once for every layer
                self._at = self.xp.asarray(self.rows)[:, None], self.xp.asarray(self.positions)
            dev_rows, dev_positions = self._at
            kv[0][dev_rows, :, dev_positions] = heads[1].transpose(0, 2, 1, 3)
            kv[1][dev_rows, :, dev_positions] = heads[2].transpose(0, 2, 1, 3)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig | None = None, **overrides):
        super().__init__()
        self.config = c = config or GPTConfig(**overrides)
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(c.vocab_size, c.n_embd),
            "wpe": nn.Embedding(c.block_size, c.n_embd),
            "drop": nn.Dropout(c.dropout),
            "h": nn.ModuleList([Block(c, i) for i in range(c.n_layer)]),
            "ln_f": nn.LayerNorm(c.n_embd, bias=c.bias),
        })
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.transformer["wte"].weight  # weight tying: one Parameter, two uses
        self.reset_parameters()

    def reset_parameters(self) -> None:
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if ".hc_" in name:
                continue  # hyper-connections have their own initialisation (below)
            if p.ndim >= 2:
                nn.init.normal_(p, 0.0, residual_std if name.endswith("c_proj.weight") else 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        for module in self.modules():
            if isinstance(module, nn.HyperConnection):
                module.reset_parameters()

    def num_parameters(self, trainable_only: bool = False, non_embedding: bool = True) -> int:
        """Parameters, the tied token embedding counted once and (by default, as nanoGPT reports) the
        position embedding left out."""
        n = super().num_parameters(trainable_only)
        wpe = self.transformer["wpe"].weight
        counted = not trainable_only or wpe.requires_grad
        return n - wpe.numel() if non_embedding and counted else n

    def forward(self, idx, targets=None):
        """Logits (B, T, V) for token ids (B, T); with targets, also the mean next-token cross-entropy
        (positions whose target is -1 are ignored)."""
        ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        b, t = ids.shape
        if t > self.config.block_size:
            raise ValueError(f"GPT: sequence of {t} tokens is longer than the context of {self.config.block_size}")
        x = self._hidden(ids)
        logits = self.lm_head(self.transformer["ln_f"](x))
        if targets is None:
            return logits
        tgt = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
        loss = F.cross_entropy(logits.reshape(b * t, -1), tgt.reshape(-1), ignore_index=-1)
        return logits, loss

    def _hidden(self, ids: np.ndarray) -> Tensor:
        """The last block's output (B, T, C) for ids (B, T), before the final LayerNorm."""
        tr = self.transformer
        pos = backend.device_of(tr["wpe"].weight.data).xp.arange(ids.shape[1])
        x = tr["drop"](tr["wte"](ids) + tr["wpe"](pos))
        n = self.config.streams
        if n > 1:  # every stream starts as a copy of the embedding ...
            x = x.unsqueeze(-2).expand(*x.shape[:-1], n, x.shape[-1])
        for block in tr["h"]:
            x = block(x)
        return x.sum(-2) if n > 1 else x  # ... and they are summed before the final LayerNorm

    def last_logits(self, ids) -> Tensor:
        """Logits (B, V) of the last position only, as nanoGPT's inference forward: the final LayerNorm
        and the head run on one row per sequence instead of T."""
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        if ids.shape[1] > self.config.block_size:
            raise ValueError(f"GPT: sequence of {ids.shape[1]} tokens is longer than the context of "
                             f"{self.config.block_size}")
        x = self._hidden(ids)
        return self.lm_head(self.transformer["ln_f"](x[:, -1]))

    def configure_optimizer(self, lr: float, weight_decay: float, betas=(0.9, 0.95)):
        """AdamW with weight decay on every parameter with ≥ 2 dimensions (matmul weights, embeddings)
        and none on biases, LayerNorm gains and the static hyper-connection maps (nanoGPT's two groups)."""
        from ..optim import AdamW

        params = list(self.parameters())
        static = {id(p) for m in self.modules() if isinstance(m, nn.HyperConnection) for p in m.static_parameters()}
        decay = [p for p in params if p.ndim >= 2 and id(p) not in static]
        no_decay = [p for p in params if p.ndim < 2 or id(p) in static]
        groups = [{"params": decay, "weight_decay": weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return AdamW(groups, lr=lr, betas=betas)

    @classmethod
    def from_pretrained(cls, folder, dtype=np.float32) -> GPT:
        """A GPT from a local Hugging Face GPT-2 folder (config.json and model.safetensors; no hub downloads), in
        eval mode. Its tokenizer: ``ember.io.hf_import.load_hf_gpt2(folder)`` returns (model, tokenizer)."""
        from ..io.hf_import import load_hf_gpt2

        return load_hf_gpt2(folder, dtype=dtype)[0]

    # -- incremental decoding -------------------------------------------------------------------
    def new_cache(self, batch: int = 1, max_len: int | None = None) -> KVCache:
        w = self.transformer["ln_f"].weight  # not wte's: an int8 table (ember.compress) would dequantize for this
        return KVCache(self.config, batch, max_len or self.config.block_size, w.dtype, backend.device_of(w.data).xp)

    @no_grad()
    def forward_cached(self, idx, cache: KVCache, rows=None, last_only: bool = False) -> np.ndarray:
        """Logits (B, t, V) of ``t`` new tokens per sequence, attending to the cache (which they are appended to).

        ``rows``: which of the cache's rows the B sequences continue (default: all rows, in order); each row
        continues from its own length, so sequences of different lengths decode together in one forward (a
        server's continuous batching). The new tokens of a row holding ``n`` positions get positions
        n .. n + t - 1; nothing about earlier tokens is recomputed. Equal to the full forward's logits at those
        positions (tested), for every row whatever the others hold. ``last_only``: the logits of the last new
        token only (B, 1, V), as a prompt's prefill needs: the final LayerNorm and the head skip the other rows.
        """
        ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if ids.ndim != 2:
            raise ValueError(f"forward_cached: ids must be (batch, tokens), got shape {ids.shape}")
        b, t = ids.shape
        rows = np.arange(cache.batch) if rows is None else cache.check_rows(rows)
        if rows.size != b:
            raise ValueError(f"forward_cached: {b} sequences of ids for {rows.size} cache rows")
        x = self._run_cached([_Chunk(ids, rows, cache)], cache)
        x = x.reshape((b, t) + x.shape[1:])
        if last_only:
            x = x[:, -1:]
        return self._head(x)

    @no_grad()
    def forward_last(self, sequences, cache: KVCache, rows) -> np.ndarray:
        """Logits (B, V) after the last token of each of B sequences of any lengths, sequence b continuing cache
        row ``rows[b]``: one forward for a server step's one-token decode rows and a prompt's chunk together,
        each Linear reading its weight once for all of them. Equal to ``forward_cached`` of each sequence
        (tested): tokens share the matrix products, and attention runs per group of sequences of one length."""
        rows = cache.check_rows(rows)
        sequences = [np.asarray(s) for s in sequences]
        if len(sequences) != rows.size:
            raise ValueError(f"forward_last: {len(sequences)} sequences for {rows.size} cache rows")
        for s in sequences:
            if s.ndim != 1 or not s.size:
                raise ValueError(f"forward_last: each sequence must be a non-empty 1-d list of ids, got shape "
                                 f"{s.shape}")
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(sequences):
            groups.setdefault(s.size, []).append(i)
        order = [i for members in groups.values() for i in members]
        chunks = [_Chunk(np.stack([sequences[i] for i in members]), rows[members], cache)
                  for members in groups.values()]
        x = self._run_cached(chunks, cache)
        ends = np.cumsum([chunk.b * chunk.t for chunk in chunks])
        last = np.concatenate([end - chunk.t * np.arange(chunk.b)[::-1] - 1 for chunk, end in zip(chunks, ends)])
        back = np.empty(len(order), dtype=np.int64)
        back[order] = np.arange(len(order))
        return self._head(x[backend.device_of(x).xp.asarray(last[back])])

    def _head(self, x):
        """Logits from the last block's output (streams summed first)."""
        if self.config.streams > 1:
            x = x.sum(axis=-2)
        return _linear(_layer_norm(x, self.transformer["ln_f"]), self.lm_head)

    def _run_cached(self, chunks: list[_Chunk], cache: KVCache):
        """The blocks over every chunk's new tokens packed in one array (N, C) (or (N, n, C) streams): each
        Linear, LayerNorm and GELU once for all of them, attention per chunk. Writes the new keys and values and
        advances the rows' lengths; returns the last block's output, chunk after chunk, row after row."""
        c = self.config
        tr = self.transformer
        xp = backend.device_of(cache.kv).xp  # not wte.weight: an int8 table would be dequantized at every step
        h, d = c.n_head, c.n_embd // c.n_head
        scale = 1.0 / math.sqrt(d)
        embedded = [chunk.embed(tr) for chunk in chunks]
        x = embedded[0] if len(chunks) == 1 else xp.concatenate(embedded)
        if c.streams > 1:
            x = xp.broadcast_to(x[:, None, :], x.shape[:1] + (c.streams, c.n_embd))
        spans = np.cumsum([0] + [chunk.b * chunk.t for chunk in chunks]).tolist()
        for layer, block in enumerate(tr["h"]):
            streams = x
            x, maps = _enter(block.hc_attn, streams)
            qkv = _linear(_layer_norm(x, block.ln_1), block.attn.c_attn)
            kv = cache.kv[layer]
            ys = []
            for chunk, lo, hi in zip(chunks, spans, spans[1:]):
                heads = qkv[lo:hi].reshape(chunk.b, chunk.t, 3, h, d).transpose(2, 0, 3, 1, 4)  # (3, B, H, t, D)
                chunk.write(kv, heads)
                y = attend_cached_rows(xp, kv, heads[0], chunk.rows, chunk.starts, scale, chunk.mask)  # (B, H, t, D)
                ys.append(y.transpose(0, 2, 1, 3).reshape(chunk.b * chunk.t, c.n_embd))
            y = ys[0] if len(ys) == 1 else xp.concatenate(ys)
            x = _leave(block.hc_attn, streams, _linear(y, block.attn.c_proj), maps)
            mlp = block.mlp
            streams = x
            x, maps = _enter(block.hc_mlp, streams)
            hidden = _run(E.GELU, _linear(_layer_norm(x, block.ln_2), mlp.c_fc), approximate=mlp.gelu.approximate)
            x = _leave(block.hc_mlp, streams, _linear(hidden, mlp.c_proj), maps)
        for chunk in chunks:
            cache.lengths[chunk.rows] = chunk.starts + chunk.t
        return x

    # -- sampling ---------------------------------------------------------------------------------
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None, use_cache: bool = True) -> Iterator[int]:
        """Yield ``max_new_tokens`` sampled ids (batch 1) after the prompt ``idx``, one at a time.

        ``idx``: a list of ids, or an array or Tensor of them (a (1, T) one is read as its T ids); each must
        be an integer in [0, vocab_size). The prompt and the sampling arguments are checked when
        ``generate`` is called, before any token is computed.

        temperature 0 is greedy; top-k keeps the k most likely tokens, top-p the smallest set whose
        probability reaches p. With the cache, decoding stops recomputing the past while the
        sequence fits in the context; past it, every step re-runs the last block_size tokens
        (learned positions make cached keys stale once the window slides).
        """
        if temperature < 0 or (top_k is not None and top_k <= 0) or (top_p is not None and not 0 < top_p <= 1):
            raise ValueError(f"generate: need temperature >= 0, top_k > 0, 0 < top_p <= 1; got "
                             f"{temperature}, {top_k}, {top_p}")
        tokens = self._prompt_ids(idx)
        self.eval()
        return self._sample(tokens, max_new_tokens, temperature, top_k, top_p, np.random.default_rng(seed), use_cache)

    def _prompt_ids(self, idx) -> list[int]:
        """A new list of the prompt's ids, each checked: an id of -1 would otherwise index the last embedding row."""
        from ..text.checks import check_token_ids  # here: ember.text loads the regex module, which a model needs not

        ids = idx.numpy() if isinstance(idx, Tensor) else idx
        if isinstance(ids, np.ndarray):
            ids = ids.reshape(-1)
        tokens = list(check_token_ids(ids, self.config.vocab_size, "generate (prompt)"))
        if not tokens:
            raise ValueError("generate: the prompt needs at least one token")
        return tokens

    def _sample(self, tokens: list[int], max_new_tokens: int, temperature: float, top_k, top_p, rng,
                use_cache: bool) -> Iterator[int]:
        """The decoding loop of ``generate``, which appends to ``tokens``."""
        block = self.config.block_size
        cache = self.new_cache(1, block) if use_cache else None
        logits = None
        for _ in range(max_new_tokens):
            if cache is not None and len(tokens) <= block:
                if cache.pos == 0:
                    logits = self.forward_cached(np.array([tokens]), cache)[0, -1]
                else:
                    logits = self.forward_cached(np.array([tokens[-1:]]), cache)[0, -1]
            else:
                with no_grad():  # per step, never across the yield: the caller keeps its own grad mode
                    logits = self.last_logits(np.array([tokens[-block:]])).data[0]
            nxt = sample_next(np.asarray(logits, dtype=np.float64), temperature, top_k, top_p, rng)
            tokens.append(nxt)
            if cache is not None and len(tokens) > block:
                cache = None  # the window slides from here on: positions shift, the cache is stale
            yield nxt


def sample_next(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None, rng) -> int:
    """One id from the last position's logits (float64)."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits / temperature
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p) + 1)]
        masked = np.zeros_like(p)
        masked[keep] = p[keep]
        p = masked / masked.sum()
    # The draw Generator.choice(p.size, p=p) makes (the same uniform, the same normalised cumulative sum, so the
    # same id for a seed), without its checks of p, which took 90 of a token's 107 µs at 8,192 classes.
    return int(sampling.draw(p[None], np.array([rng.random()]))[0])


def sample_rows(logits: np.ndarray, temperatures, top_ks, top_ps, rngs) -> list[int]:
    """``sample_next`` for each row of ``logits`` (R, V) float64, with each row's own arguments and generator:
    the same ids, and each generator advanced as ``sample_next`` advances it. The rows sampled at a temperature
    without top-k or top-p (a server's usual request) take one batched pass: the same arithmetic on a (rows, V)
    array, and one call of the compiled draw."""
    ids: list[int | None] = [None] * len(rngs)
    plain = []
    for r, (t, k, p_top) in enumerate(zip(temperatures, top_ks, top_ps)):
        if t != 0 and (k is None or k >= logits.shape[1]) and (p_top is None or p_top >= 1.0):
            plain.append(r)
        else:
            ids[r] = sample_next(logits[r], t, k, p_top, rngs[r])
    if plain:
        p = logits[plain]  # a copy, worked in place: each (rows, V) temporary costs its page faults
        p /= np.array([temperatures[r] for r in plain], dtype=np.float64)[:, None]
        p -= p.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        for r, token in zip(plain, sampling.draw(p, np.array([rngs[r].random() for r in plain]))):
            ids[r] = int(token)
    return ids
