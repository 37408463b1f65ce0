"""Everything a training run needs to continue bit for bit, in one atomically written safetensors file.

Tensors: ``model.<name>`` (the weights) and ``optim.<index>.<key>`` (each parameter's optimizer
moments). Metadata (JSON strings): ``format``/``format_version``, ``optim_groups`` (hyperparameters
and parameter indices), ``optim_scalars`` (per-parameter step counts) and ``state`` (whatever the
trainer adds: iteration, RNG states, its config) and ``sha256`` (content hashes of the tensors,
checked on load; version 1 files had none and load unverified). One file, so a crash mid-save leaves the previous
state whole; loading checks every shape before touching the model or the optimizer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError
from .integrity import HASH_KEY, digest_metadata, verify_digests
from .safetensors_io import read_safetensors

FORMAT = "ember-train-state"
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = ("1", "2")


def save_train_state(path: str | os.PathLike, model, optimizer, state: dict) -> Path:
    from safetensors.numpy import save_file

    from .atomic import atomic_path

    tensors = {f"model.{k}": np.require(v.numpy(), requirements="C") for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars = {}
    for index, st in opt["state"].items():
        for key, value in st.items():
            if hasattr(value, "shape") and np.ndim(value) > 0:
                tensors[f"optim.{index}.{key}"] = np.require(value, requirements="C")
            else:
                scalars.setdefault(str(index), {})[key] = value.item() if hasattr(value, "item") else value
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "optim_groups": json.dumps(opt["param_groups"]),
        "optim_scalars": json.dumps(scalars),
        "state": json.dumps(state, allow_nan=False),
        HASH_KEY: digest_metadata(tensors),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_train_state(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, np.ndarray], dict, dict]:
    """(model arrays, optimizer state dict, trainer state) from a file, validated as a whole.

    ``verify``: check every tensor against the content hash stored at save time."""
    from safetensors import SafetensorError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such training-state file")
    try:
        arrays, meta = read_safetensors(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable training state (truncated or corrupt?): {exc}") from exc
    if meta.get("format") != FORMAT or meta.get("format_version") not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"{path}: not an ember training state of version {', '.join(SUPPORTED_VERSIONS)} "
                              f"(format={meta.get('format')!r}, version={meta.get('format_version')!r})")
    try:
        groups = json.loads(meta["optim_groups"])
        scalars = json.loads(meta["optim_scalars"])
        state = json.loads(meta["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt training-state metadata: {exc}") from exc
    if verify and meta["format_version"] != "1":
        verify_digests(path, arrays, meta.get(HASH_KEY), CheckpointError)
    model_arrays = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
    opt_state: dict[int, dict] = {int(i): dict(v) for i, v in scalars.items()}
    for key, value in arrays.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state.setdefault(int(index), {})[name] = value
    for group in groups:  # JSON turned tuples into lists
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return model_arrays, {"state": opt_state, "param_groups": groups}, state


def load_train_state(path: str | os.PathLike, model, optimizer, verify: bool = True) -> dict:
    """Restore the model and optimizer from ``path``; returns the trainer's state. All or nothing."""
    arrays, opt_state, state = read_train_state(path, verify)
    restore_train_state(path, model, optimizer, arrays, opt_state)
    return state


def restore_train_state(path, model, optimizer, arrays: dict[str, np.ndarray], opt_state: dict) -> None:
    """Load what ``read_train_state`` returned into ``model`` and ``optimizer``; every shape is checked first,
    so on any error (naming ``path``) neither has changed."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in arrays.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        shapes = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        raise CheckpointError(f"{path}: the saved model does not fit: missing {missing}, unexpected {unexpected}, "
                              f"mis-shaped {shapes}")
    try:
        optimizer.load_state_dict(opt_state)  # checks everything before it changes anything
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: the saved optimizer state does not fit: {exc}") from exc
    model.load_state_dict(arrays, strict=True)
