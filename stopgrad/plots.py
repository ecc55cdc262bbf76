"""Figures of one or several run folders: loss, kNN top-1, collapse diagnostics, eigenspectra.

Reads ``metrics.jsonl`` (rows with ``step`` and any of ``loss``, ``knn_online_top1`` (online, on a
training subset), ``knn_top1`` with ``final`` (on the full training set), ``diag/...``, ``alarm``), the optional ``spectra.jsonl`` (rows ``{"step": int, "spectrum": [float, ...]}``),
``summary.json`` and ``config.yaml``. Figures are drawn with matplotlib's object API on the Agg
canvas (no pyplot, no global backend switch), so plotting works headless and from threads.

Examples:
    >>> paths = plot_runs([Path("runs/a"), Path("runs/b")])   # runs/plots-2runs-<hash>/*.png
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from stopgrad import rundir

DIAG_PREFIX = "diag/"
DPI = 110
FIGSIZE = (6.4, 4.2)

# titles and y-labels of the diagnostics we know; others get their key as title
DIAG_LABELS: dict[str, tuple[str, str]] = {
    "center_norm": ("Center-vector norm ||s|| (Jha et al. 2024)", "||E[z/||z||]||"),
    "residual_norm": ("Residual norm E||z − s||", "mean ||z_i − s||"),
    "dim_std": ("Per-dimension std of normalised outputs (Chen & He 2021)", "mean std"),
    "effective_rank": ("Effective rank of projector outputs (RankMe)", "exp(entropy)"),
    "feat_center_norm": ("Center-vector norm of backbone features", "||s||"),
    "feat_effective_rank": ("Effective rank of backbone features (RankMe)", "exp(entropy)"),
    "asymmetry": ("Predictor asymmetry ||W − Wᵀ|| / ||W||", "ratio"),
    "offdiag_norm": ("Predictor off-diagonal norm (Wen & Li 2022)", "||W − diag W||_F"),
    "diag_norm": ("Predictor diagonal norm", "||diag W||"),
    "eigen_alignment": ("Predictor / correlation eigen-alignment (DirectPred)", "mean |cos(W u_j, u_j)|"),
}


@dataclass
class RunData:
    """What the figures need from one run folder."""

    path: Path
    name: str
    method: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    spectra: list[dict[str, Any]] = field(default_factory=list)
    short: str | None = None  # the legend label when set (see short_labels)

    @property
    def label(self) -> str:
        return self.short or f"{self.name} ({self.method})"


_STAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


def short_labels(names: list[str], limit: int = 28) -> list[str]:
    """Legend labels that tell runs apart without crowding a plot.

    The timestamp ``-YYYYmmdd-HHMMSS`` is dropped when the names stay distinct without it, then
    the prefix all of them share; when a label is still longer than ``limit``, the runs are
    lettered A, B, C ... (the report's table maps letters to folders).

    Examples:
        >>> short_labels(["fashion-mnist-byol-20261202-010000", "fashion-mnist-simsiam-20261202-010500"])
        ['byol', 'simsiam']
    """
    if len(names) == 1:
        return [names[0] if len(names[0]) <= limit else names[0][:limit - 1] + "…"]
    cut = [_STAMP.sub("", n) for n in names]
    labels = cut if len(set(cut)) == len(cut) else list(names)
    prefix = os.path.commonprefix(labels)
    cut_at = max(prefix.rfind("-"), prefix.rfind("/"))
    prefix = prefix[: cut_at + 1] if cut_at >= 0 else ""
    suffix = os.path.commonprefix([n[len(prefix):][::-1] for n in labels])[::-1]
    cut_at = min((i for i in (suffix.find("-"), suffix.find("/")) if i >= 0), default=-1)
    suffix = suffix[cut_at:] if cut_at >= 0 else ""
    labels = [n[: len(n) - len(suffix)] if suffix and len(n) > len(suffix) else n for n in labels]
    labels = [n[len(prefix):] or n for n in labels]
    if max(len(n) for n in labels) > limit or len(set(labels)) < len(labels):
        return [_letter(i) for i in range(len(names))]
    return labels


def display_names(run_dirs: list[Path]) -> list[str]:
    """Folder names, with as many parent folders as it takes to tell them apart
    (``runs/grid/base/seed0`` and ``runs/grid/lr/seed0`` → ``base/seed0``, ``lr/seed0``)."""
    parts = [Path(p).resolve().parts for p in run_dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in run_dirs]


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


# ---------------------------------------------------------------------------------------- read
def read_config(run_dir: Path) -> dict[str, Any]:
    """The raw ``config.yaml`` mapping (empty when absent)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        return {}
    raw = yaml.safe_load(path.read_text())
    return raw if isinstance(raw, dict) else {}


def run_method(run_dir: Path) -> str:
    """Method name from ``summary.json``, else ``config.yaml`` (``method.name``), else ``"?"``."""
    summary = rundir.read_summary(run_dir)
    if summary.get("method"):
        return str(summary["method"])
    method = read_config(run_dir).get("method")
    if isinstance(method, dict) and method.get("name"):
        return str(method["name"])
    return "?"


def read_spectra(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``spectra.jsonl`` sorted by step (empty when absent)."""
    rows = rundir.read_metrics(run_dir, "spectra.jsonl")
    return sorted((r for r in rows if "step" in r and r.get("spectrum")), key=lambda r: r["step"])


def load_run_data(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    return RunData(path=run_dir, name=run_dir.name, method=run_method(run_dir),
                   rows=rundir.read_metrics(run_dir), spectra=read_spectra(run_dir))


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the numeric values of ``key``, in step order."""
    pts = [(r["step"], float(r[key])) for r in rows
           if "step" in r and isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    pts.sort(key=lambda p: p[0])
    return [p[0] for p in pts], [p[1] for p in pts]


def _alarm_steps(rows: list[dict[str, Any]]) -> list[float]:
    return sorted({r["step"] for r in rows if r.get("alarm") and "step" in r})


# ---------------------------------------------------------------------------------------- draw
def _new_axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.35)
    return fig, ax


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def _colors(n: int) -> list[Any]:
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _line_panel(runs: list[RunData], key: str, title: str, ylabel: str, path: Path,
                ref_key: str | None = None, marker: str | None = None) -> Path | None:
    """One metric vs step, one line per run, alarm steps as dotted vertical lines."""
    series = [(run, *_series(run.rows, key)) for run in runs]
    if not any(xs for _, xs, _ in series):
        return None
    fig, ax = _new_axes(title, "step", ylabel)
    refs = {run.name: _series(run.rows, ref_key)[1][-1:] for run in runs} if ref_key else {}
    shared_ref = len({tuple(r) for r in refs.values() if r}) == 1
    if shared_ref:  # one reference line when every run has the same d
        ref = next(r for r in refs.values() if r)[0]
        ax.axhline(ref, color="0.35", ls="--", lw=1.1, label=f"reference 1/sqrt(d) = {ref:.3g}")
    for color, (run, xs, ys) in zip(_colors(len(runs)), series):
        if xs:
            ax.plot(xs, ys, color=color, lw=1.6, marker=marker, ms=4, label=run.label)
        if refs.get(run.name) and not shared_ref:
            ref = refs[run.name][0]
            ax.axhline(ref, color=color, ls="--", lw=1.1, alpha=0.8, label=f"1/sqrt(d) = {ref:.3g} ({run.label})")
        for j, s in enumerate(_alarm_steps(run.rows)):
            ax.axvline(s, color=color, ls=":", lw=1.3, label=f"alarm ({run.label})" if j == 0 else None)
    if any(ys and min(ys) > 0 and max(ys) / min(ys) > 100 for _, _, ys in series) and key == "loss":
        ax.set_yscale("log")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def knn_series(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(online rows, final rows): the online kNN on a training subset during training, and the final
    kNN on the full training set. Rows of older runs (``knn_top1`` without ``final``) are online."""
    online = [{**r, "knn_online_top1": r.get("knn_online_top1", r.get("knn_top1"))} for r in rows
              if "knn_online_top1" in r or ("knn_top1" in r and not r.get("final"))]
    final = [r for r in rows if r.get("final") and "knn_top1" in r]
    return online, final


def _knn_panel(runs: list[RunData], path: Path) -> Path | None:
    """Online kNN (line, circles) and final kNN (a star) per run: two protocols, never one line."""
    series = [(run, *knn_series(run.rows)) for run in runs]
    if not any(on or fin for _, on, fin in series):
        return None
    fig, ax = _new_axes("kNN top-1 on the evaluation split", "step", "top-1")
    for color, (run, online, final) in zip(_colors(len(runs)), series):
        xs, ys = _series(online, "knn_online_top1")
        if xs:
            n = online[-1].get("knn_train_images")
            ax.plot(xs, ys, color=color, lw=1.4, marker="o", ms=4,
                    label=f"{run.label} online ({n:,} train images)" if n else f"{run.label} online")
        xs, ys = _series(final, "knn_top1")
        if xs:
            n = final[-1].get("knn_train_images")
            ax.plot(xs, ys, color=color, ls="none", marker="*", ms=13, markeredgecolor="black",
                    label=f"{run.label} final ({n:,} train images)" if n else f"{run.label} final (full set)")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def _spectrum_figure(run: RunData, path: Path) -> Path | None:
    """Eigenspectra of one run over training, log scale, colour = step."""
    if not run.spectra:
        return None
    steps = [r["step"] for r in run.spectra]
    norm = Normalize(vmin=min(steps), vmax=max(max(steps), min(steps) + 1))
    cmap = colormaps["viridis"]
    fig, ax = _new_axes(f"Eigenspectrum over training: {run.label}", "component k (descending)",
                        "eigenvalue (log)")
    floor = math.inf
    for r in run.spectra:
        vals = [float(v) for v in r["spectrum"]]
        pos = [v for v in vals if v > 0 and math.isfinite(v)]
        floor = min(floor, min(pos)) if pos else floor
    for r in run.spectra:
        vals = [max(float(v), floor if math.isfinite(floor) else 1e-12) for v in r["spectrum"]]
        ax.plot(range(1, len(vals) + 1), vals, color=cmap(norm(r["step"])), lw=1.3)
    ax.set_yscale("log")
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="step")
    return _save(fig, path)


# ------------------------------------------------------------------------------------ entry point
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def default_out_dir(run_dirs: list[Path]) -> Path:
    """``<run>/plots`` for one run; ``<their common folder>/plots-<n>runs-<hash>`` for several."""
    first = Path(run_dirs[0])
    if len(run_dirs) == 1:
        return first / "plots"
    names = "\n".join(sorted(str(Path(p).resolve()) for p in run_dirs))
    common = Path(os.path.commonpath([str(Path(p).resolve()) for p in run_dirs]))
    return common / f"plots-{len(run_dirs)}runs-{hashlib.sha1(names.encode()).hexdigest()[:6]}"


def diagnostic_keys(runs: list[RunData]) -> list[str]:
    """The ``diag/`` keys (without prefix) logged by any run, known ones first; ``*_ref`` excluded."""
    found: set[str] = set()
    for run in runs:
        for row in run.rows:
            found.update(k[len(DIAG_PREFIX):] for k, v in row.items()
                         if k.startswith(DIAG_PREFIX) and isinstance(v, (int, float)))
    order = {k: i for i, k in enumerate(DIAG_LABELS)}
    return sorted((k for k in found if not k.endswith("_ref")),
                  key=lambda k: (order.get(k.rsplit("/", 1)[-1], len(order)), k))


def plot_runs(run_dirs: list[Path], out_dir: Path | None = None, labels: list[str] | None = None) -> list[Path]:
    """Draw the figures of one or several runs, overlaid, as PNGs.

    Figures: ``loss.png`` (loss vs step), ``knn_top1.png`` (when logged), one
    ``diag-<name>.png`` per ``diag/<name>`` metric (``dim_std`` with its ``1/sqrt(d)``
    reference from ``diag/dim_std_ref``), and ``spectrum-<run>.png`` per run with a
    ``spectra.jsonl``. Each line is labelled with a short label (:func:`short_labels`; one run:
    ``<folder name> (<method>)``); rows carrying an ``alarm`` are marked with dotted vertical
    lines in the run's colour.

    Args:
        run_dirs: run folders.
        out_dir: where to write; default :func:`default_out_dir`.
        labels: legend labels, one per run; default :func:`short_labels` of the folder names.

    Returns:
        The paths of the PNGs written, in display order.
    """
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run folder")
    runs = [load_run_data(Path(p)) for p in run_dirs]
    for run, short in zip(runs, labels if labels is not None else short_labels(display_names(run_dirs))):
        run.short = short if len(runs) > 1 or labels is not None else None
    out = Path(out_dir) if out_dir is not None else default_out_dir([Path(p) for p in run_dirs])
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path | None] = [
        _line_panel(runs, "loss", "Training loss", "loss", out / "loss.png"),
        _knn_panel(runs, out / "knn_top1.png"),
    ]
    for key in diagnostic_keys(runs):
        title, ylabel = DIAG_LABELS.get(key.rsplit("/", 1)[-1], (key, key))
        if "/" in key:
            title = f"{title} [{key}]"
        ref = DIAG_PREFIX + key + "_ref" if key.rsplit("/", 1)[-1] == "dim_std" else None
        paths.append(_line_panel(runs, DIAG_PREFIX + key, title, ylabel, out / f"diag-{_slug(key)}.png",
                                 ref_key=ref))
    names = [_slug(run.name) for run in runs]
    for i, (run, name) in enumerate(zip(runs, names)):
        stem = f"spectrum-{name}" if names.count(name) == 1 else f"spectrum-{i}-{name}"
        paths.append(_spectrum_figure(run, out / f"{stem}.png"))
    return [p for p in paths if p is not None]
