"""Figures and the HTML report on two fake run folders, and a headless-Chromium render of the page."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib import image as mpimg

from stopgrad.plots import default_out_dir, plot_runs
from stopgrad.report import write_report

CHROMIUM_TIMEOUT_S = 60


def make_run(root: Path, name: str, method: str, collapse: bool) -> Path:
    """A run folder as the training loop writes it, with diagnostics, an alarm and spectra."""
    run = root / name
    run.mkdir(parents=True)
    rows = []
    for step in range(10, 410, 10):
        t = step / 400
        rows.append({"step": step, "epoch": t * 4, "loss": -0.5 - (0.48 if collapse else 0.4) * t + 0.02 * math.sin(step),
                     "lr": 0.05 * (1 - t), "images_per_s": 900.0 + step,
                     "diag/center_norm": 0.9 * t if collapse else 0.1 + 0.05 * math.sin(step / 50),
                     "diag/residual_norm": 1 - 0.9 * t if collapse else 0.98,
                     "diag/dim_std": 0.088 * (1 - t) if collapse else 0.08,
                     "diag/dim_std_ref": 1 / math.sqrt(128),
                     "diag/effective_rank": 60 * (1 - t) + 1 if collapse else 40 + 10 * t,
                     "diag/asymmetry": 0.3 * math.exp(-((t - 0.4) ** 2) / 0.05),
                     "diag/eigen_alignment": 0.2 + 0.75 * t})
        if step % 100 == 0:
            rows.append({"step": step, "epoch": t * 4, "knn_top1": 0.3 + 0.4 * t * (0.3 if collapse else 1)})
    if collapse:
        rows.append({"step": 350, "alarm": "complete collapse: dim_std = 0.0077 < 0.0088"})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "spectra.jsonl").write_text("".join(
        json.dumps({"step": s, "spectrum": [math.exp(-k * (0.05 + 0.002 * s * collapse)) for k in range(64)]}) + "\n"
        for s in range(0, 401, 50)))
    (run / "summary.json").write_text(json.dumps({
        "method": method, "dataset": "synthetic", "steps": 400, "final_loss": rows[-2].get("loss", -0.9),
        "knn_top1": 0.42 if collapse else 0.71, "knn": {"k": 20, "t": 0.07}, "device": "cpu"}, indent=2))
    (run / "config.yaml").write_text(yaml.safe_dump({
        "preset": "test", "method": {"name": method, "proj_dim": 128, "note": "<script>alert(1)</script>"},
        "data": {"dataset": "synthetic", "batch_size": 64}}, sort_keys=False))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    return [make_run(root, "simsiam-ok", "simsiam", collapse=False),
            make_run(root, "simsiam-nopred", "simsiam", collapse=True)]


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    return write_report(runs, tmp_path_factory.mktemp("report") / "report.html")


def assert_nontrivial_png(path: Path, min_bytes: int = 5000) -> None:
    assert path.exists(), path
    assert path.stat().st_size > min_bytes, f"{path} is only {path.stat().st_size} bytes"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
    assert img[..., :3].std() > 0.02, f"{path} is (nearly) a single colour"


# ------------------------------------------------------------------------------------ plots
def test_plot_runs_writes_panels(runs):
    paths = plot_runs(runs)
    out = default_out_dir(runs)
    assert out.parent == runs[0].parent and out.name.startswith("plots-2runs-") and len(out.name) < 20
    names = {p.name for p in paths}
    assert {"loss.png", "knn_top1.png", "diag-center_norm.png", "diag-residual_norm.png", "diag-dim_std.png",
            "diag-effective_rank.png", "diag-asymmetry.png", "diag-eigen_alignment.png",
            "spectrum-simsiam-ok.png", "spectrum-simsiam-nopred.png"} <= names
    assert "diag-dim_std_ref.png" not in names  # drawn as the reference line of dim_std
    for p in paths:
        assert p.parent == out
        assert_nontrivial_png(p)


def test_plot_single_run_default_folder(runs, tmp_path):
    single = shutil.copytree(runs[0], tmp_path / "one")
    (single / "spectra.jsonl").unlink()
    (single / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 50)))
    paths = plot_runs([single])
    assert [p.name for p in paths] == ["loss.png"]
    assert paths[0].parent == single / "plots"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_runs([tmp_path / "missing"])


# ----------------------------------------------------------------------------------- report
def test_report_html(report, runs):
    text = report.read_text()
    assert text.count("<h1>") == 1
    for run in runs:
        assert f"<h2>{run.name}</h2>" in text
    assert "<h2>Comparison</h2>" in text and text.index('<table class="compare">') < text.index("<h2>Comparison</h2>")
    assert text.count("data:image/png;base64,") >= 10
    assert "<details>" in text and "Resolved config" in text
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # escaped
    assert "complete collapse" in text  # the alarm is listed
    assert "knn.k" in text  # nested summary keys flattened
    for needle in ('src="http', "src='http", 'href="http', "<link", "@import", "url("):
        assert needle not in text, f"external resource {needle!r} in a self-contained report"


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: run `make browser` (or `sudo apt-get install chromium`) "
                    "to render the HTML report in this test")
    return exe


def chromium_args(profile: Path) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}"]


def test_report_renders_in_chromium(report, runs, tmp_path):
    shot = tmp_path / "report.png"
    res = subprocess.run(chromium_args(tmp_path / "profile-shot") + [
        f"--screenshot={shot}", "--window-size=1280,2000", report.resolve().as_uri()],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert shot.exists(), f"chromium wrote no screenshot (rc {res.returncode}): {res.stderr[-2000:]}"
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 0.05, "the rendered report is blank"
    # images rendered: a good share of the page is neither white nor text-grey
    coloured = (np.ptp(img, axis=2) > 0.15).mean()
    assert coloured > 0.002, f"hardly any colour in the screenshot ({coloured:.4f}): figures not shown?"

    dom = subprocess.run(chromium_args(tmp_path / "profile-dom") + ["--dump-dom", report.resolve().as_uri()],
                         capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>stopgrad report" in dom.stdout
    for run in runs:
        assert f"<h2>{run.name}</h2>" in dom.stdout
    assert "<h2>Comparison</h2>" in dom.stdout
    assert dom.stdout.count('src="data:image/png;base64,') >= 10
    table = dom.stdout.split('<table class="compare">')[1].split("</table>")[0]
    assert table.split("<tbody>")[1].count("<tr>") == len(runs)  # one row per run, as rendered


def test_four_run_report_has_one_row_per_run_next_to_the_runs(runs, tmp_path):
    import shutil as sh

    root = tmp_path / "grid"
    four = []
    for i, (src, method) in enumerate([(runs[0], "simsiam"), (runs[1], "simsiam"), (runs[0], "byol"),
                                       (runs[1], "byol")]):
        dst = sh.copytree(src, root / f"fashion-mnist-{method}-20261202-01000{i}")
        summary = json.loads((dst / "summary.json").read_text())
        (dst / "summary.json").write_text(json.dumps({**summary, "method": method, "linear_top1": 0.8 + i / 100,
                                                      "wall_s": 100.0 * (i + 1), "images_per_s": 900.0}))
        four.append(dst)
    out = write_report(four)
    assert out == root / "report.html"
    text = out.read_text()
    table = text.split('<table class="compare">')[1].split("</table>")[0]
    body = table.split("<tbody>")[1]
    assert body.count("<tr>") == 4 and all(p.name in body for p in four)
    for header in ("kNN top-1", "linear top-1", "‖s‖", "eff. rank", "alarms", "train wall (s)", "images/s"):
        assert header in table
    assert 'data-v="400.0"' in body and "table.compare th" in text  # numeric sort keys and the sorter
    assert text.count('<details class="run">') == 4  # per-run details folded away
    assert "<strong>simsiam-20261202-010000</strong>" in body  # labels without the shared prefix


def test_short_labels():
    from stopgrad.plots import short_labels

    assert short_labels(["fashion-mnist-byol-20261202-010000", "fashion-mnist-simsiam-20261202-010500"]) == [
        "byol", "simsiam"]
    assert short_labels(["a-1", "a-1-20261202-010000"]) == ["1", "1-20261202-010000"]
    assert short_labels(["x" * 40, "y" * 40]) == ["A", "B"]
    assert short_labels(["same", "same"]) == ["A", "B"]


def test_runs_of_a_grid_are_told_apart_by_their_variant(runs, tmp_path):
    import shutil as sh

    from stopgrad.plots import display_names, short_labels

    grid = [sh.copytree(runs[i % 2], tmp_path / "grid" / v / "seed0") for i, v in enumerate(["base", "lr-0.1", "wd"])]
    names = display_names(grid)
    assert names == ["base/seed0", "lr-0.1/seed0", "wd/seed0"] and short_labels(names) == ["base", "lr-0.1", "wd"]
    text = write_report(grid).read_text()
    assert "<code>lr-0.1/seed0</code>" in text and "<strong>lr-0.1</strong>" in text
