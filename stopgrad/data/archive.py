"""Safe extraction of the official tar.gz archives."""

import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from stopgrad.data.errors import UnsafeArchiveError, corrupt


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Rejects members that could write outside the extraction folder.

    Refused: absolute names, ``..`` components, links whose target is absolute or leaves
    the folder, and anything that is not a regular file, folder or such a link (devices,
    FIFOs).

    Raises:
        UnsafeArchiveError: Naming the archive, the member and the reason.
    """

    def refuse(reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"{archive}: member {member.name!r} {reason}; refusing to extract. This is not "
            f"an official archive: delete it and download the official one."
        )

    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")):
        raise refuse("has an absolute path")
    if ".." in name.parts:
        raise refuse("has a '..' component")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        # Symlinks resolve relative to the member's folder, hard links to the archive root.
        target = (name.parent / link) if member.issym() else link
        if link.is_absolute() or _escapes(target):
            raise refuse(f"links to {member.linkname!r} outside the extraction folder")
    elif not (member.isfile() or member.isdir()):
        raise refuse("is a device, FIFO or other special file")


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
        if depth < 0:
            return True
    return False


def safe_extract(archive: Path, folder: Path) -> None:
    """Extracts a tar archive into `folder` after checking every member.

    Members are extracted into a temporary folder inside `folder` (with the ``"data"``
    filter where Python has it) and then renamed into place, so an interrupted
    extraction leaves no half-written dataset behind.

    Args:
        archive: The .tar / .tar.gz file (verified by md5 before this is called).
        folder: Destination, created if missing.

    Raises:
        UnsafeArchiveError: A member is unsafe (see `check_member`); nothing is written.
        CorruptDatasetError: The archive cannot be read.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for member in members:
                    check_member(member, archive)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, members=members, filter="data")
                else:  # Python without PEP 706; our own check above still applies.
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise corrupt(archive, f"cannot be read as a tar archive ({error})") from error
        for entry in staging.iterdir():
            _merge(entry, folder / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _merge(src: Path, dst: Path) -> None:
    if src.is_dir() and dst.is_dir():
        for child in src.iterdir():
            _merge(child, dst / child.name)
    else:
        os.replace(src, dst)
