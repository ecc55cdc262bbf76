"""Data edge cases: 16-bit images, nested class folders, CIFAR-100's coarse labels, re-packed archives
(``data.verify=false``) and the CIFAR unpickler that cannot run code."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from formats import cifar_pixels, make_cifar10, md5, python2_pickle, tar_gz, use_archive, write_pickle
from stopgrad.config import resolve
from stopgrad.data import ChecksumError, CorruptDatasetError, DatasetLayoutError, load_dataset
from stopgrad.data.download import ChecksumWarning
from stopgrad.data.safe_pickle import UnsafePickleError, load_arrays
from stopgrad.data.sources import SOURCES
from stopgrad.errors import UnsafeFileError
from stopgrad.train import load_splits


@pytest.fixture(autouse=True)
def _isolated(isolated_data):
    return isolated_data


# ------------------------------------------------------------------------------------ 16-bit images
def png16(array: np.ndarray, colour: bool) -> bytes:
    """A 16-bit PNG (grayscale or RGB) written byte by byte, as scanners and microscopes write them."""
    h, w = array.shape[:2]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2 if colour else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def one_image_folder(root: Path, data: bytes, name: str = "x.png") -> Path:
    for split in ("train", "val"):
        (root / split / "a").mkdir(parents=True, exist_ok=True)
        (root / split / "a" / name).write_bytes(data)
    return root


@pytest.mark.parametrize("colour", [False, True])
def test_16_bit_png_is_scaled_not_clipped(tmp_path, colour):
    levels = np.array([0, 50, 100, 200, 255], dtype=np.uint16)  # 8-bit values, stored as v * 257
    row = np.repeat(levels * 257, 2)
    array = np.tile(row, (10, 1))
    if colour:
        array = np.stack([array, array // 2, array], axis=-1)
    root = one_image_folder(tmp_path, png16(array, colour))
    ds = load_dataset("image-folder", "train", root=root, image_size=10)
    red = ds.images[0, 0, 0].tolist()
    assert red == [0, 0, 50, 50, 100, 100, 200, 200, 255, 255]  # a true 200 reads 200, not 255
    if colour:
        assert ds.images[0, 1, 0, 6].item() == 100  # green = 200/2
    else:
        assert torch.equal(ds.images[0, 0], ds.images[0, 1])


def test_nested_class_folders_are_read_recursively(tmp_path):
    root = tmp_path / "imgs"
    for split in ("train", "val"):
        for rel in ("a/x.png", "a/deep/er/y.png", "a/.hidden/z.png", "b/w.png"):
            path = root / split / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (len(rel), 0, 0)).save(path)
    ds = load_dataset("image-folder", "train", root=root, image_size=8)
    assert ds.classes == ["a", "b"] and ds.labels.tolist() == [0, 0, 1]  # a/deep/er/y.png is class a
    assert sorted(ds.images[:, 0, 0, 0].tolist()) == sorted([len("a/x.png"), len("a/deep/er/y.png"), len("b/w.png")])


def test_images_outside_class_folders_are_refused(tmp_path):
    root = one_image_folder(tmp_path, png16(np.zeros((4, 4), np.uint16), False))
    Image.new("RGB", (4, 4)).save(root / "train" / "stray.jpg")
    with pytest.raises(DatasetLayoutError, match="1 image.* outside any class folder .*stray.jpg"):
        load_dataset("image-folder", "train", root=root, image_size=4)


# ------------------------------------------------------------------------------- CIFAR-100 labels
def cifar100(tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    folder = tmp_path / "build" / "cifar-100-python"
    folder.mkdir(parents=True)
    coarse_names = [f"super{i}".encode() for i in range(20)]
    write_pickle(folder / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                                   b"coarse_label_names": coarse_names})
    expected = {}
    for seed, (split, n) in enumerate((("train", 6), ("test", 3))):
        _, rows = cifar_pixels(n, seed)
        fine = [(7 * j + seed) % 100 for j in range(n)]
        coarse = [f // 5 for f in fine]
        write_pickle(folder / split, {b"fine_labels": fine, b"coarse_labels": coarse, b"data": rows})
        expected[split] = (fine, coarse)
    archive = tar_gz(folder, tmp_path / "root" / "cifar-100-python.tar.gz")
    use_archive(monkeypatch, "cifar100", archive, folder)
    return tmp_path / "root", expected


def test_cifar100_fine_and_coarse_label_sets(tmp_path, monkeypatch):
    root, expected = cifar100(tmp_path, monkeypatch)
    fine = load_dataset("cifar100", "train", root=root, download=False)
    coarse = load_dataset("cifar100", "train", root=root, download=False, label_set="coarse")
    assert fine.labels.tolist() == expected["train"][0] and len(fine.classes) == 100
    assert coarse.labels.tolist() == expected["train"][1] and coarse.classes[19] == "super19"
    assert torch.equal(fine.images, coarse.images)
    cfg = resolve(None, ["data.dataset=cifar100", f"data.root={root}", "data.download=false", "data.views=32",
                         "data.label_set=coarse"])
    train, test = load_splits(cfg)
    assert train.num_classes == 20 and test.labels.tolist() == expected["test"][1]


# --------------------------------------------------------------------- re-packed archives: verify
def repacked_cifar10(tmp_path: Path, monkeypatch) -> Path:
    """An archive with the official layout whose bytes (and members) differ from the official ones."""
    make_cifar10(tmp_path / "build")
    members = tmp_path / "build" / "cifar-10-batches-py"
    archive = tar_gz(members, tmp_path / "root" / "cifar10" / "cifar-10-python.tar.gz")
    use_archive(monkeypatch, "cifar10", archive, members)
    official = SOURCES["cifar10"]
    (remote,) = official.files.values()
    monkeypatch.setitem(SOURCES, "cifar10", dataclasses.replace(
        official, files={remote.filename: dataclasses.replace(remote, md5="c58f30108f718f92721af3b95e74349a")},
        member_md5={k: "0" * 32 for k in official.member_md5}))
    return tmp_path / "root"


def test_a_repacked_archive_needs_verify_false_and_then_warns(tmp_path, monkeypatch):
    root = repacked_cifar10(tmp_path, monkeypatch)
    archive = root / "cifar10" / "cifar-10-python.tar.gz"
    with pytest.raises(ChecksumError, match="data.verify=false") as info:
        load_dataset("cifar10", "test", root=root, download=False)
    assert str(archive) in str(info.value) and md5(archive) in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset("cifar10", "test", root=root, download=False, verify=False)
    assert len(ds) == 3
    texts = [str(w.message) for w in caught if issubclass(w.category, ChecksumWarning)]
    assert any(str(archive) in t and md5(archive) in t and "c58f30108f718f92721af3b95e74349a" in t for t in texts)
    assert any("test_batch" in t for t in texts)  # the members are not the official ones either


def test_verify_false_still_checks_structure(tmp_path, monkeypatch):
    root = repacked_cifar10(tmp_path, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChecksumWarning)
        load_dataset("cifar10", "test", root=root, download=False, verify=False)  # extracts
        batch = root / "cifar10" / "cifar-10-batches-py" / "test_batch"
        write_pickle(batch, {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
        with pytest.raises(CorruptDatasetError, match=r"uint8 \(N, 3072\)"):
            load_dataset("cifar10", "test", root=root, download=False, verify=False)


# ------------------------------------------------------------------------------- the unpickler
class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_array_unpickler_reads_what_numpy_writes(protocol):
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], b"name": b"batch"}
    back = load_arrays(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
    assert np.array_equal(back[b"data"], obj[b"data"]) and back[b"labels"] == [1, 2, 3] and back[b"name"] == b"batch"


def test_array_unpickler_reads_python2_pickles():
    rows = np.arange(3072 * 2, dtype=np.uint64).astype(np.uint8).reshape(2, 3072)
    back = load_arrays(io.BytesIO(python2_pickle({b"data": rows, b"labels": [3, 4]})))
    assert np.array_equal(back[b"data"], rows)


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_array_unpickler_refuses_code_and_object_arrays(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        load_arrays(io.BytesIO(pickle.dumps({b"data": Payload(marker)}, protocol=protocol)))
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match="object array"):
        load_arrays(io.BytesIO(pickle.dumps(np.array([Payload(marker)], dtype=object), protocol=protocol)))
    assert not marker.exists()


def test_malicious_cifar_batch_is_refused_by_the_loader(tmp_path, monkeypatch):
    make_cifar10(tmp_path / "root")
    folder = tmp_path / "root" / "cifar-10-batches-py"
    marker = tmp_path / "PWNED"
    evil = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": Payload(marker)}, protocol=2)
    (folder / "test_batch").write_bytes(evil)
    use_archive(monkeypatch, "cifar10", tmp_path / "none.tar.gz", folder)  # its md5 is even "official"
    with pytest.raises(UnsafeFileError, match="test_batch.*nothing in it was run"):
        load_dataset("cifar10", "test", root=tmp_path / "root", download=False)
    assert not marker.exists()
