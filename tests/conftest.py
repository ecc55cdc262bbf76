"""Shared fixtures: a tiny run config on the synthetic dataset that trains in seconds, and the
benchmark scripts loaded as modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def tiny_overrides(tmp_path, **extra) -> list[str]:
    """Overrides that make any method train two steps on synthetic 28x28 data in a few seconds."""
    base = {
        "data.dataset": "synthetic", "data.views": "28-gray", "data.batch_size": 32,
        "model.backbone": "convnet", "model.width": 0.25,
        "train.steps": 2, "train.out_dir": str(tmp_path), "train.progress": False,
        "train.log_every": 1, "train.ckpt_every": 1000, "eval.knn_every": 0, "eval.knn_k": 5,
        "eval.batch_size": 256,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def tiny(tmp_path):
    return lambda **extra: tiny_overrides(tmp_path, **extra)


@pytest.fixture
def isolated_data(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A fresh HOME (so a fresh ~/.cache), no $STOPGRAD_DATA and no system dataset folders."""
    import dataclasses

    from stopgrad.data.sources import SOURCES

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("STOPGRAD_DATA", raising=False)
    for name, source in list(SOURCES.items()):
        monkeypatch.setitem(SOURCES, name, dataclasses.replace(source, system_dirs=()))
    return home


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def signal_mid_run(tmp_path: Path, sig: int, rows: int, ckpt_every: int) -> tuple[int, str, Path]:
    """Train a 40-step synthetic reference (``ref``), then the same run (``sig``) as a real
    ``stopgrad train`` process sent ``sig`` once ``rows`` metric lines exist; returns its exit
    status, stderr and folder. :func:`resume_equals_reference` finishes the comparison."""
    import subprocess
    import sys
    import time

    args = ["data.dataset=synthetic", "data.batch_size=16", "model.backbone=convnet", "model.width=0.25",
            "method.heads=small", "train.steps=40", f"train.ckpt_every={ckpt_every}", "train.log_every=1",
            "eval.knn_every=0", "eval.knn_k=5", f"train.out_dir={tmp_path}", "train.progress=false",
            "train.num_threads=1"]
    cli = [sys.executable, "-m", "stopgrad", "train"]
    ref = subprocess.run(cli + args + ["train.name=ref"], env=_env(), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen(cli + args + ["train.name=sig"], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    run = tmp_path / "sig"
    deadline = time.time() + 120
    while time.time() < deadline:
        if (run / "metrics.jsonl").exists() and sum(1 for _ in open(run / "metrics.jsonl")) >= rows:
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err, run


def resume_equals_reference(tmp_path: Path, run: Path) -> None:
    """``stopgrad resume RUN`` ends with the reference run's kNN, final loss and steps."""
    import json
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "stopgrad", "resume", str(run)], env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    a = json.loads((tmp_path / "ref" / "summary.json").read_text())
    b = json.loads((run / "summary.json").read_text())
    assert a["knn_top1"] == b["knn_top1"] and a["final_loss"] == b["final_loss"] and a["steps"] == b["steps"]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
