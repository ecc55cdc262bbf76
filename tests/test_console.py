"""What a person sees: `stopgrad config`, the train help, flag hints, the summary table, run folder names,
the messages before long evaluations."""

import json
from pathlib import Path

import pytest
import yaml

from stopgrad import cli
from stopgrad.config import load_preset, resolve
from stopgrad.config_doc import key_docs, render
from stopgrad.console import summary_table
from stopgrad.rundir import run_stem


def test_config_prints_resolved_yaml_with_type_default_and_help(capsys, tmp_path):
    assert cli.main(["config", "fashion-mnist/byol", "train.epochs=3"]) == 0
    out = capsys.readouterr().out
    assert "epochs: 3.0" in out and "float, default 10.0  [changed]; training length in epochs" in out
    assert "ema: [0.99, 1.0]" in out and "target momentum (start, end)" in out  # the method's own keys
    assert "knn_k: 200" in out and "neighbours that vote" in out
    # the output is a config file: it reloads to the same config
    path = tmp_path / "resolved.yaml"
    path.write_text(out)
    assert yaml.safe_load(out)["train"]["epochs"] == 3.0
    assert resolve(str(path)).to_dict() == {**resolve("fashion-mnist/byol", ["train.epochs=3"]).to_dict()}
    assert cli.main(["config", "fashion-mnist/byol", "--plain"]) == 0
    assert "#" not in capsys.readouterr().out.split("\n", 1)[1]


def test_every_key_has_a_type_default_and_help():
    from stopgrad.methods import METHODS

    for name in sorted(METHODS):
        cfg = resolve(None, [f"method.name={name}"])
        docs = key_docs(cfg)
        missing = [k for k, d in docs.items() if not d.help]
        assert not missing, (name, missing)
        assert all(d.type for d in docs.values())
        assert render(cfg).count("\n") > 50


def test_train_help_lists_sections_and_points_to_config(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    for section in ("method", "data", "model", "optim", "train", "eval"):
        assert f"  {section} " in out
    assert "stopgrad config" in out


@pytest.mark.parametrize("argv, hint", [
    (["train", "--epochs", "3"], "write train.epochs=3"),
    (["train", "fashion-mnist/simsiam", "--train.epochs", "3"], "write train.epochs=3"),
    (["train", "--batch-size=64"], "write data.batch_size=64"),
])
def test_argparse_style_flags_get_the_key_value_hint(capsys, argv, hint):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2 and hint in capsys.readouterr().err


def test_summary_is_a_short_table_of_rounded_values():
    text = summary_table({"method": "byol", "preset": "fashion-mnist/byol", "dataset": "fashion-mnist",
                          "epochs": 17.0, "steps": 3978, "batch_size": 256, "knn_top1": 0.8241999745368958,
                          "knn": {"k": 200, "t": 0.1}, "linear_top1": 0.89123, "wall_s": 1091.4,
                          "images_per_s": 933.2, "linear": {"l2": 0.001, "val_images": 10000}, "run_dir": "runs/x"})
    lines = text.splitlines()
    assert "kNN top-1     0.8242  (k=200, T=0.1, final)" in lines
    assert "linear top-1  0.8912  (L2 0.001 chosen on 10,000 held-out training images)" in lines
    assert "train wall    18 min 11 s  (933 images/s)" in lines and "0.82419997" not in text
    assert all(line[12:14] == "  " and line[14] != " " for line in lines)  # values in one column


def test_run_folder_names():
    assert run_stem(resolve("fashion-mnist/byol")) == "fashion-mnist-byol"
    assert run_stem(resolve("fashion-mnist/byol", ["method.name=simsiam"])) == "fashion-mnist-byol-simsiam"
    assert run_stem(resolve(None, ["data.dataset=synthetic", "method.name=dino"])) == "synthetic-dino"
    assert run_stem(resolve("default")) == "fashion-mnist-simsiam"
    assert load_preset("fashion-mnist/byol")["method"]["name"] == "byol"


def test_console_of_a_short_run(capsys, tiny):
    assert cli.main(["train", *tiny(**{"train.steps": 30, "eval.knn_every": 1, "eval.linear": True,
                                       "train.progress": True, "method.heads": "small"})]) == 0
    captured = capsys.readouterr()
    err, out = captured.err, captured.out
    assert "stopgrad: online kNN (backbone features): a bank of 500 training images, 200 test images" in err
    assert "step 15: online kNN top-1" in err
    assert "stopgrad: final kNN (backbone features): a bank of 500 training images" in err
    assert "stopgrad: linear probe (backbone features): L2 penalty chosen from" in err
    assert "epoch=" in err  # the bar shows the epoch
    assert out.splitlines()[0].startswith("method        simsiam")
    run_dir = Path(out.splitlines()[-1].split()[-1])
    assert run_dir.name.startswith("synthetic-simsiam-") and json.loads((run_dir / "summary.json").read_text())


def test_wandb_offline_logs_metrics_and_summary_and_resumes_the_same_run(tiny, monkeypatch):
    """train.wandb=true with the offline mode: the W&B run file holds the loss rows and the summary;
    a resumed run continues the same W&B run id."""
    pytest.importorskip("wandb", reason="wandb is in the test extras; install it with `pip install -e .[test]`")
    from stopgrad.train import resume, train

    monkeypatch.setenv("WANDB_SILENT", "true")
    over = tiny(**{"train.wandb": True, "train.wandb_mode": "offline", "train.steps": 8, "train.ckpt_every": 4,
                   "train.name": "wb", "method.heads": "small"})
    summary = train(resolve(None, over))
    folder = Path(summary["run_dir"]) / "wandb"
    run_id = (folder / "stopgrad-run-id").read_text().strip()
    files = sorted(folder.glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 1 and files[0].stat().st_size > 1000
    blob = files[0].read_bytes()
    assert b"loss" in blob and b"knn_top1" in blob and run_id.encode() in blob
    (Path(summary["run_dir"]) / "summary.json").unlink()
    resume(summary["run_dir"])
    assert len(sorted(folder.glob(f"offline-run-*-{run_id}"))) >= 1
    assert (folder / "stopgrad-run-id").read_text().strip() == run_id  # same W&B run, continued


def test_wandb_without_the_package_is_a_config_error(tiny, monkeypatch):
    import builtins

    from stopgrad.errors import ConfigError
    from stopgrad.train import train

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(ConfigError, match=r"train.wandb=true needs the wandb package"):
        train(resolve(None, tiny(**{"train.wandb": True, "train.wandb_mode": "offline"})))
