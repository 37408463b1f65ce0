"""The registry on the real MNIST and Fashion-MNIST files (skipped unless EMBER_DATA has them; never downloads)."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from ember.data import DATASETS, load
from ember.data.registry import IDX_FILES

# From shared/data/README.md, copied here rather than read from the registry, so a typo there shows.
README_MNIST_T10K_LABELS_SHA256 = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"


@pytest.fixture(autouse=True)
def _no_real_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EMBER_DATASET_MIRROR", "http://127.0.0.1:9")  # discard port: a download would fail fast


@pytest.fixture
def fashion_dir(mnist_dir):
    if not (mnist_dir / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real Fashion-MNIST not found under {mnist_dir}/fashion-mnist")
    return mnist_dir


def test_mnist_train(mnist_dir):
    images, labels = load("mnist", "train", download=False)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.int64
    assert sorted(np.unique(labels).tolist()) == list(range(10))
    assert images.max() == 255 and images.min() == 0


def test_fashion_mnist_test(fashion_dir):
    images, labels = load("fashion-mnist", "test", download=False)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10  # the test set is balanced


def test_mnist_test_labels_match_readme(mnist_dir):
    content = gzip.decompress((mnist_dir / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.sha256(content).hexdigest() == README_MNIST_T10K_LABELS_SHA256
    assert DATASETS["mnist"].checksums["t10k-labels-idx1-ubyte.gz"].digest == README_MNIST_T10K_LABELS_SHA256


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("filename", IDX_FILES)
def test_registry_checksums_match_local_files(mnist_dir, name, filename):
    """Every content checksum in the registry verifies the real file (so downloads would verify too)."""
    path = mnist_dir / name / f"{filename}.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    assert digest == DATASETS[name].checksums[f"{filename}.gz"].digest
