"""``stopgrad sweep``: a grid of runs from comma lists on the command line, run here or on SLURM.

``stopgrad sweep fashion-mnist/simsiam optim.lr=0.03,0.06 train.seed=0,1,2`` makes the variants
``lr-0.03`` and ``lr-0.06`` (one per combination of the non-seed lists) and runs each for every
seed as an ordinary run in ``OUT/<variant>/seed<k>`` (:mod:`stopgrad.sweep`): finished cells are
skipped, killed ones resumed. Then it writes the mean ± std table (``OUT/table.md``,
``OUT/table.json``) and the bar figure (``OUT/table.png``).

Launchers:

- ``local`` (default): ``--jobs`` cells at a time on this machine, ``--threads`` each;
- ``slurm``: one SLURM job per cell, or one job array (``--array``), submitted through
  ``submitit`` (``pip install 'stopgrad[slurm]'``) with ``--partition``, ``--time`` (minutes),
  ``--gpus`` and ``--cpus`` per job; each job runs the cell's ``stopgrad train`` / ``resume``
  command, so a cell's folder is the same whichever launcher made it. ``--launcher slurm-local``
  runs the same submission through submitit's local executor (what the tests use).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from stopgrad.cell_check import check_cells
from stopgrad.config import ConfigError, resolve
from stopgrad.sweep import Cell, Variant, cells

SEED_KEY = "train.seed"


def split_values(text: str) -> list[str]:
    """``"0.1,0.2"`` → ``["0.1", "0.2"]``; commas inside ``[...]`` or ``{...}`` do not split."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _slug(key: str, value: str) -> str:
    name = key.rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._+-]+", "", f"{name}-{value}") or name


@dataclass
class Grid:
    """The variants (one per combination of the listed values) and the seeds of a sweep."""

    preset: str
    variants: list[Variant]
    seeds: list[int]

    def cells(self, out: Path, extra: Sequence[str] = ()) -> list[Cell]:
        return cells(self.variants, self.seeds, out, tuple(extra))


def parse_grid(preset: str | None, overrides: Sequence[str]) -> Grid:
    """Read the command line's ``key=v1,v2`` lists; every combination is resolved (checked) now."""
    preset = preset or "default"
    fixed: list[str] = []
    axes: list[tuple[str, list[str]]] = []
    seeds = [0]
    for text in overrides:
        if "=" not in text:
            raise ConfigError(f"sweep argument {text!r} is not key=value or key=v1,v2,... (e.g. optim.lr=0.03,0.06)")
        key, raw = text.split("=", 1)
        values = split_values(raw)
        if key == SEED_KEY:
            try:
                seeds = [int(yaml.safe_load(v)) for v in values]
            except (TypeError, ValueError, yaml.YAMLError) as e:
                raise ConfigError(f"{SEED_KEY}={raw!r}: expected integers like 0,1,2") from e
        elif len(values) > 1:
            axes.append((key, values))
        else:
            fixed.append(text)
    variants = []
    for combo in itertools.product(*[[(k, v) for v in vs] for k, vs in axes]) if axes else [()]:
        name = "_".join(_slug(k, v) for k, v in combo) or "base"
        overrides_ = (*fixed, *(f"{k}={v}" for k, v in combo))
        resolve(preset, list(overrides_))  # a bad key or value stops the sweep before any run
        variants.append(Variant(name, preset, tuple(overrides_)))
    names = [v.name for v in variants]
    if len(set(names)) < len(names):
        variants = [Variant(f"v{i}-{v.name}", v.preset, v.overrides) for i, v in enumerate(variants)]
    return Grid(preset, variants, seeds)


# --------------------------------------------------------------------------------------- SLURM
@dataclass
class SlurmOptions:
    partition: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int = 2
    array: bool = False
    folder: Path | None = None


def run_cell(command: list[str], threads: int) -> int:
    """What one SLURM job runs: the cell's own command, in a process of its own."""
    import os
    import subprocess

    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads))
    return subprocess.run(command, env=env, check=False).returncode


def submit(grid_cells: list[Cell], opts: SlurmOptions, local: bool = False, threads: int = 1) -> list[Any]:
    """Submit the unfinished cells through submitit (``local``: its local executor); wait; return the jobs.
    A cell already there but made under other settings stops it before anything is submitted, as
    it stops :func:`stopgrad.sweep.run_grid`."""
    check_cells(grid_cells)
    try:
        import submitit
    except ImportError as e:
        raise ConfigError("--launcher slurm needs the submitit package: pip install -c constraints.txt "
                          "'stopgrad[slurm]'") from e
    todo = [c for c in grid_cells if not c.done]
    folder = opts.folder or (grid_cells[0].run_dir.parent.parent / "slurm" if grid_cells else Path("slurm"))
    if local:
        executor: Any = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=opts.time_min)
    else:
        executor = submitit.AutoExecutor(folder=str(folder))
        params: dict[str, Any] = {"timeout_min": opts.time_min, "cpus_per_task": opts.cpus, "gpus_per_node": opts.gpus,
                                  "tasks_per_node": 1, "nodes": 1}
        if opts.partition:
            params["slurm_partition"] = opts.partition
        executor.update_parameters(**params)
    for cell in todo:
        cell.run_dir.parent.mkdir(parents=True, exist_ok=True)
    commands = [c.command(threads) for c in todo]
    if opts.array and not local:
        jobs = executor.map_array(run_cell, commands, [threads] * len(commands))
    else:
        jobs = [executor.submit(run_cell, cmd, threads) for cmd in commands]
    for job in jobs:
        job.result()
    return jobs
