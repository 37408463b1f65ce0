"""Embedding table."""

from __future__ import annotations

import numpy as np

from ... import backend
from .. import functional as F
from .. import init
from ..module import Module, Parameter

__all__ = [
    "Embedding",
]


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table looked up by integer ids.

    Shape: ids of any shape -> ids.shape + (embedding_dim,). Init: N(0, 1) (PyTorch's default).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=None):
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: sizes must be positive, got {num_embeddings}, {embedding_dim}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        dt = backend.resolve_dtype(dtype) or backend.get_default_dtype()
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dt))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight, 0.0, 1.0)

    def forward(self, ids):
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
