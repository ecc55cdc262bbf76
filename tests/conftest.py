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
