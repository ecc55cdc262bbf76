"""Seed-by-variant grids: cells, skipping finished runs, aggregation and the Markdown table."""

from __future__ import annotations

import json
import math

import pytest

from stopgrad.cli import main
from stopgrad.errors import StopgradError
from stopgrad.sweep import Variant, aggregate, cells, collect, markdown, mean_std, run_grid
from tests.conftest import tiny_overrides


def test_variant_names_are_validated():
    with pytest.raises(ValueError, match="folder name"):
        Variant("a/b", "default")
    with pytest.raises(ValueError, match="repeated"):
        cells([Variant("x", "default"), Variant("x", "default")], [0], "runs")


def test_cells_are_seed_major(tmp_path):
    grid = cells([Variant("a", "p"), Variant("b", "p")], [0, 1], tmp_path)
    assert [(c.variant.name, c.seed) for c in grid] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert grid[3].run_dir == tmp_path / "b" / "seed1"
    cmd = grid[0].command(threads=1)
    assert "train.seed=0" in cmd and f"train.out_dir={tmp_path / 'a'}" in cmd and "train.name=seed0" in cmd


def test_mean_std():
    assert mean_std([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert mean_std([5.0]) == (5.0, 0.0)
    assert all(math.isnan(x) for x in mean_std([]))


def _fake_run(d, knn, rank, alarm=False):
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"knn_top1": knn, "linear_top1": knn + 0.05, "wall_s": 10.0,
                                                "collapse_alarm": alarm}))
    rows = [{"step": 1, "diag/effective_rank": 99.0}, {"step": 2, "loss": 0.5},
            {"step": 3, "diag/effective_rank": rank, "alarm": "x"} if alarm else {"step": 3, "diag/effective_rank": rank}]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_collect_aggregate_markdown(tmp_path):
    _fake_run(tmp_path / "good" / "seed0", 0.80, 50.0)
    _fake_run(tmp_path / "good" / "seed1", 0.82, 54.0)
    _fake_run(tmp_path / "bad" / "seed0", 0.50, 3.0, alarm=True)
    one = collect(tmp_path / "bad" / "seed0")
    assert one["diag/effective_rank"] == 3.0 and one["first_alarm_step"] == 3 and one["loss"] == 0.5
    table = aggregate(tmp_path)
    assert table["good"]["n"] == 2 and table["good"]["alarms"] == 0 and table["bad"]["alarms"] == 1
    m, s = table["good"]["knn_top1"]
    assert m == pytest.approx(0.81) and s == pytest.approx(math.sqrt(2) * 0.01)
    assert table["good"]["diag/effective_rank"][0] == pytest.approx(52.0)
    text = markdown(table, ["good", "bad"])
    lines = text.splitlines()
    assert lines[2].startswith("| good | 2 | 0.8100 ± 0.0141 |") and lines[3].endswith("| 1/1 |")
    custom = markdown(table, ["bad"], [("diag/effective_rank", "rank", 1, False), ("missing", "absent", 2, True)])
    assert custom.splitlines()[0] == "| variant | seeds | rank | absent | collapse alarms |"
    assert custom.splitlines()[2] == "| bad | 1 | 3.0 |  | 1/1 |"


def test_aggregate_groups_runs_named_variant_seed(tmp_path):
    # runs trained with train.name=<variant>-seed<k> side by side group like a grid's cells
    _fake_run(tmp_path / "byol-24-seed0", 0.84, 50.0)
    _fake_run(tmp_path / "byol-24-seed2", 0.86, 50.0)
    _fake_run(tmp_path / "simsiam-24-seed1", 0.85, 50.0)
    (tmp_path / "byol-24-seed1").mkdir()  # still training: no summary.json, not counted
    _fake_run(tmp_path / "grid" / "seed0", 0.70, 50.0)
    table = aggregate(tmp_path)
    assert sorted(table) == ["byol-24", "grid", "simsiam-24"]
    assert table["byol-24"]["n"] == 2 and table["byol-24"]["knn_top1"][0] == pytest.approx(0.85)
    assert table["simsiam-24"]["n"] == 1 and table["grid"]["knn_top1"][0] == pytest.approx(0.70)
    from stopgrad.cli import main

    assert main(["table", str(tmp_path), "--out", str(tmp_path / "tab")]) == 0
    md = (tmp_path / "tab" / "table.md").read_text()
    assert "| byol-24 | 2 | 0.8500 ± 0.0141 |" in md and (tmp_path / "tab" / "table.png").stat().st_size > 0
    assert json.loads((tmp_path / "tab" / "table.json").read_text())["byol-24"]["n"] == 2


def test_aggregate_refuses_a_variant_in_both_layouts(tmp_path, capsys):
    _fake_run(tmp_path / "byol" / "seed0", 0.84, 50.0)
    _fake_run(tmp_path / "byol" / "seed1", 0.85, 50.0)
    _fake_run(tmp_path / "byol-seed0", 0.70, 50.0)  # would count seed 0 twice, from two configs
    with pytest.raises(StopgradError, match="'byol' is both a grid"):
        aggregate(tmp_path)
    from stopgrad.cli import main

    assert main(["table", str(tmp_path)]) != 0
    assert "both a grid" in capsys.readouterr().err
    # a folder holding grid cells is a grid variant even when its name ends in -seed<k>
    other = tmp_path / "other"
    _fake_run(other / "x-seed0" / "seed0", 0.80, 50.0)
    (other / "x-seed0" / "summary.json").write_text(json.dumps({"knn_top1": 0.60}))
    table = aggregate(other)
    assert list(table) == ["x-seed0"] and table["x-seed0"]["knn_top1"][0] == pytest.approx(0.80)


def test_table_command_names_both_layouts_when_empty(tmp_path, capsys):
    from stopgrad.cli import main

    (tmp_path / "byol-24-seed0").mkdir()
    assert main(["table", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "<variant>/seed<k>" in err and "<variant>-seed<k>" in err and "Traceback" not in err


def test_run_grid_trains_skips_and_tables(tmp_path, capsys):
    root = tmp_path / "grid"
    variant = Variant("tiny-simsiam", "default", tuple(o for o in tiny_overrides(tmp_path)
                                                     if not o.startswith("train.out_dir")))
    grid = cells([variant], [0, 1], root)
    assert run_grid(grid, jobs=2, threads=1, log=lambda s: None) == []
    for s in (0, 1):
        summary = json.loads((root / "tiny-simsiam" / f"seed{s}" / "summary.json").read_text())
        assert summary["steps"] == 2 and "knn_top1" in summary
    cfg0 = (root / "tiny-simsiam" / "seed0" / "config.yaml").read_text()
    assert "seed: 0" in cfg0
    seen = []
    assert run_grid(grid, jobs=2, threads=1, log=seen.append) == []
    assert seen[0].startswith("2 of 2 cells already done")
    assert main(["table", str(root)]) == 0
    assert "| tiny-simsiam | 2 |" in capsys.readouterr().out
    # the same grid asked with other settings does not reuse (or mix in) the runs made before
    other = Variant(variant.name, "default", (*variant.overrides, "data.views=28-gray-strong"))
    with pytest.raises(StopgradError, match=r"tiny-simsiam/seed0 was made with other settings .*data\.views: "
                                            r"'28-gray' there, '28-gray-strong' asked.*and 1 more cell\).*another "
                                            r"output folder"):
        run_grid(cells([other], [0, 1], root), jobs=1, log=lambda s: None)
    assert run_grid(cells([variant], [1], root), jobs=1, threads=2, log=lambda s: None) == []  # threads may differ


def test_run_grid_reports_failures(tmp_path):
    bad = Variant("bad", "default", ("train.no_such_key=1", f"train.out_dir={tmp_path}"))
    failed = run_grid(cells([bad], [0], tmp_path / "g"), jobs=1, log=lambda s: None)
    assert [c.variant.name for c in failed] == ["bad"]
    assert "no_such_key" in (tmp_path / "g" / "bad" / "seed0.log").read_text()


def test_bar_figure_draws_every_variant(tmp_path):
    from stopgrad.sweep import bar_figure

    _fake_run(tmp_path / "good" / "seed0", 0.80, 50.0)
    _fake_run(tmp_path / "bad" / "seed0", 0.50, 3.0, alarm=True)
    png = bar_figure(aggregate(tmp_path), tmp_path / "t.png", ["good", "bad"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_run_table_checks_before_running_and_writes_the_table(tmp_path, capsys):
    from stopgrad.config import dump_yaml, resolve
    from stopgrad.bench_grid import grid_parser, run_table

    variants = [Variant("good", "default"), Variant("bad", "default", ("train.no_such_key=1",))]
    args = grid_parser("t", str(tmp_path / "g")).parse_args(["--only", "good", "nope"])
    with pytest.raises(SystemExit, match="--only nope: no such variant; the variants are good, bad"):
        run_table(variants, args)
    args = grid_parser("t", str(tmp_path / "g")).parse_args(["--only", "bad"])
    with pytest.raises(SystemExit, match="variant bad: .*no_such_key"):
        run_table(variants, args)
    assert not (tmp_path / "g").exists()  # the bad override cost no run
    _fake_run(tmp_path / "g" / "good" / "seed0", 0.80, 50.0)  # finished: skipped, then tabulated
    _fake_run(tmp_path / "g" / "good" / "seed1", 0.82, 54.0)
    args = grid_parser("t", str(tmp_path / "g")).parse_args(["--only", "good", "--seeds", "0", "1"])
    table = run_table(variants, args, cols=(("knn_top1", "kNN", 3, True),))
    assert table["good"]["n"] == 2
    assert "| good | 2 | 0.810 ± 0.014 | 0/2 |" in (tmp_path / "g" / "table.md").read_text()
    assert json.loads((tmp_path / "g" / "table.json").read_text())["good"]["n"] == 2
    assert (tmp_path / "g" / "table.png").read_bytes()[:4] == b"\x89PNG"
    assert "2 of 2 cells already done" in capsys.readouterr().out
    made_otherwise = resolve("default", [f"train.out_dir={tmp_path / 'g' / 'good'}", "train.name=seed1", "train.seed=7"])
    dump_yaml(made_otherwise, tmp_path / "g" / "good" / "seed1" / "config.yaml")
    with pytest.raises(SystemExit, match=r"^error: .*good/seed1 was made with other settings .*\(train\.seed: 7 there, "
                                         r"1 asked\)"):
        run_table(variants, args)


def test_cell_check_ignores_what_does_not_change_a_run(tmp_path):
    from stopgrad.cell_check import config_differences
    from stopgrad.config import dump_yaml, resolve

    made = resolve("fashion-mnist/simsiam", ["train.out_dir=g/simsiam", "train.name=seed0", "train.num_threads=1"])
    (tmp_path / "seed0").mkdir()
    dump_yaml(made, tmp_path / "seed0" / "config.yaml")
    same = [f"train.out_dir={tmp_path}", "train.name=seed0", "eval.knn_every=2", "train.log_every=7",
            "train.ckpt_every=99", "train.num_threads=2", "train.progress=false"]
    assert config_differences(tmp_path / "seed0", "fashion-mnist/simsiam", same) == {}  # moved, fewer online checks
    assert config_differences(tmp_path / "seed0", "fashion-mnist/simsiam", [*same, "eval.knn_k=20", "optim.lr=0.1"]) == {
        "eval.knn_k": (200, 20), "optim.lr": (0.06, 0.1)}
    assert config_differences(tmp_path / "nothing-yet", "fashion-mnist/simsiam", same) == {}
