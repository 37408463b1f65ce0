"""Fixtures the command-line tests share: a tiny MNIST in IDX files and a small text corpus."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A folder holding a tiny MNIST (512 training images) in IDX files, for --data-dir."""
    from test_cli import write_mnist

    return str(write_mnist(tmp_path_factory.mktemp("mnist") / "data"))


@pytest.fixture
def text_file(tmp_path):
    """A 2,000-word text of four two-letter words: a corpus `ember train gpt --data` trains on in seconds."""
    path = tmp_path / "words.txt"
    path.write_text(" ".join(np.random.default_rng(0).choice(["ab", "cd", "ef", "gh"], 2000)), encoding="utf-8")
    return path
