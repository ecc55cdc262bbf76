"""Image folders in the ImageNet layout, decoded once and kept resident as uint8.

Layout: ``root/train/<class>/*.JPEG`` and ``root/val/<class>/*`` (ImageNet, ImageNet-100).
Images below a class folder are found recursively (``<class>/a/b/x.png`` is of ``<class>``);
hidden files and folders are skipped; an image directly in ``train/`` or ``val/``, outside any
class folder, is an error. Every image is converted to RGB (16-bit grayscale scaled to 8 bits,
not clipped), its shorter side resized to `image_size`, and center cropped to
``image_size x image_size``.

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

from stopgrad.data.dataset import ImageDataset, LoadOptions
from stopgrad.data.errors import DatasetLayoutError, DatasetNotFoundError, bad_image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff"})
DEFAULT_IMAGE_SIZE = 64
SPLIT_FOLDERS = {"train": "train", "test": "val"}


SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB of any PIL image; 16-bit grayscale (modes ``I;16*``, and ``I`` read as 16-bit) is
    scaled by 255/65535 first, where PIL's own conversion would clip every value above 255."""
    if img.mode in SIXTEEN_BIT_MODES:
        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decodes one image to RGB uint8 ``(size, size, 3)``: shorter side to `size`, center crop.

    Raises:
        CorruptDatasetError: PIL cannot read the file.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale >= size, much faster
            img = to_rgb(img)
            w, h = img.size
            scale = size / min(w, h)
            new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
            if (new_w, new_h) != (w, h):
                img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            return np.array(img.crop((left, top, left + size, top + size)))  # writable copy
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # PIL.UnidentifiedImageError is an OSError; truncated or malformed headers raise the others
        raise bad_image(path, f"cannot be decoded as an image ({type(error).__name__}: {error})") from error


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def class_dirs(folder: Path) -> list[Path]:
    """Sub-folders of `folder`, sorted by name, hidden ones (".ipynb_checkpoints") skipped."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and _visible(d))


def images_below(folder: Path) -> list[Path]:
    """Image files anywhere below `folder` (hidden files and folders skipped), sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath) / f for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def list_images(split_dir: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Image files under ``split_dir/<class>/`` (recursively), sorted, with their class indices.

    Raises:
        DatasetLayoutError: A class folder that train/ lacks, or images outside any class folder.
    """
    stray = sorted(p.name for p in split_dir.iterdir()
                   if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_EXTENSIONS)
    if stray:
        raise DatasetLayoutError(
            f"image-folder: {split_dir} holds {len(stray)} image(s) outside any class folder (e.g. {stray[0]}); "
            f"each image must be under {split_dir}/<class>/ (for ImageNet's flat val/, sort it into class "
            "folders first)."
        )
    index = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for class_dir in class_dirs(split_dir):
        if class_dir.name not in index:
            raise DatasetLayoutError(
                f"{class_dir}: class {class_dir.name!r} is not among the {len(classes)} classes "
                f"of {split_dir.parent / 'train'}; val/ must use the class folders of train/."
            )
        found = images_below(class_dir)
        files += found
        labels += [index[class_dir.name]] * len(found)
    return files, labels


def load_image_folder(split: str, options: LoadOptions, workers: int | None = None) -> ImageDataset:
    """Decodes an ImageNet-layout folder into a resident uint8 ``(N, 3, S, S)`` dataset.

    Classes are the sorted folder names of ``root/train`` (of ``root/val`` if there is no
    train folder). Decoding runs in threads (PIL releases the GIL) with a progress bar.
    See the module docstring for memory use: full ImageNet does not fit this way.

    Args:
        split: ``"train"`` reads ``root/train``, ``"test"`` reads ``root/val``.
        options: ``root`` (the folder holding ``train/`` and ``val/``; required) and
            ``image_size`` (output side S, default 64); image folders are never downloaded.
        workers: Decoding threads (default: up to 8, one per CPU).

    Raises:
        DatasetNotFoundError: `root` not given, split folder or images missing.
        DatasetLayoutError: ``val/`` has a class folder that ``train/`` lacks, or images
            outside any class folder.
        CorruptDatasetError: An image cannot be decoded.
    """
    root, image_size = options.root, options.image_size
    if root is None:
        raise DatasetNotFoundError(
            "image-folder: no data.root given; set data.root=<folder> holding "
            "train/<class>/*.JPEG and val/<class>/* (the ImageNet layout)."
        )
    base = Path(root).expanduser()
    split_dir = base / SPLIT_FOLDERS[split]
    if not split_dir.is_dir():
        raise DatasetNotFoundError(
            f"image-folder: {split_dir} does not exist; split {split!r} reads "
            f"<root>/{SPLIT_FOLDERS[split]}/<class>/*; check data.root={str(root)!r}."
        )
    class_root = base / "train" if (base / "train").is_dir() else split_dir
    classes = [d.name for d in class_dirs(class_root)]
    files, labels = list_images(split_dir, classes)
    if not files:
        raise DatasetNotFoundError(
            f"image-folder: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in "
            f"{split_dir}/<class>/; check data.root={str(root)!r}."
        )
    size = image_size or DEFAULT_IMAGE_SIZE
    images = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    workers = workers or min(8, os.cpu_count() or 1)
    # the bar shows on a terminal only, and is cleared when done or when an image fails
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(files), desc=f"decode {split_dir}", leave=False,
                                                   disable=None) as bar:
        for i, array in enumerate(pool.map(decode_image, files, [size] * len(files))):
            images[i] = torch.from_numpy(array).permute(2, 0, 1)  # (3, S, S)
            bar.update(1)
    return ImageDataset(images, torch.tensor(labels, dtype=torch.int64), classes, "image-folder", split)
