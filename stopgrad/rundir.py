"""Run folders: resolved config, provenance (git revision, command), metrics as JSON lines,
``summary.json``, and checkpoints (written and read by :mod:`stopgrad.checkpoint`).

Every file is written so that a crash at any instant leaves it whole or absent: the folder is
staged under a hidden name and renamed into place with its ``config.yaml`` and
``provenance.json``; JSON files go through a temp file, fsync and rename; metric rows are
appended and flushed, and a resumed run cuts the files back to the byte length its checkpoint
recorded, so no row is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from stopgrad import atomic, checkpoint, failpoints
from stopgrad.checkpoint import CHECKPOINT
from stopgrad.config import RunConfig, dump_yaml
from stopgrad.errors import CheckpointError, RunFolderError, StopgradError, with_path

__all__ = ["CHECKPOINT", "CheckpointError", "append_metrics", "create_run_dir", "load_checkpoint",
           "read_metrics", "read_summary", "save_checkpoint", "truncate_rows", "write_summary"]

LOGS = ("metrics.jsonl", "spectra.jsonl")  # the append-only files a checkpoint records the length of


def git_revision() -> dict[str, Any]:
    """The source tree's commit and whether it had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def holds_run(path: Path) -> bool:
    return any((path / name).exists() for name in ("config.yaml", CHECKPOINT, "summary.json"))


def run_dir_path(cfg: RunConfig) -> Path:
    """``out_dir/name``, or ``out_dir/<preset>-<method>-<timestamp>`` (never an existing folder)."""
    out = Path(cfg.train.out_dir)
    if cfg.train.name:
        path = out / cfg.train.name
        if holds_run(path):
            raise RunFolderError(f"run folder {path} already holds a run; use `stopgrad resume {path}` "
                                 "or choose another train.name")
        return path
    stem = run_stem(cfg)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = out / f"{stem}-{stamp}", 1
    while path.exists():
        n += 1
        path = out / f"{stem}-{stamp}-{n}"
    return path


def run_stem(cfg: RunConfig) -> str:
    """``<preset>`` (``fashion-mnist-byol``), ``<preset>-<method>`` when an override changed the
    preset's method, and ``<dataset>-<method>`` without a preset (or with ``default``)."""
    if not cfg.preset or cfg.preset == "default":
        return f"{cfg.data.dataset}-{cfg.method_name}"
    slug = cfg.preset.replace("/", "-").removesuffix(".yaml")
    return slug if Path(cfg.preset).stem == cfg.method_name else f"{slug}-{cfg.method_name}"


def create_run_dir(cfg: RunConfig) -> Path:
    """Create the run folder with ``config.yaml`` and ``provenance.json`` already in it.

    The folder is built under a hidden temporary name next to it and renamed into place, so a
    folder named like a run always holds its config (and can be resumed), and a failure here
    leaves nothing behind.
    """
    path = run_dir_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path)
    staging = path.parent / f".{path.name}.staging-{os.getpid()}"
    try:
        try:
            staging.mkdir()
        except OSError as e:  # name the folder the user chose, not the hidden staging one
            raise OSError(e.errno, e.strerror, str(path.parent)) from e
        write_provenance(staging, cfg)
        failpoints.hit("rundir.staged")
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()  # an empty folder of that name (made by hand) is taken over
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    checkpoint.fsync_dir(path.parent)
    return path


def remove_stale_staging(path: Path) -> None:
    """Remove staging folders of ``path`` left by processes that were killed while creating it."""
    for stale in path.parent.glob(f".{path.name}.staging-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # still running: not ours to remove
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass


def write_provenance(run_dir: Path, cfg: RunConfig) -> None:
    """``config.yaml`` (resolved) and ``provenance.json`` (git revision, command line, versions)."""
    tmp = run_dir / "config.yaml.tmp"
    dump_yaml(cfg, tmp)
    os.replace(tmp, run_dir / "config.yaml")
    info = {"git": git_revision(), "command": sys.argv, "cwd": os.getcwd(),
            "torch": torch.__version__, "python": sys.version.split()[0],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(run_dir / "provenance.json", json.dumps(info, indent=2))


def atomic_write_text(path: Path, text: str) -> None:
    """Write through ``<path>.tmp``, fsync and rename: readers see the old file or the new one."""
    atomic.write_text(path, text)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """One JSON object per line in ``metrics.jsonl``, flushed so a crash loses nothing logged."""
    text, path = json.dumps(row) + "\n", run_dir / "metrics.jsonl"
    try:
        with open(path, "a") as f:
            half = len(text) // 2
            f.write(text[:half])
            f.flush()
            failpoints.hit("metrics.append")  # a kill here leaves half a line, which resume cuts off
            f.write(text[half:])
            f.flush()
    except OSError as e:
        raise with_path(e, path)


def read_metrics(run_dir: Path, name: str = "metrics.jsonl") -> list[dict[str, Any]]:
    """Rows of a run's JSON-lines file (``metrics.jsonl`` or ``spectra.jsonl``); empty when absent.

    An unfinished last line (a run killed while appending it) is left out; a bad line elsewhere is
    an error naming the file and line.
    """
    path = Path(run_dir) / name
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # no newline after it: the write was cut short
                break
            raise StopgradError(f"{path}:{i + 1}: not a JSON line ({e}); the file was edited or damaged") from e
    return rows


def log_sizes(run_dir: Path) -> dict[str, int]:
    """Byte length of each append-only log, recorded in every checkpoint."""
    return {name: (run_dir / name).stat().st_size if (run_dir / name).exists() else 0 for name in LOGS}


def truncate_rows(run_dir: Path, sizes: dict[str, int] | None, last_step: int) -> None:
    """Cut the logs back to what the checkpoint had seen, before resuming from it.

    ``sizes`` (from the checkpoint) gives each file's byte length at save time (all 0 for a run
    that starts over); a checkpoint written by an older stopgrad has none (None), and rows after
    ``last_step`` are dropped instead.
    """
    for name in LOGS:
        path = run_dir / name
        if not path.exists():
            continue
        if sizes is not None and name in sizes:
            size = int(sizes[name])
            if path.stat().st_size > size:
                with open(path, "r+b") as f:
                    f.truncate(size)
                    os.fsync(f.fileno())
        else:  # metric rows carry the step count after the step (1-based), spectra the step's index
            keep = (lambda r: r.get("step", 0) <= last_step) if name == "metrics.jsonl" else \
                (lambda r: r.get("step", 0) < last_step)
            rows = [r for r in read_metrics(run_dir, name) if keep(r)]
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """The latest checkpoint, previous one kept (:func:`stopgrad.checkpoint.save`)."""
    return checkpoint.save(Path(run_dir), state)


def load_checkpoint(run_dir: Path) -> checkpoint.Loaded:
    """The newest whole checkpoint of a run folder (:func:`stopgrad.checkpoint.load_latest`)."""
    path = Path(run_dir)
    if path.is_file():  # a checkpoint file given directly
        return checkpoint.Loaded(checkpoint.read(path), path, False, [])
    return checkpoint.load_latest(path)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Merge ``summary`` into ``summary.json`` (later evaluations add keys, never drop them)."""
    path = Path(run_dir) / "summary.json"
    old = read_summary(run_dir)
    old.update(summary)
    atomic.write_text(path, json.dumps(old, indent=2), failpoint="summary.write")


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StopgradError(f"{path} is not valid JSON ({e}); delete it and run "
                            f"`stopgrad resume {path.parent}` to write it again") from e
    if not isinstance(doc, dict):
        raise StopgradError(f"{path} holds a {type(doc).__name__}, not a summary; delete it and run "
                            f"`stopgrad resume {path.parent}` to write it again")
    return doc


def require_run_dir(run_dir: Path) -> Path:
    """A run folder that exists and has its ``config.yaml``; the error says what is wrong."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunFolderError(f"run folder {run_dir} does not exist; list runs with `ls {run_dir.parent}`")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a run folder; pass the folder that holds config.yaml")
    if not (run_dir / "config.yaml").is_file():
        raise RunFolderError(f"{run_dir} has no config.yaml: not a stopgrad run folder (or it was killed "
                             "before it started); start it again with `stopgrad train`")
    return run_dir
