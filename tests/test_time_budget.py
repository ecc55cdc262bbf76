"""``train.minutes``: a run that times its first steps and fixes its own length (stopgrad.time_budget)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from stopgrad import time_budget
from stopgrad.config import ConfigError, resolve
from stopgrad.errors import CheckpointError
from stopgrad.train import load_run, train


def _fake_run(tmp_path: Path, minutes: float, steps_per_epoch: int = 200) -> SimpleNamespace:
    cfg = SimpleNamespace(train=SimpleNamespace(minutes=minutes, progress=False))
    return SimpleNamespace(cfg=cfg, steps_per_epoch=steps_per_epoch, step=0, elapsed_s=0.0, budget={},
                           total_steps=5 * steps_per_epoch, run_dir=tmp_path)


def test_the_length_is_the_whole_epochs_that_fit_at_the_rate_after_the_untimed_steps(tmp_path) -> None:
    run = _fake_run(tmp_path, minutes=1.0)
    assert time_budget.points(200) == (10, 110) and time_budget.points(15) == (3, 15)
    for step in range(1, 111):  # 2 s for the first 10 steps (set-up), then 50 ms a step
        run.step, run.elapsed_s = step, 2.0 if step <= 10 else 2.0 + 0.05 * (step - 10)
        time_budget.after_step(run)
        assert run.budget.get("decided", False) == (step == 110)
    # 60 s: 7 s spent by step 110, 53 s more at 50 ms = 1060 steps -> 1170 steps -> 5 whole epochs of 200
    assert run.budget["s_per_step"] == pytest.approx(0.05) and run.budget["timed_steps"] == [10, 110]
    assert run.budget["epochs"] == 5 and run.total_steps == 1000
    assert run.budget["expected_minutes"] == pytest.approx((7 + 890 * 0.05) / 60, abs=0.01)
    run.step, run.elapsed_s = 111, 100.0  # decided once: a slower stretch later changes nothing
    time_budget.after_step(run)
    assert run.total_steps == 1000
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["step"] == 110 and row["time_budget"]["epochs"] == 5


def test_a_budget_shorter_than_the_timing_still_trains_one_epoch(tmp_path) -> None:
    run = _fake_run(tmp_path, minutes=0.001)
    for step in range(1, 111):
        run.step, run.elapsed_s = step, 0.1 * step
        time_budget.after_step(run)
    assert run.budget["epochs"] == 1 and run.total_steps == 200


@pytest.fixture
def ten_ms_steps(monkeypatch):
    """Each step reads as 10 ms of training, whatever it took: a budget gives a known length."""
    real = time_budget.after_step

    def fake(run, bar=None):
        run.elapsed_s = 0.01 * run.step
        real(run, bar)

    monkeypatch.setattr(time_budget, "after_step", fake)


def test_a_budgeted_run_trains_the_chosen_epochs_and_says_so(tiny, ten_ms_steps) -> None:
    # synthetic: 500 images, batch 32 -> 15 steps an epoch; decided at step 15 at 10 ms a step:
    # 0.6 s fit 60 steps = 4 epochs, whatever train.epochs says
    summary = train(resolve(None, tiny(**{"train.steps": "null", "train.epochs": 1, "train.minutes": 0.01})))
    assert summary["steps"] == 60 and summary["epochs"] == 4
    assert summary["time_budget"] == {"minutes": 0.01, "s_per_step": 0.01, "timed_steps": [3, 15], "epochs": 4,
                                      "total_steps": 60, "expected_minutes": 0.01}
    rows = [json.loads(line) for line in open(Path(summary["run_dir"]) / "metrics.jsonl")]
    assert [r["step"] for r in rows if "time_budget" in r] == [15]
    assert max(r["step"] for r in rows if "loss" in r) == 60
    # a resume rebuilds the run from its config (1 epoch) and takes the chosen length from the checkpoint
    from stopgrad.run_state import checkpoint_state, restore
    run = load_run(summary["run_dir"])
    assert run.total_steps == 60 and run.budget["epochs"] == 4
    again = load_run(summary["run_dir"], random_init=True)
    assert again.total_steps == 15
    restore(again, checkpoint_state(run))
    assert again.total_steps == 60
    with pytest.raises(CheckpointError, match="time budget"):
        restore(again, {**checkpoint_state(run), "budget": {"decided": True}, "total_steps": "sixty"})
    with pytest.raises(CheckpointError, match="below the checkpoint's step"):
        restore(again, {**checkpoint_state(run), "total_steps": -1})


def test_without_a_budget_the_length_is_the_configs(tiny) -> None:
    summary = train(resolve(None, tiny(**{"train.steps": 3})))
    assert summary["steps"] == 3 and "time_budget" not in summary


@pytest.mark.parametrize("value, match", [(0, "train.minutes"), (-5, "train.minutes"), ("inf", "train.minutes")])
def test_bad_budgets_are_named(tiny, value, match) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve(None, tiny(**{"train.steps": "null", "train.minutes": value}))


def test_a_budget_with_a_step_count_is_refused(tiny) -> None:
    with pytest.raises(ConfigError, match="train.steps.*cannot be set with train.minutes"):
        resolve(None, tiny(**{"train.minutes": 20}))
