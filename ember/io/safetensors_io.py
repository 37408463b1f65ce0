"""Reading safetensors files into NumPy arrays, including the bfloat16 tensors NumPy has no dtype for.

Hugging Face checkpoints are often stored in bfloat16. bfloat16 is the upper half of a float32, so
each value widens to float32 exactly: its 16 bits become the high bits of a 32-bit word.
"""

from __future__ import annotations

import json
import os

import numpy as np


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays by name, metadata) of a safetensors file; bfloat16 tensors come back as float32.

    Raises what ``safetensors`` raises for unreadable files (``SafetensorError``, ``OSError``,
    ``ValueError``), so callers keep one ``except`` that names the file.
    """
    from safetensors import safe_open

    arrays, bf16 = {}, []
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata() or {})
        for name in f.keys():
            if f.get_slice(name).get_dtype() == "BF16":
                bf16.append(name)
            else:
                arrays[name] = f.get_tensor(name)
    if bf16:
        arrays.update(_read_bfloat16(path, bf16))
    return arrays, metadata


def _read_bfloat16(path, names) -> dict[str, np.ndarray]:
    """The named BF16 tensors, widened to float32, read from the file's header and byte ranges."""
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
        out = {}
        for name in names:
            info = header[name]
            start, end = info["data_offsets"]
            fh.seek(8 + header_len + start)
            raw = np.frombuffer(fh.read(end - start), dtype="<u2")
            if raw.size != int(np.prod(info["shape"])):
                raise ValueError(f"{path}: tensor {name!r} is truncated ({raw.size} of {int(np.prod(info['shape']))} "
                                 "bfloat16 values)")
            out[name] = (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])
    return out
