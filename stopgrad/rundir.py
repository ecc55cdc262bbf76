"""Run folders: resolved config, provenance (git revision, command), metrics as JSON lines,
``summary.json``, and atomically written checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from stopgrad.config import RunConfig, dump_yaml

CHECKPOINT = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or does not belong to this run."""


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


def new_run_dir(cfg: RunConfig) -> Path:
    """``out_dir/name``, or ``out_dir/<preset>-<method>-<timestamp>``; never reuses a folder."""
    if cfg.train.name:
        path = Path(cfg.train.out_dir) / cfg.train.name
        if (path / CHECKPOINT).exists() or (path / "summary.json").exists():
            raise FileExistsError(f"run folder {path} already holds a run; use `stopgrad resume {path}` "
                                  "or choose another train.name")
    else:
        slug = (cfg.preset or "default").replace("/", "-")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(cfg.train.out_dir) / f"{slug}-{cfg.method_name}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = Path(cfg.train.out_dir) / f"{slug}-{cfg.method_name}-{stamp}-{n}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_provenance(run_dir: Path, cfg: RunConfig) -> None:
    """``config.yaml`` (resolved) and ``provenance.json`` (git revision, command line, versions)."""
    dump_yaml(cfg, run_dir / "config.yaml")
    info = {"git": git_revision(), "command": sys.argv, "cwd": os.getcwd(),
            "torch": torch.__version__, "python": sys.version.split()[0],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_text(run_dir / "provenance.json", json.dumps(info, indent=2))


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """One JSON object per line in ``metrics.jsonl``, flushed so a crash loses nothing logged."""
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def read_metrics(run_dir: Path, name: str = "metrics.jsonl") -> list[dict[str, Any]]:
    """Rows of a run's JSON-lines file (``metrics.jsonl`` or ``spectra.jsonl``); empty when absent."""
    path = Path(run_dir) / name
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i + 1}: not a JSON line ({e})") from e
    return rows


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Drop rows logged after ``last_step`` (work the checkpoint does not contain) before resuming."""
    rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= last_step]
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``checkpoint.pt`` atomically (temp file, fsync, rename): a crash never leaves half a file."""
    path = run_dir / CHECKPOINT
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, turning a damaged file into a :class:`CheckpointError` that names it."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the run has not reached its first checkpoint "
                              "(train.ckpt_every) or the folder is wrong")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated/corrupt zip archives
        raise CheckpointError(f"checkpoint {path} is damaged or truncated ({type(e).__name__}: {e}); "
                              "delete it to restart the run from scratch") from e
    missing = {"step", "model", "optimizer", "config"} - set(state) if isinstance(state, dict) else {"all"}
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {sorted(missing)}: not a stopgrad checkpoint")
    return state


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Merge ``summary`` into ``summary.json`` (later evaluations add keys, never drop them)."""
    path = run_dir / "summary.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(summary)
    atomic_write_text(path, json.dumps(old, indent=2))


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}
