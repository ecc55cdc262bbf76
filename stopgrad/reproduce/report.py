"""``report.html`` of a reproduction: the claims table, the settings and the figures, in one file."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from stopgrad.report import CSS, figure_html
from stopgrad.reproduce.base import SMOKE_TEST, verdict_words

EXTRA_CSS = """
td.holds { color: #1b6e35; font-weight: 600; } td.fails { color: #a4161a; font-weight: 600; }
p.smoke { background: #fff4d6; border: 2px solid #d99a00; padding: .7rem 1rem; font-size: 1.05rem; font-weight: 600; }
body.smoke td.holds, body.smoke td.fails { color: #6b5400; }
"""


def save_figure(fig: Any, path: Path, dpi: int = 100) -> str:
    """Lay out, write and close a pyplot figure; returns the file name (as claims.json lists it)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path).name


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _measured(c: dict[str, Any]) -> str:
    m = c["measured"]
    return f"{m['mean']:.3g} ± {m['std']:.2g} (n={m['n']})"


def write_claims_report(doc: dict[str, Any], out_dir: Path, path: Path) -> Path:
    """Write the page for a ``claims.json`` document; figures are read from ``out_dir``."""
    rows = []
    for c in doc["claims"]:
        cls = "holds" if c["holds"] else "fails"
        rows.append(
            "<tr>" + "".join(f"<td>{_esc(x)}</td>" for x in (c["id"], c["source"], c["statement"],
                                                              c["paper_value"] or "—", c["measure"]))
            + f"<td class='num'>{_esc(_measured(c))}</td><td>{_esc(c['criterion'])}</td>"
            + f"<td class='{cls}'>{_esc(c.get('verdict') or verdict_words(c['holds'], doc.get('quick', False)))}</td>"
            + f"<td>{_esc(c.get('detail', ''))}</td></tr>")
    figures = []
    seen: set[str] = set()
    for c in doc["claims"]:
        for f in c.get("figures", []):
            if f not in seen and (out_dir / f).exists():
                seen.add(f)
                figures.append(figure_html(out_dir / f))
    settings = json.dumps(doc.get("settings", {}), indent=1)
    title = f"stopgrad reproduce {doc['claim_set']}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>{CSS}{EXTRA_CSS}</style></head><body{' class="smoke"' if doc.get('quick') else ''}>
<h1>{_esc(title)}</h1>
{f'<p class="smoke">{_esc(SMOKE_TEST)}</p>' if doc.get('quick') else ''}
<p class="meta">{_esc(doc['paper'])}<br>{_esc(doc['description'])}<br>
{doc['holds']} of {doc['total']} claims hold{' (smoke test, not a verdict)' if doc['quick'] else ''} · {doc['seeds']} seeds · {'smoke test (--quick)' if doc['quick'] else 'full'} run ·
{doc['runtime_s']:.0f} s · created {_esc(doc['created'])} · git {_esc((doc.get('git') or {}).get('commit'))}
{'(dirty)' if (doc.get('git') or {}).get('dirty') else ''}</p>
<h2>Claims</h2>
<table><tr><th>id</th><th>source</th><th>paper's claim</th><th>paper's value</th><th>measure</th>
<th>measured</th><th>criterion (fixed before the run)</th><th>verdict</th><th>detail</th></tr>
{''.join(rows)}</table>
<h2>Figures</h2><div class="grid">{''.join(figures)}</div>
<h2>Settings</h2><details open><summary>settings and choices</summary><pre>{_esc(settings)}</pre></details>
<p class="meta">command: <code>{_esc(' '.join(doc.get('command', [])))}</code></p>
</body></html>
"""
    path.write_text(page)
    return path
