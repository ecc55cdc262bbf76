"""benchmarks/knn_readouts.py: its standard readout is the project's kNN, and the others read what
they say (the pre-ReLU tap survives the in-place ReLU; centring and standardising use the bank)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from stopgrad.config import resolve
from stopgrad.train import evaluate_knn, load_run, train


@pytest.fixture(scope="module")
def readouts():
    spec = importlib.util.spec_from_file_location("knn_readouts",
                                                  Path(__file__).parents[1] / "benchmarks/knn_readouts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_standard_readout_is_the_projects_knn_and_the_others_differ(tiny, readouts):
    summary = train(resolve(None, tiny(**{"model.options": "{pool: 3}", "train.steps": 6})))
    run = load_run(summary["run_dir"])
    acc = readouts.readout_accuracies(run)
    assert list(acc) == list(readouts.READOUTS)
    assert acc["standard"] == pytest.approx(evaluate_knn(load_run(summary["run_dir"])), abs=1e-6)
    feats = readouts.readout_features(load_run(summary["run_dir"]), run.test_set.images[:64])
    assert feats["out"].shape == feats["pre-relu"].shape  # pooled to the same 3x3 grid
    assert feats["out"].min() >= 0 and feats["pre-relu"].min() < 0  # taken before the in-place ReLU
    assert torch.equal(feats["pre-relu"].clamp(min=0), feats["out"])
    assert feats["block3"].shape[1] == run.method.backbone.features[-3][0].in_channels * 9


def test_a_backbone_without_taps_gets_the_three_normalisations(tiny, readouts):
    summary = train(resolve(None, tiny(**{"model.backbone": "mlp", "train.steps": 2})))
    acc = readouts.readout_accuracies(load_run(summary["run_dir"]))
    assert list(acc) == ["standard", "centred", "standardised"] and all(0 <= v <= 1 for v in acc.values())
