"""Seed-by-variant grids of training runs, and their mean ± std tables.

A grid is a list of :class:`Variant` (a preset plus dotted overrides) times a list of seeds. Each
cell is one ordinary ``stopgrad train`` process writing ``ROOT/<variant>/seed<k>``, so every cell
keeps its own config, provenance and metrics. A finished cell (``summary.json`` with a final kNN)
is skipped when the grid is run again; a cell killed midway is resumed from its checkpoint, so an
interrupted grid loses at most ``train.ckpt_every`` steps per running cell.

``jobs`` cells run at a time, each pinned to ``threads`` intra-op threads with
``OMP_WAIT_POLICY=PASSIVE`` (on this 2-core machine two single-thread runs side by side get about
twice the work done of one two-thread run, without OpenMP spin-waits stealing each other's core).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from stopgrad.cell_check import check_cells
from stopgrad.errors import StopgradError
from stopgrad.rundir import CHECKPOINT, read_metrics
from stopgrad.stop_signal import stop_requests

#: Final values collected from a run: summary keys, then the last logged value of each metric.
# The views of the Fashion-MNIST grids measured before the presets moved to 28-gray-strong
# (2026-12-02: the recipe screen's first rounds, wen-li-2022-fmnist): their grids pin it, so their
# commands reproduce their published numbers.
PUBLISHED_FMNIST_VIEWS = "data.views=28-gray"
# The views of the tables rerun with the strong views (2026-12-06: the predictor-family and
# method-family tables, jha-2023-fmnist), pinned for the same reason should the presets move on.
STRONG_FMNIST_VIEWS = "data.views=28-gray-strong"
# The presets' views since 2026-12-07 (round 3's budget comparison), the tables' default since then.
PRESET_FMNIST_VIEWS = "24-gray-strong"
# The ConvNet of every Fashion-MNIST table measured before the presets took feature_bn (2026-12-07,
# benchmarks/fmnist_neck.py): the grids and reproductions pin it first in their overrides, so their
# commands reproduce their published numbers (a variant's own model.options still replaces it).
PLAIN_FMNIST_BACKBONE = "model.options={pool: 3}"
#: The ConvNets a Fashion-MNIST grid or reproduction may pin (``--backbone``): ``plain`` gave every table
#: published before 2026-12-07 and stays their default; ``feature-bn`` is the presets' backbone since then.
FMNIST_BACKBONES = {"plain": PLAIN_FMNIST_BACKBONE, "feature-bn": "model.options={pool: 3, feature_bn: true}"}
SUMMARY_KEYS = ("knn_top1", "linear_top1", "wall_s", "images_per_s", "steps", "collapse_alarm")
METRIC_KEYS = ("loss", "diag/center_norm_pre_bn", "diag/center_norm", "diag/dim_std",
               "diag/effective_rank", "diag/feat_effective_rank", "diag/offdiag_norm",
               "diag/diag_norm", "diag/eigen_alignment")


@dataclass(frozen=True)
class Variant:
    """One row of a grid: a display name, a preset and ``key=value`` overrides."""

    name: str
    preset: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"variant name {self.name!r} must be a non-empty folder name without '/'")


@dataclass
class Cell:
    """One (variant, seed) run of a grid."""

    variant: Variant
    seed: int
    run_dir: Path
    extra: tuple[str, ...] = field(default=())

    @property
    def done(self) -> bool:
        summary = self.run_dir / "summary.json"
        if not summary.exists():
            return False
        try:
            return "knn_top1" in json.loads(summary.read_text())
        except json.JSONDecodeError:
            return False

    def command(self, threads: int) -> list[str]:
        """``python -m stopgrad train ...`` for a fresh cell, ``... resume DIR`` for a killed one (a
        cell killed before its first checkpoint has its config.yaml and starts over under resume)."""
        if (self.run_dir / CHECKPOINT).exists() or (self.run_dir / "config.yaml").exists():
            return [sys.executable, "-m", "stopgrad", "resume", str(self.run_dir)]
        return [sys.executable, "-m", "stopgrad", "train", self.preset, *self.train_overrides(),
                f"train.num_threads={threads}", "train.progress=false"]

    @property
    def preset(self) -> str:
        return self.variant.preset

    def train_overrides(self) -> list[str]:
        """The overrides that make this cell's run (threads and progress bars aside)."""
        return [*self.variant.overrides, *self.extra, f"train.seed={self.seed}",
                f"train.out_dir={self.run_dir.parent}", f"train.name={self.run_dir.name}"]


def cells(variants: Sequence[Variant], seeds: Iterable[int], root: Path,
          extra: Sequence[str] = ()) -> list[Cell]:
    """The grid's cells in run order: seed-major, so the first seeds of every variant finish first."""
    names = [v.name for v in variants]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"variant names must be unique; repeated: {sorted(dup)}")
    return [Cell(v, s, Path(root) / v.name / f"seed{s}", tuple(extra)) for s in seeds for v in variants]


def run_grid(grid: Sequence[Cell], jobs: int = 2, threads: int = 1, log=lambda s: print(s, flush=True)) -> list[Cell]:
    """Run every unfinished cell, ``jobs`` at a time; return the cells that failed.

    Each cell's stdout/stderr go to ``<run_dir>.log``. A failing cell does not stop the others.
    A cell already there but made under other settings stops the grid before anything runs
    (:func:`stopgrad.cell_check.check_cells`).
    """
    if jobs < 1 or threads < 1:
        raise ValueError(f"jobs and threads must be >= 1, got jobs={jobs}, threads={threads}")
    check_cells(grid)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(threads))
    todo = [c for c in grid if not c.done]
    log(f"{len(grid) - len(todo)} of {len(grid)} cells already done; running {len(todo)}, {jobs} at a time")
    running: list[tuple[Cell, subprocess.Popen, float, Any]] = []
    failed: list[Cell] = []
    with stop_requests() as stop:
        while todo or running:
            if stop:
                stop_grid(running, stop.signal_name, log)
            start_and_reap(todo, running, failed, jobs, threads, env, log)
    return failed


def stop_grid(running: list[tuple[Cell, subprocess.Popen, float, Any]], signal_name: str, log) -> None:
    """Pass a polite stop on to the running cells, wait while they write their checkpoints, and
    exit with the shell's status for the signal (143 for SIGTERM)."""
    for _, proc, _, _ in running:
        proc.send_signal(signal.SIGTERM)
    for cell, proc, _, fh in running:
        proc.wait()
        fh.close()
        log(f"stopped {cell.variant.name} seed {cell.seed} (its checkpoint is in {cell.run_dir})")
    print(f"stopped by {signal_name}: {len(running)} running cells wrote checkpoints; rerun the same command "
          "to resume the grid", file=sys.stderr, flush=True)
    raise SystemExit(128 + getattr(signal, signal_name, signal.SIGTERM))


def start_and_reap(todo: list[Cell], running: list[tuple[Cell, subprocess.Popen, float, Any]], failed: list[Cell],
                   jobs: int, threads: int, env: dict[str, str], log) -> None:
    """One turn of :func:`run_grid`: start cells up to ``jobs``, wait a second, collect the finished."""
    while todo and len(running) < jobs:
        cell = todo.pop(0)
        cell.run_dir.parent.mkdir(parents=True, exist_ok=True)
        fh = open(cell.run_dir.with_suffix(".log"), "a")
        proc = subprocess.Popen(cell.command(threads), stdout=fh, stderr=subprocess.STDOUT, env=env)
        running.append((cell, proc, time.time(), fh))
        log(f"start {cell.variant.name} seed {cell.seed}")
    time.sleep(1.0)
    for item in list(running):
        cell, proc, t0, fh = item
        if proc.poll() is None:
            continue
        running.remove(item)
        fh.close()
        ok = proc.returncode == 0 and cell.done
        if not ok:
            failed.append(cell)
        log(f"{'done' if ok else 'FAILED (exit %d)' % proc.returncode} {cell.variant.name} "
            f"seed {cell.seed} in {time.time() - t0:.0f} s"
            + ("" if ok else f"; see {cell.run_dir.with_suffix('.log')}"))


def run_variants(variants: Sequence[Variant], seeds: Iterable[int], root: Path, jobs: int = 2, threads: int = 1,
                 log=lambda s: print(s, flush=True)) -> dict[str, dict[str, Any]]:
    """Run (or resume) a claim set's grid under ``root`` and return :func:`aggregate` of it; a failed
    cell raises, naming its log, once every other cell has run."""
    failed = run_grid(cells(variants, seeds, root), jobs=jobs, threads=threads, log=log)
    if failed:
        raise RuntimeError(f"{len(failed)} runs failed, e.g. {failed[0].run_dir}; see its .log file "
                           f"(rerun the same command to resume the grid)")
    return aggregate(root)


def collect(run_dir: Path) -> dict[str, Any]:
    """Final values of one run: its ``summary.json`` keys and the last value of each metric."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    out: dict[str, Any] = {k: summary[k] for k in SUMMARY_KEYS if k in summary}
    last: dict[str, float] = {}
    for row in read_metrics(run_dir):
        for k in METRIC_KEYS:
            if k in row and isinstance(row[k], (int, float)):
                last[k] = row[k]
        if "alarm" in row and "first_alarm_step" not in out:
            out["first_alarm_step"] = row["step"]
    out.update(last)
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    if n == 1:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def seed_groups(root: Path) -> dict[str, list[Path]]:
    """``{variant: finished run folders}`` of ``ROOT/<variant>/seed<k>`` (a grid) and of
    ``ROOT/<variant>-seed<k>`` (runs named with ``train.name=<variant>-seed<k>``).

    A folder with grid cells is a grid variant, whatever its name. A variant found in both layouts
    is refused (:class:`StopgradError`): its rows would mix runs of possibly different configs."""
    grid: dict[str, list[Path]] = {}
    named: dict[str, list[Path]] = {}
    for d in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        cells_ = [c for c in sorted(d.glob("seed*")) if (c / "summary.json").exists()]
        match = re.fullmatch(r"(.+)-seed\d+", d.name)
        if cells_:
            grid[d.name] = cells_
        elif match and (d / "summary.json").exists():
            named.setdefault(match.group(1), []).append(d)
    for variant, dirs in named.items():
        if variant in grid:
            raise StopgradError(f"{root}: variant {variant!r} is both a grid ({root}/{variant}/seed*) and runs named "
                                f"{dirs[0].name}; one table cannot mix them: move one of them to another folder")
    return {**grid, **named}


def aggregate(root: Path) -> dict[str, dict[str, Any]]:
    """``{variant: {key: (mean, std), "n": seeds, "alarms": k}}`` over the runs of :func:`seed_groups`."""
    table: dict[str, dict[str, Any]] = {}
    for variant, dirs in sorted(seed_groups(root).items()):
        rows = [collect(d) for d in dirs]
        entry: dict[str, Any] = {"n": len(rows), "alarms": sum(bool(r.get("collapse_alarm")) for r in rows)}
        keys = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for k in sorted(keys):
            vals = [float(r[k]) for r in rows if k in r]
            entry[k] = mean_std(vals)
        table[variant] = entry
    return table


#: Markdown columns: (key, header, digits, with ± std).
COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("knn_top1", "kNN top-1", 4, True), ("linear_top1", "linear top-1", 4, True),
    ("diag/center_norm_pre_bn", "‖s‖ (projector, pre-BN)", 3, False),
    ("diag/effective_rank", "eff. rank (projector)", 0, False),
    ("diag/feat_effective_rank", "eff. rank (backbone)", 0, False),
    ("diag/offdiag_norm", "‖offdiag W‖", 2, False), ("wall_s", "train wall (s)", 0, False))


def markdown(table: dict[str, dict[str, Any]], order: Sequence[str] | None = None,
             cols: Sequence[tuple[str, str, int, bool]] = COLUMNS) -> str:
    """The table in Markdown: accuracy as mean ± std, diagnostics as means (:data:`COLUMNS`)."""
    names = [n for n in (order or table) if n in table]
    head = ["variant", "seeds", *[c[1] for c in cols], "collapse alarms"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for n in names:
        e = table[n]
        cells_ = [n, str(e["n"])]
        for key, _, digits, with_std in cols:
            if key not in e:
                cells_.append("")
                continue
            m, s = e[key]
            cells_.append(f"{m:.{digits}f} ± {s:.{digits}f}" if with_std else f"{m:.{digits}f}")
        cells_.append(f"{e['alarms']}/{e['n']}")
        lines.append("| " + " | ".join(cells_) + " |")
    return "\n".join(lines)


#: The panels of :func:`bar_figure` unless a grid names its own.
BAR_KEYS = (("knn_top1", "kNN top-1"), ("linear_top1", "linear top-1"),
            ("diag/effective_rank", "effective rank (projector)"), ("diag/center_norm_pre_bn", "‖s‖ (projector, pre-BN)"))


def bar_figure(table: dict[str, dict[str, Any]], path: Path, order: Sequence[str] | None = None,
               keys: Sequence[tuple[str, str]] = BAR_KEYS, title: str | None = None) -> Path:
    """One panel per metric: the grid's variants as bars with ± std error bars (PNG), titled with
    ``title`` (default: the folder the PNG goes to)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in (order or table) if n in table]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 4.2))
    for ax, (key, title) in zip(axes, keys):
        m = [table[n][key][0] if key in table[n] else math.nan for n in names]
        s = [table[n][key][1] if key in table[n] else 0.0 for n in names]
        colors = ["#b4321f" if table[n]["alarms"] else "#1f5fa8" for n in names]
        ax.bar(range(len(names)), m, yerr=s, color=colors, capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        finite = [v for v in m if not math.isnan(v)]
        if finite and key.endswith("top1"):
            ax.set_ylim(min(finite) - 0.03, max(finite) + 0.02)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"mean ± std over seeds (red: a collapse alarm fired in some seed) — {title or Path(path).parent.name}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def write_table(root: Path, order: Sequence[str] | None, cols: Sequence[tuple[str, str, int, bool]] = COLUMNS,
                figure_keys: Sequence[tuple[str, str]] | None = BAR_KEYS, out: Path | None = None,
                table: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Aggregate ``ROOT``'s finished runs (unless ``table`` is that already); print the table and write
    ``table.md``, ``table.json`` and, with ``figure_keys``, ``table.png`` into ``out`` (default ``ROOT``).
    Returns the aggregated table."""
    table = aggregate(Path(root)) if table is None else table
    out = Path(out) if out is not None else Path(root)
    text = markdown(table, order, cols)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    (out / "table.json").write_text(json.dumps(table, indent=1) + "\n")
    if figure_keys and table:
        print(bar_figure(table, out / "table.png", order, figure_keys, title=Path(root).name))
    return table
