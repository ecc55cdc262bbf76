"""Builders of the datasets' official file formats, byte for byte, for the data and fault tests."""

import dataclasses
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from stopgrad.data.sources import SOURCES, RemoteFile


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def rand_u8(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    header = magic or bytes([0, 0, 0x08, array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx_split(
    folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True
) -> list[Path]:
    """Writes <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz]."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = {"train": "train", "test": "t10k"}[split]
    paths = []
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = idx_bytes(array)
        path = folder / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        paths.append(path)
    return paths


def tar_gz(folder: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out


def use_archive(
    monkeypatch: pytest.MonkeyPatch, name: str, archive: Path, members: Path | None = None, url: str | None = None
) -> None:
    """Makes the tiny test archive the 'official' one: its md5 (and its members' md5)."""
    checksum = md5(archive) if archive.is_file() else "0" * 32
    files = {archive.name: RemoteFile(archive.name, checksum, (url,) if url else ())}
    member_md5 = {p.name: md5(p) for p in members.iterdir()} if members else {}
    monkeypatch.setitem(SOURCES, name, dataclasses.replace(SOURCES[name], files=files, member_md5=member_md5))


def cifar_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 3, 32, 32) and their official rows: R plane, G plane, B plane, row-major."""
    images = rand_u8(seed, n, 3, 32, 32)
    rows = np.empty((n, 3072), dtype=np.uint8)
    for c in range(3):
        for y in range(32):
            rows[:, c * 1024 + y * 32 : c * 1024 + y * 32 + 32] = images[:, c, y, :]
    return images, rows


def write_pickle(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def python2_pickle(obj: object) -> bytes:
    """Protocol-2 pickle as Python 2 + old numpy wrote the official CIFAR files.

    Python 2 ``str`` is a byte string (opcodes U/T) and arrays name
    ``numpy.core.multiarray._reconstruct``; Python 3 reads these only with encoding="bytes".
    """

    def enc(x: object) -> bytes:
        if isinstance(x, bytes):
            return (b"U" + bytes([len(x)]) if len(x) < 256 else b"T" + struct.pack("<I", len(x))) + x
        if isinstance(x, int):
            return b"K" + bytes([x]) if 0 <= x < 256 else b"J" + struct.pack("<i", x)
        if isinstance(x, list):
            return b"](" + b"".join(enc(v) for v in x) + b"e"
        if isinstance(x, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in x.items()) + b"u"
        assert isinstance(x, np.ndarray) and x.dtype == np.uint8
        shape = b"(" + b"".join(enc(d) for d in x.shape) + b"t"
        dtype = b"cnumpy\ndtype\n" + enc(b"u1") + b"K\x00K\x01\x87R(K\x03" + enc(b"|")
        dtype += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + enc(b"b") + b"\x87R"
        return head + b"(K\x01" + shape + dtype + b"\x89" + enc(x.tobytes()) + b"tb"

    return b"\x80\x02" + enc(obj) + b"."


def make_cifar10(build: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = build / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_pickle(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": 2, b"num_vis": 3072})
    expected: dict[str, tuple[np.ndarray, list[int]]] = {}
    train_images, train_labels = [], []
    for i, file in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        n = 3 if file == "test_batch" else 2
        images, rows = cifar_pixels(n, seed=i)
        labels = [(i * 3 + j) % 10 for j in range(n)]
        batch = {b"batch_label": file.encode(), b"labels": labels, b"data": rows, b"filenames": [b"x.png"] * n}
        write_pickle(folder / file, batch)
        if file == "test_batch":
            expected["test"] = (images, labels)
        else:
            train_images.append(images)
            train_labels += labels
    expected["train"] = (np.concatenate(train_images), train_labels)
    return expected


def make_stl10(build: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    """stl10_binary/ with each channel written column-major, labels 1..10."""
    folder = build / "stl10_binary"
    folder.mkdir(parents=True)
    (folder / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    expected = {}
    for seed, (split, n) in enumerate((("train", 3), ("test", 2), ("unlabeled", 4))):
        images = rand_u8(seed, n, 3, 96, 96)
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        labels = [(seed + j) % 10 for j in range(n)] if split != "unlabeled" else [-1] * n
        if split != "unlabeled":
            (folder / f"{split}_y.bin").write_bytes(bytes(label + 1 for label in labels))
        expected[split] = (images, labels)
    return expected


def evil_tar(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        if kind in ("traversal", "absolute"):
            name = "../evil.txt" if kind == "traversal" else str(path.parent / "evil.txt")
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        else:
            info = tarfile.TarInfo("stl10_binary/link")
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "device": tarfile.CHRTYPE}[kind]
            info.linkname = "../../evil.txt" if kind == "symlink" else "../evil.txt"
            tar.addfile(info)
    return path
