"""IDX files, the format of MNIST, Fashion-MNIST and KMNIST.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values, big-endian and row-major. The files are
usually gzipped. We recognise gzip by its magic bytes rather than by the file name, because
mirrors, package managers and users rename (and sometimes recompress) these files.

Every check here exists because a truncated or mislabelled file would otherwise turn into a
silently wrong array or a confusing reshape error deep inside a training loop.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError, DatasetNotFoundError

GZIP_MAGIC = b"\x1f\x8b"

# Type code -> on-disk dtype (always big-endian).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_maybe_gzipped(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed when they start with the gzip magic (whatever the file is called)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt or truncated gzip stream ({len(raw)} compressed bytes): {exc}") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian array of the shape its header declares.

    Raises DatasetError, naming the file, for a bad magic number, an unknown type code, a broken
    gzip stream, or a payload shorter or longer than the dimensions say.
    """
    path = Path(path)
    data = read_maybe_gzipped(path)
    dtype, shape, offset = _parse_header(path, data)
    count = math.prod(shape)
    expected, actual = count * dtype.itemsize, len(data) - offset
    if actual != expected:
        problem = "truncated" if actual < expected else f"{actual - expected} trailing bytes"
        raise DatasetError(
            f"{path}: {problem}: header says {_describe(shape, dtype)} = {expected} bytes of data, file has {actual}"
        )
    values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def _parse_header(path: Path, data: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (on-disk dtype, shape, offset of the first value), or raise on a malformed header."""
    if len(data) < 4:
        raise DatasetError(f"{path}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0":
        raise DatasetError(
            f"{path}: not an IDX file: magic number 0x{data[:4].hex()} should start with two zero bytes"
        )
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x} {t.name}" for c, t in IDX_TYPES.items())
        raise DatasetError(f"{path}: not an IDX file: unknown type code 0x{code:02x} (known: {known})")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DatasetError(
            f"{path}: truncated: header declares {ndim} dimensions ({offset} header bytes), file has {len(data)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return IDX_TYPES[code], shape, offset


def _describe(shape: tuple[int, ...], dtype: np.dtype) -> str:
    dims = "x".join(str(d) for d in shape) or "a scalar"
    return dims if dtype.itemsize == 1 else f"{dims} {dtype.newbyteorder('=').name}"


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read an image file and its label file: (uint8 images (N, H, W), int64 labels (N,)).

    Checks what a reader of one file cannot: that the counts agree (a swapped train/test file
    otherwise pairs images with the wrong labels), and, given ``num_classes``, that every label
    is in ``0 .. num_classes - 1``.
    """
    labels = read_idx(labels_path)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DatasetError(
            f"{labels_path}: expected labels as integers of shape (N,), got {labels.dtype} of shape {labels.shape}"
        )
    images = read_idx(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{images_path}: expected images as uint8 of shape (N, H, W), got {images.dtype} of shape {images.shape}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            "they must match one to one (are they from the same split?)"
        )
    labels = labels.astype(np.int64)
    if num_classes is not None:
        check_label_range(labels_path, labels, num_classes)
    return images, labels


def check_label_range(path: str | os.PathLike, labels: np.ndarray, num_classes: int) -> None:
    """Raise DatasetError naming ``path`` and the first offending label unless all are in 0..num_classes-1."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"{path}: label {int(labels[i])} at index {i} is outside 0..{num_classes - 1} "
            f"({bad.size} of {labels.size} labels out of range)"
        )
