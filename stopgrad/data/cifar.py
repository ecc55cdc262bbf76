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

from stopgrad.data.dataset import ImageDataset, LoadOptions
from stopgrad.data.download import verify_md5
from stopgrad.data.errors import corrupt
from stopgrad.data.locate import locate_folder
from stopgrad.data.safe_pickle import UnsafePickleError, load_arrays
from stopgrad.data.sources import SOURCES
from stopgrad.errors import UnsafeFileError

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
# CIFAR-100's two label sets: (label key in a batch, names key in meta, number of classes)
CIFAR100_LABELS = {"fine": (b"fine_labels", b"fine_label_names", 100),
                   "coarse": (b"coarse_labels", b"coarse_label_names", 20)}


def unpickle_verified(path: Path, md5: str, verify: bool = True) -> dict[bytes, Any]:
    """Reads one CIFAR file: md5 checked against the published one, then a restricted unpickle.

    The unpickler (:mod:`stopgrad.data.safe_pickle`) builds arrays, lists and dicts only, so a
    file from anywhere, official or not, cannot run code; the md5 tells a damaged or foreign file
    from the official one.

    Raises:
        ChecksumError: The md5 differs from the official one (and `verify`).
        UnsafeFileError: The pickle names a callable outside the array format (nothing ran).
        CorruptDatasetError: The file is not a pickled dict.
    """
    verify_md5(path, md5, verify)
    try:
        with open(path, "rb") as f:
            entry = load_arrays(f)
    except UnsafePickleError as error:
        raise UnsafeFileError(f"{path}: not a CIFAR batch: {error}; refused, nothing in it was run. Delete "
                              "it and fetch the official archive (data.download=true)") from error
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, RecursionError) as error:
        raise corrupt(path, f"cannot be unpickled ({type(error).__name__}: {error})") from error
    if not isinstance(entry, dict):
        raise corrupt(path, f"expected a pickled dict, got {type(entry).__name__}")
    return entry


def _batch(path: Path, md5: str, label_key: bytes, num_classes: int, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    entry = unpickle_verified(path, md5, verify)
    if b"data" not in entry or label_key not in entry:
        raise corrupt(path, f"missing key b'data' or {label_key!r}; keys are {sorted(map(repr, entry))}")
    try:
        data, labels = np.asarray(entry[b"data"]), np.asarray(entry[label_key], dtype=np.int64)
    except (ValueError, TypeError, OverflowError) as error:
        raise corrupt(path, f"labels {label_key!r} are not a list of integers ({error})") from error
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise corrupt(path, f"b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise corrupt(path, f"has {labels.size} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise corrupt(path, f"labels span {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}")
    return data, labels


def _class_names(path: Path, md5: str, key: bytes, num_classes: int, verify: bool) -> list[str]:
    meta = unpickle_verified(path, md5, verify)
    raw = meta.get(key, [])
    if not isinstance(raw, (list, tuple)):
        raise corrupt(path, f"{key!r} is not a list of class names")
    names = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in raw]
    if len(names) != num_classes:
        raise corrupt(path, f"{key!r} lists {len(names)} class names, expected {num_classes}")
    return names


def load_cifar(name: str, split: str, options: LoadOptions) -> ImageDataset:
    """Loads CIFAR-10 or CIFAR-100 (Krizhevsky 2009) as uint8 ``(N, 3, 32, 32)``.

    Args:
        name: ``"cifar10"`` (train 50,000 in 5 batches, test 10,000) or ``"cifar100"``
            (``options.label_set``: ``"fine"``, 100 classes, or ``"coarse"``, 20 superclasses).
        split: ``"train"`` or ``"test"``.
        options: ``root``, ``download``, ``verify`` and ``label_set`` are used.

    Raises:
        DatasetNotFoundError: Archive and extracted folder not found.
        ChecksumError / CorruptDatasetError: A file is not the official one.
        UnsafeFileError: A batch is a pickle that would run code (nothing ran).
    """
    if name == "cifar10":
        folder, meta, key, label_key, k = CIFAR10_FOLDER, "batches.meta", b"label_names", b"labels", 10
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    else:
        folder, meta, files = CIFAR100_FOLDER, "meta", [split]
        if options.label_set not in CIFAR100_LABELS:
            raise ValueError(f"label_set={options.label_set!r}: expected one of {', '.join(CIFAR100_LABELS)}")
        label_key, key, k = CIFAR100_LABELS[options.label_set]
    md5 = SOURCES[name].member_md5
    base = locate_folder(name, folder, [*files, meta], options)
    classes = _class_names(base / meta, md5[meta], key, k, options.verify)
    batches = [_batch(base / f, md5[f], label_key, k, options.verify) for f in files]
    data = np.concatenate([d for d, _ in batches]) if len(batches) > 1 else batches[0][0]
    labels = np.concatenate([lab for _, lab in batches])
    return ImageDataset(
        images=torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32)),  # (N, 3, 32, 32)
        labels=torch.from_numpy(labels),
        classes=classes,
        name=name,
        split=split,
    )


def load_cifar10(split: str, options: LoadOptions) -> ImageDataset:
    """CIFAR-10. See `load_cifar`."""
    return load_cifar("cifar10", split, options)


def load_cifar100(split: str, options: LoadOptions) -> ImageDataset:
    """CIFAR-100 with its 100 fine labels, or its 20 coarse ones (``label_set="coarse"``). See `load_cifar`."""
    return load_cifar("cifar100", split, options)
