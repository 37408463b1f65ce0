"""Content hashes of the tensors in ember's files, because safetensors itself has no checksum.

A bit flip inside a tensor's bytes leaves a safetensors file perfectly readable: the header still
parses and the sizes still match, so without a hash the damaged weights would load silently. ember
stores one SHA-256 per tensor (over its dtype, shape and bytes) in the file's metadata and checks
each on load; a mismatch names the file and the tensor. ``verify=False`` (``--no-verify``) skips the
check for files too large to hash at every load.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

HASH_KEY = "sha256"  # metadata key: JSON object {tensor name: hex digest}


def tensor_digest(array: np.ndarray) -> str:
    h = hashlib.sha256(f"{array.dtype.str}{tuple(array.shape)}".encode())
    h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return h.hexdigest()


def digest_metadata(arrays: dict[str, np.ndarray]) -> str:
    """The metadata value recording every tensor's digest."""
    return json.dumps({name: tensor_digest(a) for name, a in sorted(arrays.items())})


def verify_digests(path: str | os.PathLike, arrays: dict[str, np.ndarray], recorded: str | None, error) -> None:
    """Raise ``error(message)`` unless every tensor in ``arrays`` has the digest recorded at save time."""
    if recorded is None:
        raise error(f"{path}: no content hashes in its metadata (written by a tool that strips them?); "
                    f"load it with verify=False (--no-verify) if you trust it")
    try:
        expected = json.loads(recorded)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: corrupt content-hash metadata: {exc}") from None
    if not isinstance(expected, dict) or set(expected) != set(arrays):
        names = set(expected) if isinstance(expected, dict) else set()
        raise error(f"{path}: the tensors do not match the recorded hashes: missing "
                    f"{sorted(names - set(arrays))}, unrecorded {sorted(set(arrays) - names)}")
    for name in sorted(arrays):
        if tensor_digest(arrays[name]) != expected[name]:
            raise error(f"{path}: tensor {name!r} is corrupt: its content does not match the hash recorded when it "
                        f"was saved (a damaged file; restore it from a copy, or load with --no-verify to accept it)")
