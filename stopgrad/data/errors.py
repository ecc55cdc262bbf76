"""Errors raised while finding, downloading, verifying and parsing datasets."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is in none of the searched places and could not be downloaded.

    The message names the missing file, lists every place that was searched, in order,
    and says how to make the file available.
    """


class CorruptDatasetError(RuntimeError):
    """A dataset file exists but its content is not what the official format says.

    The message names the file, says what is wrong and tells the user to delete it and
    fetch it again.
    """


class ChecksumError(CorruptDatasetError):
    """A file's md5 differs from the published checksum (a bad download or another file)."""


class UnsafeArchiveError(CorruptDatasetError):
    """An archive member would be written outside the extraction folder, or is a device."""


def corrupt(path: object, problem: str) -> CorruptDatasetError:
    """Builds the standard "this file is broken, delete and re-download" error.

    Args:
        path: The offending file.
        problem: What is wrong with it, in a few words.

    Returns:
        A `CorruptDatasetError` to raise.
    """
    return CorruptDatasetError(
        f"{path}: {problem}. The file is truncated, corrupt or not the official one; "
        f"delete it and download it again (load_dataset(..., download=True) fetches it)."
    )
