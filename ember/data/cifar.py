"""CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html).

Each batch file is a run of 3073-byte records with nothing between them: one label byte (0-9),
then 3072 pixel bytes, the 1024 red values of the 32x32 image row-major, then green, then blue.
That is already channels-first, so a batch is one reshape to (N, 3, 32, 32). We read this
version rather than the Python one because it needs no unpickling of downloaded files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import DatasetError, DatasetNotFoundError
from .idx import check_label_range, read_maybe_gzipped

RECORD_BYTES = 1 + 3 * 32 * 32
NUM_CLASSES = 10
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
# The folder the official archive unpacks to; load_cifar10 also looks there.
ARCHIVE_DIR = "cifar-10-batches-bin"


def cifar10_files(split: str) -> tuple[str, ...]:
    """The batch files that make up ``split`` ("train": the five data batches; "test": the test batch)."""
    if split == "train":
        return TRAIN_FILES
    if split == "test":
        return TEST_FILES
    raise DatasetError(f"CIFAR-10: unknown split {split!r}; expected 'train' or 'test'")


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file (raw or gzipped): (uint8 images (N, 3, 32, 32), int64 labels (N,)).

    Raises DatasetError, naming the file, when its size is not a whole number of records
    (a truncated copy) or a label byte is not 0-9 (not a CIFAR-10 file, or corrupted).
    """
    path = Path(path)
    data = read_maybe_gzipped(path)
    count, extra = divmod(len(data), RECORD_BYTES)
    if extra or not count:
        raise DatasetError(
            f"{path}: truncated or not a CIFAR-10 batch: {len(data)} bytes is not a positive multiple of the "
            f"{RECORD_BYTES}-byte record ({count} whole records and {extra} bytes left over)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(count, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    check_label_range(path, labels, NUM_CLASSES)
    return records[:, 1:].reshape(count, 3, 32, 32).copy(), labels


def read_cifar10_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read several batch files and concatenate them in order."""
    batches = [read_cifar10_batch(p) for p in paths]
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def load_cifar10(directory: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load a split from ``directory`` (or its ``cifar-10-batches-bin/`` subfolder, as the archive unpacks).

    Returns uint8 images (N, 3, 32, 32) and int64 labels (N,): 50000 for "train", 10000 for "test".
    Raises DatasetNotFoundError listing every missing batch file and the folders searched.
    """
    directory = Path(directory)
    folders = [directory, directory / ARCHIVE_DIR]
    found, missing = [], []
    for name in cifar10_files(split):
        path = next((f / name for f in folders if (f / name).is_file()), None)
        (found if path else missing).append(path or name)
    if missing:
        where = " and ".join(str(f) for f in folders)
        raise DatasetNotFoundError(
            f"{directory}: CIFAR-10 {split} split is missing {', '.join(missing)} (looked in {where})"
        )
    return read_cifar10_batches(found)
