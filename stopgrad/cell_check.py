"""A grid reuses the cells it finds: a finished cell is skipped and a killed one resumed. That is
only right when the cell was made by the command the grid would run now. A cell made under other
settings (another ``--views``, another epoch budget, a preset changed since) would otherwise enter
the table beside the new runs without a word; :func:`check_cells` refuses such a grid instead,
naming the cell, the keys that differ and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from stopgrad.config import dotted, load_yaml, resolve
from stopgrad.errors import StopgradError

#: Keys that do not change what a run computes: where the cell lies and what the preset is
#: called (the cell's folder and the resolved values say that), threads, logging and
#: checkpoint periods, trackers, and how often the online kNN looks in (it changes no weight:
#: tests/test_train.py::test_the_online_knn_leaves_training_untouched).
IGNORED = ("preset", "train.out_dir", "train.name", "train.num_threads", "train.progress", "train.log_every",
           "train.ckpt_every", "train.tensorboard", "train.wandb", "train.wandb_project", "train.wandb_name",
           "train.wandb_mode", "eval.knn_every")


class CellLike(Protocol):
    run_dir: Path

    @property
    def preset(self) -> str: ...

    def train_overrides(self) -> list[str]: ...


def config_differences(run_dir: Path, preset: str, overrides: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """``{key: (value in the run's config.yaml, value the grid asks for)}`` for every key that
    differs, :data:`IGNORED` aside; empty when the run folder holds no ``config.yaml`` yet, or one
    that cannot be read (that cell's run then fails with the reason, and the grid names it)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return {}
    try:
        have = dotted(load_yaml(path).to_dict())
    except StopgradError:
        return {}  # a damaged cell: its own run fails and names the file, the others go on
    want = dotted(resolve(preset, list(overrides)).to_dict())
    return {k: (have.get(k), want.get(k)) for k in sorted(set(have) | set(want))
            if k not in IGNORED and have.get(k) != want.get(k)}


def check_cells(grid: Iterable[CellLike]) -> None:
    """Raise :class:`StopgradError` if any existing cell of ``grid`` was made under other settings."""
    stale = [(c, d) for c in grid if (d := config_differences(c.run_dir, c.preset, c.train_overrides()))]
    if not stale:
        return
    cell, diff = stale[0]
    keys = "; ".join(f"{k}: {have!r} there, {want!r} asked" for k, (have, want) in list(diff.items())[:4])
    if len(diff) > 4:
        keys += f"; and {len(diff) - 4} more {'key' if len(diff) == 5 else 'keys'}"
    more = f" (and {len(stale) - 1} more {'cell' if len(stale) == 2 else 'cells'})" if len(stale) > 1 else ""
    raise StopgradError(f"{cell.run_dir} was made with other settings than this grid asks for ({keys}){more}; "
                        "give the grid another output folder, or move the old runs away to rerun them here")
