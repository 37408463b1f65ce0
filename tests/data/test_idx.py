"""IDX reader: round trips over every type code, and an error naming the file for each way a file can be broken."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ember.data import DatasetError, DatasetNotFoundError, read_idx, read_idx_pair


def named(path, text: str) -> str:
    """A pytest.raises pattern: the message names ``path`` and contains ``text``."""
    return f"{re.escape(str(path))}.*{re.escape(text)}"


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "dtype, low, high",
    [("uint8", 0, 255), ("int8", -128, 127), ("int16", -30000, 30000), ("int32", -(2**31), 2**31 - 1),
     ("float32", -1e6, 1e6), ("float64", -1e300, 1e300)],
)
def test_round_trip(tmp_path, write_idx, gz, dtype, low, high):
    rng = np.random.default_rng(0)
    if dtype.startswith("float"):
        array = rng.uniform(low, high, size=(3, 4, 5)).astype(dtype)
    else:
        array = rng.integers(low, high, size=(3, 4, 5), endpoint=True).astype(dtype)
    path = write_idx(tmp_path / "x-idx3", array, gz=gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, array)


def test_big_endian_values(tmp_path):
    """Bytes 01 02 03 04 are the int32 0x01020304 whatever the machine's byte order."""
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 1, 2, 3, 4]))
    assert read_idx(path).tolist() == [0x01020304]


@given(arrays(st.sampled_from([np.uint8, np.int16, np.float32, np.float64]),
              st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple)))
@settings(max_examples=40, deadline=None)
def test_round_trip_any_shape(tmp_path_factory, idx_bytes, array):
    path = tmp_path_factory.mktemp("idx") / "x"
    path.write_bytes(idx_bytes(array))
    out = read_idx(path)
    assert out.shape == array.shape and out.dtype == array.dtype
    np.testing.assert_array_equal(out, array)


def test_gzip_detected_by_magic_not_name(tmp_path, write_idx):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_named_raw = write_idx(tmp_path / "raw-but-named.gz", array, gz=False)
    raw_named_gz = write_idx(tmp_path / "gzipped-but-named.bin", array, gz=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), array)
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)


@pytest.mark.parametrize(
    "header, problem",
    [(b"\x01\x00\x08\x01", "should start with two zero bytes"),
     (b"\x00\x07\x08\x01", "should start with two zero bytes"),
     (b"\x00\x00\x07\x01", "unknown type code 0x07")],
)
def test_wrong_magic(tmp_path, header, problem):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(header + b"\x00\x00\x00\x02ab")
    with pytest.raises(DatasetError, match=named(path, "not an IDX file")) as info:
        read_idx(path)
    assert problem in str(info.value)


def test_too_short_for_magic(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match=named(path, "not an IDX file: 2 bytes, shorter than the 4-byte magic")):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_truncated_payload(tmp_path, idx_bytes, gz):
    data = idx_bytes(np.zeros((3, 4, 5), np.uint8))[:-1]
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DatasetError, match=named(path, "truncated: header says 3x4x5 = 60 bytes of data, file has 59")):
        read_idx(path)


def test_truncated_payload_names_dtype(tmp_path, idx_bytes):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((2, 3), np.float32))[:-4])
    with pytest.raises(DatasetError, match=named(path, "header says 2x3 float32 = 24 bytes of data, file has 20")):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(DatasetError, match=named(path, "truncated: header declares 3 dimensions (16 header bytes)")):
        read_idx(path)


def test_trailing_bytes(tmp_path, idx_bytes):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)) + b"xy")
    problem = "2 trailing bytes: header says 5 = 5 bytes of data, file has 7"
    with pytest.raises(DatasetError, match=named(path, problem)):
        read_idx(path)


def test_truncated_gzip(tmp_path, write_idx):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.arange(4000, dtype=np.int32), gz=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=named(path, "corrupt or truncated gzip stream")):
        read_idx(path)


def test_corrupt_gzip(tmp_path, write_idx):
    path = write_idx(tmp_path / "x.gz", np.arange(4000, dtype=np.int32), gz=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=named(path, "corrupt or truncated gzip stream")):
        read_idx(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope-idx3-ubyte.gz"
    with pytest.raises(DatasetNotFoundError, match=named(path, "no such file")) as info:
        read_idx(path)
    assert isinstance(info.value, FileNotFoundError)


# ----------------------------------------------------------------------------- pairs


@pytest.fixture
def pair(tmp_path, write_idx):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    labels = np.array([0, 3, 1, 2, 3, 0], dtype=np.uint8)
    return (write_idx(tmp_path / "images.gz", images, gz=True), write_idx(tmp_path / "labels", labels), images, labels)


def test_pair(pair):
    images_path, labels_path, images, labels = pair
    x, y = read_idx_pair(images_path, labels_path, num_classes=4)
    assert x.dtype == np.uint8 and x.shape == (6, 5, 4)
    assert y.dtype == np.int64 and y.shape == (6,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_pair_count_mismatch_names_both_files(tmp_path, write_idx, pair):
    images_path, _, _, _ = pair
    labels_path = write_idx(tmp_path / "other-labels", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError) as info:
        read_idx_pair(images_path, labels_path)
    message = str(info.value)
    assert f"{images_path} has 6 images" in message and f"{labels_path} has 5 labels" in message


def test_pair_label_out_of_range(pair):
    images_path, labels_path, _, _ = pair
    with pytest.raises(DatasetError, match=named(labels_path, "label 3 at index 1 is outside 0..2 (2 of 6 labels")):
        read_idx_pair(images_path, labels_path, num_classes=3)


def test_pair_rejects_wrong_ranks_and_types(tmp_path, write_idx, pair):
    images_path, labels_path, _, _ = pair
    flat = write_idx(tmp_path / "flat", np.zeros((6, 20), np.uint8))
    floats = write_idx(tmp_path / "floats", np.zeros((6, 5, 4), np.float32))
    with pytest.raises(DatasetError, match=named(flat, "expected images as uint8 of shape (N, H, W)")):
        read_idx_pair(flat, labels_path)
    with pytest.raises(DatasetError, match=named(floats, "got float32 of shape (6, 5, 4)")):
        read_idx_pair(floats, labels_path)
    with pytest.raises(DatasetError, match=named(images_path, "expected labels as integers of shape (N,)")):
        read_idx_pair(labels_path, images_path)
