"""The errors a user can cause, under one base, and their one-line form for the command line.

Library code raises; only :mod:`stopgrad.cli` prints. Every error a user can cause (a config key
or value, a dataset file, a checkpoint, a device, a folder's permissions, a full disk) derives
from :class:`StopgradError` or is an :class:`OSError`, and :func:`describe` turns either into one
line that names the file or key and the fix in CLI terms.

Examples:
    >>> describe(OSError(28, "No space left on device", "runs/x/checkpoint.pt.tmp"))
    'disk full while writing runs/x/checkpoint.pt.tmp: free space, or set train.out_dir to a folder on another disk'
"""

from __future__ import annotations

import errno


class StopgradError(Exception):
    """Base of every error a user can cause; the message names the bad value and the fix."""


class ConfigError(StopgradError, ValueError):
    """A configuration key or value is invalid; the message names it and the fix."""


class CheckpointError(StopgradError, RuntimeError):
    """A checkpoint is missing, damaged, unsafe or does not belong to this run."""


class UnsafeFileError(StopgradError):
    """A file would need to run code to load (a pickle with a ``__reduce__`` payload, a YAML tag).

    Nothing in the file has been run when this is raised."""


class RunFolderError(StopgradError, FileNotFoundError):
    """A run folder does not exist or lacks what the command needs (``config.yaml``)."""


class DeviceError(StopgradError, ValueError):
    """The requested device does not exist on this machine."""


_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def with_path(error: OSError, path: object) -> OSError:
    """The same OS error naming ``path`` (``write()`` and ``fsync()`` raise theirs without a file name)."""
    if error.filename is not None or error.errno is None:
        return error
    named = type(error)(error.errno, error.strerror, str(path))
    named.__cause__ = error
    return named


def describe_os_error(error: OSError) -> str:
    """One line for an OS error a user can cause: permissions, read-only or full disks, missing paths."""
    path = error.filename if error.filename is not None else ""
    where = f" {path}" if path else ""
    if error.errno == errno.ENOSPC or error.errno == errno.EDQUOT:
        return (f"disk full while writing{where}: free space, or set train.out_dir to a folder on another "
                "disk")
    fix = ("choose a writable folder (train.out_dir for a new run, --out for eval), or copy the run folder "
           "to one and resume it there")
    if error.errno == errno.EROFS:
        return f"cannot write{where}: read-only file system; {fix}"
    if error.errno in _PERMISSION:
        return f"cannot write{where}: permission denied; {fix}, or fix the folder's permissions"
    if error.errno == errno.ENOENT:
        return f"no such file or folder:{where or ' (unnamed)'}"
    text = error.strerror or str(error) or type(error).__name__
    return f"{text}{':' + where if where else ''}"


def describe(error: BaseException) -> str:
    """The message of a user-caused error as the CLI prints it (without the ``stopgrad: error:`` prefix).

    Multi-line messages (a dataset searched in several places) keep their lines; everything else
    is one line.
    """
    if isinstance(error, OSError) and not isinstance(error, StopgradError) and error.errno is not None:
        return describe_os_error(error)
    return str(error) or type(error).__name__
