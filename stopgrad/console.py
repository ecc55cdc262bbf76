"""What the command line shows a person: the end-of-run summary as a short aligned table, and the
hint for argparse-style flags (``--epochs 3``) that stopgrad spells ``train.epochs=3``.

``summary.json`` keeps every value at full precision; only what is printed is rounded.

Examples:
    >>> print(summary_table({"method": "simsiam", "knn_top1": 0.8241999745368958, "knn": {"k": 200, "t": 0.1}}))
    method        simsiam
    kNN top-1     0.8242  (k=200, T=0.1, final)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def summary_table(summary: dict[str, Any]) -> str:
    """The rows a person wants at the end of a run, rounded and aligned."""
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any, note: str = "") -> None:
        if value is not None:
            rows.append((label, f"{value}{'  (' + note + ')' if note else ''}"))

    add("method", summary.get("method"))
    add("preset", summary.get("preset"))
    add("dataset", summary.get("dataset"), f"evaluated on {summary['eval_split']}" if summary.get("eval_split")
        not in (None, "test") else "")
    if summary.get("steps") is not None:
        budget = summary.get("time_budget") or {}
        chosen = f"; chosen by train.minutes={budget['minutes']:g}" if "minutes" in budget else ""
        add("epochs", f"{summary.get('epochs', 0):g}",
            f"{summary['steps']:,} steps of {summary.get('batch_size', '?')}{chosen}")
    knn = summary.get("knn_top1")
    if knn is not None:
        k = summary.get("knn", {})
        add("kNN top-1", f"{knn:.4f}", f"k={k.get('k')}, T={k.get('t')}, final")
    lin = summary.get("linear_top1")
    if lin is not None:
        probe = summary.get("linear") or {}
        note = (f"L2 {probe['l2']:g} chosen on {probe['val_images']:,} held-out training images"
                if "l2" in probe else probe.get("protocol", ""))
        add("linear top-1", f"{lin:.4f}", note)
    if summary.get("wall_s") is not None:
        add("train wall", _minutes(summary["wall_s"]), f"{summary.get('images_per_s', 0):,.0f} images/s")
    if summary.get("collapse_alarm"):
        add("collapse", "alarm fired", "see metrics.jsonl rows with 'alarm'")
    add("run folder", summary.get("run_dir"))
    width = max((len(label) for label, _ in rows), default=0)
    return "\n".join(f"{label:<{max(width, 12)}}  {text}" for label, text in rows)


def flag_hint(tokens: Sequence[str], sections: dict[str, type]) -> str:
    """``--epochs 3`` → ``write train.epochs=3``; ``--train.epochs 3`` → ``write train.epochs=3``."""
    for i, token in enumerate(tokens):
        if not token.startswith("--") or len(token) < 3:
            continue
        name, _, value = token[2:].partition("=")
        if not value and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            value = tokens[i + 1]
        key = name.replace("-", "_")
        if "." not in key:
            owners = [sec for sec, cls in sections.items() if key in {f.name for f in dataclasses.fields(cls)}]
            if not owners:
                continue
            key = f"{owners[0]}.{key}"
        return f"; config values are key=value overrides: write {key}={value or 'VALUE'} (`stopgrad config` lists every key)"
    return ""
