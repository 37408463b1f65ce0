"""CIFAR-10 binary reader: exact channel/row layout and labels, and the errors for broken or missing files."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ember.data import DatasetError, DatasetNotFoundError, load_cifar10, read_cifar10_batch


def pattern_image(seed: int) -> np.ndarray:
    """An image whose every pixel encodes (seed, channel, row, column), so a misplaced byte shows."""
    c, r, x = np.indices((3, 32, 32))
    return ((seed * 7 + c * 85 + r * 5 + x) % 256).astype(np.uint8)


def test_layout_and_labels(tmp_path, write_cifar):
    path = write_cifar(tmp_path / "data_batch_1.bin", [3, 0, 9], np.stack([pattern_image(i) for i in range(3)]))
    raw = path.read_bytes()
    images, labels = read_cifar10_batch(path)
    assert images.dtype == np.uint8 and images.shape == (3, 3, 32, 32)
    assert labels.dtype == np.int64 and labels.tolist() == [3, 0, 9]
    # Against the documented byte offsets, independently of any reshape:
    # record n starts at 3073 n; its label, then red rows, green rows, blue rows, 32 bytes per row.
    for n in range(3):
        start = 3073 * n
        assert raw[start] == labels[n]
        assert images[n, 0, 0, :].tolist() == list(raw[start + 1 : start + 33])  # first red row
        assert images[n, 0, 1, 0] == raw[start + 1 + 32]  # second red row
        assert images[n, 1, 0, 0] == raw[start + 1 + 1024]  # first green byte
        assert images[n, 2, 31, 31] == raw[start + 3072]  # last blue byte
        np.testing.assert_array_equal(images[n], pattern_image(n))


def test_gzipped_batch(tmp_path, write_cifar):
    path = write_cifar(tmp_path / "test_batch.bin.gz", [5], pattern_image(4)[None], gz=True)
    images, labels = read_cifar10_batch(path)
    np.testing.assert_array_equal(images[0], pattern_image(4))
    assert labels.tolist() == [5]


@pytest.mark.parametrize("cut", [1, 3072, 3074])
def test_truncated(tmp_path, write_cifar, cut):
    path = write_cifar(tmp_path / "data_batch_2.bin", [1, 2], np.stack([pattern_image(0)] * 2))
    path.write_bytes(path.read_bytes()[:-cut])
    size = 2 * 3073 - cut
    with pytest.raises(DatasetError, match=re.escape(f"{path}: truncated or not a CIFAR-10 batch: {size} bytes")):
        read_cifar10_batch(path)


def test_empty_file(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=re.escape(f"{path}: truncated or not a CIFAR-10 batch: 0 bytes")):
        read_cifar10_batch(path)


def test_bad_label(tmp_path, write_cifar):
    path = write_cifar(tmp_path / "data_batch_3.bin", [1, 10, 255], np.stack([pattern_image(0)] * 3))
    with pytest.raises(DatasetError, match=re.escape(f"{path}: label 10 at index 1 is outside 0..9 (2 of 3 labels")):
        read_cifar10_batch(path)


# ----------------------------------------------------------------------------- load_cifar10


@pytest.fixture
def cifar_dir(tmp_path, write_cifar):
    """Five training batches of two images (labels 0..9 in order) and a test batch of one."""
    folder = tmp_path / "cifar"
    folder.mkdir()
    for b in range(5):
        labels = [2 * b, 2 * b + 1]
        write_cifar(folder / f"data_batch_{b + 1}.bin", labels, np.stack([pattern_image(i) for i in labels]))
    write_cifar(folder / "test_batch.bin", [7], pattern_image(70)[None])
    return folder


def test_load_train_concatenates_batches_in_order(cifar_dir):
    images, labels = load_cifar10(cifar_dir, "train")
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == list(range(10))
    for i in range(10):
        np.testing.assert_array_equal(images[i], pattern_image(i))


def test_load_test(cifar_dir):
    images, labels = load_cifar10(cifar_dir, "test")
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [7]
    np.testing.assert_array_equal(images[0], pattern_image(70))


def test_load_from_archive_folder(cifar_dir, tmp_path):
    """The official archive unpacks into cifar-10-batches-bin/; pointing at its parent works too."""
    parent = tmp_path / "parent"
    parent.mkdir()
    cifar_dir.rename(parent / "cifar-10-batches-bin")
    assert load_cifar10(parent, "test")[1].tolist() == [7]


def test_missing_files_are_listed(cifar_dir):
    (cifar_dir / "data_batch_3.bin").unlink()
    (cifar_dir / "data_batch_5.bin").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(cifar_dir, "train")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "missing data_batch_3.bin, data_batch_5.bin" in message
    assert str(cifar_dir) in message and str(cifar_dir / "cifar-10-batches-bin") in message
    assert "data_batch_1.bin" not in message


def test_unknown_split(cifar_dir):
    with pytest.raises(DatasetError, match="unknown split 'validation'"):
        load_cifar10(cifar_dir, "validation")
