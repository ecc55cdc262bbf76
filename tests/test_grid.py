"""`stopgrad sweep`: grids from comma lists, run locally or through submitit (its local executor here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stopgrad import cli
from stopgrad.config import ConfigError
from stopgrad.grid import parse_grid, split_values

TINY = ["data.dataset=synthetic", "data.batch_size=32", "model.backbone=convnet", "model.width=0.25",
        "method.heads=small", "train.steps=3", "eval.knn_every=0", "eval.knn_k=5"]


def test_comma_lists_make_variants_and_seeds():
    assert split_values("0.1,0.2") == ["0.1", "0.2"]
    assert split_values("[0.9,1.0],[0.99,1.0]") == ["[0.9,1.0]", "[0.99,1.0]"]
    grid = parse_grid("fashion-mnist/byol", ["optim.lr=0.03,0.06", "method.ema=[0.9,1.0],[0.99,1.0]",
                                             "train.epochs=1", "train.seed=0,1,2"])
    assert grid.seeds == [0, 1, 2] and len(grid.variants) == 4
    names = [v.name for v in grid.variants]
    assert names[0] == "lr-0.03_ema-0.91.0" and len(set(names)) == 4
    assert all("train.epochs=1" in v.overrides for v in grid.variants)
    assert "method.ema=[0.99,1.0]" in grid.variants[-1].overrides
    with pytest.raises(ConfigError, match="unknown key optim.lrr"):
        parse_grid("fashion-mnist/simsiam", ["optim.lrr=0.1,0.2"])
    with pytest.raises(ConfigError, match="expected integers"):
        parse_grid("fashion-mnist/simsiam", ["train.seed=a,b"])


def test_local_sweep_runs_skips_and_tabulates(tmp_path, capsys):
    args = ["sweep", *TINY, "optim.lr=0.03,0.1", "train.seed=0,1", "--out", str(tmp_path), "--jobs", "2"]
    assert cli.main(args) == 0
    out = capsys.readouterr()
    table = (tmp_path / "table.md").read_text()
    assert "| lr-0.03 | 2 |" in table and "| lr-0.1 | 2 |" in table and (tmp_path / "table.png").stat().st_size > 5000
    assert json.loads((tmp_path / "table.json").read_text())["lr-0.1"]["n"] == 2
    assert all((tmp_path / v / f"seed{s}" / "summary.json").exists() for v in ("lr-0.03", "lr-0.1") for s in (0, 1))
    assert "lr-0.03" in out.out
    assert cli.main(args) == 0  # everything is done: nothing runs again
    assert "(4 already done)" in capsys.readouterr().err


def test_slurm_launcher_through_submitits_local_executor(tmp_path, capsys):
    pytest.importorskip("submitit", reason="submitit is in the test extras; pip install -e .[test]")
    args = ["sweep", *TINY, "train.seed=0,1", "--out", str(tmp_path / "grid"), "--launcher", "slurm-local",
            "--time", "10"]
    assert cli.main(args) == 0
    assert all((tmp_path / "grid" / "base" / f"seed{s}" / "summary.json").exists() for s in (0, 1))
    jobs = list((tmp_path / "grid" / "slurm").glob("*_result.pkl"))
    assert len(jobs) == 2  # one submitit job per cell
    assert "| base | 2 |" in (tmp_path / "grid" / "table.md").read_text()


def test_a_failing_cell_is_named_and_the_others_finish(tmp_path, capsys):
    args = ["sweep", *TINY, "train.seed=0,1", "--out", str(tmp_path)]
    (tmp_path / "base").mkdir(parents=True)
    (tmp_path / "base" / "seed1").mkdir()
    (tmp_path / "base" / "seed1" / "config.yaml").write_text("not: [valid\n")  # a damaged cell
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "1 of 2 runs did not finish: base/seed1" in err and "seed1.log" in err
    assert (tmp_path / "base" / "seed0" / "summary.json").exists()
    assert Path(tmp_path / "base" / "seed1.log").read_text().count("not valid YAML") >= 1


@pytest.mark.parametrize("launcher", ["local", "slurm-local"])
def test_a_cell_made_otherwise_stops_the_sweep_before_anything_runs(tmp_path, capsys, launcher):
    from stopgrad.config import dump_yaml, resolve

    made = resolve("default", [*TINY, "train.steps=5", f"train.out_dir={tmp_path / 'base'}", "train.name=seed1",
                               "train.seed=1"])
    (tmp_path / "base" / "seed1").mkdir(parents=True)
    dump_yaml(made, tmp_path / "base" / "seed1" / "config.yaml")
    assert cli.main(["sweep", *TINY, "train.seed=0,1", "--out", str(tmp_path), "--launcher", launcher]) == 2
    err = capsys.readouterr().err
    assert "base/seed1 was made with other settings than this grid asks for (train.steps: 5 there, 3 asked)" in err
    assert "Traceback" not in err and not (tmp_path / "base" / "seed0").exists()  # nothing ran
