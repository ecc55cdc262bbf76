"""Image folders in the ImageNet layout, decoded once and kept resident as uint8.

Layout: ``root/train/<class>/*.JPEG`` and ``root/val/<class>/*`` (ImageNet, ImageNet-100).
Every image is converted to RGB, its shorter side resized to `image_size`, and center
cropped to ``image_size x image_size``.

Memory is ``N * 3 * image_size**2`` bytes: ImageNet-100 (126,689 train images) takes 1.6 GB
at 64 px and 19 GB at 224 px; full ImageNet (1.28 M images) takes 16 GB at 64 px and
193 GB at 224 px, so full ImageNet does not fit this way; use ImageNet-100 or a small
`image_size`.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from stopgrad.data.dataset import ImageDataset
from stopgrad.data.errors import DatasetNotFoundError, corrupt
from stopgrad.data.locate import PathLike

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff"})
DEFAULT_IMAGE_SIZE = 64
SPLIT_FOLDERS = {"train": "train", "test": "val"}


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decodes one image to RGB uint8 ``(size, size, 3)``: shorter side to `size`, center crop.

    Raises:
        CorruptDatasetError: PIL cannot read the file.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale >= size, much faster
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
            if (new_w, new_h) != (w, h):
                img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            return np.array(img.crop((left, top, left + size, top + size)))  # writable copy
    except OSError as error:  # PIL.UnidentifiedImageError is an OSError
        raise corrupt(path, f"cannot be decoded as an image ({error})") from error


def class_dirs(folder: Path) -> list[Path]:
    """Sub-folders of `folder`, sorted by name, hidden ones (".ipynb_checkpoints") skipped."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def list_images(split_dir: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Image files under ``split_dir/<class>/``, sorted, with their class indices."""
    index = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for class_dir in class_dirs(split_dir):
        if class_dir.name not in index:
            raise ValueError(
                f"{class_dir}: class {class_dir.name!r} is not among the {len(classes)} classes "
                f"of {split_dir.parent / 'train'}; val/ must use the class folders of train/."
            )
        found = sorted(
            p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        files += found
        labels += [index[class_dir.name]] * len(found)
    return files, labels


def load_image_folder(
    split: str, root: PathLike | None, download: bool, image_size: int | None, workers: int | None = None
) -> ImageDataset:
    """Decodes an ImageNet-layout folder into a resident uint8 ``(N, 3, S, S)`` dataset.

    Classes are the sorted folder names of ``root/train`` (of ``root/val`` if there is no
    train folder). Decoding runs in threads (PIL releases the GIL) with a progress bar.
    See the module docstring for memory use: full ImageNet does not fit this way.

    Args:
        split: ``"train"`` reads ``root/train``, ``"test"`` reads ``root/val``.
        root: The folder holding ``train/`` and ``val/``; required.
        download: Ignored; image folders are never downloaded.
        image_size: Output side S (default 64).
        workers: Decoding threads (default: up to 8, one per CPU).

    Raises:
        DatasetNotFoundError: `root` not given, split folder or images missing.
        ValueError: ``val/`` has a class folder that ``train/`` lacks.
        CorruptDatasetError: An image cannot be decoded.
    """
    if root is None:
        raise DatasetNotFoundError(
            "image-folder: no root given; pass root=<folder> (config data.root) holding "
            "train/<class>/*.JPEG and val/<class>/* (the ImageNet layout)."
        )
    base = Path(root).expanduser()
    split_dir = base / SPLIT_FOLDERS[split]
    if not split_dir.is_dir():
        raise DatasetNotFoundError(
            f"image-folder: {split_dir} does not exist; split {split!r} reads "
            f"<root>/{SPLIT_FOLDERS[split]}/<class>/*. Check root={str(root)!r} (data.root)."
        )
    class_root = base / "train" if (base / "train").is_dir() else split_dir
    classes = [d.name for d in class_dirs(class_root)]
    files, labels = list_images(split_dir, classes)
    if not files:
        raise DatasetNotFoundError(
            f"image-folder: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in "
            f"{split_dir}/<class>/; check root={str(root)!r} (data.root)."
        )
    size = image_size or DEFAULT_IMAGE_SIZE
    images = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        decoded = pool.map(decode_image, files, [size] * len(files))
        for i, array in enumerate(tqdm(decoded, total=len(files), desc=f"decode {split_dir}")):
            images[i] = torch.from_numpy(array).permute(2, 0, 1)  # (3, S, S)
    return ImageDataset(images, torch.tensor(labels, dtype=torch.int64), classes, "image-folder", split)
