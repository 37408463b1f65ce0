"""Writers for small IDX and CIFAR-10 files, so the readers are tested on bytes we control."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

IDX_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX, written independently of the reader: struct for the header, '>' for the data."""
    header = bytes([0, 0, IDX_CODES[array.dtype.name], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def cifar_bytes(labels: list[int], images: np.ndarray) -> bytes:
    """CIFAR-10 records, one byte at a time in the documented order (label, red rows, green rows, blue rows)."""
    out = bytearray()
    for label, image in zip(labels, images):
        out.append(label)
        for channel in range(3):
            for row in range(32):
                for col in range(32):
                    out.append(int(image[channel, row, col]))
    return bytes(out)


@pytest.fixture(name="idx_bytes", scope="session")
def idx_bytes_fixture():
    """The IDX encoder, for tests that need the bytes themselves (to cut or corrupt them)."""
    return idx_bytes


@pytest.fixture
def write_idx():
    """write_idx(path, array, gz=False) -> path: an IDX file, gzipped when asked."""

    def write(path: Path, array: np.ndarray, gz: bool = False) -> Path:
        data = idx_bytes(array)
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    return write


@pytest.fixture
def write_cifar():
    """write_cifar(path, labels, images, gz=False) -> path: a CIFAR-10 batch file."""

    def write(path: Path, labels: list[int], images: np.ndarray, gz: bool = False) -> Path:
        data = cifar_bytes(labels, images)
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    return write
