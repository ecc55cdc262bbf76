"""The dataset registry and `load_dataset`, the one entry point the rest of stopgrad uses."""

from collections.abc import Callable
from dataclasses import dataclass

from stopgrad.data.cifar import load_cifar10, load_cifar100
from stopgrad.data.dataset import ImageDataset, LoadOptions, resize_images
from stopgrad.data.folder import load_image_folder
from stopgrad.data.locate import PathLike
from stopgrad.data.mnist import load_fashion_mnist, load_mnist
from stopgrad.data.stl10 import load_stl10
from stopgrad.data.synthetic import load_synthetic, load_synthetic_rgb

Loader = Callable[[str, LoadOptions], ImageDataset]
"""``loader(split, options) -> ImageDataset``."""

TRAIN_TEST = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    Attributes:
        name: Registry key.
        splits: Accepted `split` values.
        num_classes: Number of classes, or None when it depends on the files (image-folder).
        image_shape: Native ``(C, H, W)``, or None when set by `image_size` (image-folder).
        load: The loader; call `load_dataset` rather than this.
    """

    name: str
    splits: tuple[str, ...]
    num_classes: int | None
    image_shape: tuple[int, int, int] | None
    load: Loader


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("fashion-mnist", TRAIN_TEST, 10, (1, 28, 28), load_fashion_mnist),
        DatasetInfo("mnist", TRAIN_TEST, 10, (1, 28, 28), load_mnist),
        DatasetInfo("cifar10", TRAIN_TEST, 10, (3, 32, 32), load_cifar10),
        DatasetInfo("cifar100", TRAIN_TEST, 100, (3, 32, 32), load_cifar100),
        DatasetInfo("stl10", (*TRAIN_TEST, "unlabeled", "train+unlabeled"), 10, (3, 96, 96), load_stl10),
        DatasetInfo("image-folder", TRAIN_TEST, None, None, load_image_folder),
        DatasetInfo("synthetic", TRAIN_TEST, 10, (1, 28, 28), load_synthetic),
        DatasetInfo("synthetic-rgb", TRAIN_TEST, 10, (3, 32, 32), load_synthetic_rgb),
    )
}


def load_dataset(
    name: str,
    split: str,
    root: PathLike | None = None,
    download: bool = True,
    image_size: int | None = None,
    verify: bool = True,
    label_set: str = "fine",
) -> ImageDataset:
    """Loads a whole dataset split into memory as uint8 tensors.

    Files are looked for in `root`, ``$STOPGRAD_DATA``, ``~/.cache/stopgrad``, then system
    locations, and downloaded from the official location (md5-verified) if allowed; see
    `stopgrad.data.locate`.

    Args:
        name: One of `DATASETS`: "fashion-mnist", "mnist", "cifar10", "cifar100", "stl10",
            "image-folder", "synthetic".
        split: "train" or "test"; STL-10 also "unlabeled" and "train+unlabeled".
        root: Data root (config ``data.root``); for "image-folder" the folder holding
            ``train/`` and ``val/``.
        download: Whether missing files may be downloaded.
        image_size: Output side in pixels. Image folders are decoded at this size (default
            64); other datasets are resized (antialiased bilinear) only if it differs from
            their native size.
        verify: Whether an archive must have the official md5 (config ``data.verify``);
            False uses a re-pack or mirror with a warning, its structure still checked.
        label_set: ``"fine"``, or ``"coarse"`` for CIFAR-100's 20 superclasses (config
            ``data.label_set``).

    Returns:
        The split as an `ImageDataset`.

    Raises:
        ValueError: Unknown name or split, or a bad `image_size`.
        DatasetNotFoundError: The files are nowhere and cannot be downloaded.
        CorruptDatasetError: A file is truncated, corrupt or not the official one.

    Examples:
        >>> ds = load_dataset("synthetic", "train")
        >>> ds.images.shape, ds.labels[:3].tolist()
        (torch.Size([500, 1, 28, 28]), [5, 8, 4])
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    info = DATASETS[name]
    if split not in info.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; valid splits: {', '.join(info.splits)}")
    if image_size is not None and (not isinstance(image_size, int) or image_size <= 0):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    if label_set != "fine" and name != "cifar100":
        raise ValueError(f"label_set={label_set!r}: only cifar100 has coarse labels")
    options = LoadOptions(root=root, download=download, verify=verify, image_size=image_size, label_set=label_set)
    dataset = info.load(split, options)
    if image_size is not None and dataset.images.shape[-2:] != (image_size, image_size):
        dataset.images = resize_images(dataset.images, image_size)
    return dataset
