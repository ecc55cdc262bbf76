"""Datasets as resident uint8 tensors: IDX (MNIST, Fashion-MNIST), CIFAR pickles,
STL-10 binaries, ImageNet-style image folders and a synthetic toy set, with file search,
md5-verified downloads and safe archive extraction.

Examples:
    >>> from stopgrad.data import load_dataset
    >>> ds = load_dataset("synthetic", "test")
    >>> len(ds), ds.classes[0]
    (200, 'pattern-0')
"""

from stopgrad.data.dataset import ImageDataset
from stopgrad.data.errors import (
    ChecksumError,
    CorruptDatasetError,
    DatasetLayoutError,
    DatasetNotFoundError,
    UnsafeArchiveError,
)
from stopgrad.data.registry import DATASETS, DatasetInfo, load_dataset

__all__ = [
    "DATASETS",
    "ChecksumError",
    "CorruptDatasetError",
    "DatasetInfo",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "ImageDataset",
    "UnsafeArchiveError",
    "load_dataset",
]
