"""SIGTERM (a scheduler's time limit or preemption, a plain ``kill``) stops training at a step
boundary with a checkpoint, and the resumed run equals the uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

from stopgrad import cli, rundir
from stopgrad import train as train_mod
from stopgrad.stop_signal import stop_requests
from tests.conftest import resume_equals_reference, signal_mid_run



class Unhandled(Exception):
    """Raised by the test's own SIGTERM handler: the code under test installed none."""


@pytest.fixture
def fallback():
    """A SIGTERM handler of the test's own, so a missing polite stop fails the test, not the runner."""
    def unhandled(signum, frame):
        raise Unhandled("SIGTERM reached the handler installed before training")

    previous = signal.signal(signal.SIGTERM, unhandled)
    yield unhandled
    signal.signal(signal.SIGTERM, previous)


def test_the_first_sigterm_sets_the_request_and_the_second_interrupts(fallback):
    before = signal.getsignal(signal.SIGTERM)
    with stop_requests() as stop:
        assert not stop and stop.signal_name is None
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs in the main thread between bytecodes
        assert stop and stop.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt, match="second SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_sigterm_stays_ignored():
    before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with stop_requests() as stop:
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert not stop
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_mid_step_finishes_the_step_checkpoints_and_resumes_exactly(tiny, isolated_data, capsys, tmp_path,
                                                                          monkeypatch, fallback):
    over = tiny(**{"method.name": "byol", "method.heads": "small", "train.steps": 8})
    assert cli.main(["train", *over, "train.name=full"]) == 0  # the reference, through the same door
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    real = train_mod.train_step

    def term_inside_step_3(run, step, images):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while step 3 runs; the step still completes
        return real(run, step, images)

    monkeypatch.setattr(train_mod, "train_step", term_inside_step_3)
    code = cli.main(["train", *over, "train.name=stopped"])
    assert signal.getsignal(signal.SIGTERM) is fallback  # the loop's handler is gone with the loop
    monkeypatch.setattr(train_mod, "train_step", real)
    err = capsys.readouterr().err
    stopped = tmp_path / "stopped"
    assert code == 143 and "Traceback" not in err, err
    assert f"stopped by SIGTERM at step 4; a checkpoint of that step was written to {stopped}" in err
    assert rundir.load_checkpoint(stopped).state["step"] == 4
    assert not (stopped / "summary.json").exists()
    resumed = train_mod.resume(stopped)
    assert resumed["final_loss"] == full["final_loss"] and resumed["knn_top1"] == full["knn_top1"]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(stopped / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in open(stopped / "metrics.jsonl") if '"loss"' in line]
    assert steps == list(range(1, 9))


def test_a_real_sigterm_to_stopgrad_train_then_resume(tmp_path):
    """The process as a scheduler sees it: SIGTERM mid-run, exit 143 with a checkpoint, then resume."""
    code, err, run = signal_mid_run(tmp_path, signal.SIGTERM, rows=5, ckpt_every=1000)  # before any periodic one
    assert code == 143, err
    step = rundir.load_checkpoint(run).state["step"]
    assert 1 <= step < 40 and f"stopped by SIGTERM at step {step}" in err
    resume_equals_reference(tmp_path, run)


def test_a_grid_passes_sigterm_on_and_resumes_where_its_cells_stopped(tmp_path, fallback):
    """``run_grid`` (the benchmark tables, ``stopgrad reproduce``) stops its running cells politely."""
    import threading

    from stopgrad.sweep import Variant, cells, run_grid
    from tests.conftest import tiny_overrides

    over = tuple(o for o in tiny_overrides(tmp_path, **{"train.steps": 150, "train.log_every": 1})
                 if not o.startswith("train.out_dir"))
    grid = cells([Variant("tiny", "default", over)], [0, 1], tmp_path / "grid")

    def term_once_both_train():
        deadline = time.time() + 120
        while time.time() < deadline:
            logs = [c.run_dir / "metrics.jsonl" for c in grid]
            if all(p.exists() and sum(1 for _ in open(p)) >= 3 for p in logs):
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=term_once_both_train, daemon=True).start()
    seen: list[str] = []
    with pytest.raises(SystemExit) as stopped:
        run_grid(grid, jobs=2, threads=1, log=seen.append)
    assert stopped.value.code == 143
    for c in grid:
        assert not c.done
        assert 1 <= rundir.load_checkpoint(c.run_dir).state["step"] < 150
        assert "stopped by SIGTERM" in c.run_dir.with_suffix(".log").read_text()
    assert sum(s.startswith("stopped tiny seed") for s in seen) == 2
    assert run_grid(grid, jobs=2, threads=1, log=lambda s: None) == []
    for c in grid:
        assert json.loads((c.run_dir / "summary.json").read_text())["steps"] == 150
