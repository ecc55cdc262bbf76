"""Finding dataset files on disk, in a fixed order, and fetching them when allowed.

Search order, for every dataset:

1. the `root` argument (config ``data.root``),
2. ``$STOPGRAD_DATA``,
3. ``~/.cache/stopgrad``,
4. system locations (e.g. ``/usr/share/datasets/fashion-mnist`` from the Debian package
   ``dataset-fashion-mnist``),
5. a download from the official location into the first writable of 1-3.

Inside each of 1-3 the folders ``Source.subdirs`` are searched (e.g. ``<root>/fashion-mnist``
and torchvision's ``<root>/FashionMNIST/raw``); system locations hold the files directly.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stopgrad.data.archive import safe_extract
from stopgrad.data.dataset import LoadOptions
from stopgrad.data.download import fetch, verify_md5
from stopgrad.data.errors import DatasetNotFoundError, corrupt
from stopgrad.data.sources import SOURCES

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Place:
    """One folder that is searched, and why it is on the list."""

    path: Path
    origin: str


@dataclass(frozen=True)
class SearchPlan:
    """The searched folders in order, plus notes on data roots that were not set."""

    places: list[Place]
    skipped: list[str]


def data_roots(root: PathLike | None) -> tuple[list[tuple[Path, str]], list[str]]:
    """The general data folders, in search order: root, $STOPGRAD_DATA, ~/.cache/stopgrad.

    Returns:
        (folder, origin) pairs for the roots that are set, and notes on those that are not.
    """
    roots, skipped = [], []
    env = os.environ.get("STOPGRAD_DATA")
    for value, origin in ((root, "root argument / data.root"), (env, "$STOPGRAD_DATA")):
        if value:
            roots.append((Path(value).expanduser(), origin))
        else:
            skipped.append(f"{origin}: not set")
    roots.append((Path.home() / ".cache" / "stopgrad", "user cache"))
    return roots, skipped


def search_plan(name: str, root: PathLike | None) -> SearchPlan:
    """Every folder searched for dataset `name`, in order (see the module docstring)."""
    source = SOURCES[name]
    roots, skipped = data_roots(root)
    places: list[Place] = []
    for base, origin in roots:
        places += [Place(base / sub if sub else base, origin) for sub in source.subdirs]
    places += [Place(Path(d), "system location") for d in source.system_dirs]
    unique: list[Place] = []
    for place in places:  # the same folder may be reached twice (root == $STOPGRAD_DATA)
        if all(place.path != u.path for u in unique):
            unique.append(place)
    return SearchPlan(unique, skipped)


def download_folder(name: str, root: PathLike | None) -> Path:
    """The folder downloads go to: ``<first writable data root>/<Source.subdirs[0]>``.

    Raises:
        DatasetNotFoundError: None of root, $STOPGRAD_DATA, ~/.cache/stopgrad is writable.
    """
    source = SOURCES[name]
    roots, _ = data_roots(root)
    tried = []
    for base, origin in roots:
        folder = base / source.subdirs[0] if source.subdirs[0] else base
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            tried.append(f"  - {folder} ({origin}): {error}")
            continue
        if os.access(folder, os.W_OK):
            return folder
        tried.append(f"  - {folder} ({origin}): not writable")
    raise DatasetNotFoundError(
        f"{source.title}: no writable folder to download into. Tried:\n" + "\n".join(tried)
        + "\nSet data.root or STOPGRAD_DATA to a writable folder."
    )


def not_found(
    name: str, what: str, plan: SearchPlan, download_note: str, download_folder: Path | None = None
) -> DatasetNotFoundError:
    """Builds the error for a dataset that is nowhere: what, where looked, how to fix.

    Args:
        name: Key of `SOURCES`.
        what: The missing file(s), in words.
        plan: The places searched.
        download_note: Why nothing was downloaded.
        download_folder: Where a failed download was going, or None if none was tried.
    """
    source = SOURCES[name]
    sub = source.subdirs[0]
    lines = [f"{source.title}: cannot find {what} (looked in {len(plan.places)} places; "
             f"{download_note.rstrip('.')}). Looked in, in this order:"]
    lines += [f"  - {p.path}  ({p.origin})" for p in plan.places]
    lines += [f"  - {s}" for s in plan.skipped]
    lines += ["To fix, do one of:"]
    lines.append(f"  - set data.root=<folder> with the files in <folder>/{sub}")
    lines.append(f"  - export STOPGRAD_DATA=<folder> with the files in <folder>/{sub}")
    if source.install_hint:
        lines.append(f"  - install it system-wide: {source.install_hint}")
    urls = ", ".join(u for f in source.files.values() for u in f.urls[:1])
    if download_folder is None:
        lines.append(f"  - set data.download=true (fetches {urls})")
    else:
        lines.append(f"  - fetch {urls} by hand into {download_folder}")
    return DatasetNotFoundError("\n".join(lines))


def _existing(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def locate_files(
    name: str, wanted: Sequence[Sequence[str]], root: PathLike | None, download: bool
) -> list[Path]:
    """Finds a set of files that must sit together in one folder, downloading if allowed.

    Args:
        name: Key of `SOURCES`.
        wanted: For each needed file, the accepted file names; the first one is the
            downloadable name (e.g. ``("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")``).
        root: The `root` argument (config ``data.root``), or None.
        download: Whether a missing file may be downloaded.

    Returns:
        One path per entry of `wanted`, all in the first folder that has them all.

    Raises:
        DatasetNotFoundError: Not found and not downloadable.
        ChecksumError: A download did not match the published md5.
    """
    plan = search_plan(name, root)
    for place in plan.places:
        found = [_existing(place.path, names) for names in wanted]
        if all(found):
            return found  # type: ignore[return-value]
    what = " and ".join(names[0] for names in wanted)
    if not download:
        raise not_found(name, what, plan, "downloading was not allowed (data.download=false).")
    folder = download_folder(name, root)
    try:
        return [_existing(folder, n) or fetch(SOURCES[name].files[n[0]], folder) for n in wanted]
    except OSError as error:
        raise not_found(name, what, plan, f"the download into {folder} failed: {error}", folder) from error


def locate_folder(name: str, folder: str, needed: Sequence[str], options: LoadOptions) -> Path:
    """Finds the extracted folder of an archive dataset, extracting or downloading as needed.

    In each searched place, the extracted `folder` is used if it holds every file in
    `needed`; otherwise the official archive there is md5-verified and safely extracted
    (next to it, or into the download folder if that place is read-only).

    Args:
        name: Key of `SOURCES`; its single file is the archive.
        folder: Folder the archive extracts to, e.g. ``"cifar-10-batches-py"``.
        needed: Files inside `folder` this split reads.
        options: ``root``, ``download`` and ``verify`` (an archive whose md5 differs is used,
            with a warning, when ``verify`` is False).

    Returns:
        The extracted folder.

    Raises:
        DatasetNotFoundError: Neither folder nor archive found, and not downloadable.
        ChecksumError: An archive does not match the published md5.
        CorruptDatasetError / UnsafeArchiveError: The archive is unreadable or unsafe.
    """
    source = SOURCES[name]
    (remote,) = source.files.values()
    root, download = options.root, options.download
    plan = search_plan(name, root)
    for place in plan.places:
        if all((place.path / folder / f).is_file() for f in needed):
            return place.path / folder
        archive = place.path / remote.filename
        if archive.is_file():
            writable = os.access(place.path, os.W_OK)
            target = place.path if writable else download_folder(name, root)
            return _extract(archive, remote.md5, target, folder, needed, options.verify)
    what = f"{remote.filename} or its extracted folder {folder}/ with {', '.join(needed)}"
    if not download:
        raise not_found(name, what, plan, "downloading was not allowed (data.download=false).")
    target = download_folder(name, root)
    try:
        archive = fetch(remote, target)
    except OSError as error:
        raise not_found(name, what, plan, f"the download into {target} failed: {error}", target) from error
    return _extract(archive, remote.md5, target, folder, needed, True)


def _extract(archive: Path, md5: str, target: Path, folder: str, needed: Sequence[str], verify: bool) -> Path:
    verify_md5(archive, md5, verify)
    safe_extract(archive, target)
    missing = [f for f in needed if not (target / folder / f).is_file()]
    if missing:
        raise corrupt(archive, f"has no member {folder}/{missing[0]}")
    return target / folder
