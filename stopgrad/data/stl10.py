"""STL-10 from the official binary archive (Coates, Lee & Ng, AISTATS 2011).

``stl10_binary/*_X.bin`` hold uint8 images of 3x96x96 with each channel stored
column-major, so after a reshape to ``(N, 3, 96, 96)`` the last two axes are swapped.
``*_y.bin`` hold one uint8 label per image, 1..10.
"""

from pathlib import Path

import numpy as np
import torch

from stopgrad.data.dataset import ImageDataset, LoadOptions
from stopgrad.data.errors import corrupt
from stopgrad.data.locate import locate_folder

STL10_FOLDER = "stl10_binary"
_SHAPE = (3, 96, 96)
_IMAGE_BYTES = 3 * 96 * 96
_SPLIT_FILES: dict[str, list[tuple[str, str | None]]] = {
    "train": [("train_X.bin", "train_y.bin")],
    "test": [("test_X.bin", "test_y.bin")],
    "unlabeled": [("unlabeled_X.bin", None)],
    "train+unlabeled": [("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)],
}


def _count(path: Path) -> int:
    size = path.stat().st_size
    if size % _IMAGE_BYTES:
        raise corrupt(path, f"size {size} is not a multiple of one 3x96x96 image ({_IMAGE_BYTES} bytes)")
    return size // _IMAGE_BYTES


def read_images_into(path: Path, out: torch.Tensor, chunk: int = 2048) -> None:
    """Reads an STL-10 ``*_X.bin`` into `out` (uint8 ``(n, 3, 96, 96)``), in chunks.

    Filling a preallocated tensor keeps the peak memory at the size of the data even
    for the 100,000-image unlabeled split (2.8 GB).
    """
    with open(path, "rb") as f:
        for start in range(0, len(out), chunk):
            n = min(chunk, len(out) - start)
            buf = np.fromfile(f, dtype=np.uint8, count=n * _IMAGE_BYTES)
            if buf.size != n * _IMAGE_BYTES:
                raise corrupt(path, "truncated while reading")
            column_major = torch.from_numpy(buf.reshape(n, *_SHAPE))  # (n, C, W, H)
            out[start : start + n] = column_major.transpose(2, 3)  # (n, C, H, W)


def read_labels(path: Path, count: int, images: Path) -> np.ndarray:
    """Reads an STL-10 ``*_y.bin`` and shifts labels 1..10 to 0..9."""
    labels = np.fromfile(path, dtype=np.uint8)
    if len(labels) != count:
        raise corrupt(path, f"has {len(labels)} labels but {images} has {count} images")
    if len(labels) and (labels.min() < 1 or labels.max() > 10):
        raise corrupt(path, f"labels span {labels.min()}..{labels.max()}, expected 1..10")
    return labels.astype(np.int64) - 1


def load_stl10(split: str, options: LoadOptions) -> ImageDataset:
    """Loads STL-10 as uint8 ``(N, 3, 96, 96)``.

    Args:
        split: ``"train"`` (5,000 labeled), ``"test"`` (8,000), ``"unlabeled"`` (100,000,
            labels -1) or ``"train+unlabeled"`` (105,000, for pre-training).
        options: ``root``, ``download`` (the 2.6 GB archive) and ``verify`` are used;
            `load_dataset` resizes to ``image_size``.

    Raises:
        DatasetNotFoundError: Archive and extracted folder not found.
        CorruptDatasetError: A file's size or labels do not fit the format.
    """
    pairs = _SPLIT_FILES[split]
    needed = [f for pair in pairs for f in pair if f] + ["class_names.txt"]
    base = locate_folder("stl10", STL10_FOLDER, needed, options)
    counts = [_count(base / x) for x, _ in pairs]
    images = torch.empty((sum(counts), *_SHAPE), dtype=torch.uint8)
    labels, start = [], 0
    for (x_name, y_name), n in zip(pairs, counts):
        read_images_into(base / x_name, images[start : start + n])
        if y_name is None:
            labels.append(np.full(n, -1, dtype=np.int64))
        else:
            labels.append(read_labels(base / y_name, n, base / x_name))
        start += n
    names_file = base / "class_names.txt"
    classes = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    if len(classes) != 10:
        raise corrupt(names_file, f"lists {len(classes)} class names, expected 10")
    return ImageDataset(images, torch.from_numpy(np.concatenate(labels)), classes, "stl10", split)
