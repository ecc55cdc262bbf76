"""The loop's diagnostics: logged under diag/, spectra saved, alarms on collapse only."""

import json
from pathlib import Path

import pytest
import torch

from stopgrad.config import TrainConfig, resolve
from stopgrad.methods.base import StepOutput
from stopgrad.monitor import CollapseError, CollapseWarning, Monitor
from stopgrad.train import train


class _NoMethod:
    def predictor_matrices(self):
        return None

    def head_bn(self):
        return None


def _out(z):
    return StepOutput(loss=torch.tensor(0.0), embeddings=[z, z], features=z)


def test_alarm_fires_after_patience_on_collapse_and_not_on_gaussian(tmp_path):
    mon = Monitor(tmp_path, TrainConfig(alarm_patience=2), _NoMethod())
    healthy = _out(torch.randn(256, 64))
    for step in range(5):
        assert mon.check(step, mon.compute(step, healthy), {}) is None
    collapsed = _out(torch.ones(256, 64) + 1e-4 * torch.randn(256, 64))
    assert mon.check(10, mon.compute(10, collapsed), {}) is None  # first strike only
    with pytest.warns(CollapseWarning, match="collapse alarm at step 11"):
        msg = mon.check(11, mon.compute(11, collapsed), {})
    assert "center_norm" in msg or "dim_std" in msg or "effective_rank" in msg


def test_stop_on_collapse_raises(tmp_path):
    mon = Monitor(tmp_path, TrainConfig(alarm_patience=1, stop_on_collapse=True), _NoMethod())
    collapsed = _out(torch.ones(64, 16))
    with pytest.raises(CollapseError, match="last good checkpoint"), pytest.warns(CollapseWarning):
        mon.check(3, mon.compute(3, collapsed), {})


def test_uniform_collapse_alarm_for_softmax_methods(tmp_path):
    class Softmax(_NoMethod):
        softmax_classes = 100

    ln_k = float(torch.log(torch.tensor(100.0)))
    mon = Monitor(tmp_path, TrainConfig(alarm_patience=1), Softmax())
    for step, ce in enumerate((1.05 * ln_k, ln_k, ln_k)):  # a fresh head starts at (or above) ln K: no collapse
        assert mon.check(step, {}, {"softmax_ce": ce}) is None
    for step in (3, 4, 5):  # it learns, for UNIFORM_ARM_CHECKS checks in a row ...
        assert mon.check(step, {}, {"softmax_ce": 2.0}) is None
    with pytest.warns(CollapseWarning, match="ln"):  # ... and comes back to ln K: collapse
        assert mon.check(6, {}, {"softmax_ce": ln_k})


def test_uniform_alarm_needs_a_sustained_drop_below_ln_k(tmp_path):
    """DINO's shape on Fashion-MNIST: CE just below the band at step 0, above ln K, then down through it."""
    class Softmax(_NoMethod):
        softmax_classes = 1024

    ln_k = float(torch.log(torch.tensor(1024.0)))
    mon = Monitor(tmp_path, TrainConfig(alarm_patience=3), Softmax())
    healthy = (6.73, 6.93, 6.84, 6.81, 6.69, 6.60, 6.45, 6.3, 6.2)  # about steps 0, 50, 100, ... of a healthy run
    for patience in (1, 2):  # a short patience does not arm the gate sooner
        short = Monitor(tmp_path, TrainConfig(alarm_patience=patience), Softmax())
        for step, ce in enumerate(healthy):
            assert short.check(50 * step, {}, {"softmax_ce": ce}) is None, (patience, step, ce)
    for step, ce in enumerate(healthy):
        assert mon.check(50 * step, {}, {"softmax_ce": ce}) is None, (step, ce)
    assert mon.ce_has_learned  # three checks in a row below 0.98·ln K
    for step in range(9, 11):  # then a return to ln K: strikes 1, 2 ...
        assert mon.check(50 * step, {}, {"softmax_ce": ln_k}) is None
    with pytest.warns(CollapseWarning, match="uniform collapse"):  # ... 3: collapse
        assert mon.check(550, {}, {"softmax_ce": ln_k})


def test_severe_rank_rule_needs_a_batch_that_could_show_more(tmp_path):
    """A batch of n rows has centred rank <= n - 1: six rows of 256-d noise are not a collapse."""
    mon = Monitor(tmp_path, TrainConfig(alarm_patience=1), _NoMethod())
    x = torch.randn(3, 256)
    six = torch.cat([x, -x])  # centre 0, rank 3 < 5: only the batch bound keeps the severe rule quiet
    assert mon.check(0, mon.compute(0, _out(six)), {}) is None
    two_dirs = torch.randn(256, 2) @ torch.randn(2, 256) + 0.01 * torch.randn(256, 256)  # rank ~2 of 256
    with pytest.warns(CollapseWarning, match="effective_rank"):
        assert mon.check(1, mon.compute(1, _out(two_dirs)), {})


def test_the_uniform_gate_survives_a_resume(tiny):
    """The gate's state travels in the checkpoint: a resumed run that is back at ln K still alarms."""
    from stopgrad.train import load_run
    from stopgrad.run_state import checkpoint_state, restore

    summary = train(resolve(None, tiny(**{"method.name": "swav", "method.heads": "small"})))
    run = load_run(summary["run_dir"])
    run.monitor.ce_has_learned, run.monitor.ce_below, run.monitor.strikes = True, 0, 2
    state = checkpoint_state(run)
    again = load_run(summary["run_dir"])
    assert not again.monitor.ce_has_learned
    restore(again, state)
    assert again.monitor.ce_has_learned and again.monitor.strikes == 2


def test_training_logs_diagnostics_and_spectra(tiny):
    summary = train(resolve(None, tiny(**{"method.heads": "small", "train.steps": 4, "train.diag_every": 2,
                                          "train.spectrum_every": 2})))
    d = Path(summary["run_dir"])
    rows = [json.loads(line) for line in open(d / "metrics.jsonl")]
    diag = [r for r in rows if "diag/center_norm" in r]
    assert [r["step"] for r in diag] == [1, 3]
    for key in ("diag/dim_std", "diag/effective_rank", "diag/residual_norm", "diag/center_norm_pre_bn",
                "diag/feat_center_norm"):
        assert key in diag[0]
    spectra = [json.loads(line) for line in open(d / "spectra.jsonl")]
    assert len(spectra) == 2 and all(len(s["spectrum"]) == 32 for s in spectra)
    assert summary["diag_fraction"] > 0 and summary["collapse_alarm"] is False
