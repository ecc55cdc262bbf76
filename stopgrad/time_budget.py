"""``train.minutes``: train for a wall-clock budget instead of a fixed number of epochs.

On a CPU the epochs a budget buys depend on the host: the ``fashion-mnist/`` presets' epochs fill 20
minutes on a 2-core Xeon in fp32 and half of them where AMX runs the step in bf16. With
``train.minutes=M`` the run times its own first steps and then fixes its length once: the whole
epochs that fit M minutes of training steps at the measured rate (at least one). Until that
decision the schedules use the length ``train.epochs`` gives; the decision falls inside the first
epoch, so with the presets' one-epoch warmup the learning rate of those steps does not depend on the
length (an EMA momentum schedule does, slightly, for those first steps). The choice is written to
``metrics.jsonl``, the checkpoint (a resumed run keeps it) and ``summary.json`` (``time_budget``), and
``train.epochs=N`` with the chosen N reruns the same schedule on any host.

Minutes are of training steps, the run's ``wall_s``: the online kNN, the checkpoints and the final
evaluation come on top (a few percent; README "Speed").
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any

from stopgrad import distributed as dist
from stopgrad import rundir

if TYPE_CHECKING:
    from stopgrad.build import Run

#: Steps timed before the decision, after :data:`SKIP` untimed ones (first-call set-up, allocator
#: warm-up); both shrink to fit inside the first epoch.
TIMED, SKIP = 100, 10


def points(steps_per_epoch: int) -> tuple[int, int]:
    """``(mark, decide)``: the step counts at which the timing starts and the length is fixed."""
    decide = min(TIMED + SKIP, steps_per_epoch)
    return min(SKIP, decide // 4), decide


def start(run: Run) -> None:
    """Before the loop: make sure a budgeted run lasts at least until its decision."""
    if run.cfg.train.minutes is None or run.budget.get("decided"):
        return
    run.total_steps = max(run.total_steps, points(run.steps_per_epoch)[1])


def after_step(run: Run, bar: Any = None) -> None:
    """Call after each step (``run.step`` and ``run.elapsed_s`` updated): time, then decide once."""
    minutes = run.cfg.train.minutes
    if minutes is None or run.budget.get("decided"):
        return
    mark, decide = points(run.steps_per_epoch)
    if run.step == mark:
        run.budget.update(mark_step=mark, mark_s=run.elapsed_s)
    if run.step < decide:
        return
    # a run resumed between the two points lost its mark: time it from step 0 instead
    mark_step, mark_s = run.budget.get("mark_step", 0), run.budget.get("mark_s", 0.0)
    s_per_step = (run.elapsed_s - mark_s) / max(run.step - mark_step, 1)
    fit_steps = run.step + max(minutes * 60 - run.elapsed_s, 0.0) / max(s_per_step, 1e-9)
    epochs = max(1, math.floor(fit_steps / run.steps_per_epoch + 1e-6))  # not 3.9999999 epochs for 4
    epochs = int(dist.broadcast_object(epochs if dist.is_main() else None))  # every process the same length
    run.total_steps = max(epochs * run.steps_per_epoch, run.step)
    run.budget.update(decided=True, minutes=minutes, s_per_step=round(s_per_step, 5), epochs=epochs,
                      total_steps=run.total_steps, timed_steps=[mark_step, run.step],
                      expected_minutes=round((run.elapsed_s + (run.total_steps - run.step) * s_per_step) / 60, 2))
    if bar is not None:
        bar.total = run.total_steps
        bar.refresh()
    if dist.is_main():
        rundir.append_metrics(run.run_dir, {"step": run.step, "epoch": run.step / run.steps_per_epoch,
                                            "time_budget": summary(run)["time_budget"]})
        if run.cfg.train.progress:
            msg = (f"train.minutes={minutes:g}: {s_per_step * 1000:.0f} ms a step over steps {mark_step}-{run.step} -> "
                   f"{epochs} epochs ({run.total_steps:,} steps, about {run.budget['expected_minutes']:.1f} min of "
                   f"training); train.epochs={epochs} reruns this length")
            (bar.write(msg, file=sys.stderr) if bar is not None else print(msg, file=sys.stderr))


def restore(run: Run, state: dict[str, Any]) -> None:
    """A resumed budgeted run keeps the length it chose (its config gives only the first estimate)."""
    budget = state.get("budget") or {}
    if not isinstance(budget, dict):
        budget = {}
    run.budget = dict(budget)
    if run.budget.get("decided"):
        total = int(state["total_steps"])
        if total < max(1, int(state.get("step", 0))):
            raise ValueError(f"total_steps {total} is below the checkpoint's step {state.get('step')}")
        run.total_steps = total


def summary(run: Run) -> dict[str, Any]:
    """``{"time_budget": {...}}`` for ``summary.json``; empty without ``train.minutes``."""
    if not run.budget.get("decided"):
        return {}
    keys = ("minutes", "s_per_step", "timed_steps", "epochs", "total_steps", "expected_minutes")
    return {"time_budget": {k: run.budget[k] for k in keys}}
