"""Errors raised while finding, downloading, verifying and parsing datasets.

Each derives from :class:`stopgrad.errors.StopgradError`, so the command line prints it as one
``stopgrad: error:`` line; the messages give the fix as CLI options (``data.root``,
``data.download``, ``data.verify``).
"""

from stopgrad.errors import StopgradError


class DatasetNotFoundError(StopgradError, FileNotFoundError):
    """A dataset file is in none of the searched places and could not be downloaded.

    The message names the missing file, lists every place that was searched, in order,
    and says how to make the file available.
    """


class CorruptDatasetError(StopgradError, RuntimeError):
    """A dataset file exists but its content is not what the official format says.

    The message names the file, says what is wrong and tells the user to delete it and
    fetch it again.
    """


class DatasetLayoutError(StopgradError, ValueError):
    """An image folder's layout is not the ImageNet one (a val/ class that train/ lacks, stray images)."""


class ChecksumError(CorruptDatasetError):
    """A file's md5 differs from the published checksum (a bad download or another file)."""


class UnsafeArchiveError(CorruptDatasetError):
    """An archive member would be written outside the extraction folder, or is a device."""


REFETCH = ("delete it and run again with data.download=true to fetch the official file, or put a good "
           "copy in data.root")


def corrupt(path: object, problem: str) -> CorruptDatasetError:
    """Builds the standard "this file is broken, delete and re-download" error.

    Args:
        path: The offending file.
        problem: What is wrong with it, in a few words.

    Returns:
        A `CorruptDatasetError` to raise.
    """
    return CorruptDatasetError(
        f"{path}: {problem}. The file is truncated, corrupt or not the official one; {REFETCH}."
    )


def bad_image(path: object, problem: str) -> CorruptDatasetError:
    """The error for one unreadable file of an image folder (which is never downloaded)."""
    return CorruptDatasetError(
        f"{path}: {problem}. Replace the file with a readable image or remove it from the folder "
        f"(image folders are read as they are; nothing is downloaded)."
    )
