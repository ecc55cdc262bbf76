"""Tests for stopgrad.data: every format is written here in its exact official layout."""

import dataclasses
import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stopgrad.data import (
    DATASETS,
    ChecksumError,
    CorruptDatasetError,
    DatasetNotFoundError,
    ImageDataset,
    UnsafeArchiveError,
    load_dataset,
)
from stopgrad.data.archive import safe_extract
from stopgrad.data.sources import SOURCES, RemoteFile
from formats import (
    cifar_pixels,
    evil_tar,
    idx_bytes,
    make_cifar10,
    make_stl10,
    md5,
    python2_pickle,
    rand_u8,
    tar_gz,
    use_archive,
    write_idx_split,
    write_pickle,
)

ORIGINAL_SOURCES = dict(SOURCES)
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def home(isolated_data: Path) -> Path:
    """Every test here runs with a fresh HOME, no $STOPGRAD_DATA and no system dirs."""
    return isolated_data


# ---------------------------------------------------------------- IDX: MNIST / Fashion-MNIST


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_pixels_and_labels_roundtrip(tmp_path: Path, name: str, gz: bool) -> None:
    images, labels = rand_u8(0, 6, 28, 28), np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    write_idx_split(tmp_path / "root" / name, "test", images, labels, gz=gz)
    ds = load_dataset(name, "test", root=tmp_path / "root", download=False)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (6, 1, 28, 28)
    assert ds.images.is_contiguous()
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [3, 1, 4, 1, 5, 9]
    assert len(ds) == 6 and len(ds.classes) == 10 and ds.name == name and ds.split == "test"


def test_idx_torchvision_layout_is_found(tmp_path: Path) -> None:
    write_idx_split(tmp_path / "root" / "MNIST" / "raw", "train", rand_u8(1, 2, 28, 28), np.array([0, 1], np.uint8))
    assert len(load_dataset("mnist", "train", root=tmp_path / "root", download=False)) == 2


def test_idx_truncated_file_names_file(tmp_path: Path) -> None:
    images_path, _ = write_idx_split(tmp_path / "r" / "mnist", "train", rand_u8(0, 4, 28, 28), np.zeros(4, np.uint8))
    data = gzip.decompress(images_path.read_bytes())
    images_path.write_bytes(gzip.compress(data[:-100]))  # header says 4 images, fewer bytes follow
    with pytest.raises(CorruptDatasetError, match="truncated") as info:
        load_dataset("mnist", "train", root=tmp_path / "r", download=False)
    assert str(images_path) in str(info.value) and "delete it" in str(info.value)


def test_idx_cut_gzip_stream_is_reported(tmp_path: Path) -> None:
    images_path, _ = write_idx_split(tmp_path / "r" / "mnist", "train", rand_u8(0, 4, 28, 28), np.zeros(4, np.uint8))
    images_path.write_bytes(images_path.read_bytes()[:-50])
    with pytest.raises(CorruptDatasetError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", "train", root=tmp_path / "r", download=False)


def test_idx_wrong_magic(tmp_path: Path) -> None:
    folder = tmp_path / "r" / "mnist"
    _, labels_path = write_idx_split(folder, "train", rand_u8(0, 2, 28, 28), np.zeros(2, np.uint8))
    labels_path.write_bytes(gzip.compress(idx_bytes(np.zeros(2, np.uint8), magic=b"\x12\x34\x08\x01")))
    with pytest.raises(CorruptDatasetError, match="magic number 0x12340801") as info:
        load_dataset("mnist", "train", root=tmp_path / "r", download=False)
    assert str(labels_path) in str(info.value)


def test_idx_label_count_must_match_image_count(tmp_path: Path) -> None:
    write_idx_split(tmp_path / "r" / "mnist", "train", rand_u8(0, 3, 28, 28), np.zeros(2, np.uint8))
    with pytest.raises(CorruptDatasetError, match="2 labels but .* 3 images"):
        load_dataset("mnist", "train", root=tmp_path / "r", download=False)


# ---------------------------------------------------------------- search order and errors


def test_missing_dataset_lists_every_place(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOPGRAD_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", "train", root=tmp_path / "root", download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "train-images-idx3-ubyte.gz" in message
    for place in (tmp_path / "root", tmp_path / "env", home / ".cache" / "stopgrad"):
        assert str(place / "fashion-mnist") in message
    for fix in ("data.root", "STOPGRAD_DATA", "apt-get install dataset-fashion-mnist", "data.download=true"):
        assert fix in message


def test_missing_dataset_says_unset_places(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"\$STOPGRAD_DATA: not set"):
        load_dataset("cifar10", "train", download=False)


def test_search_order_root_then_env_then_cache(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    places = {"root": tmp_path / "root", "env": tmp_path / "env", "cache": home / ".cache" / "stopgrad"}
    for value, base in enumerate(places.values(), start=1):
        write_idx_split(base / "mnist", "test", np.full((1, 28, 28), value, np.uint8), np.zeros(1, np.uint8))
    monkeypatch.setenv("STOPGRAD_DATA", str(places["env"]))

    def pixel() -> int:
        return int(load_dataset("mnist", "test", root=places["root"], download=False).images[0, 0, 0, 0])

    assert pixel() == 1
    shutil.rmtree(places["root"])
    assert pixel() == 2
    shutil.rmtree(places["env"])
    assert pixel() == 3


def test_system_location_is_searched_after_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "usr-share" / "mnist"
    write_idx_split(system, "test", np.full((1, 28, 28), 7, np.uint8), np.zeros(1, np.uint8))
    monkeypatch.setitem(SOURCES, "mnist", dataclasses.replace(SOURCES["mnist"], system_dirs=(str(system),)))
    assert int(load_dataset("mnist", "test", download=False).images.max()) == 7


# ---------------------------------------------------------------- downloads


def idx_server(tmp_path: Path, split: str = "train") -> tuple[dict[str, RemoteFile], np.ndarray, np.ndarray]:
    server = tmp_path / "server"
    images, labels = rand_u8(5, 3, 28, 28), np.array([2, 0, 9], np.uint8)
    paths = write_idx_split(server, split, images, labels)
    dead = (server / "no-such-mirror").as_uri()  # first URL fails, the mirror answers
    files = {p.name: RemoteFile(p.name, md5(p), (dead, p.as_uri())) for p in paths}
    return files, images, labels


def test_download_from_file_url_with_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, images, labels = idx_server(tmp_path)
    monkeypatch.setitem(SOURCES, "mnist", dataclasses.replace(SOURCES["mnist"], files=files))
    ds = load_dataset("mnist", "train", root=tmp_path / "root")
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images)) and ds.labels.tolist() == labels.tolist()
    stored = sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir())
    assert stored == sorted(files)  # no .part left behind


def test_download_goes_to_cache_without_root(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, _, _ = idx_server(tmp_path)
    monkeypatch.setitem(SOURCES, "mnist", dataclasses.replace(SOURCES["mnist"], files=files))
    load_dataset("mnist", "train")
    assert (home / ".cache" / "stopgrad" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_download_md5_mismatch_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, _, _ = idx_server(tmp_path)
    files = {n: dataclasses.replace(f, md5="0" * 32) for n, f in files.items()}
    monkeypatch.setitem(SOURCES, "mnist", dataclasses.replace(SOURCES["mnist"], files=files))
    with pytest.raises(ChecksumError, match="md5"):
        load_dataset("mnist", "train", root=tmp_path / "root")
    assert list((tmp_path / "root" / "mnist").iterdir()) == []


def test_download_failure_is_not_found_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = RemoteFile("train-images-idx3-ubyte.gz", "0" * 32, ((tmp_path / "gone").as_uri(),))
    files = {**SOURCES["mnist"].files, dead.filename: dead}
    monkeypatch.setitem(SOURCES, "mnist", dataclasses.replace(SOURCES["mnist"], files=files))
    with pytest.raises(DatasetNotFoundError, match="the download into .* failed"):
        load_dataset("mnist", "train", root=tmp_path / "root")


def test_download_and_extract_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = make_cifar10(tmp_path / "build")
    archive = tar_gz(tmp_path / "build" / "cifar-10-batches-py", tmp_path / "server" / "cifar-10-python.tar.gz")
    use_archive(monkeypatch, "cifar10", archive, tmp_path / "build" / "cifar-10-batches-py", url=archive.as_uri())
    ds = load_dataset("cifar10", "test", root=tmp_path / "root")
    assert torch.equal(ds.images, torch.from_numpy(expected["test"][0]))
    assert (tmp_path / "root" / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()


# ---------------------------------------------------------------- CIFAR


def test_cifar10_archive_pixels_labels_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = make_cifar10(tmp_path / "build")
    members = tmp_path / "build" / "cifar-10-batches-py"
    archive = tar_gz(members, tmp_path / "root" / "cifar10" / "cifar-10-python.tar.gz")
    use_archive(monkeypatch, "cifar10", archive, members)
    for split, n in (("train", 10), ("test", 3)):
        ds = load_dataset("cifar10", split, root=tmp_path / "root", download=False)
        images, labels = expected[split]
        assert ds.images.shape == (n, 3, 32, 32) and torch.equal(ds.images, torch.from_numpy(images))
        assert ds.labels.tolist() == labels
        assert ds.classes[0] == "airplane" and ds.classes[9] == "truck"
    assert (tmp_path / "root" / "cifar10" / "cifar-10-batches-py" / "data_batch_5").is_file()  # extracted once


def test_cifar_extracted_folder_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = make_cifar10(tmp_path / "root")  # root/cifar-10-batches-py, torchvision's layout
    use_archive(monkeypatch, "cifar10", tmp_path / "none.tar.gz", tmp_path / "root" / "cifar-10-batches-py")
    ds = load_dataset("cifar10", "test", root=tmp_path / "root", download=False)
    assert torch.equal(ds.images, torch.from_numpy(expected["test"][0]))


def test_cifar_python2_pickles_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "root" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, rows = cifar_pixels(2, seed=3)
    names = [f"name{i}".encode() for i in range(10)]
    (folder / "batches.meta").write_bytes(python2_pickle({b"label_names": names, b"num_vis": 3072}))
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [7, 2], b"data": rows, b"filenames": [b"a", b"b"]}
    (folder / "test_batch").write_bytes(python2_pickle(batch))
    use_archive(monkeypatch, "cifar10", tmp_path / "none.tar.gz", folder)
    ds = load_dataset("cifar10", "test", root=tmp_path / "root", download=False)
    assert torch.equal(ds.images, torch.from_numpy(images)) and ds.labels.tolist() == [7, 2]
    assert ds.classes[9] == "name9"


def test_cifar_pickle_with_wrong_md5_is_not_unpickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cifar10(tmp_path / "root")
    folder = tmp_path / "root" / "cifar-10-batches-py"
    use_archive(monkeypatch, "cifar10", tmp_path / "none.tar.gz", folder)
    write_pickle(folder / "test_batch", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(ChecksumError, match="test_batch"):
        load_dataset("cifar10", "test", root=tmp_path / "root", download=False)


def test_cifar100_fine_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "build" / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = [f"fine{i}".encode() for i in range(100)]
    write_pickle(folder / "meta", {b"fine_label_names": fine, b"coarse_label_names": [b"c"] * 20})
    expected = {}
    for seed, (split, n) in enumerate((("train", 4), ("test", 2))):
        images, rows = cifar_pixels(n, seed)
        fine_labels = [99 - 7 * j - seed for j in range(n)]
        batch = {b"filenames": [b"x"] * n, b"fine_labels": fine_labels, b"coarse_labels": [0] * n, b"data": rows}
        write_pickle(folder / split, batch)
        expected[split] = (images, fine_labels)
    archive = tar_gz(folder, tmp_path / "root" / "cifar-100-python.tar.gz")
    use_archive(monkeypatch, "cifar100", archive, folder)
    for split, (images, labels) in expected.items():
        ds = load_dataset("cifar100", split, root=tmp_path / "root", download=False)
        assert torch.equal(ds.images, torch.from_numpy(images)) and ds.labels.tolist() == labels
        assert len(ds.classes) == 100 and ds.classes[99] == "fine99"


def test_archive_with_wrong_md5_is_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "root" / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"not the official archive")
    with pytest.raises(ChecksumError, match="c58f30108f718f92721af3b95e74349a") as info:
        load_dataset("cifar10", "train", root=tmp_path / "root", download=False)
    assert str(archive) in str(info.value) and "delete it" in str(info.value)


def test_corrupt_tar_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cifar10(tmp_path / "build")
    good = tar_gz(tmp_path / "build" / "cifar-10-batches-py", tmp_path / "good.tar.gz").read_bytes()
    archive = tmp_path / "root" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(good[: len(good) // 2])  # truncated, but registered as "official"
    use_archive(monkeypatch, "cifar10", archive)
    with pytest.raises(CorruptDatasetError, match="cannot be read as a tar archive"):
        load_dataset("cifar10", "train", root=tmp_path / "root", download=False)


# ---------------------------------------------------------------- STL-10


def test_stl10_all_splits_and_column_major_transpose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = make_stl10(tmp_path / "build")
    members = tmp_path / "build" / "stl10_binary"
    # Image 0 of test: a single bright pixel at channel 0, row 0, column 1. Column-major
    # storage puts it at byte 96 (column 1 starts after the 96 rows of column 0).
    raw = bytearray(3 * 96 * 96 * 2)
    raw[96] = 200
    (members / "test_X.bin").write_bytes(bytes(raw))
    archive = tar_gz(members, tmp_path / "root" / "stl10" / "stl10_binary.tar.gz")
    use_archive(monkeypatch, "stl10", archive)
    root = tmp_path / "root"
    test = load_dataset("stl10", "test", root=root, download=False)
    assert test.images.shape == (2, 3, 96, 96) and int(test.images[0, 0, 0, 1]) == 200
    assert int(test.images.sum()) == 200 and test.labels.tolist() == expected["test"][1]
    train = load_dataset("stl10", "train", root=root, download=False)
    assert torch.equal(train.images, torch.from_numpy(expected["train"][0]))
    assert train.labels.tolist() == expected["train"][1] and train.classes[3] == "class3"
    unlabeled = load_dataset("stl10", "unlabeled", root=root, download=False)
    assert torch.equal(unlabeled.images, torch.from_numpy(expected["unlabeled"][0]))
    assert unlabeled.labels.tolist() == [-1] * 4
    both = load_dataset("stl10", "train+unlabeled", root=root, download=False)
    assert torch.equal(both.images, torch.cat([train.images, unlabeled.images]))
    assert both.labels.tolist() == expected["train"][1] + [-1] * 4


def test_stl10_bad_file_size(tmp_path: Path) -> None:
    make_stl10(tmp_path / "root")
    bad = tmp_path / "root" / "stl10_binary" / "train_X.bin"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(CorruptDatasetError, match="train_X.bin: size"):
        load_dataset("stl10", "train", root=tmp_path / "root", download=False)


# ---------------------------------------------------------------- safe extraction


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "hardlink", "device"])
def test_safe_extract_rejects_escaping_members(tmp_path: Path, kind: str) -> None:
    archive = evil_tar(tmp_path / "evil.tar.gz", kind)
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        safe_extract(archive, tmp_path / "out" / "inner")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()
    assert not list((tmp_path / "out" / "inner").iterdir())  # nothing written, staging removed


def test_path_traversal_archive_rejected_by_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = evil_tar(tmp_path / "root" / "stl10_binary.tar.gz", "traversal")
    use_archive(monkeypatch, "stl10", archive)
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil\.txt"):
        load_dataset("stl10", "test", root=tmp_path / "root", download=False)
    assert not (tmp_path / "evil.txt").exists()


# ---------------------------------------------------------------- image folders


def test_image_folder_decode_resize_and_crop(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    for split, cls in (("train", "cat"), ("train", "dog"), ("val", "cat"), ("val", "dog")):
        (root / split / cls).mkdir(parents=True)
    exact = rand_u8(0, 8, 8, 3)
    Image.fromarray(exact).save(root / "train" / "cat" / "a.png")
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:, :, 0] = np.arange(16, dtype=np.uint8) * 10  # red = 10 * column
    Image.fromarray(wide).save(root / "train" / "cat" / "b.png")
    Image.new("RGB", (16, 24), (200, 30, 60)).save(root / "train" / "dog" / "c.JPEG", quality=95)
    Image.new("L", (8, 8), 77).save(root / "val" / "dog" / "d.png")  # grayscale becomes RGB
    (root / "train" / "dog" / "notes.txt").write_text("not an image")

    train = load_dataset("image-folder", "train", root=root, image_size=8)
    assert train.classes == ["cat", "dog"] and train.labels.tolist() == [0, 0, 1]
    assert train.images.shape == (3, 3, 8, 8) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[0], torch.from_numpy(exact).permute(2, 0, 1))
    assert train.images[1, 0, 0].tolist() == [40, 50, 60, 70, 80, 90, 100, 110]  # center crop of 16 columns
    jpeg = train.images[2].float().mean(dim=(1, 2))
    assert torch.allclose(jpeg, torch.tensor([200.0, 30.0, 60.0]), atol=4)
    val = load_dataset("image-folder", "test", root=root, image_size=8)
    assert val.labels.tolist() == [1] and val.images[0].unique().tolist() == [77]


def test_image_folder_requires_root_and_split_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no data.root given"):
        load_dataset("image-folder", "train")
    with pytest.raises(DatasetNotFoundError, match="val"):
        load_dataset("image-folder", "test", root=tmp_path)


def test_image_folder_val_classes_must_exist_in_train(tmp_path: Path) -> None:
    for folder in ("train/a", "train/.ipynb_checkpoints", "val/a", "val/zebra"):
        (tmp_path / folder).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / folder / "x.png")
    assert load_dataset("image-folder", "train", root=tmp_path, image_size=4).classes == ["a"]
    with pytest.raises(ValueError, match="'zebra' is not among the 1 classes"):
        load_dataset("image-folder", "test", root=tmp_path, image_size=4)


def test_image_folder_bad_image_names_file(tmp_path: Path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CorruptDatasetError, match="broken.jpg"):
        load_dataset("image-folder", "train", root=tmp_path)


# ---------------------------------------------------------------- synthetic, registry, container


def test_synthetic_is_deterministic_balanced_and_learnable() -> None:
    train, test = load_dataset("synthetic", "train"), load_dataset("synthetic", "test")
    assert torch.equal(train.images, load_dataset("synthetic", "train").images)
    assert train.images.shape == (500, 1, 28, 28) and test.images.shape == (200, 1, 28, 28)
    assert train.labels.bincount().tolist() == [50] * 10
    nearest = torch.cdist(test.images.flatten(1).float(), train.images.flatten(1).float()).argmin(1)
    assert (train.labels[nearest] == test.labels).float().mean() > 0.5  # chance is 0.1


def test_image_size_resizes_binary_datasets(tmp_path: Path) -> None:
    write_idx_split(tmp_path / "mnist", "test", np.full((2, 28, 28), 100, np.uint8), np.zeros(2, np.uint8))
    ds = load_dataset("mnist", "test", root=tmp_path, download=False, image_size=16)
    assert ds.images.shape == (2, 1, 16, 16) and ds.images.unique().tolist() == [100]
    assert load_dataset("synthetic", "test", image_size=32).images.shape == (200, 1, 32, 32)


def test_registry_names_and_bad_arguments() -> None:
    assert set(DATASETS) == {"fashion-mnist", "mnist", "cifar10", "cifar100", "stl10", "image-folder", "synthetic",
                             "synthetic-rgb"}
    assert "train+unlabeled" in DATASETS["stl10"].splits
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; known: fashion-mnist"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match="no split 'unlabeled'; valid splits: train, test"):
        load_dataset("cifar10", "unlabeled")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("synthetic", "train", image_size=0)


def test_image_dataset_validates() -> None:
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64), ["a"], "x")
    with pytest.raises(ValueError, match="labels span"):
        ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 3]), ["a"], "x")


# ---------------------------------------------------------------- the real installed dataset


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason=f"{FASHION_MNIST_DIR} not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_system_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCES, "fashion-mnist", ORIGINAL_SOURCES["fashion-mnist"])
    ds = load_dataset("fashion-mnist", "test", download=False)
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.bincount().tolist() == [1000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
