"""One self-contained HTML page for one or several runs: a comparison table, figures, details.

Images are embedded as base64 ``data:`` URIs and the CSS is inline, so the page can be mailed or
archived alone and opens offline. All text from the run folders goes through ``html.escape``.

Examples:
    >>> write_report([Path("runs/a"), Path("runs/b")], Path("report.html"))
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from stopgrad import rundir
from stopgrad.config import dotted
from stopgrad.errors import RunFolderError
from stopgrad.plots import display_names, plot_runs, run_method, short_labels

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1400px; padding: 0 1.5rem; color: #1d232a; background: #fff; line-height: 1.45; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #2f6fb0; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; color: #21507f; }
.meta { color: #5b6570; font-size: .9rem; }
table { border-collapse: collapse; font-size: .9rem; margin: .6rem 0; }
table.compare th { cursor: pointer; } table.compare th:hover { background: #dde7f1; }
details.run { border: 1px solid #d5dbe1; border-radius: 4px; padding: .3rem .8rem; margin: .5rem 0; }
th, td { border: 1px solid #d5dbe1; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #eef3f8; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
details { margin: .6rem 0; } summary { cursor: pointer; color: #2f6fb0; }
pre { background: #f6f8fa; border: 1px solid #d5dbe1; padding: .8rem; overflow-x: auto; font-size: .8rem; }
.alarm { color: #a4161a; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid #d5dbe1; border-radius: 4px; padding: .4rem; background: #fff; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: .8rem; color: #5b6570; text-align: center; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "—"
    return str(value)


def _summary_table(summary: dict[str, Any]) -> str:
    if not summary:
        return '<p class="meta">No summary.json (the run has not finished).</p>'
    rows = []
    for key, value in dotted(summary).items():
        cls = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        rows.append(f"<tr><th>{_esc(key)}</th><td{cls}>{_esc(_format(value))}</td></tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _config_block(run_dir: Path) -> str:
    path = run_dir / "config.yaml"
    if not path.exists():
        return '<p class="meta">No config.yaml.</p>'
    return (f"<details><summary>Resolved config (config.yaml)</summary>\n"
            f"<pre>{_esc(path.read_text())}</pre></details>")


def _alarms(run_dir: Path) -> str:
    alarms = [r for r in rundir.read_metrics(run_dir) if r.get("alarm")]
    if not alarms:
        return ""
    items = "".join(f"<li>step {_esc(r.get('step', '?'))}: {_esc(r['alarm'])}</li>" for r in alarms)
    return f'<p class="alarm"><strong>Alarms</strong></p><ul class="alarm">{items}</ul>'


def _run_section(run_dir: Path, label: str) -> str:
    summary = rundir.read_summary(run_dir)
    meta = f"method {_esc(run_method(run_dir))} · folder <code>{_esc(run_dir.resolve())}</code>"
    return (f"<details class=\"run\">\n<summary><strong>{_esc(label)}</strong> · {_esc(run_dir.name)}</summary>\n"
            f"<h2>{_esc(run_dir.name)}</h2>\n<p class=\"meta\">{meta}</p>\n"
            f"{_alarms(run_dir)}\n{_summary_table(summary)}\n{_config_block(run_dir)}\n</details>")


def figure_html(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(png.stem)}">'
            f"<figcaption>{_esc(png.stem)}</figcaption></figure>")


def _last(rows: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return values[-1] if values else None


#: The comparison table's columns: (header, how to get the value from (summary, metric rows)).
COLUMNS: list[tuple[str, Any]] = [
    ("method", lambda s, r, d: s.get("method") or run_method(d)),
    ("preset", lambda s, r, d: s.get("preset")),
    ("epochs", lambda s, r, d: s.get("epochs")),
    ("kNN top-1", lambda s, r, d: s.get("knn_top1")),
    ("linear top-1", lambda s, r, d: s.get("linear_top1")),
    ("‖s‖", lambda s, r, d: _last(r, "diag/center_norm")),
    ("eff. rank", lambda s, r, d: _last(r, "diag/effective_rank")),
    ("alarms", lambda s, r, d: sum(1 for row in r if row.get("alarm"))),
    ("train wall (s)", lambda s, r, d: s.get("wall_s")),
    ("images/s", lambda s, r, d: s.get("images_per_s")),
]

SORT_JS = """
document.querySelectorAll("table.compare th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const dir = th.dataset.dir === "asc" ? -1 : 1; th.dataset.dir = dir === 1 ? "asc" : "desc";
  const key = r => { const c = r.cells[col]; return c.dataset.v !== undefined ? parseFloat(c.dataset.v) : c.textContent; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * dir; });
  rows.forEach(r => body.appendChild(r));
}));
"""


def comparison_table(run_dirs: list[Path], labels: list[str], names: list[str] | None = None) -> str:
    """One row per run (click a header to sort); the label column names the runs in the figures."""
    head = "".join(f"<th title=\"click to sort\">{_esc(h)}</th>" for h in ["run", "folder", *[c[0] for c in COLUMNS]])
    body = []
    for run_dir, label, name in zip(run_dirs, labels, names or [p.name for p in run_dirs]):
        summary, rows = rundir.read_summary(run_dir), rundir.read_metrics(run_dir)
        cells = [f"<td><strong>{_esc(label)}</strong></td>", f"<td><code>{_esc(name)}</code></td>"]
        for header, get in COLUMNS:
            value = get(summary, rows, run_dir)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                alarm = ' alarm' if header == "alarms" and value else ""
                cells.append(f'<td class="num{alarm}" data-v="{value}">{_esc(_format(value))}</td>')
            else:
                cells.append(f"<td>{_esc(_format(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="compare"><thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body)
            + "\n</tbody></table>")


def default_report_path(run_dirs: list[Path]) -> Path:
    """``RUN/report.html`` for one run; ``<their common folder>/report.html`` for several."""
    if len(run_dirs) == 1:
        return run_dirs[0] / "report.html"
    return Path(os.path.commonpath([str(p.resolve()) for p in run_dirs])) / "report.html"


def write_report(run_dirs: list[Path], out: Path | None = None, plots_dir: Path | None = None) -> Path:
    """Write one self-contained HTML page for ``run_dirs`` and return its path.

    The page opens with a comparison table, one row per run (method, preset, epochs, kNN, linear,
    ‖s‖, effective rank, alarms, wall time, images/s; click a header to sort), then the figures of
    :func:`stopgrad.plots.plot_runs` with short run labels (A, B, ... when the folder names are
    long), then each run's ``summary.json``, alarms and ``config.yaml`` folded in a ``<details>``.

    Args:
        run_dirs: run folders.
        out: the HTML file (an existing folder gets ``report.html`` inside it); default
            :func:`default_report_path`, next to the runs.
        plots_dir: where the PNGs are kept; default a temporary folder (they are embedded).
    """
    if not run_dirs:
        raise ValueError("write_report needs at least one run folder")
    run_dirs = [Path(p) for p in run_dirs]
    for p in run_dirs:
        if not p.is_dir():
            raise RunFolderError(f"run folder {p} does not exist")
    out = Path(out) if out is not None else default_report_path(run_dirs)
    if out.is_dir():
        out = out / "report.html"
    names = display_names(run_dirs)
    labels = short_labels(names)
    with tempfile.TemporaryDirectory() as tmp:
        pngs = plot_runs(run_dirs, plots_dir or Path(tmp), labels=labels)
        figures = "\n".join(figure_html(p) for p in pngs) or '<p class="meta">No metrics to plot.</p>'
    joined = ", ".join(names)
    title = joined if len(joined) < 80 else f"{len(run_dirs)} runs"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stopgrad report: {_esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>stopgrad report: {_esc(title)}</h1>
<p class="meta">{len(run_dirs)} run(s) · generated {_esc(time.strftime("%Y-%m-%d %H:%M:%S"))}</p>
<h2>Runs</h2>
{comparison_table(run_dirs, labels, names)}
<section>
<h2>Comparison</h2>
<div class="grid">
{figures}
</div>
</section>
<h2>Details</h2>
{"".join(_run_section(p, label) for p, label in zip(run_dirs, labels))}
<script>{SORT_JS}</script>
</body>
</html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write_text(out, page)
    return out
