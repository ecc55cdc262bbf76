"""Where a recipe's accuracy stops growing: online kNN against training minutes, one line per run.

Reads each run folder's ``metrics.jsonl`` (the online kNN rows, ``knn_online_top1``, with their
bank size) and ``summary.json`` (steps, training wall time, final kNN), puts each online point at
``step / steps * wall`` minutes, and draws the final kNN (full training set as bank) as a star at
the end. Runs are grouped by the folder name without its ``-seedN`` suffix, one colour a group.
Prints the table of points. Example:

    .venv/bin/python benchmarks/accuracy_vs_minutes.py runs/final/*-strong-seed* --out docs/figures/fmnist-strong
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stopgrad.rundir import read_metrics, read_summary  # noqa: E402


def points(run_dir: Path) -> tuple[list[tuple[float, float]], tuple[float, float] | None]:
    """``([(minutes, online kNN)], (minutes, final kNN) or None)`` of one finished run."""
    summary = read_summary(run_dir)
    steps, wall = summary["steps"], summary["wall_s"]
    online = [(r["step"] / steps * wall / 60, r["knn_online_top1"]) for r in read_metrics(run_dir)
              if "knn_online_top1" in r]
    final = (wall / 60, summary["knn_top1"]) if summary.get("knn_top1") is not None else None
    return online, final


def group_of(run_dir: Path) -> str:
    return re.sub(r"-seed\d+$", "", run_dir.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for accuracy-vs-minutes.png and .json")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    groups = sorted({group_of(r) for r in args.runs})
    colours = dict(zip(groups, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    table = {}
    for run in sorted(args.runs):
        online, final = points(run)
        g = group_of(run)
        label = g if g not in {group_of(r) for r in table} else None
        if online:
            ax.plot(*zip(*online), "-o", color=colours[g], ms=3, lw=1.2, alpha=0.8, label=label)
        if final:  # a run without online checks (a short one) is named by its star
            ax.plot(*final, "*", color=colours[g], ms=11, label=None if online else label)
        table[run] = {"online": online, "final": final}
        print(f"{run.name:<32} " + "  ".join(f"{m:5.1f} min {a:.4f}" for m, a in online)
              + (f"  | final {final[1]:.4f} at {final[0]:.1f} min" if final else ""))
    ax.set_xlabel("training minutes (wall time of each run)")
    ax.set_ylabel("kNN top-1")
    ax.set_title("Online kNN (10,000-image bank, lines) and final kNN (full bank, stars)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "accuracy-vs-minutes.png", dpi=120)
    (args.out / "accuracy-vs-minutes.json").write_text(json.dumps({str(k): v for k, v in table.items()}, indent=1))
    print(args.out / "accuracy-vs-minutes.png")


if __name__ == "__main__":
    main()
