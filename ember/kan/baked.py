"""A baked KAN: frozen, inference-only, one GEMM per layer, saved as a versioned safetensors file.

Baking folds each layer into a single weight matrix W = [w_b | c·w_s] of shape
(out, in·(1 + G + k)): the base weight and the spline coefficients already multiplied by their
scale. Inference builds one design matrix per layer, [silu(x_i), B_0(x_i), ..., B_{G+k-1}(x_i)]
for every input (the bases written straight into place from their k+1 nonzero values), and
multiplies once. No graph, no saved arrays, no per-call scaling of the coefficients.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..io.integrity import HASH_KEY, digest_metadata, verify_digests
from ..io.safetensors_io import read_safetensors
from ..ops.bspline import check_finite, is_uniform, local_basis, scatter_local
from ..ops.elementwise import sigmoid
from ..tensor import Tensor

FORMAT = "ember-baked-kan"
FORMAT_VERSION = 2  # 2: per-tensor content hashes in the metadata
SUPPORTED_VERSIONS = ("1", "2")


class BakedKANError(ValueError):
    """A baked-KAN file that cannot be read; the message names the file and the problem."""


class BakedLayer:
    def __init__(self, weight: np.ndarray, grid: np.ndarray, spline_order: int):
        self.weight = np.ascontiguousarray(weight)  # (out, in·(1 + n_basis)), as saved
        self.weight_t = np.ascontiguousarray(self.weight.T)  # the GEMM runs ~25% faster on it
        self.grid = np.ascontiguousarray(grid)  # (in, n_basis + k + 1)
        self.k = int(spline_order)
        self.in_features = grid.shape[0]
        self.n_basis = grid.shape[1] - self.k - 1
        self.uniform = is_uniform(grid)
        if weight.shape[1] != self.in_features * (1 + self.n_basis):
            raise ValueError(f"baked layer: weight {weight.shape} does not fit a grid of {grid.shape}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        s, N, _ = local_basis(np, x, self.grid, self.k, self.uniform)
        design = scatter_local(np, s, N, self.k, self.n_basis, lead=1)  # (n, in, 1 + n_basis)
        design[..., 0] = x * sigmoid(np, x)
        return design.reshape(x.shape[0], -1) @ self.weight_t


class BakedKAN:
    """Inference-only KAN: ``BakedKAN.from_model(kan)(x)``; ``save(path)`` / ``BakedKAN.load(path)``."""

    def __init__(self, layers: list[BakedLayer], widths: tuple[int, ...]):
        self.layers, self.widths = layers, tuple(widths)

    @classmethod
    def from_model(cls, model) -> BakedKAN:
        layers = []
        for layer in model.layers:
            coef = layer.scaled_spline_weight()  # (out, in, W)
            out_f, in_f, _ = coef.shape
            w = np.concatenate([np.asarray(layer.effective_base_weight())[..., None], np.asarray(coef)], axis=-1)
            layers.append(BakedLayer(w.reshape(out_f, -1), layer.grid.numpy(), layer.spline_order))
        return cls(layers, tuple(model.config.widths))

    def __call__(self, x):
        """Outputs for x (n, widths[0]) (or images flattening to it): a NumPy array, or a Tensor for a Tensor."""
        arr = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
        arr = arr.reshape(arr.shape[0], -1)
        if arr.shape[1] != self.widths[0]:
            raise ValueError(f"BakedKAN: expected {self.widths[0]} input features, got {arr.shape[1]}")
        arr = arr.astype(self.layers[0].weight.dtype, copy=False)
        check_finite(np, arr, "BakedKAN")
        for layer in self.layers:
            arr = layer(arr)
        return Tensor(arr) if isinstance(x, Tensor) else arr

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the baked model atomically (safetensors, with format name, version and layout)."""
        from safetensors.numpy import save_file

        from ..io.atomic import atomic_path

        tensors = {}
        for i, layer in enumerate(self.layers):
            tensors[f"layers.{i}.weight"] = layer.weight
            tensors[f"layers.{i}.grid"] = layer.grid
        meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "layout": json.dumps({"widths": list(self.widths), "spline_orders": [la.k for la in self.layers]}),
                HASH_KEY: digest_metadata(tensors)}
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, verify: bool = True) -> BakedKAN:
        """Read a baked model; ``verify`` checks each tensor's content hash (files of version 2 on)."""
        from safetensors import SafetensorError

        path = Path(path)
        if not path.is_file():
            raise BakedKANError(f"{path}: no such baked KAN file")
        try:
            tensors, meta = read_safetensors(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise BakedKANError(f"{path}: not a readable safetensors file (truncated or corrupt?): {exc}") from exc
        if meta.get("format") != FORMAT:
            raise BakedKANError(f"{path}: not a baked KAN (format {meta.get('format')!r}, expected {FORMAT!r})")
        if meta.get("format_version") not in SUPPORTED_VERSIONS:
            raise BakedKANError(f"{path}: baked KAN format version {meta.get('format_version')!r} is not supported "
                                f"(this ember reads versions {', '.join(SUPPORTED_VERSIONS)})")
        if verify and meta["format_version"] != "1":
            verify_digests(path, tensors, meta.get(HASH_KEY), BakedKANError)
        try:
            layout = json.loads(meta["layout"])
            widths, orders = tuple(layout["widths"]), layout["spline_orders"]
            layers = [BakedLayer(tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.grid"], orders[i])
                      for i in range(len(widths) - 1)]
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            raise BakedKANError(f"{path}: inconsistent baked KAN contents: {exc}") from exc
        for i, layer in enumerate(layers):
            if layer.weight.shape[0] != widths[i + 1] or layer.in_features != widths[i]:
                raise BakedKANError(f"{path}: layer {i} has shape {layer.weight.shape}, widths say {widths}")
        return cls(layers, widths)
