"""Image-classification datasets as ready-to-train float32 tensors."""

from __future__ import annotations

import numpy as np

from .dataset import TensorDataset
from .registry import load

IMAGE_DATASETS = ("mnist", "fashion-mnist", "kmnist", "cifar10")


def image_classification(name: str, split: str, data_dir=None, download: bool = True,
                         stats: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[TensorDataset, tuple]:
    """Load ``split`` of an image dataset as (N, C, H, W) float32, standardised per channel.

    The per-channel mean and std come from ``stats`` when given (pass the training split's,
    returned by the first call, when loading the test split), else from this split.
    Returns (dataset of (images, labels int64), (mean, std)).
    """
    if name not in IMAGE_DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; choose one of {IMAGE_DATASETS}")
    images, labels = load(name, split, data_dir=data_dir, download=download)
    if images.ndim == 3:
        images = images[:, None]  # (N, 1, H, W)
    x = images.astype(np.float32)
    x *= 1.0 / 255.0
    if stats is None:
        mean = x.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
        std = x.std(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)
        stats = (mean, std)
    mean, std = stats
    x -= mean.reshape(1, -1, 1, 1)
    x /= std.reshape(1, -1, 1, 1)
    return TensorDataset(x, labels.astype(np.int64)), stats
