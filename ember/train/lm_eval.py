"""Language-model evaluation (``ember eval`` of a GPT): loss, perplexity and bits per byte over every token.

Unlike the training loop's ``estimate_loss`` (a fixed sample of random windows, to follow progress),
this walks the whole token stream once, deterministically: consecutive non-overlapping windows of
``block_size`` inputs, each predicting the next token at every position, the context restarting at
each window (the last window may be shorter). Every token but the first is predicted exactly once,
so the numbers do not depend on a seed or on the batch size.

- ``loss``: mean negative log-likelihood in nats per predicted token (log-softmax in float64);
- ``perplexity``: exp(loss);
- ``bits_per_byte``: total nats / ln 2 / UTF-8 bytes of the predicted text. It compares models with
  different tokenizers, since the text, not the token count, is the same.

The byte count is that of the whole predicted span, never summed token by token: a byte-level BPE
token can hold part of a UTF-8 character, so its bytes come straight from the tokenizer's
``decode_bytes`` (exact even when the span starts or ends inside a character); tokenizers without
one (characters) decode the span and encode it to UTF-8. Special tokens such as ``<|endoftext|>``
count as the bytes of their text.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor


@dataclass(frozen=True)
class LMEvalResult:
    tokens: int  # predicted tokens
    bytes: int  # UTF-8 bytes of the predicted text
    loss: float  # mean nats per predicted token
    perplexity: float  # exp(loss)
    bits_per_byte: float  # total nats / ln 2 / bytes

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_lm(model, tokenizer, ids, batch_size: int = 32, max_tokens: int | None = None) -> LMEvalResult:
    """Loss, perplexity and bits per byte of ``model`` on the token stream ``ids`` (1-D).

    Predicts ``ids[1:]`` (at most ``max_tokens`` of them) in windows of the model's ``block_size``,
    ``batch_size`` windows per forward pass. The model is evaluated in eval mode (no dropout) and
    left in the mode it was in.
    """
    ids = np.asarray(ids).reshape(-1).astype(np.int64)
    if batch_size <= 0:
        raise ValueError(f"evaluate_lm: batch_size must be positive, got {batch_size}")
    if max_tokens is not None and max_tokens <= 0:
        raise ValueError(f"evaluate_lm: max_tokens must be positive, got {max_tokens}")
    if len(ids) < 2:
        raise ValueError(f"evaluate_lm: {len(ids)} token(s) give nothing to predict; need at least 2")
    n = len(ids) - 1 if max_tokens is None else min(len(ids) - 1, max_tokens)
    was_training = model.training
    model.eval()
    try:
        total = sum(_batch_nats(model, x, y) for x, y in windows(ids, n, model.config.block_size, batch_size))
    finally:
        model.train(was_training)
    n_bytes = text_bytes(tokenizer, ids[1 : n + 1])
    loss = total / n
    return LMEvalResult(tokens=n, bytes=n_bytes, loss=loss, perplexity=math.exp(loss),
                        bits_per_byte=total / math.log(2) / n_bytes if n_bytes else math.nan)


def windows(ids: np.ndarray, n: int, block_size: int, batch_size: int):
    """(inputs, targets) batches covering targets ``ids[1 : n + 1]`` once: full windows of ``block_size``
    in batches of ``batch_size``, then the shorter last window alone."""
    full = n // block_size
    x = ids[: full * block_size].reshape(full, block_size)
    y = ids[1 : full * block_size + 1].reshape(full, block_size)
    for start in range(0, full, batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]
    if n > full * block_size:
        yield ids[full * block_size : n][None], ids[full * block_size + 1 : n + 1][None]


@no_grad()
def _batch_nats(model, x: np.ndarray, y: np.ndarray) -> float:
    """Summed negative log-likelihood (nats) of the targets ``y`` given inputs ``x``, in float64."""
    device = next(iter(model.parameters())).device
    logits = np.asarray(model(Tensor(backend.to_device(x, device))).numpy(), dtype=np.float64)  # (B, T, V), host
    top = logits.max(axis=-1, keepdims=True)
    log_norm = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))  # (B, T)
    picked = np.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
    return float((log_norm - picked).sum())


def text_bytes(tokenizer, ids) -> int:
    """UTF-8 bytes of the text of ``ids`` as one span (see the module docstring)."""
    decode_bytes = getattr(tokenizer, "decode_bytes", None)
    if decode_bytes is not None:
        return len(decode_bytes(ids))
    return len(tokenizer.decode(ids).encode("utf-8"))


def validation_tokens(spec: str, tokenizer, data_dir: str | os.PathLike | None = None,
                      download: bool = True) -> np.ndarray:
    """The validation split of the corpus ``spec`` as the run saw it: its own tokenizer, the same 90/10 cut."""
    from ..data.text import load_corpus  # here, not at the top: it brings the BPE's regex module

    return load_corpus(spec, tokenizer, data_dir=data_dir, download=download).val


def file_tokens(path: str | os.PathLike, tokenizer) -> np.ndarray:
    """Every token of a UTF-8 text file (ValueError naming the file when it cannot be read or encoded)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the text file: {exc.strerror or exc}") from None
    try:
        return np.asarray(tokenizer.encode(text), dtype=np.int64)
    except ValueError as exc:
        raise ValueError(f"{path}: the model's tokenizer cannot encode this text: {exc}") from None
