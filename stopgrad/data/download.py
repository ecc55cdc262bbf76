"""Downloading with a progress bar, atomic rename and md5 verification."""

import hashlib
import http.client
import os
import urllib.request
import warnings
from pathlib import Path

from tqdm import tqdm

from stopgrad.data.errors import REFETCH, ChecksumError
from stopgrad.data.sources import RemoteFile

_CHUNK = 1 << 20


def md5_of(path: Path) -> str:
    """Returns the hex md5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ChecksumWarning(UserWarning):
    """A file's md5 differs from the official one and ``data.verify=false`` accepted it."""


def verify_md5(path: Path, expected: str, verify: bool = True) -> None:
    """Checks a file against its published md5.

    Args:
        path: The file.
        expected: The official md5.
        verify: When False a mismatch is a :class:`ChecksumWarning` naming the file and both
            checksums (config ``data.verify=false``: a re-pack or mirror of the official data,
            whose structure the parsers still check).

    Raises:
        ChecksumError: The md5 differs (and `verify`); the message names the file and both checksums.
    """
    actual = md5_of(path)
    if actual == expected:
        return
    if not verify:
        warnings.warn(f"{path}: md5 {actual} differs from the official {expected}; used anyway "
                      "(data.verify=false), its structure is still checked", ChecksumWarning, stacklevel=2)
        return
    raise ChecksumError(
        f"{path}: md5 is {actual} but the official file has md5 {expected}. The file is truncated, corrupt "
        f"or not the official one; {REFETCH}. If it is your own re-pack or a mirror of the official data, "
        f"set data.verify=false to use it (its structure is still checked)."
    )


def download_url(url: str, dest: Path, md5: str, timeout: float = 60.0) -> None:
    """Downloads one URL to `dest`, verifying its md5 before it appears under that name.

    The bytes go to ``<dest>.<pid>.part`` first and are renamed atomically, so a reader
    never sees a partial file and concurrent processes do not clobber each other.

    Args:
        url: Any URL `urllib` opens, including ``file://`` (used by the tests).
        dest: Final path of the file.
        md5: Expected hex md5.
        timeout: Socket timeout in seconds.

    Raises:
        ChecksumError: The downloaded bytes do not have the expected md5 (nothing is kept).
        OSError: The URL could not be read (`urllib.error.URLError` is an OSError).
    """
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}", disable=None) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise ChecksumError(
                f"{url}: downloaded file has md5 {digest.hexdigest()} but the official "
                f"{dest.name} has md5 {md5}; the server sent a different or damaged file. "
                f"Nothing was kept; try again later or fetch the file by hand into {dest.parent}."
            )
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def fetch(remote: RemoteFile, folder: Path) -> Path:
    """Downloads `remote` into `folder`, trying its URLs in order.

    Args:
        remote: File name, md5 and URLs (official location first).
        folder: Existing writable folder.

    Returns:
        Path of the verified file.

    Raises:
        ChecksumError: Every URL that answered served a file with the wrong md5.
        OSError: No URL could be read; the message lists each URL and its error.
    """
    dest = folder / remote.filename
    failures: list[str] = []
    bad_checksum: ChecksumError | None = None
    for url in remote.urls:
        try:
            download_url(url, dest, remote.md5)
            return dest
        except ChecksumError as error:
            bad_checksum = error
            failures.append(f"{url}: {error}")
        except (OSError, http.client.HTTPException, ValueError) as error:
            failures.append(f"{url}: {error}")
    if bad_checksum is not None:
        raise ChecksumError("; ".join(failures)) from bad_checksum
    raise OSError("download failed: " + "; ".join(failures))
