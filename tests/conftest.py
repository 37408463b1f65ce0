"""Shared fixtures: PyTorch as a reference (skipped with a reason when absent), real data paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import ember


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CuPy sees a CUDA GPU (CI has none)."""
    if ember.cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU here (needs CuPy and a visible GPU): run benchmarks/gpu_check.sh")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def torch():
    """The PyTorch module, for reference comparisons only (2 threads, float64 where it matters)."""
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for parity tests: pip install -e '.[test]'")
    torch.set_num_threads(2)
    return torch


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)
    yield


def data_root() -> Path | None:
    root = os.environ.get("EMBER_DATA")
    return Path(root) if root else None


@pytest.fixture(scope="session")
def ember_data() -> Path | None:
    """The real-data folder from $EMBER_DATA (None when unset)."""
    return data_root()


@pytest.fixture
def mnist_dir():
    root = data_root()
    if root is None or not (root / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("real MNIST not found: set EMBER_DATA to a folder with mnist/ (e.g. ../shared/data)")
    return root


def to_numpy64(t) -> np.ndarray:
    return np.asarray(t.numpy(), dtype=np.float64)
