"""Checkpoints that cannot carry code, verified on load, with the previous good one kept.

A checkpoint holds tensors and plain data only (dicts, lists, numbers, strings) and is read with
``torch.load(weights_only=True)``: a file whose pickle names anything else (a ``__reduce__``
payload calling ``os.system``, a custom class) is refused with :class:`UnsafeFileError` and
nothing in it runs.

Files in a run folder:

- ``checkpoint.pt``: the latest checkpoint;
- ``checkpoint.prev.pt``: the one before it, kept until the new one is whole;
- ``checkpoint.sums.json``: the sha256 and step of the checkpoints written, so a damaged file
  (truncated, bit-flipped, half-copied) is found before it is unpickled.

Writing (:func:`save`): the new file goes to ``checkpoint.pt.tmp`` (fsync), its sha256 is
recorded in the sums file (atomic), then ``checkpoint.pt`` becomes ``checkpoint.prev.pt`` and the
temp file becomes ``checkpoint.pt``. A crash at any point leaves at least one verified checkpoint.
Reading (:func:`load_latest`): the verified checkpoint with the highest step among those three
files; when the latest is damaged the caller is told which one was used instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stopgrad import atomic, failpoints
from stopgrad.errors import CheckpointError, UnsafeFileError

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
PENDING = CHECKPOINT + ".tmp"
SUMS = "checkpoint.sums.json"
REQUIRED = ("step", "model", "optimizer", "config")
_KEEP = 4  # sums entries kept: pending, latest, previous, and one spare


@dataclass
class Loaded:
    """A checkpoint read back: its state, the file, and why another file was not used (if any)."""

    state: dict[str, Any]
    path: Path
    verified: bool
    skipped: list[str]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_sums(run_dir: Path) -> list[dict[str, Any]] | None:
    """The recorded checksums, newest first; None when the folder has no (readable) sums file."""
    path = Path(run_dir) / SUMS
    try:
        doc = json.loads(path.read_text())
        entries = doc["files"]
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("sha256"), str)]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(run_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` as the latest checkpoint of ``run_dir`` (see the module docstring).

    On any error (a full disk, a read-only folder) the temp file is removed and the checkpoints
    already there are left as they were.
    """
    run_dir = Path(run_dir)
    latest, pending, previous = run_dir / CHECKPOINT, run_dir / PENDING, run_dir / PREVIOUS
    buffer = io.BytesIO()
    torch.save(state, buffer)  # in memory first: a full disk is then a plain OSError from write()
    data = buffer.getbuffer()
    digest = hashlib.sha256(data).hexdigest()
    with atomic.removing_on_error(pending, pending):
        with open(pending, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            failpoints.hit("checkpoint.write")
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
        sums = read_sums(run_dir) or []
        entry = {"sha256": digest, "step": int(state["step"]), "bytes": len(data)}
        atomic.write_text(run_dir / SUMS, json.dumps({"format": 1, "files": [entry, *sums][:_KEEP]}, indent=1))
        failpoints.hit("checkpoint.recorded")
        if latest.exists() and _verifies(latest, sums):
            os.replace(latest, previous)  # the old latest becomes the fallback
        failpoints.hit("checkpoint.rotated")
        os.replace(pending, latest)
        fsync_dir(run_dir)
    return latest


def _verifies(path: Path, sums: list[dict[str, Any]] | None) -> bool:
    if not sums:
        return True  # nothing recorded (an older run folder): trust the file as before
    digest = sha256_of(path)
    return any(e["sha256"] == digest for e in sums)


_GLOBAL = re.compile(r"GLOBAL (\S+)")


def read(path: Path) -> dict[str, Any]:
    """Read one checkpoint file with ``weights_only=True``; never runs code from it.

    Raises:
        UnsafeFileError: The pickle names a callable or class beyond tensors and plain data.
        CheckpointError: The file is truncated, not a checkpoint, or lacks a stopgrad key.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before it refuses them
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Weights only load failed" in text or "WeightsUnpickler" in text:
            found = _GLOBAL.search(text)
            if found:
                why = f"holds objects that would run code when loaded (it refers to {found.group(1)})"
            else:
                detail = next((ln.strip() for ln in text.splitlines()[2:] if ln.strip()), "")
                why = f"is a pickle that cannot be read without running code ({detail})"
            raise UnsafeFileError(
                f"checkpoint {path} {why}; refused, nothing in it was run. A stopgrad checkpoint holds tensors "
                "and plain data only: use one written by stopgrad, or retrain") from e
        raise CheckpointError(f"checkpoint {path} is damaged or truncated (UnpicklingError: {e}); delete it "
                              "to restart the run from scratch, or restore it from a copy") from e
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, MemoryError) as e:  # torch raises several types for broken zip archives
        if isinstance(e, OSError) and e.errno is not None:
            raise  # a permission or I/O error, reported as such by the CLI
        raise CheckpointError(f"checkpoint {path} is damaged or truncated ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}); delete it to restart the run "
                              "from scratch, or restore it from a copy") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a stopgrad checkpoint")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: not a stopgrad checkpoint")
    _check_types(path, state)
    return state


def _check_types(path: Path, state: dict[str, Any]) -> None:
    """The shapes of the plain data a loop reads, so a forged file fails here and not mid-run."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: {what}; not a stopgrad checkpoint, or a damaged one")

    if isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0:
        raise bad(f"step is {state['step']!r}, expected an integer >= 0")
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise bad("model is not a mapping of parameter names to tensors")
    opt = state["optimizer"]
    if not isinstance(opt, dict) or not isinstance(opt.get("param_groups"), list) or \
            not isinstance(opt.get("state"), dict):
        raise bad("optimizer is not an optimizer state (state, param_groups)")
    if not isinstance(state["config"], dict):
        raise bad("config is not a mapping")


def load_latest(run_dir: Path) -> Loaded:
    """The newest good checkpoint of ``run_dir``: verified against the sums file, read safely.

    Candidates are ``checkpoint.pt``, a complete ``checkpoint.pt.tmp`` (a crash between writing
    and renaming it) and ``checkpoint.prev.pt``; the verified one with the highest step wins.
    A file that would run code is never read past and never skipped silently.

    Raises:
        CheckpointError: No checkpoint at all, or none that is whole (the message lists each file
            and what is wrong with it).
        UnsafeFileError: A candidate would run code when loaded.
    """
    run_dir = Path(run_dir)
    sums = read_sums(run_dir)
    skipped: list[str] = []
    found: list[tuple[int, int, Loaded]] = []
    for rank, name in enumerate((CHECKPOINT, PENDING, PREVIOUS)):
        path = run_dir / name
        if not path.is_file():
            continue
        if name == PENDING and not (sums and _verifies(path, sums)):
            continue  # an unfinished write: never a candidate
        if sums is not None and not _verifies(path, sums):
            skipped.append(f"{path} does not match its recorded sha256 (damaged or replaced)")
            continue
        try:
            state = read(path)
        except UnsafeFileError:
            raise
        except CheckpointError as e:
            skipped.append(str(e))
            continue
        found.append((state["step"], -rank, Loaded(state, path, sums is not None, [])))
    if not found:
        if not skipped:
            raise CheckpointError(f"no checkpoint in {run_dir}: the run has not reached its first checkpoint "
                                  "(train.ckpt_every) or the folder is wrong")
        raise CheckpointError(f"no usable checkpoint in {run_dir}: " + "; ".join(skipped))
    best = max(found, key=lambda t: (t[0], t[1]))[2]
    best.skipped = skipped
    return best
