"""Model checkpoints: safetensors weights with versioned JSON metadata, written atomically.

Metadata keys (all strings, as safetensors requires): ``format`` ("ember"), ``format_version``,
``model`` (registry name), ``config`` (JSON of the model's config dataclass), ``extra``
(JSON of anything the caller adds: epoch, accuracy, ...) and, from version 2, ``sha256`` (each
tensor's content hash, checked on load; see ``integrity.py``). Version 1 files load unverified.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from .integrity import HASH_KEY, digest_metadata, verify_digests
from .safetensors_io import read_safetensors

FORMAT = "ember"
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model; the message names the file."""


def _config_dict(model) -> dict:
    config = getattr(model, "config", None)
    if config is None:
        return {}
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def save_checkpoint(path: str | os.PathLike, model, extra: dict | None = None, model_name: str | None = None) -> Path:
    """Write ``model``'s state (parameters and persistent buffers) to ``path`` atomically."""
    from safetensors.numpy import save_file

    from ..models import model_name as registered_name
    from .atomic import atomic_path

    name = model_name or registered_name(model)
    # np.require, not np.ascontiguousarray: the latter turns a 0-d parameter into shape (1,), which then fails to load
    tensors = {k: np.require(v.numpy(), requirements="C") for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model": name,
        "config": json.dumps(_config_dict(model)),
        "extra": json.dumps(extra or {}),
        HASH_KEY: digest_metadata(tensors),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_checkpoint(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Read and validate a checkpoint: returns (arrays by name, metadata with config/extra decoded).

    ``verify``: check every tensor against the content hash stored at save time (format version 2)."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        arrays, metadata = read_safetensors(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint (truncated or corrupt?): {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an ember checkpoint (metadata format={metadata.get('format')!r})")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        version = None
    if version not in SUPPORTED_VERSIONS:
        raise CheckpointError(
            f"{path}: checkpoint format version {metadata.get('format_version')!r} is not supported "
            f"(this ember reads {list(SUPPORTED_VERSIONS)})"
        )
    try:
        metadata["config"] = json.loads(metadata.get("config", "{}"))
        metadata["extra"] = json.loads(metadata.get("extra", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt JSON in the checkpoint metadata: {exc}") from exc
    if verify and version >= 2:
        verify_digests(path, arrays, metadata.get(HASH_KEY), CheckpointError)
    return arrays, metadata


def load_into(model, path: str | os.PathLike, strict: bool = True, verify: bool = True) -> dict:
    """Load a checkpoint's weights into an existing model; on any error the model is untouched.

    Returns the metadata (model name, config, extra).
    """
    arrays, metadata = read_checkpoint(path, verify)
    try:
        model.load_state_dict(arrays, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: does not fit {type(model).__name__}: {exc}") from exc
    return metadata


def load_model(path: str | os.PathLike, verify: bool = True):
    """Build the registered model named in the checkpoint, with its config, and load its weights.

    Returns (model, metadata).
    """
    from ..models import build

    arrays, metadata = read_checkpoint(path, verify)
    try:
        model = build(metadata.get("model", ""), metadata["config"])
        compression = metadata["extra"].get("compression") if isinstance(metadata["extra"], dict) else None
        if compression is not None:  # pruned or int8 layers (ember.compress): rebuilt before the weights load
            from ..compress import restore_compressed

            model = restore_compressed(model, compression)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model: {exc}") from exc
    float_dtypes = {a.dtype for a in arrays.values() if a.dtype.kind == "f"}
    if len(float_dtypes) == 1:  # rebuild in the dtype it was saved in (float64 models stay float64)
        model.to(dtype=float_dtypes.pop())
    try:
        model.load_state_dict(arrays, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model {metadata.get('model')!r}: {exc}") from exc
    return model, metadata
