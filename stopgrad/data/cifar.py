"""CIFAR-10 and CIFAR-100 from the official python-pickle archives.

Archive layout (https://www.cs.toronto.edu/~kriz/cifar.html): each batch is a pickled
dict with bytes keys; ``b"data"`` is uint8 ``(N, 3072)``, one row per image holding the
1024 red, then green, then blue values of a 32x32 image in row-major order, so a
reshape to ``(N, 3, 32, 32)`` needs no transpose.
"""

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stopgrad.data.dataset import ImageDataset
from stopgrad.data.download import verify_md5
from stopgrad.data.errors import corrupt
from stopgrad.data.locate import PathLike, locate_folder
from stopgrad.data.sources import SOURCES

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"


def unpickle_verified(path: Path, md5: str) -> dict[bytes, Any]:
    """Unpickles one official CIFAR file after checking its published md5.

    Unpickling runs code chosen by whoever wrote the file, so pickle is only ever used on
    the official CIFAR files, and only after their md5 matched the published checksum.

    Raises:
        ChecksumError: The md5 differs from the official one.
        CorruptDatasetError: The file is not a pickled dict.
    """
    verify_md5(path, md5)
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise corrupt(path, f"cannot be unpickled ({error})") from error
    if not isinstance(entry, dict):
        raise corrupt(path, f"expected a pickled dict, got {type(entry).__name__}")
    return entry


def _batch(path: Path, md5: str, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    entry = unpickle_verified(path, md5)
    if b"data" not in entry or label_key not in entry:
        raise corrupt(path, f"missing key b'data' or {label_key!r}; keys are {sorted(entry)}")
    data, labels = np.asarray(entry[b"data"]), np.asarray(entry[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise corrupt(path, f"b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise corrupt(path, f"has {labels.size} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise corrupt(path, f"labels span {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}")
    return data, labels


def _class_names(path: Path, md5: str, key: bytes, num_classes: int) -> list[str]:
    meta = unpickle_verified(path, md5)
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(key, [])]
    if len(names) != num_classes:
        raise corrupt(path, f"{key!r} lists {len(names)} class names, expected {num_classes}")
    return names


def load_cifar(
    name: str, split: str, root: PathLike | None, download: bool
) -> ImageDataset:
    """Loads CIFAR-10 or CIFAR-100 (Krizhevsky 2009) as uint8 ``(N, 3, 32, 32)``.

    Args:
        name: ``"cifar10"`` (train 50,000 in 5 batches, test 10,000) or ``"cifar100"``
            (fine labels, 100 classes).
        split: ``"train"`` or ``"test"``.
        root: Data root (config ``data.root``), or None.
        download: Whether the archive may be downloaded.

    Raises:
        DatasetNotFoundError: Archive and extracted folder not found.
        ChecksumError / CorruptDatasetError: A file is not the official one.
    """
    if name == "cifar10":
        folder, meta, key, label_key, k = CIFAR10_FOLDER, "batches.meta", b"label_names", b"labels", 10
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    else:
        folder, meta, key, label_key, k = CIFAR100_FOLDER, "meta", b"fine_label_names", b"fine_labels", 100
        files = [split]
    md5 = SOURCES[name].member_md5
    base = locate_folder(name, folder, [*files, meta], root, download)
    classes = _class_names(base / meta, md5[meta], key, k)
    batches = [_batch(base / f, md5[f], label_key, k) for f in files]
    data = np.concatenate([d for d, _ in batches]) if len(batches) > 1 else batches[0][0]
    labels = np.concatenate([lab for _, lab in batches])
    return ImageDataset(
        images=torch.from_numpy(data.reshape(-1, 3, 32, 32)),  # (N, 3, 32, 32)
        labels=torch.from_numpy(labels),
        classes=classes,
        name=name,
        split=split,
    )


def load_cifar10(split: str, root: PathLike | None, download: bool, image_size: int | None) -> ImageDataset:
    """CIFAR-10. See `load_cifar`."""
    return load_cifar("cifar10", split, root, download)


def load_cifar100(split: str, root: PathLike | None, download: bool, image_size: int | None) -> ImageDataset:
    """CIFAR-100 with its 100 fine labels. See `load_cifar`."""
    return load_cifar("cifar100", split, root, download)
