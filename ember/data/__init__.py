"""Data: datasets, batching, the IDX and CIFAR-10 readers, and the registry that finds or downloads datasets."""

from .cifar import load_cifar10, read_cifar10_batch
from .dataset import Dataset, TensorDataset
from .errors import DatasetError, DatasetNotFoundError
from .idx import read_idx, read_idx_pair
from .loader import DataLoader, default_collate
from .registry import DATASETS, load, locate, search_paths
from .vision import IMAGE_DATASETS, image_classification

__all__ = [
    "DATASETS",
    "IMAGE_DATASETS",
    "DataLoader",
    "Dataset",
    "DatasetError",
    "DatasetNotFoundError",
    "TensorDataset",
    "default_collate",
    "image_classification",
    "load",
    "load_cifar10",
    "locate",
    "read_cifar10_batch",
    "read_idx",
    "read_idx_pair",
    "search_paths",
]
