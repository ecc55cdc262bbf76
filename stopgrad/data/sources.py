"""Where each dataset comes from: official URLs, published md5 checksums, local folders.

The checksums and URLs are the ones published with each dataset and used by
torchvision (``torchvision/datasets/{mnist,cifar,stl10}.py``). Every loader reads
`SOURCES` at call time, so a test can point a dataset at a ``file://`` URL of a tiny
archive with ``monkeypatch.setitem(SOURCES, name, replace(SOURCES[name], ...))``.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Attributes:
        filename: Name of the file on disk (and at the end of each URL).
        md5: Published md5 of the file, checked after every download.
        urls: The official location first, then mirrors; tried in order.
    """

    filename: str
    md5: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """How to find and fetch one dataset.

    Attributes:
        title: Human-readable name used in messages, e.g. "Fashion-MNIST".
        subdirs: Folders below each data root (the `root` argument, ``$STOPGRAD_DATA``,
            ``~/.cache/stopgrad``) that are searched, in order; "" is the data root itself.
            Downloads go to the first one.
        files: Downloadable files by file name.
        system_dirs: Folders where an operating-system package installs the files.
        install_hint: Shell command that installs the dataset system-wide, if any.
        member_md5: md5 of files inside the archive that must be verified before they are
            read (the CIFAR pickles).
    """

    title: str
    subdirs: tuple[str, ...]
    files: dict[str, RemoteFile]
    system_dirs: tuple[str, ...] = ()
    install_hint: str | None = None
    member_md5: dict[str, str] = field(default_factory=dict)


def _files(bases: tuple[str, ...], md5s: dict[str, str]) -> dict[str, RemoteFile]:
    return {name: RemoteFile(name, md5, tuple(b + name for b in bases)) for name, md5 in md5s.items()}


SOURCES: dict[str, Source] = {
    "fashion-mnist": Source(
        title="Fashion-MNIST",
        subdirs=("fashion-mnist", "FashionMNIST/raw"),
        files=_files(
            (
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ),
            {
                "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
            },
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        install_hint="apt-get install dataset-fashion-mnist",
    ),
    "mnist": Source(
        title="MNIST",
        subdirs=("mnist", "MNIST/raw"),
        files=_files(
            ("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
            {
                "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
            },
        ),
        system_dirs=("/usr/share/datasets/mnist",),
    ),
    "cifar10": Source(
        title="CIFAR-10",
        subdirs=("cifar10", ""),
        files=_files(
            ("https://www.cs.toronto.edu/~kriz/",),
            {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        ),
        member_md5={
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
            "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
    ),
    "cifar100": Source(
        title="CIFAR-100",
        subdirs=("cifar100", ""),
        files=_files(
            ("https://www.cs.toronto.edu/~kriz/",),
            {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"},
        ),
        member_md5={
            "train": "16019d7e3df5f24257cddd939b257f8d",
            "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "meta": "7973b15100ade9c7d40fb424638fde48",
        },
    ),
    "stl10": Source(
        title="STL-10",
        subdirs=("stl10", ""),
        files=_files(
            ("http://ai.stanford.edu/~acoates/stl10/",),
            {"stl10_binary.tar.gz": "91f7769df0f17e558f3565bffb0c7dfb"},
        ),
    ),
}
