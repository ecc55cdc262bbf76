"""The training loop: resume equivalence (simulated crash and a real SIGKILL), NaN handling,
damaged checkpoints, run-folder contents."""

import json
import signal
from pathlib import Path

import pytest
import torch

from stopgrad import rundir
from stopgrad import train as train_mod
from stopgrad.config import resolve
from stopgrad.train import NonFiniteLossError, resume, train
from tests.conftest import resume_equals_reference, signal_mid_run



def metrics(run_dir):
    return [json.loads(line) for line in open(Path(run_dir) / "metrics.jsonl")]


def test_run_folder_contents(tiny):
    summary = train(resolve(None, tiny(**{"method.name": "byol", "method.heads": "small"})))
    d = Path(summary["run_dir"])
    for name in ("config.yaml", "provenance.json", "metrics.jsonl", "summary.json", "checkpoint.pt"):
        assert (d / name).exists(), name
    s = json.loads((d / "summary.json").read_text())
    for key in ("method", "dataset", "epochs", "knn_top1", "wall_s", "images_per_s"):
        assert key in s
    prov = json.loads((d / "provenance.json").read_text())
    assert "commit" in prov["git"] and prov["command"]


def test_resume_after_crash_equals_uninterrupted(tiny, monkeypatch):
    over = tiny(**{"method.name": "byol", "method.heads": "small", "train.steps": 8, "train.ckpt_every": 3,
                   "train.name": "full"})
    full = train(resolve(None, over))
    crashed = [o for o in over if not o.startswith("train.name")] + ["train.name=crashed"]
    real_step = train_mod.train_step

    def crash_at_7(run, step, images):
        if step == 7:
            raise RuntimeError("simulated crash")
        return real_step(run, step, images)

    monkeypatch.setattr(train_mod, "train_step", crash_at_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(resolve(None, crashed))
    monkeypatch.setattr(train_mod, "train_step", real_step)
    d = Path(full["run_dir"]).parent / "crashed"
    assert torch.load(d / "checkpoint.pt", weights_only=True)["step"] == 6
    resumed = resume(d)
    assert resumed["knn_top1"] == full["knn_top1"]
    assert resumed["final_loss"] == full["final_loss"]
    a = torch.load(Path(full["run_dir"]) / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(d / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # metrics after resume: one row per step, none duplicated
    steps = [r["step"] for r in metrics(d) if "loss" in r]
    assert steps == list(range(1, 9))


def test_sigkill_mid_epoch_then_resume(tmp_path):
    """A real SIGKILL of `stopgrad train` mid-epoch, then `stopgrad resume`: same final metrics."""
    _, _, killed = signal_mid_run(tmp_path, signal.SIGKILL, rows=12, ckpt_every=5)  # past the second checkpoint
    state = rundir.load_checkpoint(killed).state
    assert 5 <= state["step"] < 40
    resume_equals_reference(tmp_path, killed)


def test_nan_loss_stops_with_clear_error(tiny):
    with pytest.raises(NonFiniteLossError, match=r"loss is (nan|inf) at step \d+"):
        train(resolve(None, tiny(**{"method.name": "simsiam", "method.heads": "small", "optim.lr": 1e30,
                                    "optim.lr_scaling": "none", "train.steps": 6})))


def test_damaged_checkpoint_is_named(tiny):
    summary = train(resolve(None, tiny(**{"method.heads": "small"})))
    d = Path(summary["run_dir"])
    ckpt = d / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(rundir.CheckpointError, match="checkpoint.pt does not match its recorded sha256"):
        resume(d)
    (d / "checkpoint.sums.json").unlink()  # no checksum to go by: the file itself is read, and fails
    with pytest.raises(rundir.CheckpointError, match="damaged or truncated"):
        resume(d)


def test_lars_and_clip_and_warmup_run(tiny):
    summary = train(resolve(None, tiny(**{"method.heads": "small", "optim.name": "lars", "optim.clip_grad": 1.0,
                                          "optim.warmup_epochs": 0.5, "train.steps": 3})))
    rows = [r for r in metrics(summary["run_dir"]) if "loss" in r]
    assert all("grad_norm" in r for r in rows)


def test_the_online_knn_leaves_training_untouched(tiny):
    """Checking more or less often (``eval.knn_every``) changes no weight and no loss: the online kNN
    runs in eval mode, moves no BN statistic and draws no random number of the training stream."""
    base = tiny(**{"method.name": "byol", "method.heads": "small", "train.steps": 6})
    quiet = train(resolve(None, base + ["eval.knn_every=0", "train.name=quiet"]))
    checked = train(resolve(None, base + ["eval.knn_every=0.07", "train.name=checked"]))  # about every step
    assert sum("knn_online_top1" in r for r in metrics(checked["run_dir"])) >= 3
    assert not any("knn_online_top1" in r for r in metrics(quiet["run_dir"]))
    losses = [[r["loss"] for r in metrics(s["run_dir"]) if "loss" in r] for s in (quiet, checked)]
    assert losses[0] == losses[1] and len(losses[0]) == 6
    a = torch.load(Path(quiet["run_dir"]) / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(Path(checked["run_dir"]) / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
