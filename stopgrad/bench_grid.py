"""The command-line scaffolding of the benchmark grids in ``benchmarks/``: their shared options, a
grid run that checks every variant's overrides before the first run and writes the table, and the
pre-registered adoption rules of the held-out recipe comparisons (``fmnist_budget.py``,
``fmnist_neck.py``, ``fmnist_batch.py``).

The grids themselves (cells, runs, tables) are :mod:`stopgrad.sweep`'s.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from stopgrad.errors import StopgradError
from stopgrad.sweep import BAR_KEYS, COLUMNS, FMNIST_BACKBONES, Variant, cells, run_grid, write_table

#: Columns of the held-out recipe comparisons (benchmarks/fmnist_budget.py, fmnist_neck.py, fmnist_batch.py).
HELD_OUT_COLUMNS = (("knn_top1", "kNN top-1 (held out)", 4, True), ("linear_top1", "linear top-1 (held out)", 4, True),
                    ("steps", "steps", 0, False), ("images_per_s", "images/s", 0, False),
                    ("wall_s", "train wall (s)", 0, False))


def grid_parser(description: str, out: str, seeds: Sequence[int] = (0, 1, 2),
                views: str | None = None, backbone: bool = False) -> argparse.ArgumentParser:
    """The options every benchmark grid shares: ``--out --seeds --jobs --threads --only``,
    ``--views`` (default ``views``) for a grid whose variants all train one view preset, and with
    ``backbone`` ``--backbone`` (a key of :data:`FMNIST_BACKBONES`, default ``plain``)."""
    p = argparse.ArgumentParser(description=description)
    if backbone:
        p.add_argument("--backbone", default="plain", choices=sorted(FMNIST_BACKBONES),
                       help="the ConvNet every variant trains (default plain, that of the tables published "
                            "before 2026-12-07; feature-bn is the presets' since then)")
    if views is not None:
        p.add_argument("--views", default=views,
                       help=f"the view preset every variant trains (default {views}; 28-gray-strong gave the "
                            f"2026-12-06 table, 28-gray the 2026-12-01 one)")
    p.add_argument("--out", default=out, help="the grid's root: ROOT/<variant>/seed<k>, table.md, table.json")
    p.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    p.add_argument("--jobs", type=int, default=2, help="runs side by side")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of each run")
    p.add_argument("--only", nargs="*", help="run only these variants")
    return p


def run_table(variants: Sequence[Variant], args: argparse.Namespace, extra: Sequence[str] = (),
              cols: Sequence[tuple[str, str, int, bool]] = COLUMNS,
              figure_keys: Sequence[tuple[str, str]] | None = BAR_KEYS) -> dict[str, dict[str, Any]]:
    """Run a benchmark grid (the variants ``args.only`` names, else all) and write its table.

    Every variant's overrides are resolved before any run starts, so a bad key or value costs no
    run; a failed run is named after the table of the finished ones is written.
    """
    from stopgrad.config import resolve

    names = [v.name for v in variants]
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        raise SystemExit(f"error: --only {' '.join(unknown)}: no such variant; the variants are {', '.join(names)}")
    chosen = [v for v in variants if not args.only or v.name in args.only]
    for v in chosen:
        try:
            resolve(v.preset, [*v.overrides, *extra])
        except StopgradError as e:
            raise SystemExit(f"error: variant {v.name}: {e}") from None
    try:
        failed = run_grid(cells(chosen, args.seeds, Path(args.out), extra), args.jobs, args.threads)
    except StopgradError as e:
        raise SystemExit(f"error: {e}") from None
    table = write_table(Path(args.out), names, cols, figure_keys)
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: " + ", ".join(
            f"{c.variant.name}/seed{c.seed} (log {c.run_dir.with_suffix('.log')})" for c in failed)
            + "; rerun the same command to resume them")
    return table


def adoption_verdict(base: dict[str, Any], cand: dict[str, Any], knn_margin: float, linear_slack: float,
                     seeds: int, adopt_key: str, hint: str = "") -> dict[str, Any]:
    """A comparison's pre-registered rule on two aggregated rows (``{"n", "knn_top1": (mean, std),
    "linear_top1": ...}``): adopt the candidate when its mean kNN gain is at least ``knn_margin`` and
    its mean linear loss at most ``linear_slack``, at ``seeds`` seeds each (fewer is refused)."""
    if min(base["n"], cand["n"]) < seeds:
        raise SystemExit(f"the rule was fixed for {seeds} seeds each; have {base['n']} and {cand['n']}{hint}")
    dk = cand["knn_top1"][0] - base["knn_top1"][0]
    dl = cand["linear_top1"][0] - base["linear_top1"][0]
    return {"knn_gain": dk, "linear_gain": dl, "rule": f"kNN gain >= {knn_margin} and linear gain >= -{linear_slack}",
            adopt_key: dk >= knn_margin and dl >= -linear_slack, "seeds": min(base["n"], cand["n"])}


def run_rule(variants: Sequence[Variant], args: argparse.Namespace, extra: Sequence[str], seeds: int,
             rule, waiting: str | None = None) -> dict[str, Any] | None:
    """A held-out comparison's grid, then its pre-registered ``rule`` (a function of the aggregated
    table) once every variant has ``seeds`` seeds: the verdict is printed and written to
    ``ROOT/verdict.json``. Short of seeds it prints ``waiting`` (when given) and returns None."""
    table = run_table(variants, args, extra, HELD_OUT_COLUMNS, figure_keys=None)
    if min(table.get(v.name, {}).get("n", 0) for v in variants) < seeds:
        if waiting:
            print(f"note: {waiting}", flush=True)
        return None
    result = rule(table)
    print(json.dumps(result, indent=1))
    Path(args.out, "verdict.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
